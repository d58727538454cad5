#!/usr/bin/env bash
# babysync benchmark: push and pull throughput, latency and memory, against
# the database's own ceiling. Builds release, starts a fresh PostgreSQL
# database and the server, runs the load generator, runs pgbench with the same
# client count and duration on the same database server, then the same on the
# embedded SQLite. Prints a table (docs/PERFORMANCE.md explains it).
#
#   scripts/bench.sh                      # U=8 C=8 B=50 T=20 PULL_ENTRIES=100000 HISTORY=5000000
#   U=4 C=4 B=50 T=10 HISTORY=0 scripts/bench.sh    # smaller, no large-history runs
#
# Besides push, the pgbench ceiling (prepared statements), pgbench running a
# push's own statements (scripts/pgbench_push.py), and the first
# sync, it measures on each database: the server's extra memory for a page of
# 5,000 entries of 2,000-char notes (pull-memory), and, unless HISTORY=0,
# push again after HISTORY entries were added to the log tables (another
# baby's, written with SQL), to show that a push's cost does not grow with them.
#
# SUITE=history runs issue 21's benchmarks instead (summaries, export and
# import of a baby with five years of history: scripts/bench-history.sh);
# SUITE=push only the above; SUITE=all (the default) both.
#
#   SUITE=history scripts/bench.sh        # H_ENTRIES=100000 EXPORT_ENTRIES=1000000 SUMMARY_REQUESTS=200
#
# Needs PostgreSQL at TEST_DATABASE_URL (default
# postgres://postgres@127.0.0.1:5432/postgres), psql, pgbench, curl, python3.
# Servers listen on 127.0.0.1 only and are stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

SUITE=${SUITE:-all}
case "$SUITE" in push|history|all) ;; *) echo "SUITE must be push, history or all" >&2; exit 2 ;; esac
U=${U:-8} C=${C:-8} B=${B:-50} T=${T:-20}
PULL_ENTRIES=${PULL_ENTRIES:-100000}
HISTORY=${HISTORY:-5000000}
ADMIN=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
export JWT_SECRET=bench-secret-that-is-at-least-32-bytes
export RATE_LIMIT_PER_SEC=0 LOG_FORMAT=json RUST_LOG=warn

cargo build --release --quiet -p babysync -p bench
BIN=${BIN:-target/release/babysync}
GEN=${GEN:-target/release/babysync-bench}
work=$(mktemp -d)
OUT=${BENCH_OUT:-$work}
mkdir -p "$OUT"
server=""
pgdb=""
pgdbs="" # more databases to drop on exit
cleanup() {
  [ -n "$server" ] && { kill -TERM "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; }
  for db in $pgdb $pgdbs; do
    psql "$ADMIN" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"

# Starts the server on $1 and prints "pid ready_ms" (time from spawn to /health/ready 200).
start_server() {
  python3 - "$BIN" "$1" "$port" "$work/server.log" <<'PY'
import http.client, os, subprocess, sys, time
binary, url, port, log = sys.argv[1:]
env = dict(os.environ, DATABASE_URL=url, BIND_ADDR=f"127.0.0.1:{port}")
t0 = time.perf_counter()
p = subprocess.Popen(["timeout", "3600", binary, "serve"], env=env, stdout=subprocess.DEVNULL,
                     stderr=open(log, "a"), start_new_session=True)
while True:
    try:
        c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=1)
        c.request("GET", "/health/ready")
        if c.getresponse().status == 200:
            break
    except OSError:
        pass
    if p.poll() is not None or time.perf_counter() - t0 > 60:
        sys.exit("server did not become ready")
    time.sleep(0.002)
# `timeout` runs the server as its only child: report the server's own pid.
with open(f"/proc/{p.pid}/task/{p.pid}/children") as f:
    child = f.read().split()[0]
print(child, round((time.perf_counter() - t0) * 1000, 1))
PY
}

stop_server() {
  kill -TERM "$server"
  while kill -0 "$server" 2>/dev/null; do sleep 0.05; done
  server=""
  sleep 0.2 # let `timeout` go too
}

# Runs "$@" in the background under the process sampler; $1 of the function is the label.
measured() {
  local label=$1; shift
  local mark="$work/$label.done"
  BENCH_MARK_FILE=$mark "$@" > "$OUT/$label.out" &
  local gen=$!
  python3 scripts/procstat.py "$OUT/$label.proc.json" "${server:-$gen}" "$gen" "$mark" &
  local sampler=$!
  local status=0
  wait "$gen" || status=$?
  # The sampler stops by itself once it sees the mark (it may have started
  # after a very short load): give it a second before stopping it.
  for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$sampler" 2>/dev/null || break; sleep 0.1; done
  kill -TERM "$sampler" 2>/dev/null || true; wait "$sampler" || true
  grep -v '^REPORT ' "$OUT/$label.out" || true
  grep '^REPORT ' "$OUT/$label.out" | sed 's/^REPORT //' > "$OUT/$label.json" || true
  return $status
}

if [ "$SUITE" = history ]; then
  . scripts/bench-history.sh
  exit 0
fi

echo "== PostgreSQL: fresh database, migrate, restart on the up-to-date database"
pgdb="bs_bench_$$"
psql "$ADMIN" -qc "CREATE DATABASE \"$pgdb\"" >/dev/null
pg_url="${ADMIN%/*}/$pgdb"
read -r server _ < <(start_server "$pg_url")
stop_server
read -r server pg_ready_ms < <(start_server "$pg_url")
echo "ready after start on an up-to-date database: ${pg_ready_ms} ms"

echo "== push, as fast as it goes: U=$U C=$C B=$B T=${T}s"
measured pg_push "$GEN" --url "$base" push -u "$U" -c "$C" -b "$B" -t "$T"
max_rate=$(python3 -c "import json; print(json.load(open('$OUT/pg_push.json'))['mutations_per_sec'])")

echo "== pgbench: $C clients, ${T}s, $B-row INSERT ... ON CONFLICT DO UPDATE per transaction"
psql "$pg_url" -qc "CREATE TABLE bench_feed (LIKE feed_log INCLUDING ALL)" >/dev/null
python3 - "$B" > "$work/pgbench.sql" <<'PY'
import sys
b = int(sys.argv[1])
# One of 8 babies, a fresh id per row, a version per row: what a push writes.
row = ("(gen_random_uuid(), ('00000000-0000-0000-0000-00000000000' || (:v % 8))::uuid, 'bench', 'bottle', now(), "
       "NULL, NULL, 120, false, NULL, NULL, 'bench', now(), now(), NULL, :v + {i})")
print("\\set v random(1, 1000000000)")
print("INSERT INTO bench_feed (id, baby_id, logged_by, method, started_at, ended_at, duration_minutes, amount_ml, "
      "is_estimated, estimated_source, end_side, notes, created_at, updated_at, archived_at, version) VALUES")
print(",\n".join(row.format(i=i) for i in range(b)))
print("ON CONFLICT (id) DO UPDATE SET amount_ml = excluded.amount_ml, updated_at = excluded.updated_at, version = excluded.version;")
PY
measured pgbench pgbench -n -M prepared -c "$C" -j 2 -T "$T" -f "$work/pgbench.sql" "$pg_url"
tps=$(grep -E '^tps = ' "$OUT/pgbench.out" | head -1 | awk '{print $3}')
echo "{\"tps\": $tps, \"rows_per_sec\": $(python3 -c "print($tps * $B)")}" > "$OUT/pgbench.json"

echo "== pgbench: the statements of a push of $B creates, without babysync (scripts/pgbench_push.py)"
python3 scripts/pgbench_push.py "$pg_url" "$B" > "$work/pgbench_push.sql"
measured pgbench_push env PGOPTIONS="-c plan_cache_mode=force_custom_plan" \
  pgbench -n -M prepared -c "$C" -j 2 -T "$T" -f "$work/pgbench_push.sql" "$pg_url"
tps=$(grep -E '^tps = ' "$OUT/pgbench_push.out" | head -1 | awk '{print $3}')
echo "{\"tps\": $tps, \"rows_per_sec\": $(python3 -c "print($tps * $B)")}" > "$OUT/pgbench_push.json"

half=$(python3 -c "print(round($max_rate / 2, 1))")
echo "== push at half the maximum rate: $half mutations/s"
measured pg_push_half "$GEN" --url "$base" push -u "$U" -c "$C" -b "$B" -t "$T" --rate "$half"

echo "== pull: first sync of $PULL_ENTRIES entries in pages of 1000"
measured pg_pull "$GEN" --url "$base" pull --entries "$PULL_ENTRIES" --page 1000
stop_server
echo "== pull memory: a page of 5000 entries of 2000-char notes, on a fresh server"
read -r server _ < <(start_server "$pg_url")
measured pg_pullmem "$GEN" --url "$base" pull-memory --server-pid "$server"
stop_server
if [ "$HISTORY" -gt 0 ]; then
  echo "== large history: $HISTORY more entries (SQL), then push again"
  t0=$(date +%s)
  python3 scripts/seed_history.py postgres "$pg_url" "$HISTORY"
  echo "seeded in $(( $(date +%s) - t0 )) s"
  read -r server _ < <(start_server "$pg_url")
  measured pg_hist_push "$GEN" --url "$base" push -u "$U" -c "$C" -b "$B" -t "$T"
  measured pg_hist_push_half "$GEN" --url "$base" push -u "$U" -c "$C" -b "$B" -t "$T" --rate "$half"
  stop_server
fi

echo "== SQLite: the same on the embedded database"
sqlite_url="sqlite://$work/bench.db?mode=rwc"
read -r server _ < <(start_server "$sqlite_url")
stop_server
read -r server sqlite_ready_ms < <(start_server "$sqlite_url")
echo "ready after start on an up-to-date database: ${sqlite_ready_ms} ms"
measured sqlite_push "$GEN" --url "$base" push -u "$U" -c "$C" -b "$B" -t "$T"
sqlite_max=$(python3 -c "import json; print(json.load(open('$OUT/sqlite_push.json'))['mutations_per_sec'])")
measured sqlite_push_half "$GEN" --url "$base" push -u "$U" -c "$C" -b "$B" -t "$T" --rate "$(python3 -c "print(round($sqlite_max / 2, 1))")"
measured sqlite_pull "$GEN" --url "$base" pull --entries "$PULL_ENTRIES" --page 1000
stop_server
read -r server _ < <(start_server "$sqlite_url")
measured sqlite_pullmem "$GEN" --url "$base" pull-memory --server-pid "$server"
stop_server
if [ "$HISTORY" -gt 0 ]; then
  t0=$(date +%s)
  python3 scripts/seed_history.py sqlite "$work/bench.db" "$HISTORY"
  echo "seeded in $(( $(date +%s) - t0 )) s"
  read -r server _ < <(start_server "$sqlite_url")
  measured sqlite_hist_push "$GEN" --url "$base" push -u "$U" -c "$C" -b "$B" -t "$T"
  measured sqlite_hist_push_half "$GEN" --url "$base" push -u "$U" -c "$C" -b "$B" -t "$T" --rate "$(python3 -c "print(round($sqlite_max / 2, 1))")"
  stop_server
fi

python3 - "$OUT" "$pg_ready_ms" "$sqlite_ready_ms" "$U" "$C" "$B" "$T" "$HISTORY" <<'PY'
import json, os, sys
out, pg_ready, sq_ready, U, C, B, T, H = sys.argv[1:]
j = lambda name: json.load(open(os.path.join(out, name)))
pg, pgh, pgp = j("pg_push.json"), j("pg_push_half.json"), j("pg_pull.json")
sq, sqh, sqp = j("sqlite_push.json"), j("sqlite_push_half.json"), j("sqlite_pull.json")
pb, pbp = j("pgbench.json"), j("pgbench_push.json")
pgm, sqm = j("pg_pullmem.json"), j("sqlite_pullmem.json")
names = ["pg_push", "pgbench", "pgbench_push", "pg_push_half", "pg_pull", "pg_pullmem", "sqlite_push", "sqlite_push_half", "sqlite_pull", "sqlite_pullmem"]
if int(H) > 0:
    names += ["pg_hist_push", "pg_hist_push_half", "sqlite_hist_push", "sqlite_hist_push_half"]
proc = {n: j(f"{n}.proc.json") for n in names}
pg_rss = max(proc[n]["server_peak_rss_mib"] for n in names if n.startswith("pg_"))
sq_rss = max(proc[n]["server_peak_rss_mib"] for n in names if n.startswith("sqlite_"))
ratio = pg["mutations_per_sec"] / pb["rows_per_sec"]
print(f"\n## babysync benchmark (U={U} C={C} B={B} T={T}s)\n")
print("| measure | PostgreSQL | SQLite | target |")
print("|---|---|---|---|")
print(f"| push, mutations/s (max) | {pg['mutations_per_sec']:.0f} | {sq['mutations_per_sec']:.0f} | |")
print(f"| push, requests/s (max) | {pg['requests_per_sec']:.1f} | {sq['requests_per_sec']:.1f} | |")
print(f"| push latency p50 / p95 / p99 at max, ms | {pg['p50_ms']:.1f} / {pg['p95_ms']:.1f} / {pg['p99_ms']:.1f} | {sq['p50_ms']:.1f} / {sq['p95_ms']:.1f} / {sq['p99_ms']:.1f} | |")
print(f"| push latency p99 at half rate, ms | {pgh['p99_ms']:.1f} (at {pgh['mutations_per_sec']:.0f}/s) | {sqh['p99_ms']:.1f} (at {sqh['mutations_per_sec']:.0f}/s) | ≤ 50 |")
print(f"| pgbench ceiling, rows/s ({B}-row upserts, prepared) | {pb['rows_per_sec']:.0f} | — | |")
print(f"| push ÷ pgbench | {ratio:.2f} | — | ≥ 0.5 (stretch 0.8) |")
print(f"| pgbench running a push's own statements, mutations/s | {pbp['rows_per_sec']:.0f} | — | |")
print(f"| push ÷ that | {pg['mutations_per_sec'] / pbp['rows_per_sec']:.2f} | — | |")
print(f"| errors / verified | {pg['errors']} / {pg['verified']} | {sq['errors']} / {sq['verified']} | 0 / true |")
print(f"| first sync of {pgp['entries']} entries, entries/s | {pgp['entries_per_sec']:.0f} | {sqp['entries_per_sec']:.0f} | ≥ 100000 |")
print(f"| pull of a page of 2,000-char notes: entries / bytes | {pgm['page_entries']} / {pgm['page_bytes']} | {sqm['page_entries']} / {sqm['page_bytes']} | |")
print(f"| its extra server memory (peak − before) ÷ page bytes | {pgm['extra_per_page']:.2f} ({pgm['rss_before_mib']:.1f} → {pgm['rss_peak_mib']:.1f} MiB) | {sqm['extra_per_page']:.2f} ({sqm['rss_before_mib']:.1f} → {sqm['rss_peak_mib']:.1f} MiB) | < 2 |")
print(f"| server peak RSS (whole run), MiB | {pg_rss:.1f} | {sq_rss:.1f} | ≤ 64 |")
if int(H) > 0:
    ph, phh, sh, shh = j("pg_hist_push.json"), j("pg_hist_push_half.json"), j("sqlite_hist_push.json"), j("sqlite_hist_push_half.json")
    print(f"| push with {int(H):,} more entries stored, mutations/s (max) | {ph['mutations_per_sec']:.0f} ({ph['mutations_per_sec'] / pg['mutations_per_sec']:.2f} × empty) | {sh['mutations_per_sec']:.0f} ({sh['mutations_per_sec'] / sq['mutations_per_sec']:.2f} × empty) | ≈ 1 × |")
    print(f"| its p99 at half rate, ms | {phh['p99_ms']:.1f} | {shh['p99_ms']:.1f} | ≤ 50 |")
print(f"| ready after start, ms | {pg_ready} | {sq_ready} | ≤ 500 |")
print(f"| CPU s during max push: server / database / generator | {proc['pg_push']['server_cpu_secs']} / {proc['pg_push']['database_cpu_secs']} / {proc['pg_push']['generator_cpu_secs']} | {proc['sqlite_push']['server_cpu_secs']} / — / {proc['sqlite_push']['generator_cpu_secs']} | |")
print(f"| CPU s during pgbench: database / pgbench | {proc['pgbench']['database_cpu_secs']} / {proc['pgbench']['generator_cpu_secs']} | — | |")
print(f"| CPU s during pgbench of a push's statements: database / pgbench | {proc['pgbench_push']['database_cpu_secs']} / {proc['pgbench_push']['generator_cpu_secs']} | — | |")
json.dump({"pg_push": pg, "pg_push_half": pgh, "pg_pull": pgp, "pgbench": pb, "pgbench_push": pbp, "sqlite_push": sq, "sqlite_push_half": sqh,
           "sqlite_pull": sqp, "pg_pullmem": pgm, "sqlite_pullmem": sqm, "proc": proc, "ratio": ratio, "ready_ms": {"postgres": float(pg_ready), "sqlite": float(sq_ready)}},
          open(os.path.join(out, "results.json"), "w"), indent=1)
PY
echo "results: $OUT/results.json"
if [ "$SUITE" = all ]; then
  . scripts/bench-history.sh
fi
