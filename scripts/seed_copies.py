#!/usr/bin/env python3
"""Fills baby TO with COPIES copies of every entry of baby FROM, with SQL:
the million-entry export of scripts/bench.sh (SUITE=history).

    seed_copies.py postgres URL FROM TO COPIES
    seed_copies.py sqlite FILE FROM TO COPIES

Copy k (1..COPIES) of an entry keeps its every column but three: its id
becomes the original's with the first four hex digits replaced by
f + k in three hex digits (timer events' entry_id alike, so a timer's events
stay its own; the originals are UUIDv7 of this century, which start with 0),
its baby is TO, and its version is the original's + k × FROM's change
counter, so that versions stay unique within TO; TO's change counter becomes
COPIES × FROM's. Timestamps and segments are those of the original. TO must
exist (made through the API, so that its owner can read it) and be empty.
Stop the server first on SQLite."""
import sqlite3
import subprocess
import sys
import uuid

TABLES = ["feed_log", "sleep_log", "nappy_log", "pumping_log", "growth_log", "medication_log",
          "temperature_log", "solids_log", "activity_log", "timer_event"]


def psql(url, sql):
    out = subprocess.run(["psql", url, "-qAt", "-v", "ON_ERROR_STOP=1", "-c", sql], check=True,
                         capture_output=True, text=True)
    return out.stdout.strip()


def postgres(url, src, dst, copies):
    counter = int(psql(url, f"SELECT change_counter FROM babies WHERE id = '{src}'"))
    sql = ["SET synchronous_commit = off;", "BEGIN;"]
    for table in TABLES:
        cols = psql(url, "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) "
                         f"FROM information_schema.columns WHERE table_name = '{table}' AND table_schema = current_schema()").split(",")
        def expr(c):
            if c in ("id", "entry_id"):
                return f"('f' || lpad(to_hex(k), 3, '0') || substr({c}::text, 5))::uuid"
            if c == "baby_id":
                return f"'{dst}'::uuid"
            if c == "version":
                return f"version + k * {counter}"
            return c
        sql.append(f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(map(expr, cols))} "
                   f"FROM {table}, generate_series(1, {copies}) k WHERE baby_id = '{src}';")
    sql.append(f"UPDATE babies SET change_counter = {copies * counter} WHERE id = '{dst}';")
    sql.append("COMMIT;")
    psql(url, "\n".join(sql))
    return int(psql(url, "SELECT " + " + ".join(f"(SELECT count(*) FROM {t} WHERE baby_id = '{dst}')" for t in TABLES)))


def sqlite(path, src, dst, copies):
    db = sqlite3.connect(path)
    db.execute("PRAGMA busy_timeout = 10000")
    kind = db.execute("SELECT typeof(id) FROM babies LIMIT 1").fetchone()[0]
    blob = kind == "blob"

    def key(text):
        return uuid.UUID(text).bytes if blob else str(uuid.UUID(text))

    def copy_id(value, k):
        if value is None:
            return None
        u = uuid.UUID(bytes=value) if blob else uuid.UUID(value)
        text = f"f{k:03x}" + str(u)[4:]
        return uuid.UUID(text).bytes if blob else text

    db.create_function("copy_id", 2, copy_id, deterministic=True)
    counter = db.execute("SELECT change_counter FROM babies WHERE id = ?", (key(src),)).fetchone()[0]
    for table in TABLES:
        cols = [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
        def expr(c):
            if c in ("id", "entry_id"):
                return f"copy_id({c}, k.n)"
            if c == "baby_id":
                return ":dst"
            if c == "version":
                return f"version + k.n * {counter}"
            return c
        db.execute(
            f"WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < {copies}) "
            f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(map(expr, cols))} "
            f"FROM {table}, k WHERE baby_id = :src",
            {"src": key(src), "dst": key(dst)})
    db.execute("UPDATE babies SET change_counter = ? WHERE id = ?", (copies * counter, key(dst)))
    db.commit()
    n = sum(db.execute(f"SELECT count(*) FROM {t} WHERE baby_id = ?", (key(dst),)).fetchone()[0] for t in TABLES)
    db.close()
    return n


if __name__ == "__main__":
    backend, target, src, dst, copies = sys.argv[1:6]
    n = {"postgres": postgres, "sqlite": sqlite}[backend](target, src, dst, int(copies))
    print(n)
