//! The pull cursor: per baby, the highest version the client has seen. Opaque
//! to clients; bound to the user and signed, so a cursor that is not one of
//! ours (garbage, tampered, another user's, another encoding) is refused.
//!
//! Layout before base64url: `0x01`, then per baby 16 bytes of id and 8 bytes
//! of version (big-endian), then the first 16 bytes of
//! HMAC-SHA256(key, "babysync-cursor-v1" ‖ len(user) ‖ user ‖ body).

use std::collections::BTreeMap;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sea_orm::prelude::Uuid;
use sha2::Sha256;

use crate::error::ApiError;

const FORMAT: u8 = 1;
const TAG_LEN: usize = 16;
const ENTRY_LEN: usize = 24;

pub type Cursor = BTreeMap<Uuid, i64>;

fn mac(key: &[u8], user: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(b"babysync-cursor-v1");
    m.update(&(user.len() as u32).to_be_bytes());
    m.update(user.as_bytes());
    m.update(body);
    m
}

pub fn encode(key: &[u8], user: &str, cursor: &Cursor) -> String {
    let mut body = Vec::with_capacity(1 + cursor.len() * ENTRY_LEN + TAG_LEN);
    body.push(FORMAT);
    for (baby, version) in cursor {
        body.extend_from_slice(baby.as_bytes());
        body.extend_from_slice(&version.to_be_bytes());
    }
    let tag = mac(key, user, &body).finalize().into_bytes();
    body.extend_from_slice(&tag[..TAG_LEN]);
    URL_SAFE_NO_PAD.encode(body)
}

pub fn decode(key: &[u8], user: &str, text: &str) -> Result<Cursor, ApiError> {
    let bad = || {
        ApiError::invalid_field(
            "cursor",
            "is not a cursor from this server; pull with null to start over",
        )
    };
    if text.is_empty() || text.len() > 1_000_000 {
        return Err(bad());
    }
    let raw = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
    if raw.len() < 1 + TAG_LEN
        || !(raw.len() - 1 - TAG_LEN).is_multiple_of(ENTRY_LEN)
        || raw[0] != FORMAT
    {
        return Err(bad());
    }
    let (body, tag) = raw.split_at(raw.len() - TAG_LEN);
    mac(key, user, body)
        .verify_truncated_left(tag)
        .map_err(|_| bad())?;
    let mut cursor = Cursor::new();
    for entry in body[1..].chunks_exact(ENTRY_LEN) {
        let baby = Uuid::from_slice(&entry[..16]).map_err(|_| bad())?;
        let version = i64::from_be_bytes(entry[16..].try_into().map_err(|_| bad())?);
        if version < 0 {
            return Err(bad());
        }
        cursor.insert(baby, version);
    }
    Ok(cursor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let key = b"k".repeat(32);
        let mut c = Cursor::new();
        c.insert(Uuid::new_v4(), 7);
        c.insert(Uuid::new_v4(), 0);
        let s = encode(&key, "alice", &c);
        assert_eq!(decode(&key, "alice", &s).unwrap(), c);
        assert!(decode(&key, "bob", &s).is_err(), "bound to its user");
        assert!(decode(b"other-key", "alice", &s).is_err());
        let mut bytes = URL_SAFE_NO_PAD.decode(&s).unwrap();
        bytes[20] ^= 1;
        assert!(
            decode(&key, "alice", &URL_SAFE_NO_PAD.encode(&bytes)).is_err(),
            "tampered"
        );
        for garbage in ["", "x", "!!!", "eyJ2IjoxfQ", &s[..s.len() - 1]] {
            assert!(decode(&key, "alice", garbage).is_err(), "{garbage}");
        }
        let empty = encode(&key, "alice", &Cursor::new());
        assert!(decode(&key, "alice", &empty).unwrap().is_empty());
    }
}
