#!/usr/bin/env bash
# Checks the running server against its own OpenAPI document with
# schemathesis (PyPI), once on SQLite and once on PostgreSQL: no 5xx, and
# every status, content type, header and body as the document says.
#
#   scripts/schemathesis.sh [path/to/babysync]
#
# Needs `schemathesis`, `python3` and `psql` on PATH and PostgreSQL at
# TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres).
# Servers listen on 127.0.0.1 only and are stopped on exit (and after 15
# minutes regardless).
#
# Before each run the script seeds a baby owned by the user schemathesis
# sends the token of, caregivers of that baby and invites to it; hooks
# (written below) make a share of the requests to `POST /api/invites/accept`
# and `DELETE /api/babies/{id}/caregivers/{user_id}` use those real tokens and
# ids, so their success paths are checked too. The server's request log
# (LOG_FORMAT=json) must show at least one 200 from accept and one 204 from
# removing a caregiver, or the script fails.
#
# Everything schemathesis and hypothesis keep between runs (schemathesis's
# cache and crash files, hypothesis's example database) goes to a temporary
# folder that is removed on exit, so a run leaves the work tree as it was and
# every run starts from the same state (SCHEMATHESIS_CACHE_DIR keeps the
# cache elsewhere, one sub-folder per database, e.g. to replay crashes).
#
# The "coverage" phase is left out: on this machine's Python (3.11.7) it
# crashes inside hypothesis (CPython's "AST constructor recursion depth
# mismatch", fixed in 3.11.8) before it sends a request.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${1:-target/debug/babysync}
ADMIN=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
MAX_EXAMPLES=${SCHEMATHESIS_MAX_EXAMPLES:-50}
CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance
export JWT_SECRET=schemathesis-secret-at-least-32-bytes-long
# Warnings, plus the one JSON line per request (status, and the request span's
# method and route) that the checks below count.
export RATE_LIMIT_PER_SEC=0 LOG_FORMAT=json RUST_LOG=warn,api=info,tower_http=info
# Caregivers seeded per run (each can be removed once) and invites (100 uses each).
CAREGIVERS=5
INVITES=3

work=$(mktemp -d)
pid=""
pgdb=""
cleanup() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  if [ -n "$pgdb" ]; then psql "$ADMIN" -qc "DROP DATABASE IF EXISTS \"$pgdb\" WITH (FORCE)" >/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# Hypothesis keeps its example database and caches here, not in ./.hypothesis.
export HYPOTHESIS_STORAGE_DIRECTORY="$work/hypothesis"

# The hooks: read the seeded values from $BABYSYNC_SEED_FILE; for the two
# operations, draw either what schemathesis generated or a seeded value
# (hypothesis picks, so the run stays reproducible under --seed).
cat >"$work/hooks.py" <<'PY'
import json
import os

import schemathesis
from hypothesis import strategies as st

with open(os.environ["BABYSYNC_SEED_FILE"], encoding="utf-8") as f:
    SEED = json.load(f)


@schemathesis.hook("flatmap_body").apply_to(method="POST", path="/api/invites/accept")
def real_invite_token(ctx, body):
    real = st.sampled_from(SEED["inviteTokens"]).map(lambda token: {"token": token})
    return st.one_of(st.just(body), real)


@schemathesis.hook("flatmap_path_parameters").apply_to(
    method="DELETE", path_regex=r"^/api/babies/\{[^}/]+\}/caregivers/\{[^}/]+\}$"
)
def real_caregiver(ctx, path_parameters):
    if not isinstance(path_parameters, dict) or len(path_parameters) != 2:
        return st.just(path_parameters)
    baby_key = "id" if "id" in path_parameters else sorted(path_parameters)[0]
    (user_key,) = [key for key in path_parameters if key != baby_key]
    # Mostly caregivers (204 the first time, 404 after); sometimes the owner
    # itself, the last owner (409).
    users = SEED["caregiverIds"] + [SEED["ownerId"]]
    real = st.sampled_from(users).map(lambda user: {baby_key: SEED["babyId"], user_key: user})
    return st.one_of(st.just(path_parameters), real)
PY

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# JSON field $2 of the JSON document $1.
json_field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

# Seeds the data the hooks use and writes it to $work/$backend.seed.json.
seed() {
  local backend=$1 url=$2 base=$3 token=$4
  local baby=0b7f8a6e-6a1e-4c1e-9f3e-1f2a3b4c5d6e auth=(-H "Authorization: Bearer $token")
  local json=(-H 'content-type: application/json')
  curl -fsS "${auth[@]}" "${json[@]}" -d "{\"id\":\"$baby\",\"name\":\"Ada\"}" "$base/api/babies" >/dev/null
  local invites=() i out
  for i in $(seq 1 "$INVITES"); do
    out=$(curl -fsS "${auth[@]}" "${json[@]}" -d '{"accessLevel":"viewer","maxUses":100,"expiresInHours":24}' \
      "$base/api/babies/$baby/invites")
    invites+=("$(json_field "$out" token)")
  done
  local caregivers=() user user_token
  for i in $(seq 1 "$CAREGIVERS"); do
    user="caregiver-$i"
    user_token=$(DATABASE_URL=$url "$BIN" token --sub "$user" --name "Caregiver $i")
    curl -fsS -H "Authorization: Bearer $user_token" "${json[@]}" -d "{\"token\":\"${invites[0]}\"}" \
      "$base/api/invites/accept" >/dev/null
    caregivers+=("$user")
  done
  python3 - "$work/$backend.seed.json" "$baby" "${caregivers[*]}" "${invites[*]}" <<'PY'
import json, sys
path, baby, caregivers, invites = sys.argv[1:]
with open(path, "w", encoding="utf-8") as f:
    json.dump({"babyId": baby, "ownerId": "schemathesis", "caregiverIds": caregivers.split(),
               "inviteTokens": invites.split()}, f)
PY
}

# Counts, in the request log lines of file $1 from line $2 on, the accepted
# invites (200) and removed caregivers (204); prints them; fails if either is 0.
check_counts() {
  python3 - "$1" "$2" "$3" <<'PY'
import json, re, sys
path, first, backend = sys.argv[1], int(sys.argv[2]), sys.argv[3]
caregiver = re.compile(r"^/api/babies/\{[^}/]+\}/caregivers/\{[^}/]+\}$")
counts = {"accept": {}, "remove": {}}
with open(path, encoding="utf-8", errors="replace") as f:
    for n, line in enumerate(f, 1):
        if n < first:
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        span = event.get("span") or {}
        status = event.get("status")
        method = span.get("method", event.get("method"))
        route = span.get("route", event.get("route"))
        if status is None or method is None:
            continue
        if method == "POST" and route == "/api/invites/accept":
            kind = "accept"
        elif method == "DELETE" and route and caregiver.match(route):
            kind = "remove"
        else:
            continue
        counts[kind][str(status)] = counts[kind].get(str(status), 0) + 1
def show(c):
    return ", ".join(f"{k}: {v}" for k, v in sorted(c.items())) or "none"
print(f"{backend}: POST /api/invites/accept statuses {{{show(counts['accept'])}}}; "
      f"DELETE /api/babies/{{id}}/caregivers/{{user_id}} statuses {{{show(counts['remove'])}}}")
accepted, removed = counts["accept"].get("200", 0), counts["remove"].get("204", 0)
if not accepted or not removed:
    print(f"{backend}: schemathesis got {accepted} accept 200s and {removed} caregiver-removal 204s;"
          " both must be at least 1 (did the seeding, the hooks or the request log change?)", file=sys.stderr)
    sys.exit(1)
PY
}

run_against() {
  local backend=$1 url=$2 port
  port=$(free_port)
  echo "== schemathesis on $backend"
  DATABASE_URL=$url BIND_ADDR=127.0.0.1:$port timeout 900 "$BIN" serve >"$work/$backend.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fsS "http://127.0.0.1:$port/health/ready" >/dev/null
  local token base="http://127.0.0.1:$port"
  token=$(DATABASE_URL=$url "$BIN" token --sub schemathesis --name Schemathesis)
  seed "$backend" "$url" "$base" "$token"
  # Only what schemathesis sends is counted, not the seeding.
  local first_line
  first_line=$(($(wc -l <"$work/$backend.log") + 1))
  local cache_dir=${SCHEMATHESIS_CACHE_DIR:-$work/schemathesis}/$backend
  printf '[cache]\ndirectory = "%s"\n' "$cache_dir" >"$work/$backend.toml"
  local status=0
  BABYSYNC_SEED_FILE="$work/$backend.seed.json" SCHEMATHESIS_HOOKS="$work/hooks.py" \
    schemathesis --config-file "$work/$backend.toml" run "$base/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks "$CHECKS" \
    --max-examples "$MAX_EXAMPLES" \
    --seed 20261121 \
    --workers 2 \
    --request-timeout 30 \
    --phases examples,fuzzing,stateful \
    --suppress-health-check all || status=$?
  kill -TERM "$pid"
  wait "$pid" || { echo "server exited non-zero; log:"; cat "$work/$backend.log"; return 1; }
  pid=""
  # The counts are printed even when schemathesis failed: they help to read it.
  check_counts "$work/$backend.log" "$first_line" "$backend" || status=1
  return "$status"
}

run_against sqlite "sqlite://$work/babysync.db?mode=rwc"

pgdb="bs_schemathesis_$$"
psql "$ADMIN" -qc "CREATE DATABASE \"$pgdb\"" >/dev/null
run_against postgres "${ADMIN%/*}/$pgdb"
echo "schemathesis: no 5xx and every response conforms, on SQLite and PostgreSQL;" \
  "seeded invites accepted and caregivers removed on both"
