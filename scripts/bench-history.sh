# Issue 21's benchmarks: summaries, export and import of a baby with years
# of history. Sourced by scripts/bench.sh (SUITE=history, or SUITE=all after
# push and pull), which defines start_server, stop_server, measured, $GEN,
# $base, $work, $OUT and $ADMIN; not run on its own.
#
#   SUITE=history scripts/bench.sh
#   SUITE=history H_ENTRIES=20000 EXPORT_ENTRIES=100000 SUMMARY_REQUESTS=50 scripts/bench.sh   # smaller
#   SUITE=history PG_ANALYZE=1 scripts/bench.sh   # PostgreSQL with statistics (ANALYZE after each seeding)
#
# This machine runs PostgreSQL with autovacuum off, so by default the seeded
# tables are never analyzed and the planner works without statistics, as in
# the rest of scripts/bench.sh; PG_ANALYZE=1 shows what autovacuum's ANALYZE
# would change.
#
# On each database (PostgreSQL, then SQLite), each step with
# scripts/procstat.py sampling CPU and the server's memory:
#
# 1. history-seed: one user, a baby born five years ago with H_ENTRIES
#    entries of every kind (about 55 a day, see bench/src/history.rs) pushed
#    in batches of 1000 from 4 clients, and a second baby, empty;
# 2. SUMMARY_REQUESTS summaries of 92 dates, then as many of 1 date, one
#    after the other, in SUMMARY_TZ, their ranges spread evenly over the
#    history (SUMMARY_WARMUP more first, not counted: 40, more than the
#    server's pooled connections);
# 3. the JSON export of that baby, saved: the import's body in step 6;
# 4. scripts/seed_copies.py fills the second baby with EXPORT_ENTRIES /
#    H_ENTRIES copies of the first one's rows (server stopped), and on
#    PostgreSQL a CHECKPOINT (here and before step 6): the copies' dirty
#    pages are written before the next steps are measured, not during them;
# 5. on a restarted server, its JSON export, streamed and counted, the
#    server's RSS sampled every 20 ms throughout and its peak reset before;
# 6. on a fresh server and database, the file of step 3 imported by another
#    user: entries/s and the server's peak RSS against the body's size.

H_ENTRIES=${H_ENTRIES:-100000}
EXPORT_ENTRIES=${EXPORT_ENTRIES:-1000000}
SUMMARY_REQUESTS=${SUMMARY_REQUESTS:-200}
SUMMARY_TZ=${SUMMARY_TZ:-Europe/London}
# Summaries not counted first: more than the server's 16 pooled connections,
# each of which prepares (PostgreSQL: and plans) the summary's statement on
# its first one (a cost docs/PERFORMANCE.md gives apart).
SUMMARY_WARMUP=${SUMMARY_WARMUP:-40}
PG_ANALYZE=${PG_ANALYZE:-0}
copies=$(( (EXPORT_ENTRIES + H_ENTRIES - 1) / H_ENTRIES ))

# history_run NAME BACKEND URL IMPORT_URL COPY_TARGET (seed_copies.py's URL or file)
history_run() {
  local name=$1 backend=$2 url=$3 import_url=$4 copy_target=$5
  local baby copy first last n t0
  echo "== $name: a baby with $H_ENTRIES entries of history, through push"
  read -r server _ < <(start_server "$url")
  measured "${name}_hseed" "$GEN" --url "$base" history-seed --entries "$H_ENTRIES"
  analyze() { if [ "$backend" = postgres ] && [ "$PG_ANALYZE" = 1 ]; then psql "$url" -qc ANALYZE; fi; }
  # PostgreSQL writes a step's dirty pages out before the next step is
  # measured, not during it (the copies leave about 1 GB behind them).
  checkpoint() { if [ "$backend" = postgres ]; then psql "$url" -qc CHECKPOINT; fi; }
  analyze
  read -r baby copy first last < <(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(r['baby'], r['copy_baby'], r['first_date'], r['last_date'])" "$OUT/${name}_hseed.json")
  echo "== $name: $SUMMARY_REQUESTS summaries of 92 days, then of 1 day ($SUMMARY_TZ)"
  measured "${name}_sum92" "$GEN" --url "$base" summary --baby "$baby" --first "$first" --last "$last" \
    --days 92 --requests "$SUMMARY_REQUESTS" --tz "$SUMMARY_TZ" --warmup "$SUMMARY_WARMUP"
  measured "${name}_sum1" "$GEN" --url "$base" summary --baby "$baby" --first "$first" --last "$last" \
    --days 1 --requests "$SUMMARY_REQUESTS" --tz "$SUMMARY_TZ" --warmup "$SUMMARY_WARMUP"
  echo "== $name: export of the $H_ENTRIES entries (the import's file)"
  measured "${name}_export_h" "$GEN" --url "$base" export --baby "$baby" --server-pid "$server" \
    --save "$work/${name}_history.json" --expect "$H_ENTRIES"
  stop_server
  echo "== $name: $copies copies of them in a second baby (SQL)"
  t0=$(date +%s.%N)
  n=$(python3 scripts/seed_copies.py "$backend" "$copy_target" "$baby" "$copy" "$copies")
  echo "{\"entries\": $n, \"seconds\": $(python3 -c "import time; print(round(time.time() - $t0, 1))")}" > "$OUT/${name}_copies.json"
  cat "$OUT/${name}_copies.json"
  analyze
  checkpoint
  read -r server _ < <(start_server "$url")
  echo "== $name: export of $n entries, on a restarted server"
  measured "${name}_export" "$GEN" --url "$base" export --baby "$copy" --server-pid "$server" --expect "$n"
  stop_server
  echo "== $name: import of the $H_ENTRIES-entry file on a fresh database, by another user"
  checkpoint
  read -r server _ < <(start_server "$import_url")
  measured "${name}_import" "$GEN" --url "$base" import --file "$work/${name}_history.json" --server-pid "$server"
  stop_server
  rm -f "$work/${name}_history.json"
}

hpg="bs_hist_$$"
hpg_import="bs_hist_import_$$"
pgdbs="$pgdbs $hpg $hpg_import"
psql "$ADMIN" -qc "CREATE DATABASE \"$hpg\"" >/dev/null
psql "$ADMIN" -qc "CREATE DATABASE \"$hpg_import\"" >/dev/null
history_run pg postgres "${ADMIN%/*}/$hpg" "${ADMIN%/*}/$hpg_import" "${ADMIN%/*}/$hpg"
psql "$ADMIN" -qc "DROP DATABASE IF EXISTS \"$hpg\" WITH (FORCE)" >/dev/null
psql "$ADMIN" -qc "DROP DATABASE IF EXISTS \"$hpg_import\" WITH (FORCE)" >/dev/null
history_run sqlite sqlite "sqlite://$work/hist.db?mode=rwc" "sqlite://$work/hist_import.db?mode=rwc" "$work/hist.db"
rm -f "$work"/hist.db* "$work"/hist_import.db*

python3 - "$OUT" "$SUMMARY_TZ" "$PG_ANALYZE" <<'PY'
import json, os, sys
out, tz, analyzed = sys.argv[1:]
j = lambda name: json.load(open(os.path.join(out, name)))
steps = ["hseed", "sum92", "sum1", "export_h", "copies", "export", "import"]
r = {db: {s: j(f"{db}_{s}.json") for s in steps} for db in ("pg", "sqlite")}
proc = {db: {s: j(f"{db}_{s}.proc.json") for s in steps if s != "copies"} for db in ("pg", "sqlite")}
mib = 1048576


def row(label, f, target=""):
    print(f"| {label} | {f('pg')} | {f('sqlite')} | {target} |")


def verdict(ok):
    return "met" if ok else "**not met**"


h = r["pg"]["hseed"]
print(f"\n## babysync issue 21 benchmark: summaries, export, import\n")
print("PostgreSQL tables " + ("analyzed after each seeding (PG_ANALYZE=1)" if analyzed == "1" else "never analyzed (autovacuum off, no PG_ANALYZE)") + "\n")
print("| measure | PostgreSQL | SQLite | target |")
print("|---|---|---|---|")
row("history: entries over days (first → last date)", lambda d: f"{r[d]['hseed']['entries']:,} over {r[d]['hseed']['days']} ({r[d]['hseed']['first_date']} → {r[d]['hseed']['last_date']})")
row("seeded through push (batches of 1000, 4 clients), s (entries/s)", lambda d: f"{r[d]['hseed']['seed_seconds']:.1f} ({r[d]['hseed']['entries_per_sec']:,.0f})")
for s, days, limit in (("sum92", 92, 50), ("sum1", 1, 10)):
    row(f"summary of {days} day{'s' if days > 1 else ''} ({r['pg'][s]['requests']} requests, {tz}): p50 / p90 / p99 / max, ms",
        lambda d: f"{r[d][s]['p50_ms']:.1f} / {r[d][s]['p90_ms']:.1f} / {r[d][s]['p99_ms']:.1f} / {r[d][s]['max_ms']:.1f}", f"p99 ≤ {limit}")
    row(f"… p99 ≤ {limit} ms", lambda d: verdict(r[d][s]['p99_ms'] <= limit and r[d][s]['errors'] == 0))
    row(f"… p50 / p99 by fifth of the history, oldest → newest, ms",
        lambda d: ", ".join(f"{a:.0f}/{b:.0f}" for a, b in r[d][s]['by_fifth']))
    row(f"… CPU s: server / database / generator",
        lambda d: f"{proc[d][s]['server_cpu_secs']} / {proc[d][s]['database_cpu_secs'] if d == 'pg' else '—'} / {proc[d][s]['generator_cpu_secs']}")
row("export of the history (JSON): entries, MiB", lambda d: f"{r[d]['export_h']['entries']:,}, {r[d]['export_h']['bytes'] / mib:.1f}")
row("… entries/s; server RSS before → peak, MiB", lambda d: f"{r[d]['export_h']['entries_per_sec']:,.0f}; {r[d]['export_h']['rss_before_mib']:.1f} → {r[d]['export_h']['rss_peak_mib']:.1f}")
row("copies by SQL for the large export: entries, s", lambda d: f"{r[d]['copies']['entries']:,}, {r[d]['copies']['seconds']}")
e = lambda d: r[d]["export"]
row("large export (JSON, identity): entries, MiB, s", lambda d: f"{e(d)['entries']:,}, {e(d)['bytes'] / mib:.0f}, {e(d)['seconds']:.1f}", "")
row("… entries/s (first byte after, ms)", lambda d: f"{e(d)['entries_per_sec']:,.0f} ({e(d)['first_byte_ms']:.0f})", "≥ 200,000")
row("… ≥ 200,000 entries/s", lambda d: verdict(e(d)['entries_per_sec'] >= 200000 and e(d)['complete']))
row("… server RSS: before / largest of samples (n) / peak, MiB", lambda d: f"{e(d)['rss_before_mib']:.1f} / {e(d)['rss_max_sampled_mib']:.1f} ({e(d)['rss_samples']}) / {e(d)['rss_peak_mib']:.1f}", "≤ 64")
row("… RSS ≤ 64 MiB throughout", lambda d: verdict(max(e(d)['rss_peak_mib'], e(d)['rss_max_sampled_mib']) <= 64))
row("… CPU s: server / database / generator",
    lambda d: f"{proc[d]['export']['server_cpu_secs']} / {proc[d]['export']['database_cpu_secs'] if d == 'pg' else '—'} / {proc[d]['export']['generator_cpu_secs']}")
i = lambda d: r[d]["import"]
row("import of the history's file, fresh database, another user: entries, body MiB, s",
    lambda d: f"{i(d)['imported']:,}, {i(d)['body_bytes'] / mib:.1f}, {i(d)['seconds']:.2f}")
row("… entries/s", lambda d: f"{i(d)['entries_per_sec']:,.0f}", "≥ 50,000")
row("… ≥ 50,000 entries/s", lambda d: verdict(i(d)['entries_per_sec'] >= 50000))
row("… server RSS before → peak, MiB (peak ÷ body; (peak − before) ÷ body)",
    lambda d: f"{i(d)['rss_before_mib']:.1f} → {i(d)['rss_peak_mib']:.1f} ({i(d)['peak_per_body']:.2f}; {i(d)['extra_per_body']:.2f})", "a small multiple of the body: ≤ 4 ×, read here")
row("… peak ≤ 4 × the body", lambda d: verdict(i(d)['peak_per_body'] <= 4))
row("… CPU s: server / database / generator",
    lambda d: f"{proc[d]['import']['server_cpu_secs']} / {proc[d]['import']['database_cpu_secs'] if d == 'pg' else '—'} / {proc[d]['import']['generator_cpu_secs']}")
json.dump({"results": r, "proc": proc, "pg_analyze": analyzed == "1"}, open(os.path.join(out, "history_results.json"), "w"), indent=1)
PY
echo "results: $OUT/history_results.json"
