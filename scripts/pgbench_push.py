#!/usr/bin/env python3
"""Writes a pgbench script that makes, per transaction, the statements a
babysync push of B creates makes on PostgreSQL (as the server sends them, its
values written in): the user row, BEGIN, the client row locked, the baby
locked with its caregivers' levels, which of the ids exist, the one write
statement (B rows as JSON, the counter, the client, the notification), COMMIT.
It is the database's own work for a push, without babysync: the second
ceiling of scripts/bench.sh.

    pgbench_push.py URL B > push.sql

It reads 8 (client, user, baby) triples from a database a push benchmark
has written to; pgbench client k uses triple k % 8."""
import json
import subprocess
import sys

url, batch = sys.argv[1], int(sys.argv[2])
rows = subprocess.run(
    ["psql", url, "-At", "-F", "|", "-c",
     "SELECT c.client_id, c.user_id, a.baby_id FROM sync_clients c "
     "JOIN baby_access a ON a.user_id = c.user_id ORDER BY c.client_id LIMIT 8"],
    check=True, capture_output=True, text=True).stdout.split()
triples = [r.split("|") for r in rows]
if len(triples) < 8:
    sys.exit("needs 8 clients of a push benchmark")
arr = lambda i, cast: "(array[" + ",".join(f"'{t[i]}'" for t in triples) + f"])[:k + 1]{cast}"
client, user, baby = arr(0, "::uuid"), arr(1, ""), arr(2, "::uuid")

T0 = "2026-11-20T07:05:00.000Z"
NOW = "2026-12-01T03:17:08.795Z"
common = {"loggedBy": "bench", "startedAt": T0, "notes": None, "createdAt": NOW, "updatedAt": NOW, "archivedAt": None}
kinds = [
    ("feed_log", {"method": "bottle", "endedAt": None, "durationMinutes": None, "amountMl": 120, "isEstimated": False,
                  "estimatedSource": None, "endSide": None},
     [("method", "text"), ("ended_at", "timestamptz"), ("duration_minutes", "int4"), ("amount_ml", "int4"),
      ("is_estimated", "bool"), ("estimated_source", "text"), ("end_side", "text")]),
    ("nappy_log", {"type": "poo", "colour": "yellow", "consistency": "mushy"},
     [("type", "text"), ("colour", "text"), ("consistency", "text")]),
    ("sleep_log", {"endedAt": "2026-11-20T09:00:00.000Z", "durationMinutes": 115},
     [("ended_at", "timestamptz"), ("duration_minutes", "int4")]),
]
camel = lambda c: c.split("_")[0] + "".join(p.title() for p in c.split("_")[1:])
base = [("logged_by", "text"), ("started_at", "timestamptz"), ("notes", "text"), ("created_at", "timestamptz"),
        ("updated_at", "timestamptz"), ("archived_at", "timestamptz")]

out = ["\\set k :client_id % 8", "\\set v random(1, 1000000000)"]
out.append(f"SELECT id, display_name, email, created_at, updated_at FROM users WHERE id = {user} LIMIT 1;")
out.append("BEGIN;")
out.append(f"SELECT client_id, user_id, last_mutation_id, created_at, updated_at FROM sync_clients "
           f"WHERE client_id = {client} LIMIT 1 FOR UPDATE;")
out.append(f"SELECT b.id, b.archived_at, b.change_counter, a.user_id, a.access_level FROM babies b "
           f"JOIN baby_access a ON a.baby_id = b.id WHERE b.id IN ({baby}) AND EXISTS (SELECT 1 FROM baby_access mine "
           f"WHERE mine.baby_id = b.id AND mine.user_id = {user}) ORDER BY b.id FOR UPDATE OF b;")
per = [batch // 3 + (1 if i < batch % 3 else 0) for i in range(3)]
ids = lambda t, n: ", ".join(f"md5(:v::text || '{t}{i}')::uuid" for i in range(n))
out.append(" UNION ALL ".join(f"SELECT {i} AS k, id FROM {t} WHERE id IN ({ids(t, n)})"
                              for i, ((t, _, _), n) in enumerate(zip(kinds, per))) + ";")
parts, counts = [], []
for i, ((table, own, cols), n) in enumerate(zip(kinds, per)):
    data = json.dumps([dict(common, **own, version=j) for j in range(n)])
    all_cols = base + cols + [("version", "int8")]
    defs = ", ".join(f'"{camel(c)}" {ty}' for c, ty in all_cols)
    sel = ", ".join(f'x."{camel(c)}"' if c != "version" else f'x."version" + :v' for c, _ in all_cols)
    names = ", ".join(c for c, _ in all_cols)
    upd = ", ".join(f"{c} = excluded.{c}" for c, _ in all_cols if c not in ("logged_by", "created_at"))
    parts.append(f"w{i} AS (INSERT INTO {table} (id, baby_id, {names}) SELECT gen_random_uuid(), {baby}, {sel} "
                 f"FROM json_to_recordset('{data}'::json) AS x({defs}) ON CONFLICT (id) DO UPDATE SET {upd} "
                 f"WHERE {table}.baby_id = excluded.baby_id RETURNING 1)")
    counts.append(f"(SELECT count(*) FROM w{i})")
parts.append(f"c AS (UPDATE babies SET change_counter = change_counter + {batch} WHERE id = {baby} RETURNING 1)")
parts.append(f"m AS (UPDATE sync_clients SET last_mutation_id = last_mutation_id + {batch}, updated_at = now() "
             f"WHERE client_id = {client} RETURNING 1)")
payload = json.dumps({"u": [triples[0][1]], "b": [triples[0][2]]})
parts.append(f"n AS (SELECT pg_notify('babysync_pokes', '{payload}'))")
counts += ["(SELECT count(*) FROM c)", "(SELECT count(*) FROM m)", "(SELECT count(*) FROM n)"]
out.append("WITH " + ", ".join(parts) + " SELECT " + ", ".join(counts) + ";")
out.append("COMMIT;")
print("\n".join(out))
