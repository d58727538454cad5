#!/usr/bin/env bash
# Every test of the project: the Rust workspace (each integration test on
# SQLite and on PostgreSQL), then the TypeScript SDK's tests against the
# `babysync` binary just built (npm packages from the committed lockfile).
# Needs PostgreSQL at TEST_DATABASE_URL (default
# postgres://postgres@127.0.0.1:5432/postgres), Node 18+ and npm.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo nextest run --workspace
cargo build --bin babysync
cd clients/typescript
npm ci --no-audit --no-fund
BABYSYNC_BIN="$(pwd)/../../target/debug/babysync" npm test
