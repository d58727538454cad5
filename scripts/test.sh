#!/usr/bin/env bash
# Every test of the project: the Rust workspace (each integration test on
# SQLite and on PostgreSQL), then the TypeScript SDK's tests and the web
# app's browser tests against the `babysync` binary just built (npm packages
# from the committed lockfiles). Needs PostgreSQL at TEST_DATABASE_URL
# (default postgres://postgres@127.0.0.1:5432/postgres), Node 18+ and npm,
# Chromium at /usr/bin/chromium (CHROMIUM_BIN) for the browser tests, and
# for the deployment test (scripts/deploy_test.py: a primary and a streaming
# replica of its own, PgBouncer, three servers behind HAProxy, faults) the
# PostgreSQL server binaries, pgbouncer, haproxy and, for its network
# faults (skipped where it cannot make network namespaces), root and iptables.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo nextest run --workspace
# The binary the integration tests ran, from the same build: a separate
# `cargo build --bin babysync` would resolve features without the tests'
# and build some thirty crates again.
export BABYSYNC_BIN="$PWD/target/debug/babysync"
[ -x "$BABYSYNC_BIN" ] || cargo build --bin babysync
(cd clients/typescript && npm ci --no-audit --no-fund && npm test)
(cd clients/web && npm ci --no-audit --no-fund && npm test)
python3 scripts/deploy_test.py "$BABYSYNC_BIN"
