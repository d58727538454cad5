#!/usr/bin/env bash
# Live updates under load: holds STREAMS idle event streams (USERS caregivers
# of one baby, 10 streams each) on one release server, reports the server's
# RSS per stream, then writes one entry and reports how long it took to poke
# every stream (p50/p99/max). Runs on PostgreSQL (LISTEN/NOTIFY) and SQLite.
#
#   scripts/bench-events.sh              # USERS=500 (5,000 streams)
#   USERS=100 scripts/bench-events.sh    # 1,000 streams
#
# Needs PostgreSQL at TEST_DATABASE_URL (default
# postgres://postgres@127.0.0.1:5432/postgres), psql, curl. Servers listen on
# 127.0.0.1 only and are stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

USERS=${USERS:-500}
OPENING=${OPENING:-100}   # streams being opened at once; USERS*10 for a reconnect storm
ADMIN=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
export JWT_SECRET=bench-secret-that-is-at-least-32-bytes
export RATE_LIMIT_PER_SEC=0 LOG_FORMAT=json RUST_LOG=warn
export MAX_CONNECTIONS=$((USERS * 10 + 1000))
ulimit -n "$(ulimit -Hn)"

cargo build --release --quiet -p babysync -p bench
BIN=target/release/babysync
GEN=target/release/babysync-bench
work=$(mktemp -d)
pid=""
pgdb=""
cleanup() {
  [ -n "$pid" ] && { kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  [ -n "$pgdb" ] && psql "$ADMIN" -qc "DROP DATABASE IF EXISTS \"$pgdb\" WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

run() {
  local name=$1 url=$2
  DATABASE_URL=$url BIND_ADDR=127.0.0.1:$port timeout 900 "$BIN" serve >"$work/$name.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 200); do curl -fsS "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && break; sleep 0.05; done
  local server
  server=$(pgrep -P "$pid" babysync)  # the server itself, not `timeout`
  echo "== $name: $((USERS * 10)) streams"
  timeout 600 "$GEN" --url "http://127.0.0.1:$port" events --users "$USERS" --per-user 10 --opening "$OPENING" --server-pid "$server" | tee "$work/$name.out"
  kill -TERM "$pid"; wait "$pid" || true; pid=""
}

pgdb="bs_bench_events_$$"
psql "$ADMIN" -qc "CREATE DATABASE \"$pgdb\"" >/dev/null
run postgres "${ADMIN%/*}/$pgdb"
run sqlite "sqlite://$work/events.db?mode=rwc"
