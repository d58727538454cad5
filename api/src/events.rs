//! Live updates: `GET /api/sync/events`, a server-sent event stream that says
//! "pull now" (PROTOCOL.md, Live updates). A poke carries no records: pull
//! stays the one source of truth.
//!
//! A write names who must hear of it ([`Change`]: users and babies). On
//! PostgreSQL it is sent with `pg_notify` inside the writing transaction, so
//! it is delivered only once committed, to every instance; each instance
//! keeps one listening connection (not one per stream) and hands what it
//! hears to its [`Hub`]. After that connection is lost and made again, every
//! stream gets a `ready` (pull now: something may have been missed). On
//! SQLite (one process) the hub hears of a change right after its commit.
//!
//! A stream costs its connection, one small struct and a task-less body: the
//! hub keeps, per stream, the babies poked since it last wrote (so pokes
//! close together merge) and a wake-up.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{
    body::{Body, Bytes},
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, EntityTrait, QueryFilter,
    QuerySelect, Statement, prelude::Uuid,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};

use crate::error::ApiError;

/// At most this many open streams per user on one instance.
pub const STREAMS_PER_USER: usize = 10;
/// The PostgreSQL channel pokes travel on.
pub const CHANNEL: &str = "babysync_pokes";
/// The `application_name` of each instance's listening connection.
pub const LISTENER_NAME: &str = "babysync-listener";
/// A notification's payload stays under PostgreSQL's 8000-byte limit.
const PAYLOAD_BUDGET: usize = 7000;

/// One server-sent event of the stream, as the OpenAPI document describes it
/// (the stream writes them as `event:`/`data:` lines; comments are not events).
#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
pub struct StreamEvent {
    event: StreamEventName,
    /// JSON: `{}` for `ready`; `{"babyIds": ["uuid", ...]}` for `poke`.
    data: String,
}

#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum StreamEventName {
    /// Pull now (first, and after a gap).
    Ready,
    /// These babies changed: pull them.
    Poke,
}

/// Who must hear of a committed write: these users, about these babies.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Change {
    #[serde(rename = "u")]
    pub users: Vec<String>,
    #[serde(rename = "b")]
    pub babies: Vec<Uuid>,
}

impl Change {
    pub fn new(
        users: impl IntoIterator<Item = String>,
        babies: impl IntoIterator<Item = Uuid>,
    ) -> Self {
        Self {
            users: users.into_iter().collect(),
            babies: babies.into_iter().collect(),
        }
    }

    /// Every user with access to these babies now (inside the writing
    /// transaction), about them.
    pub async fn to_caregivers(
        txn: &DatabaseTransaction,
        babies: &[Uuid],
    ) -> Result<Vec<Change>, DbErr> {
        if babies.is_empty() {
            return Ok(vec![]);
        }
        use entity::baby_access;
        let rows: Vec<(Uuid, String)> = baby_access::Entity::find()
            .select_only()
            .column(baby_access::Column::BabyId)
            .column(baby_access::Column::UserId)
            .filter(baby_access::Column::BabyId.is_in(babies.iter().copied()))
            .into_tuple()
            .all(txn)
            .await?;
        Ok(Self::grouped(rows))
    }

    /// The changes for these (baby, caregiver) pairs: users who see the
    /// same babies share one change.
    pub fn grouped(rows: impl IntoIterator<Item = (Uuid, String)>) -> Vec<Change> {
        let mut per_user: HashMap<String, BTreeSet<Uuid>> = HashMap::new();
        for (baby, user) in rows {
            per_user.entry(user).or_default().insert(baby);
        }
        let mut per_set: HashMap<BTreeSet<Uuid>, Vec<String>> = HashMap::new();
        for (user, set) in per_user {
            per_set.entry(set).or_default().push(user);
        }
        per_set
            .into_iter()
            .map(|(set, users)| Change::new(users, set))
            .collect()
    }
}

/// One open stream: what it has not told yet, and its wake-up.
#[derive(Default)]
struct Stream {
    pending: Mutex<BTreeSet<Uuid>>,
    ready: AtomicBool,
    wake: Notify,
}

/// The open streams of this instance, per user.
#[derive(Default)]
pub struct Hub {
    streams: Mutex<HashMap<String, Vec<Arc<Stream>>>>,
}

impl Hub {
    /// Opens a stream for `user`, or `None` at [`STREAMS_PER_USER`].
    fn open(self: &Arc<Self>, user: &str) -> Option<Subscription> {
        let mut streams = self.streams.lock().expect("hub");
        let mine = streams.entry(user.to_owned()).or_default();
        if mine.len() >= STREAMS_PER_USER {
            return None;
        }
        let stream = Arc::new(Stream::default());
        mine.push(stream.clone());
        drop(streams);
        crate::metrics::streams_opened(1);
        Some(Subscription {
            hub: self.clone(),
            user: user.to_owned(),
            stream,
        })
    }

    /// Tells every stream of the change's users about its babies.
    pub fn deliver(&self, change: &Change) {
        let streams = self.streams.lock().expect("hub");
        for user in &change.users {
            for stream in streams.get(user).into_iter().flatten() {
                stream
                    .pending
                    .lock()
                    .expect("stream")
                    .extend(change.babies.iter().copied());
                stream.wake.notify_one();
            }
        }
    }

    /// Sends `ready` to every stream (something may have been missed).
    pub fn ready_all(&self) {
        let streams = self.streams.lock().expect("hub");
        for stream in streams.values().flatten() {
            stream.ready.store(true, Ordering::SeqCst);
            stream.wake.notify_one();
        }
    }

    /// Open streams on this instance.
    pub fn open_streams(&self) -> usize {
        self.streams
            .lock()
            .expect("hub")
            .values()
            .map(Vec::len)
            .sum()
    }
}

/// A stream's place in the hub; leaves it when dropped.
struct Subscription {
    hub: Arc<Hub>,
    user: String,
    stream: Arc<Stream>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut streams = self.hub.streams.lock().expect("hub");
        if let Some(mine) = streams.get_mut(&self.user) {
            mine.retain(|s| !Arc::ptr_eq(s, &self.stream));
            if mine.is_empty() {
                streams.remove(&self.user);
            }
        }
        crate::metrics::streams_opened(-1);
    }
}

/// Live updates for this instance: its hub and how changes reach it.
pub struct Events {
    pub hub: Arc<Hub>,
    backend: DbBackend,
    keepalive: Duration,
    stopping: watch::Receiver<bool>,
    stop: watch::Sender<bool>,
}

impl Events {
    pub fn new(backend: DbBackend, keepalive: Duration) -> Self {
        let (stop, stopping) = watch::channel(false);
        Self {
            hub: Arc::default(),
            backend,
            keepalive,
            stopping,
            stop,
        }
    }

    /// Ends every stream (shutdown).
    pub fn close_all(&self) {
        let _ = self.stop.send(true);
    }

    /// Sends `changes` from inside the writing transaction: on PostgreSQL as
    /// notifications, delivered at commit; elsewhere nothing yet (see
    /// [`Events::committed`]).
    pub async fn within(&self, txn: &DatabaseTransaction, changes: &[Change]) -> Result<(), DbErr> {
        if self.backend != DbBackend::Postgres {
            return Ok(());
        }
        for payload in payloads(changes) {
            txn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_notify($1, $2)",
                [CHANNEL.into(), payload.into()],
            ))
            .await?;
        }
        Ok(())
    }

    /// Commits `txn` with `changes` told: within it on PostgreSQL, right
    /// after it elsewhere. A poke never precedes its commit.
    pub async fn commit(
        &self,
        txn: DatabaseTransaction,
        changes: &[Change],
    ) -> Result<(), ApiError> {
        self.within(&txn, changes).await?;
        txn.commit().await?;
        self.committed(changes);
        Ok(())
    }

    /// After the commit: on SQLite, delivers `changes` to this instance's
    /// streams (on PostgreSQL the listener does).
    pub fn committed(&self, changes: &[Change]) {
        if self.backend == DbBackend::Postgres {
            return;
        }
        for change in changes {
            self.hub.deliver(change);
        }
    }

    /// `GET /api/sync/events` for `user` until `expires` (a Unix time), or
    /// 429 at the per-user cap.
    pub fn stream(&self, user: &str, expires: Option<i64>) -> Result<Response, ApiError> {
        // To the millisecond: a token whose leeway runs out within the second
        // the check rounded to is refused, not given a stream that ends at once.
        let left_ms = expires.map(|exp| {
            exp.saturating_add(crate::auth::LEEWAY_SECS as i64)
                .saturating_mul(1000)
                .saturating_sub(chrono::Utc::now().timestamp_millis())
                .min(365 * 24 * 3600 * 1000)
        });
        if left_ms.is_some_and(|ms| ms <= 0) {
            return Err(ApiError::Unauthorized("token expired".into()));
        }
        let sub = self.hub.open(user).ok_or(ApiError::RateLimited {
            retry_after_secs: 1,
        })?;
        let until =
            left_ms.map(|ms| tokio::time::Instant::now() + Duration::from_millis(ms as u64));
        let state = StreamState {
            sub,
            keepalive: self.keepalive,
            until,
            stopping: self.stopping.clone(),
            started: false,
        };
        let body = Body::from_stream(futures_util::stream::unfold(state, next_frame));
        let mut response = body.into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
        Ok(response)
    }
}

/// Splits changes into notification payloads under the size budget (by
/// babies, then by users).
pub fn payloads(changes: &[Change]) -> Vec<String> {
    let mut out = vec![];
    for change in changes.iter().flat_map(|c| {
        c.babies
            .chunks(50)
            .map(|babies| Change::new(c.users.iter().cloned(), babies.iter().copied()))
    }) {
        let change = &change;
        let mut part = Change::new([], change.babies.iter().copied());
        for user in &change.users {
            part.users.push(user.clone());
            let size = serde_json::to_string(&part)
                .map(|s| s.len())
                .unwrap_or(usize::MAX);
            if size > PAYLOAD_BUDGET && part.users.len() > 1 {
                let last = part.users.pop().expect("just pushed");
                out.push(serde_json::to_string(&part).expect("serialisable"));
                part.users = vec![last];
            }
        }
        if !part.users.is_empty() {
            out.push(serde_json::to_string(&part).expect("serialisable"));
        }
    }
    out
}

struct StreamState {
    sub: Subscription,
    keepalive: Duration,
    until: Option<tokio::time::Instant>,
    stopping: watch::Receiver<bool>,
    started: bool,
}

async fn next_frame(mut s: StreamState) -> Option<(Result<Bytes, std::io::Error>, StreamState)> {
    if !s.started {
        s.started = true;
        return Some((Ok(Bytes::from_static(b"event: ready\ndata: {}\n\n")), s));
    }
    let until = s.until;
    let keepalive_at = tokio::time::Instant::now() + s.keepalive;
    let stream = s.sub.stream.clone();
    let frame = loop {
        let expiry = async {
            match until {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = stream.wake.notified() => {
                let mut text = String::new();
                if stream.ready.swap(false, Ordering::SeqCst) {
                    text.push_str("event: ready\ndata: {}\n\n");
                }
                let babies = std::mem::take(&mut *stream.pending.lock().expect("stream"));
                if !babies.is_empty() {
                    let data = serde_json::json!({ "babyIds": babies });
                    text.push_str(&format!("event: poke\ndata: {data}\n\n"));
                    crate::metrics::poke_sent();
                }
                if !text.is_empty() {
                    break text;
                }
                // A wake-up whose pokes went out with the previous frame.
            }
            () = tokio::time::sleep_until(keepalive_at) => break ": keep-alive\n\n".to_owned(),
            () = expiry => return None,
            _ = s.stopping.wait_for(|stop| *stop) => return None,
        }
    };
    Some((Ok(Bytes::from(frame)), s))
}

/// Each instance's one listening connection on PostgreSQL: hands what it
/// hears to the hub; made again with back-off when lost, then every stream
/// gets a `ready`. Runs until the task is aborted.
pub async fn listen(url: String, hub: Arc<Hub>) {
    use sea_orm::sqlx::postgres::PgListener;
    let url = with_application_name(&url);
    let mut backoff = Duration::from_millis(100);
    loop {
        crate::metrics::listener_up(false);
        let mut listener = match PgListener::connect(&url).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "live updates: cannot connect the listener; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::warn!(error = %e, "live updates: LISTEN failed; retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
            continue;
        }
        backoff = Duration::from_millis(100);
        crate::metrics::listener_up(true);
        // Whatever was committed while no one listened (before the first
        // LISTEN too) is in the pull each stream now makes.
        tracing::info!("live updates: listening; every open stream gets ready");
        hub.ready_all();
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => match serde_json::from_str::<Change>(n.payload()) {
                    Ok(change) => hub.deliver(&change),
                    Err(e) => {
                        tracing::warn!(error = %e, "live updates: a payload that is not a change")
                    }
                },
                Ok(None) => {
                    tracing::warn!("live updates: listener connection lost");
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "live updates: listener failed");
                    break;
                }
            }
        }
    }
}

fn with_application_name(url: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}application_name={LISTENER_NAME}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_stay_under_the_limit_and_lose_no_user() {
        let babies = vec![Uuid::new_v4(), Uuid::new_v4()];
        let users: Vec<String> = (0..2000)
            .map(|i| format!("user-with-a-longish-id-{i}"))
            .collect();
        let parts = payloads(&[Change::new(users.clone(), babies.clone())]);
        assert!(parts.len() > 1);
        let mut seen = vec![];
        for p in &parts {
            assert!(p.len() <= PAYLOAD_BUDGET, "{}", p.len());
            let c: Change = serde_json::from_str(p).unwrap();
            assert_eq!(c.babies, babies);
            seen.extend(c.users);
        }
        assert_eq!(seen, users);
    }

    #[tokio::test]
    async fn the_hub_merges_pokes_caps_streams_and_forgets_closed_ones() {
        let hub = Arc::new(Hub::default());
        let subs: Vec<_> = (0..STREAMS_PER_USER)
            .map(|_| hub.open("a").unwrap())
            .collect();
        assert!(hub.open("a").is_none(), "capped per user");
        let b = hub.open("b").unwrap();
        let (x, y) = (Uuid::new_v4(), Uuid::new_v4());
        hub.deliver(&Change::new(["a".to_owned()], [x]));
        hub.deliver(&Change::new(["a".to_owned()], [y, x]));
        let pending = subs[0].stream.pending.lock().unwrap().clone();
        assert_eq!(pending, BTreeSet::from([x, y]), "merged");
        assert!(
            b.stream.pending.lock().unwrap().is_empty(),
            "only the users named"
        );
        drop(subs);
        assert_eq!(hub.open_streams(), 1);
        assert!(hub.open("a").is_some());
    }
}
