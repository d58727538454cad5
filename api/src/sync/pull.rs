//! `POST /api/sync/pull`: what changed since the cursor, per baby in version
//! order, read from one consistent snapshot so that no write is skipped.
//!
//! Its cost grows with what it returns, not with how many babies the user
//! has: the babies' change counters (read with the user's access rows) say
//! which babies changed since the cursor; only those are walked, one
//! fixed-shape statement each (index only), until the page has `limit`
//! entries; then the picked rows are read as one text of raw values per
//! statement, a window at a time, and each entry's JSON is written from it,
//! until [`PAGE_BYTES`] of JSON.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use axum::{
    body::{Body, Bytes},
    http::header,
    response::{IntoResponse, Response},
};

use crate::db::Db;
use entity::{server_settings, sync_clients};
use sea_orm::{
    ConnectionTrait, DbBackend, EntityTrait, Set,
    prelude::Uuid,
    sea_query::{
        Alias, Asterisk, Condition, Expr, ExprTrait, Order, Query, SelectStatement, UnionType,
    },
};
use serde::Serialize;

use super::{
    cursor::{self, Cursor},
    validate::PullRequest,
};
use crate::{
    babies::BabyView,
    error::ApiError,
    kinds::{KINDS, Kind},
};

/// What pull answers.
pub struct PullOutcome {
    body: PullHead,
    /// Per kind in name order: its entries' JSON, comma-separated, in
    /// buffers of about [`CHUNK_BYTES`].
    changes: BTreeMap<&'static str, Vec<Bytes>>,
    pub entries: usize,
}

const CURSOR_KEY: &str = "pull_cursor_key";

/// The cursor signing key every replica shares, made once in the database.
pub async fn cursor_key(db: &Db) -> Result<Vec<u8>, ApiError> {
    let find = || server_settings::Entity::find_by_id(CURSOR_KEY.to_owned());
    if let Some(row) = find().one(db).await? {
        return hex::decode(row.value).map_err(|_| ApiError::Internal);
    }
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    server_settings::Entity::insert(server_settings::ActiveModel {
        name: Set(CURSOR_KEY.to_owned()),
        value: Set(hex::encode(bytes)),
        created_at: Set(crate::time::now()),
    })
    .on_conflict_do_nothing()
    .exec_without_returning(db)
    .await?;
    let row = find().one(db).await?.ok_or(ApiError::Internal)?;
    hex::decode(row.value).map_err(|_| ApiError::Internal)
}

/// The picks of a page read together: at most this many rows' text alive at
/// once. An entry's JSON is at most about 12.5 KiB (2,000 characters of notes,
/// each escaped in at most 6 bytes, and 64 of `estimatedSource`), so a
/// window's text is at most about 3.2 MB, its JSON as much; a page of
/// ordinary entries (~300 bytes) makes about 77 KB a window.
const READ_ROWS: usize = 256;

/// The size of the buffers a page's entries are copied into on their way out.
const CHUNK_BYTES: usize = 64 * 1024;

/// A comma-separated list of JSON values in buffers of about [`CHUNK_BYTES`],
/// each allocated at that size (no doubling), sent as they are.
#[derive(Default)]
struct Chunked {
    bufs: Vec<Vec<u8>>,
}

/// Where a value begins in a [`Chunked`] (its comma included): buffer, offset.
#[derive(Clone, Copy)]
struct Mark(usize, usize);

impl Chunked {
    /// Appends `json`; returns where it begins and how many bytes it took.
    fn push(&mut self, json: &[u8]) -> (Mark, usize) {
        let first = self.bufs.is_empty();
        let need = json.len() + 1;
        match self.bufs.last() {
            Some(b) if b.len() + need <= b.capacity() => {}
            _ => self.bufs.push(Vec::with_capacity(CHUNK_BYTES.max(need))),
        }
        let at = self.bufs.len() - 1;
        let buf = &mut self.bufs[at];
        let mark = Mark(at, buf.len());
        if !first {
            buf.push(b',');
        }
        buf.extend_from_slice(json);
        (mark, buf.len() - mark.1)
    }

    /// Drops everything from `mark` on.
    fn truncate(&mut self, mark: Mark) {
        self.bufs.truncate(mark.0 + 1);
        if let Some(b) = self.bufs.get_mut(mark.0) {
            b.truncate(mark.1);
        }
    }

    fn finish(self) -> Vec<Bytes> {
        self.bufs
            .into_iter()
            .filter(|b| !b.is_empty())
            .map(Bytes::from)
            .collect()
    }
}

/// A page holds at most this many bytes of entries' JSON beyond its first entry.
pub const PAGE_BYTES: usize = 4 * 1024 * 1024;

/// One change found by the walk: which row (a baby's versions are unique
/// over every kind).
struct Walked {
    kind: Kind,
    baby: Uuid,
    version: i64,
}

fn col(name: &str) -> Expr {
    Expr::col(Alias::new(name))
}

/// The next `limit` changes of one baby after `seen`, over every kind, in
/// version order: one statement whose branches each walk one table's
/// (baby_id, version) index (and nothing else: the index covers it) and stop
/// after `limit` rows. Its shape is fixed (one branch per kind), whatever
/// the number of babies the user has.
async fn walk<C: ConnectionTrait>(
    db: &C,
    baby: Uuid,
    seen: i64,
    limit: u64,
) -> Result<Vec<Walked>, ApiError> {
    let backend = db.get_database_backend();
    let mut parts = KINDS.iter().enumerate().map(|(i, kind)| {
        let branch = Query::select()
            .expr_as(Expr::cust(i.to_string()), Alias::new("k"))
            .column(Alias::new("version"))
            .from(Alias::new(kind.name()))
            .and_where(col("baby_id").eq(baby))
            .and_where(col("version").gt(seen))
            .order_by(Alias::new("version"), Order::Asc)
            .limit(limit)
            .to_owned();
        Query::select()
            .column(Asterisk)
            .from_subquery(branch, Alias::new("w"))
            .to_owned()
    });
    let mut q = parts.next().expect("at least one kind");
    for p in parts {
        q.union(UnionType::All, p);
    }
    q.order_by(Alias::new("version"), Order::Asc).limit(limit);
    // The picks come back as one text, `k version,k version,…`: one value
    // for the whole walk instead of a row (and on SQLite a hand-over from
    // the database's thread) per pick.
    let list = Query::select()
        .expr_as(
            Expr::cust(concat_agg(backend, "k || ' ' || version", "','")),
            Alias::new("picks"),
        )
        .from_subquery(q, Alias::new("w"))
        .to_owned();
    let picks: Option<String> = match db.query_one_raw(backend.build(&list)).await? {
        Some(row) => row.try_get("", "picks")?,
        None => None,
    };
    let mut out = vec![];
    for pick in picks.as_deref().unwrap_or_default().split_terminator(',') {
        let (k, version) = pick.split_once(' ').ok_or(ApiError::Internal)?;
        let k: usize = k.parse().map_err(|_| ApiError::Internal)?;
        out.push(Walked {
            kind: *KINDS.get(k).ok_or(ApiError::Internal)?,
            baby,
            version: version.parse().map_err(|_| ApiError::Internal)?,
        });
    }
    out.sort_unstable_by_key(|w| w.version);
    Ok(out)
}

/// An aggregate that joins the texts `expr` of a group's rows with `sep`
/// (a SQL literal), in no particular order.
fn concat_agg(backend: DbBackend, expr: &str, sep: &str) -> String {
    match backend {
        DbBackend::Postgres => format!("string_agg(CAST({expr} AS TEXT), {sep})"),
        _ => format!("group_concat({expr}, {sep})"),
    }
}

/// A newline as a SQL literal.
fn newline(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => "E'\\n'",
        _ => "char(10)",
    }
}

/// Where an entry's JSON went in its kind's list, and its size.
type Placed = HashMap<(Uuid, i64), (Mark, usize)>;

/// The rows the walk picked, read as row texts and written as their wire
/// JSON ([`Kind::row_text`]), appended to their kind's list in the walk's
/// order (baby, then version), [`READ_ROWS`] picks at a time: one statement
/// per window, so that the rows alive at once stay few whatever
/// their size. The walk is exhaustive per baby (every change between the
/// cursor and its last pick), so each kind's rows of a baby in a window are
/// one range of its `(baby_id, version)` index. Reading stops once the
/// page's byte budget is spent; the picks left unread are past the page.
async fn read_rows(
    db: &sea_orm::DatabaseTransaction,
    picked: &[Walked],
    lists: &mut BTreeMap<&'static str, Chunked>,
) -> Result<Placed, ApiError> {
    let backend = db.get_database_backend();
    let mut out = HashMap::with_capacity(picked.len());
    let mut bytes = 0usize;
    for window in picked.chunks(READ_ROWS) {
        if bytes > PAGE_BYTES {
            break;
        }
        // One statement for the window: per kind with rows in it, its rows
        // as one text, a row's text (see `RowFormat`) a line.
        let mut q: Option<SelectStatement> = None;
        for (i, kind) in KINDS.iter().enumerate() {
            let mut ranges: Vec<(Uuid, i64, i64)> = vec![];
            for w in window.iter().filter(|w| w.kind == *kind) {
                match ranges.last_mut() {
                    Some((baby, _, last)) if *baby == w.baby => *last = w.version,
                    _ => ranges.push((w.baby, w.version, w.version)),
                }
            }
            if ranges.is_empty() {
                continue;
            }
            let mut any = Condition::any();
            for (baby, first, last) in ranges {
                any = any.add(
                    Condition::all()
                        .add(col("baby_id").eq(baby))
                        .add(col("version").gte(first))
                        .add(col("version").lte(last)),
                );
            }
            let (row_sql, _) = kind.row_text(backend)?;
            let part = Query::select()
                .expr_as(Expr::cust(i.to_string()), Alias::new("k"))
                .expr_as(
                    Expr::cust(concat_agg(backend, row_sql, newline(backend))),
                    Alias::new("rows"),
                )
                .from(Alias::new(kind.name()))
                .cond_where(any)
                .to_owned();
            match q.as_mut() {
                None => q = Some(part),
                Some(q) => {
                    q.union(UnionType::All, part);
                }
            }
        }
        let Some(q) = q else { continue };
        // Each row (one kind's text) let go of as soon as it is read.
        for row in db.query_all_raw(backend.build(&q)).await? {
            let k: i32 = row.try_get("", "k")?;
            let kind = *KINDS.get(k as usize).ok_or(ApiError::Internal)?;
            let text: Option<String> = row.try_get("", "rows")?;
            drop(row);
            let (_, format) = kind.row_text(backend)?;
            let list = lists.get_mut(kind.name()).ok_or(ApiError::Internal)?;
            // Written one after the other, then taken in the walk's order
            // (baby, then version).
            let mut rows = vec![];
            let mut json = Vec::with_capacity(text.as_ref().map_or(0, |t| t.len() + t.len() / 4));
            for line in text.as_deref().unwrap_or_default().split_terminator('\n') {
                let start = json.len();
                let (baby, version) = format.write_json(line, &mut json).map_err(|e| {
                    tracing::error!(kind = kind.name(), error = %e, "a stored entry the model cannot read");
                    ApiError::Internal
                })?;
                rows.push((baby, version, start, json.len()));
            }
            drop(text);
            rows.sort_unstable_by_key(|r| (r.0, r.1));
            for (baby, version, start, end) in rows {
                let placed = list.push(&json[start..end]);
                bytes += placed.1;
                out.insert((baby, version), placed);
            }
        }
    }
    Ok(out)
}

// The wire shape, for the OpenAPI document only: the body itself is written
// by `PullOutcome::into_response`, the head first, then each kind's entries
// as they were serialised from the rows.
/// What pull answers.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // the wire shape, for the document; never built
#[schema(rename_all = "camelCase")]
pub struct PullBody {
    /// Give it to the next pull.
    cursor: String,
    /// Pull again now: there is more.
    has_more: bool,
    /// This client's, 0 for a client the server has not seen.
    last_mutation_id: i64,
    /// Every baby the caller can access.
    babies: Vec<BabyView>,
    /// Babies of the cursor the caller can no longer see.
    #[schema(value_type = Vec<String>)]
    revoked_baby_ids: BTreeSet<Uuid>,
    /// Per kind, its entries, in version order per baby.
    #[schema(schema_with = crate::openapi::changes)]
    changes: (),
}

/// Pull's answer but its entries (the same fields as `PullBody`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PullHead {
    /// Give it to the next pull.
    cursor: String,
    /// Pull again now: there is more.
    has_more: bool,
    /// This client's, 0 for a client the server has not seen.
    last_mutation_id: i64,
    /// Every baby the caller can access.
    babies: Vec<BabyView>,
    revoked_baby_ids: BTreeSet<Uuid>,
}

impl PullOutcome {
    /// The response: the head's JSON, then each kind's entries as written,
    /// sent as they are (no copy of the page into one buffer).
    pub fn into_response(self) -> Result<Response, ApiError> {
        let mut head = serde_json::to_vec(&self.body).map_err(|_| ApiError::Internal)?;
        if head.pop() != Some(b'}') {
            return Err(ApiError::Internal);
        }
        head.extend_from_slice(b",\"changes\":{");
        let mut chunks: Vec<Bytes> = vec![Bytes::from(head)];
        for (i, (name, entries)) in self.changes.into_iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            chunks.push(Bytes::from(format!("{sep}\"{name}\":[")));
            chunks.extend(entries);
            chunks.push(Bytes::from_static(b"]"));
        }
        chunks.push(Bytes::from_static(b"}}"));
        let body = Body::from_stream(futures_util::stream::iter(
            chunks.into_iter().map(Ok::<_, std::convert::Infallible>),
        ));
        Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
    }
}

#[tracing::instrument(skip_all, fields(client.id = %req.client_id, limit = req.limit))]
pub async fn pull(
    db: &Db,
    key: &[u8],
    user: &str,
    req: PullRequest,
) -> Result<PullOutcome, ApiError> {
    let seen: Cursor = match &req.cursor {
        Some(text) => cursor::decode(key, user, text)?,
        None => Cursor::new(),
    };
    // One snapshot for everything read below: on the read replica when it
    // holds everything committed before this pull began.
    let txn = crate::db::begin_read(db, "pull").await?;
    let last_mutation_id = match sync_clients::Entity::find_by_id(req.client_id)
        .one(&txn)
        .await?
    {
        Some(c) if c.user_id != user => {
            return Err(ApiError::Forbidden(
                "this clientId belongs to another user".into(),
            ));
        }
        Some(c) => c.last_mutation_id,
        None => 0,
    };
    let mut babies_out = vec![];
    // Per visible baby: (seen, its change counter in this snapshot).
    let mut state: BTreeMap<Uuid, (i64, i64)> = BTreeMap::new();
    for (baby, level) in crate::babies::accessible(&txn, user).await? {
        let from = seen.get(&baby.id).copied().unwrap_or(0);
        state.insert(baby.id, (from, baby.change_counter));
        babies_out.push(BabyView::new(&baby, level));
    }
    let revoked: BTreeSet<Uuid> = seen
        .keys()
        .filter(|b| !state.contains_key(b))
        .copied()
        .collect();

    // On PostgreSQL each walk must be an ordered index scan that stops
    // early, whatever the planner believes of the table's size (it may
    // never have been analyzed). Timestamps are read in ISO form.
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared(
            "SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off; SET LOCAL jit = off; \
             SET LOCAL DateStyle = 'ISO, YMD'",
        )
        .await?;
    }
    // Only babies whose counter moved past the cursor are walked, in id
    // order, until the page is full in entries.
    let mut next: BTreeMap<Uuid, i64> = state.iter().map(|(b, (from, _))| (*b, *from)).collect();
    let mut picked: Vec<Walked> = vec![];
    let mut has_more = false;
    'babies: for (baby, (from, counter)) in &state {
        if counter <= from {
            continue;
        }
        let room = req.limit - picked.len() as u64;
        if room == 0 {
            has_more = true;
            break;
        }
        let walked = walk(&txn, *baby, *from, room + 1).await?;
        let exhausted = walked.len() as u64 <= room;
        for w in walked {
            if picked.len() as u64 == req.limit {
                has_more = true;
                break 'babies;
            }
            picked.push(w);
        }
        if exhausted {
            // Every change of this baby up to its counter is in the page.
            next.insert(*baby, *counter);
        }
    }
    // Each entry's JSON, as serialised from its row, goes into its kind's
    // list (in the walk's order: baby, then version); it is not copied
    // again on its way out.
    let mut lists: BTreeMap<&'static str, Chunked> = KINDS
        .iter()
        .map(|k| (k.name(), Chunked::default()))
        .collect();
    // Several babies' ranges of one kind in a window are one condition of
    // ORs, which PostgreSQL reads with a bitmap scan: the walk's settings
    // would turn that into a scan of a whole index. One range a kind (a
    // baby's first sync, most pages) is an index range scan either way, and
    // saves this statement.
    let several = picked
        .chunks(READ_ROWS)
        .any(|window| window.windows(2).any(|p| p[0].baby != p[1].baby));
    if txn.get_database_backend() == DbBackend::Postgres && several {
        txn.execute_unprepared("SET LOCAL enable_bitmapscan = on; SET LOCAL enable_sort = on")
            .await?;
    }
    let placed = read_rows(&txn, &picked, &mut lists).await?;
    txn.commit().await?;

    // The page ends at the byte budget: each kind's list loses its entries
    // from the first one past it.
    let mut bytes = 0usize;
    let mut entries = 0usize;
    let mut cut: Option<Uuid> = None;
    let mut last_included: BTreeMap<Uuid, i64> = BTreeMap::new();
    let mut dropped: BTreeSet<&'static str> = BTreeSet::new();
    for w in &picked {
        // Unread: past the budget already.
        let placed = placed.get(&(w.baby, w.version)).copied();
        let size = placed.map_or(usize::MAX, |p| p.1);
        if cut.is_none() && (placed.is_none() || (entries > 0 && bytes + size > PAGE_BYTES)) {
            cut = Some(w.baby);
        }
        if cut.is_some() {
            if let Some((mark, _)) = placed
                && dropped.insert(w.kind.name())
            {
                lists
                    .get_mut(w.kind.name())
                    .ok_or(ApiError::Internal)?
                    .truncate(mark);
            }
            continue;
        }
        bytes += size;
        entries += 1;
        let at = next.entry(w.baby).or_default();
        *at = Ord::max(*at, w.version);
        last_included.insert(w.baby, w.version);
    }
    drop(placed);
    let changes = lists.into_iter().map(|(k, l)| (k, l.finish())).collect();
    if let Some(baby) = cut {
        // The page is full in bytes: everything from the cut on comes next time.
        has_more = true;
        for (b, v) in next.range_mut(baby..) {
            let from = state.get(b).map_or(0, |s| s.0);
            *v = match last_included.get(b) {
                Some(included) if *b == baby => *included,
                _ => from,
            };
        }
    }
    let body = PullHead {
        cursor: cursor::encode(key, user, &next),
        has_more,
        last_mutation_id,
        babies: babies_out,
        revoked_baby_ids: revoked,
    };
    Ok(PullOutcome {
        body,
        changes,
        entries,
    })
}
