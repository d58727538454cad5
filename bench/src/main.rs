//! `babysync-bench push|pull|…`: see the `bench` library. Prints a human
//! summary, then one line `REPORT {json}` for scripts.

use std::time::Duration;

use bench::{PushConfig, Target};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "babysync-bench", about = "Load generator for babysync")]
struct Cli {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The server's HS256 secret, to sign users' tokens.
    #[arg(long, env = "JWT_SECRET")]
    secret: String,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Push batches of creates from concurrent clients, then verify through pull.
    Push {
        #[arg(short = 'u', long, default_value_t = 8)]
        users: usize,
        #[arg(short = 'c', long, default_value_t = 8)]
        concurrency: usize,
        #[arg(short = 'b', long, default_value_t = 50)]
        batch: usize,
        #[arg(short = 't', long, default_value_t = 20.0)]
        seconds: f64,
        /// Pace all workers together to this many mutations per second.
        #[arg(long)]
        rate: Option<f64>,
        /// Skip the pull check at the end.
        #[arg(long)]
        no_verify: bool,
    },
    /// Hold many idle event streams, then time one write's pokes to all.
    Events {
        /// Caregivers of one baby.
        #[arg(long, default_value_t = 500)]
        users: usize,
        /// Streams each caregiver opens (the server allows 10).
        #[arg(long, default_value_t = 10)]
        per_user: usize,
        /// How many streams are being opened at once.
        #[arg(long, default_value_t = 100)]
        opening: usize,
        /// The server's pid, to read its memory.
        #[arg(long)]
        server_pid: Option<u32>,
    },
    /// The server's extra memory for a page of long notes, against the page's size.
    PullMemory {
        #[arg(long, default_value_t = 5000)]
        entries: u64,
        #[arg(long, default_value_t = 2000)]
        note_chars: usize,
        #[arg(long, default_value_t = 5)]
        pulls: u32,
        /// The server's pid, to read its memory.
        #[arg(long)]
        server_pid: u32,
    },
    /// Seed a baby with years of history through push (issue 21).
    HistorySeed {
        /// The owner (token subject).
        #[arg(long, default_value = "bench-history")]
        user: String,
        #[arg(long, default_value_t = 100_000)]
        entries: u64,
        /// Clients pushing at once, each a stretch of whole days.
        #[arg(long, default_value_t = 4)]
        clients: usize,
        #[arg(long, default_value_t = 1000)]
        batch: usize,
    },
    /// Time summaries of one baby, their ranges spread over its history.
    Summary {
        #[arg(long, default_value = "bench-history")]
        user: String,
        #[arg(long)]
        baby: String,
        /// The history's first and last dates (YYYY-MM-DD).
        #[arg(long)]
        first: chrono::NaiveDate,
        #[arg(long)]
        last: chrono::NaiveDate,
        /// Dates per summary (1..92).
        #[arg(long, default_value_t = 92)]
        days: i64,
        #[arg(long, default_value_t = 200)]
        requests: usize,
        /// Requests sent first and not counted.
        #[arg(long, default_value_t = 5)]
        warmup: usize,
        #[arg(long, default_value = "Europe/London")]
        tz: String,
    },
    /// Time one JSON export, reading the server's memory throughout.
    Export {
        #[arg(long, default_value = "bench-history")]
        user: String,
        #[arg(long)]
        baby: String,
        #[arg(long)]
        server_pid: u32,
        /// Write the document to this file too.
        #[arg(long)]
        save: Option<String>,
        /// Fail unless the document holds this many entries.
        #[arg(long)]
        expect: Option<u64>,
    },
    /// Time the import of an export document, reading the server's memory.
    Import {
        #[arg(long, default_value = "bench-importer")]
        user: String,
        #[arg(long)]
        file: String,
        #[arg(long)]
        server_pid: u32,
    },
    /// Time the first sync of one baby with many entries.
    Pull {
        #[arg(long, default_value_t = 100_000)]
        entries: u64,
        #[arg(long, default_value_t = 1000)]
        page: u64,
    },
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let target = Target {
        base_url: cli.url.trim_end_matches('/').to_owned(),
        jwt_secret: cli.secret,
    };
    let report = match cli.mode {
        Mode::Push {
            users,
            concurrency,
            batch,
            seconds,
            rate,
            no_verify,
        } => {
            let cfg = PushConfig {
                users,
                concurrency,
                batch,
                duration: Duration::from_secs_f64(seconds),
                rate,
                verify: !no_verify,
            };
            match bench::run_push(&target, &cfg).await {
                Ok(r) => {
                    println!(
                        "push: {:.0} mutations/s, {:.1} requests/s, p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, {} errors, verified: {:?} ({})",
                        r.mutations_per_sec,
                        r.requests_per_sec,
                        r.p50_ms,
                        r.p95_ms,
                        r.p99_ms,
                        r.errors,
                        r.verified,
                        r.verify_detail
                    );
                    let ok = r.errors == 0 && r.verified != Some(false);
                    (serde_json::to_string(&r).unwrap(), ok)
                }
                Err(e) => (format!("{{\"error\": {:?}}}", e), false),
            }
        }
        Mode::Events {
            users,
            per_user,
            opening,
            server_pid,
        } => match bench::events::run_events(&target, users, per_user, opening, server_pid).await {
            Ok(r) => {
                println!(
                    "events: {} streams ({} users) open in {:.1} s; server RSS {:?} -> {:?} MiB ({:?} KiB a stream); one write poked {} streams: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                    r.streams,
                    r.users,
                    r.open_seconds,
                    r.rss_before_mib,
                    r.rss_open_mib,
                    r.rss_per_stream_kib,
                    r.poked,
                    r.poke_p50_ms,
                    r.poke_p99_ms,
                    r.poke_max_ms
                );
                let ok = r.poked == r.streams;
                (serde_json::to_string(&r).unwrap(), ok)
            }
            Err(e) => (format!("{{\"error\": {:?}}}", e), false),
        },
        Mode::PullMemory {
            entries,
            note_chars,
            pulls,
            server_pid,
        } => match bench::run_pull_memory(&target, entries, note_chars, pulls, server_pid).await {
            Ok(r) => {
                println!(
                    "pull memory: a page of {} entries ({} bytes) pulled {} times: server RSS {:.1} -> peak {:.1} MiB, extra {:.2} x the page",
                    r.page_entries,
                    r.page_bytes,
                    r.pulls,
                    r.rss_before_mib,
                    r.rss_peak_mib,
                    r.extra_per_page
                );
                (serde_json::to_string(&r).unwrap(), r.page_entries > 0)
            }
            Err(e) => (format!("{{\"error\": {:?}}}", e), false),
        },
        Mode::Pull { entries, page } => match bench::run_pull(&target, entries, page).await {
            Ok(r) => {
                println!(
                    "pull: first sync of {} entries in {} pages of {}: {:.2} s, {:.0} entries/s (seeded in {:.1} s), complete: {}",
                    r.entries,
                    r.pages,
                    r.page,
                    r.sync_seconds,
                    r.entries_per_sec,
                    r.seed_seconds,
                    r.complete
                );
                let ok = r.complete;
                (serde_json::to_string(&r).unwrap(), ok)
            }
            Err(e) => (format!("{{\"error\": {:?}}}", e), false),
        },
        Mode::HistorySeed {
            user,
            entries,
            clients,
            batch,
        } => match bench::history::run_seed(&target, &user, entries, clients, batch).await {
            Ok(r) => {
                println!(
                    "history: {} entries over {} days ({} to {}) pushed in {:.1} s, {:.0} entries/s, {} rejected; by kind {:?}",
                    r.entries,
                    r.days,
                    r.first_date,
                    r.last_date,
                    r.seed_seconds,
                    r.entries_per_sec,
                    r.rejected,
                    r.by_kind
                );
                let ok = r.rejected == 0;
                (serde_json::to_string(&r).unwrap(), ok)
            }
            Err(e) => (format!("{{\"error\": {:?}}}", e), false),
        },
        Mode::Summary {
            user,
            baby,
            first,
            last,
            days,
            requests,
            warmup,
            tz,
        } => match bench::history::run_summary(
            &target, &user, &baby, first, last, days, requests, warmup, &tz,
        )
        .await
        {
            Ok(r) => {
                println!(
                    "summary of {} days in {}: {} requests, p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {} errors; per fifth of the history (p50, p99): {:?}; {:.0} entries counted, {:.0} bytes an answer",
                    r.days,
                    r.tz,
                    r.requests,
                    r.p50_ms,
                    r.p90_ms,
                    r.p99_ms,
                    r.max_ms,
                    r.errors,
                    r.by_fifth,
                    r.mean_counted,
                    r.response_bytes_mean
                );
                let ok = r.errors == 0;
                (serde_json::to_string(&r).unwrap(), ok)
            }
            Err(e) => (format!("{{\"error\": {:?}}}", e), false),
        },
        Mode::Export {
            user,
            baby,
            server_pid,
            save,
            expect,
        } => match bench::history::run_export(&target, &user, &baby, server_pid, save.as_deref())
            .await
        {
            Ok(r) => {
                println!(
                    "export: {} entries, {} bytes in {:.2} s (first byte {:.0} ms): {:.0} entries/s, {:.1} MiB/s; server RSS {:.1} MiB before, at most {:.1} MiB in {} samples, peak {:.1} MiB; complete: {}",
                    r.entries,
                    r.bytes,
                    r.seconds,
                    r.first_byte_ms,
                    r.entries_per_sec,
                    r.mib_per_sec,
                    r.rss_before_mib,
                    r.rss_max_sampled_mib,
                    r.rss_samples,
                    r.rss_peak_mib,
                    r.complete
                );
                let ok = r.complete && expect.is_none_or(|n| n == r.entries);
                (serde_json::to_string(&r).unwrap(), ok)
            }
            Err(e) => (format!("{{\"error\": {:?}}}", e), false),
        },
        Mode::Import {
            user,
            file,
            server_pid,
        } => match bench::history::run_import(&target, &user, &file, server_pid).await {
            Ok(r) => {
                println!(
                    "import: {} entries ({} bytes) in {:.2} s, {:.0} entries/s, answer {}; server RSS {:.1} MiB before, peak {:.1} MiB ({:.2} x the body; {:.2} x above before)",
                    r.imported,
                    r.body_bytes,
                    r.seconds,
                    r.entries_per_sec,
                    r.status,
                    r.rss_before_mib,
                    r.rss_peak_mib,
                    r.peak_per_body,
                    r.extra_per_body
                );
                let ok = r.imported > 0;
                (serde_json::to_string(&r).unwrap(), ok)
            }
            Err(e) => (format!("{{\"error\": {:?}}}", e), false),
        },
    };
    println!("REPORT {}", report.0);
    if !report.1 {
        std::process::exit(1);
    }
}
