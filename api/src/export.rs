//! `GET /api/babies/{id}/export` (PROTOCOL.md, "Export and import"): a
//! baby's whole history as one JSON document (every kind, archived entries
//! included, each entry as pull sends it), or one kind as CSV in a time
//! zone. Both are streamed: a task reads the rows in pages of
//! [`PAGE_ROWS`] in the request's read transaction (one snapshot) and
//! hands the body over in chunks through a channel of [`CHANNEL_CHUNKS`],
//! so the server holds a few pages at a time whatever the baby's history.
//! A client that goes away ends the task and its transaction.

use axum::{
    body::{Body, Bytes},
    http::header,
    response::{IntoResponse, Response},
};
use chrono::{DateTime, SecondsFormat};
use chrono_tz::Tz;
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend,
    prelude::Uuid,
    sea_query::{Alias, Expr, ExprTrait, Order, Query},
};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::{
    babies::BabyView,
    error::ApiError,
    kinds::{KINDS, Kind},
    time::ts,
};

/// Rows read per statement.
const PAGE_ROWS: u64 = 2000;
/// Chunks of the body waiting for the client, at most.
const CHANNEL_CHUNKS: usize = 4;
/// A chunk is handed over once it is this big.
const CHUNK_BYTES: usize = 128 * 1024;

/// What was asked.
pub enum Format {
    Json,
    Csv { kind: Kind, tz: Tz },
}

impl Format {
    /// From the raw query string: each bad value a 400 naming it.
    pub fn parse(query: Option<&str>) -> Result<Format, ApiError> {
        let params = crate::summary::Params::parse(query)?;
        match params.one("format")?.as_deref() {
            None | Some("json") => Ok(Format::Json),
            Some("csv") => {
                let kind = match params.one("kind")? {
                    None => {
                        return Err(ApiError::invalid_field("kind", "required with format=csv"));
                    }
                    Some(k) => Kind::parse(&k).ok_or_else(|| {
                        ApiError::invalid_field(
                            "kind",
                            format!("must be {} (got {k:?})", Kind::names_for_message()),
                        )
                    })?,
                };
                Ok(Format::Csv {
                    kind,
                    tz: params.tz()?,
                })
            }
            Some(other) => Err(ApiError::invalid_field(
                "format",
                format!("must be json or csv (got {other:?})"),
            )),
        }
    }
}

/// How long a client may leave a chunk unread before the export ends.
const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// The longest an export may run.
const DEADLINE: std::time::Duration = std::time::Duration::from_secs(600);

/// The export of `baby`, streamed from `txn` (which it takes over) while
/// `slot` (one of the process's export slots) is held.
pub fn respond(
    txn: DatabaseTransaction,
    baby: BabyView,
    format: Format,
    slot: tokio::sync::OwnedSemaphorePermit,
) -> Result<Response, ApiError> {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(CHANNEL_CHUNKS);
    let id = baby.id;
    let (content_type, file) = match &format {
        Format::Json => ("application/json", format!("babysync-{id}.json")),
        Format::Csv { kind, .. } => (
            "text/csv; charset=utf-8",
            format!("babysync-{id}-{}.csv", kind.name()),
        ),
    };
    tokio::spawn(async move {
        let _slot = slot;
        let work = async {
            match format {
                Format::Json => json(&txn, &baby, &tx).await,
                Format::Csv { kind, tz } => csv(&txn, id, kind, tz, &tx).await,
            }
        };
        let sent = tokio::time::timeout(DEADLINE, work)
            .await
            .unwrap_or_else(|_| Err(Sent::Failed("the export ran past its deadline".into())));
        if let Err(Sent::Failed(e)) = sent {
            // The head is sent: the body ends short, and the client sees a
            // broken document, never a complete wrong one.
            tracing::error!(baby = %id, error = %e, "export stopped");
            let _ = tx
                .send(Err(std::io::Error::other("the export stopped")))
                .await;
        }
        let _ = txn.rollback().await;
    });
    let body = Body::from_stream(tokio_stream_of(rx));
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        body,
    )
        .into_response())
}

fn tokio_stream_of(
    mut rx: mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Why a stream ended early.
enum Sent {
    /// The client went away.
    Gone,
    /// A database or server error (for the log).
    Failed(String),
}

impl From<sea_orm::DbErr> for Sent {
    fn from(e: sea_orm::DbErr) -> Self {
        Sent::Failed(e.to_string())
    }
}

impl From<ApiError> for Sent {
    fn from(e: ApiError) -> Self {
        Sent::Failed(e.to_string())
    }
}

async fn send(
    tx: &mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: &mut Vec<u8>,
) -> Result<(), Sent> {
    let chunk = Bytes::from(std::mem::take(buf));
    match tokio::time::timeout(SEND_TIMEOUT, tx.send(Ok(chunk))).await {
        Ok(Ok(())) => Ok(()),
        // Gone, or not reading: either way the export ends.
        _ => Err(Sent::Gone),
    }
}

/// The JSON document: the head, then each kind's entries by version, as
/// pull writes them.
async fn json(
    txn: &DatabaseTransaction,
    baby: &BabyView,
    tx: &mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> Result<(), Sent> {
    let backend = txn.get_database_backend();
    if backend == DbBackend::Postgres {
        // Each page an ordered walk of the (baby_id, version) index that
        // stops after its rows, whatever the planner believes of the table
        // (it may never have been analyzed), as pull does.
        txn.execute_unprepared(
            "SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL enable_bitmapscan = off; \
             SET LOCAL enable_sort = off; SET LOCAL jit = off",
        )
        .await?;
    }
    let mut buf = Vec::with_capacity(256 * 1024);
    buf.extend_from_slice(b"{\"format\":\"babysync-export\",\"formatVersion\":1,\"exportedAt\":");
    serde_json::to_writer(&mut buf, &ts(&crate::time::now()))
        .map_err(|e| Sent::Failed(e.to_string()))?;
    buf.extend_from_slice(b",\"baby\":");
    serde_json::to_writer(&mut buf, baby).map_err(|e| Sent::Failed(e.to_string()))?;
    buf.extend_from_slice(b",\"entries\":{");
    for (k, kind) in KINDS.iter().enumerate() {
        if k > 0 {
            buf.push(b',');
        }
        buf.push(b'"');
        buf.extend_from_slice(kind.name().as_bytes());
        buf.extend_from_slice(b"\":[");
        let (row_sql, format) = kind.row_text(backend)?;
        let mut after = i64::MIN;
        let mut first = true;
        loop {
            let query = Query::select()
                .column(Alias::new("version"))
                .expr_as(Expr::cust(row_sql), Alias::new("r"))
                .from(Alias::new(kind.name()))
                .and_where(Expr::col(Alias::new("baby_id")).eq(baby.id))
                .and_where(Expr::col(Alias::new("version")).gt(after))
                .order_by(Alias::new("version"), Order::Asc)
                .limit(PAGE_ROWS)
                .to_owned();
            let rows = txn.query_all_raw(backend.build(&query)).await?;
            let n = rows.len() as u64;
            for row in rows {
                after = row.try_get("", "version")?;
                let text: String = row.try_get("", "r")?;
                if !first {
                    buf.push(b',');
                }
                first = false;
                format.write_json(&text, &mut buf).map_err(Sent::Failed)?;
            }
            if buf.len() > 128 * 1024 {
                send(tx, &mut buf).await?;
            }
            if n < PAGE_ROWS {
                break;
            }
        }
        buf.push(b']');
    }
    buf.extend_from_slice(b"}}");
    send(tx, &mut buf).await
}

/// One kind as CSV (RFC 4180, CRLF), entries that are not archived, by
/// `startedAt` then id; timestamps in `tz`.
async fn csv(
    txn: &DatabaseTransaction,
    baby: Uuid,
    kind: Kind,
    tz: Tz,
    tx: &mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> Result<(), Sent> {
    let columns = csv_columns(kind);
    let times: Vec<bool> = {
        let stamped: Vec<String> = kind
            .columns()
            .into_iter()
            .filter(|(_, t, _)| matches!(t, sea_orm::ColumnType::TimestampWithTimeZone))
            .map(|(c, _, _)| crate::kinds::camel(c))
            .collect();
        columns.iter().map(|c| stamped.contains(c)).collect()
    };
    crate::summary::read_settings(txn).await?;
    let mut buf = Vec::with_capacity(128 * 1024);
    buf.extend_from_slice(columns.join(",").as_bytes());
    buf.extend_from_slice(b"\r\n");
    let mut pages = crate::summary::Pages::new(kind, crate::summary::rows(kind, baby));
    while let Some(page) = pages.next(txn).await? {
        for item in page {
            let entry = &item.json;
            for (i, c) in columns.iter().enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                let v = entry.get(c.as_str()).unwrap_or(&Value::Null);
                csv_cell(v, times[i].then_some(tz), &mut buf);
            }
            buf.extend_from_slice(b"\r\n");
            if buf.len() > CHUNK_BYTES {
                send(tx, &mut buf).await?;
            }
        }
        send(tx, &mut buf).await?;
    }
    Ok(())
}

/// The kind's CSV header: the common fields, the kind's own, then the
/// timer fields (without `segments`), as the contract orders them.
pub fn csv_columns(kind: Kind) -> Vec<String> {
    const COMMON: [&str; 9] = [
        "id",
        "babyId",
        "startedAt",
        "notes",
        "loggedBy",
        "createdAt",
        "updatedAt",
        "archivedAt",
        "version",
    ];
    const TIMER: [&str; 2] = ["timerState", "segments"];
    let mut out: Vec<String> = COMMON.iter().map(|s| (*s).to_owned()).collect();
    out.extend(
        kind.columns()
            .into_iter()
            .map(|(c, _, _)| crate::kinds::camel(c))
            .filter(|c| !COMMON.contains(&c.as_str()) && !TIMER.contains(&c.as_str())),
    );
    if kind.has_timer() {
        out.push("timerState".into());
    }
    out
}

/// One cell: empty for null, `true`/`false`, numbers as JSON writes them,
/// a timestamp (`tz` given) in `tz` with milliseconds and the offset,
/// arrays joined by `;`, text quoted when it must be.
fn csv_cell(v: &Value, tz: Option<Tz>, out: &mut Vec<u8>) {
    let text = match v {
        Value::Null => return,
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => match (tz, DateTime::parse_from_rfc3339(s)) {
            (Some(tz), Ok(t)) => t
                .with_timezone(&tz)
                .to_rfc3339_opts(SecondsFormat::Millis, false),
            _ => s.clone(),
        },
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(";"),
        Value::Object(_) => v.to_string(),
    };
    if text.contains([',', '"', '\r', '\n']) {
        out.push(b'"');
        out.extend_from_slice(text.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(text.as_bytes());
    }
}

/// The export document, for the OpenAPI document only (the body is
/// written as it streams).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // the wire shape, for the document; never built
#[schema(rename_all = "camelCase")]
pub struct ExportDoc {
    /// `babysync-export`.
    format: String,
    /// 1.
    format_version: i32,
    #[schema(format = DateTime)]
    exported_at: String,
    baby: BabyView,
    /// Per kind, every entry of the baby, archived ones included, as pull
    /// sends them.
    #[schema(schema_with = crate::openapi::changes)]
    entries: Value,
}
