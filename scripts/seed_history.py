#!/usr/bin/env python3
"""Adds N log entries (a third per log table) to a babysync database, for
one baby nobody can see, with SQL: the large-history runs of scripts/bench.sh.

    seed_history.py postgres URL N
    seed_history.py sqlite FILE N

On SQLite the rows copy the value formats of a row each table already holds
(run it after a push benchmark)."""
import sqlite3
import subprocess
import sys

BABY = "00000000-0000-4000-8000-00000000b00c"
TABLES = {
    "feed_log": "method, ended_at, duration_minutes, amount_ml, is_estimated, estimated_source, end_side",
    "sleep_log": "ended_at, duration_minutes",
    "nappy_log": "type, colour, consistency",
}
PG_OWN = {
    "feed_log": "'bottle', NULL, NULL, 120, false, NULL, NULL",
    "sleep_log": "NULL, NULL",
    "nappy_log": "'wet', NULL, NULL",
}
COMMON = "id, baby_id, logged_by, started_at, notes, created_at, updated_at, archived_at, version"


def postgres(url, n):
    per = n // len(TABLES)
    sql = [
        "SET synchronous_commit = off;",
        f"INSERT INTO babies (id, name, birth_date, gender, change_counter, created_at, updated_at, archived_at) "
        f"VALUES ('{BABY}', 'History', NULL, NULL, {n}, now(), now(), NULL) ON CONFLICT (id) DO NOTHING;",
    ]
    for i, table in enumerate(TABLES):
        sql.append(
            f"INSERT INTO {table} ({COMMON}, {cols(table)}) "
            f"SELECT gen_random_uuid(), '{BABY}', 'history', now() - g * interval '1 minute', NULL, now(), now(), NULL, "
            f"{i * per} + g, {PG_OWN[table]} FROM generate_series(1, {per}) g;"
        )
    subprocess.run(["psql", url, "-q", "-v", "ON_ERROR_STOP=1", "-c", "\n".join(sql)], check=True)


def cols(table):
    return TABLES[table]


def sqlite(path, n):
    per = n // len(TABLES)
    db = sqlite3.connect(path)
    db.execute("PRAGMA busy_timeout = 10000")
    kind = db.execute("SELECT typeof(id) FROM babies LIMIT 1").fetchone()[0]
    baby = f"X'{BABY.replace('-', '')}'" if kind == "blob" else f"'{BABY}'"
    new_id = "randomblob(16)" if kind == "blob" else "lower(hex(randomblob(16)))"
    db.execute(
        f"INSERT OR IGNORE INTO babies (id, name, birth_date, gender, change_counter, created_at, updated_at, archived_at) "
        f"SELECT {baby}, 'History', NULL, NULL, {n}, created_at, updated_at, NULL FROM babies LIMIT 1"
    )
    for i, table in enumerate(TABLES):
        own = cols(table)
        t_own = ", ".join(f"t.{c.strip()}" for c in own.split(","))
        db.execute(
            f"WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {per}) "
            f"INSERT INTO {table} ({COMMON}, {own}) "
            f"SELECT {new_id}, {baby}, 'history', t.started_at, NULL, t.created_at, t.updated_at, NULL, {i * per} + g.n, {t_own} "
            f"FROM g, (SELECT * FROM {table} LIMIT 1) t"
        )
    db.commit()
    db.close()


if __name__ == "__main__":
    backend, target, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    {"postgres": postgres, "sqlite": sqlite}[backend](target, count)
