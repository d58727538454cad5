#!/usr/bin/env python3
"""Plays hostile callers against a real babysync server and measures what
another user (the victim) sees while each attack runs.

    scripts/attacks.py BINARY [--postgres] [--attacks 1,2,3,4,5]

Each attack gets a fresh server process (`timeout 600 BINARY serve`) on a
fresh database: an SQLite file in a temporary directory, or with --postgres a
database created on postgres://postgres@127.0.0.1:5432 and dropped after. The
server runs with RATE_LIMIT_PER_SEC=0, LOG_FORMAT=json, RUST_LOG=warn and the
defaults for everything else. All traffic goes to 127.0.0.1; every loop is
bounded in count and in time; every server started is killed, also on error.

Attacks (tests/it/abuse.rs has the same ones, smaller):
  1 metrics   2,300 requests with made-up ~1,000-char methods; size of /metrics
  2 babies    one user creates babies up to the limit (or 1,000); 8 pulls at once
  3 bodies    530 pushes whose body stalls after a few bytes
  4 pulls     5,000 entries with 2,000-char notes; pull sizes; 24 big pulls at once
  5 loris     1,020 connections trickling a request head, a byte every 2 s

For each it prints one row: the victim's statuses and latencies measured while
the attack runs, the server's peak RSS (VmHWM), and the attack's own figure.
Python 3 standard library only.
"""

import argparse
import atexit
import gzip
import http.client
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

SECRET = "attacks-py-hs256-secret-0123456789abcdef"  # 40 characters
assert len(SECRET) == 40
PG_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"
PG_BASE = "postgres://postgres@127.0.0.1:5432/"
HOST = "127.0.0.1"

LIVE = []  # servers started and not yet stopped
ORIGINAL_NOFILE = resource.getrlimit(resource.RLIMIT_NOFILE)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def psql(sql):
    subprocess.run(
        ["psql", PG_ADMIN, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql],
        check=True,
        timeout=60,
        stdout=subprocess.DEVNULL,
    )


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else None


# --------------------------------------------------------------------------
# The server under test


class Server:
    count = 0

    def __init__(self, binary, backend, extra_env=None):
        Server.count += 1
        self.binary = os.path.abspath(binary)
        self.backend = backend
        self.dir = tempfile.mkdtemp(prefix="babysync-attack-")
        self.port = free_port()
        self.dbname = None
        if backend == "postgres":
            self.dbname = f"babysync_attack_{os.getpid()}_{Server.count}"
            psql(f"CREATE DATABASE {self.dbname}")
            url = PG_BASE + self.dbname
        else:
            url = f"sqlite://{self.dir}/a.db?mode=rwc"
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": self.dir,
            "DATABASE_URL": url,
            "JWT_SECRET": SECRET,
            "BIND_ADDR": f"{HOST}:{self.port}",
            "RATE_LIMIT_PER_SEC": "0",
            "LOG_FORMAT": "json",
            "RUST_LOG": "warn",
        }
        self.env.update(extra_env or {})
        self.log_path = os.path.join(self.dir, "server.log")
        self.log_file = open(self.log_path, "wb")
        self.proc = None
        self.pid = None  # the babysync process (child of `timeout`)
        self.died = None

    def start(self):
        def child_setup():
            # The server gets the open-file limit this script was started
            # with, whatever the script raised its own to.
            resource.setrlimit(resource.RLIMIT_NOFILE, ORIGINAL_NOFILE)

        self.proc = subprocess.Popen(
            ["timeout", "600", self.binary, "serve"],
            env=self.env,
            cwd=self.dir,
            stdin=subprocess.DEVNULL,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=child_setup,
        )
        LIVE.append(self)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.log_tail()}")
            if self.pid is None:
                try:
                    with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                        kids = f.read().split()
                    if kids:
                        self.pid = int(kids[0])
                except OSError:
                    pass
            r = request(self.port, "GET", "/health/ready", timeout=2)
            if r.status == 200 and self.pid:
                return self
            time.sleep(0.1)
        raise RuntimeError(f"server not ready in 90 s: {self.log_tail()}")

    def token(self, sub):
        out = subprocess.run(
            [self.binary, "token", "--sub", sub, "--ttl", "2h"],
            env=self.env,
            cwd=self.dir,
            capture_output=True,
            timeout=30,
            check=True,
        )
        return out.stdout.decode().strip()

    def alive(self):
        return self.proc.poll() is None

    def status_kib(self, field):
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        return int(line.split()[1])
        except (OSError, TypeError):
            pass
        return None

    def hwm_mib(self):
        v = self.status_kib("VmHWM")
        return None if v is None else v / 1024

    def rss_mib(self):
        v = self.status_kib("VmRSS")
        return None if v is None else v / 1024

    def fds(self):
        try:
            return len(os.listdir(f"/proc/{self.pid}/fd"))
        except OSError:
            return None

    def nofile_limit(self):
        try:
            with open(f"/proc/{self.pid}/limits") as f:
                for line in f:
                    if line.startswith("Max open files"):
                        return line.split()[3]
        except OSError:
            pass
        return "?"

    def log_lines(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return []

    def log_tail(self, n=5):
        return " | ".join(self.log_lines()[-n:])

    def log_levels(self):
        counts = {}
        for line in self.log_lines():
            try:
                level = json.loads(line).get("level", "?")
            except ValueError:
                level = "non-json"
            counts[level] = counts.get(level, 0) + 1
        return counts

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=10)
        if self.pid:
            # `timeout` forwards the signal; make sure the server itself is gone.
            try:
                os.kill(self.pid, 0)
                os.kill(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.log_file.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        if self in LIVE:
            LIVE.remove(self)
        if self.dbname:
            try:
                psql(f"DROP DATABASE IF EXISTS {self.dbname} WITH (FORCE)")
            except Exception as e:  # noqa: BLE001
                log(f"could not drop {self.dbname}: {e}")
            self.dbname = None


def stop_all(*_):
    for s in list(LIVE):
        try:
            s.stop()
        except Exception as e:  # noqa: BLE001
            log(f"stop failed: {e}")


atexit.register(stop_all)


def on_signal(signum, _frame):
    stop_all()
    sys.exit(128 + signum)


signal.signal(signal.SIGTERM, on_signal)
signal.signal(signal.SIGINT, on_signal)
signal.signal(signal.SIGHUP, on_signal)


# --------------------------------------------------------------------------
# HTTP


class Resp:
    def __init__(self, status, ms, body=b"", headers=None):
        self.status = status  # int, or a short error string
        self.ms = ms
        self.body = body
        self.headers = headers or {}

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def request(port, method, path, token=None, body=None, headers=None, timeout=30):
    h = dict(headers or {})
    if token:
        h["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        h.setdefault("Content-Type", "application/json")
    t0 = time.monotonic()
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        payload = r.read()
        return Resp(r.status, (time.monotonic() - t0) * 1000, payload,
                    {k.lower(): v for k, v in r.getheaders()})
    except socket.timeout:
        return Resp("timeout", (time.monotonic() - t0) * 1000)
    except (OSError, http.client.HTTPException) as e:
        return Resp(type(e).__name__, (time.monotonic() - t0) * 1000)
    finally:
        conn.close()


def pull_body(client, limit=None, cursor=None):
    b = {"protocolVersion": 1, "clientId": client, "cursor": cursor}
    if limit is not None:
        b["limit"] = limit
    return b


def probe_loop(spec, stop_evt):
    """The victim's loop: each request on a new connection, every
    `every` seconds, until `stop_evt`, at most `max_rounds` rounds."""
    results = {c[0]: [] for c in spec["calls"]}
    for _ in range(spec["max_rounds"]):
        if stop_evt.is_set():
            break
        for name, method, path, token, body in spec["calls"]:
            r = request(spec["port"], method, path, token, body, timeout=spec["timeout"])
            results[name].append((r.status, round(r.ms, 1)))
        stop_evt.wait(spec["every"])
    return results


def probe_main():
    """`attacks.py --probe`: runs probe_loop in its own process (so that this
    script's threads reading big responses do not delay the victim's requests
    behind the GIL) until its stdin says stop or closes; prints the results."""
    spec = json.loads(sys.stdin.readline())
    stop_evt = threading.Event()
    out = {}
    t = threading.Thread(target=lambda: out.update(probe_loop(spec, stop_evt)), daemon=True)
    t.start()
    sys.stdin.readline()  # "stop", or EOF when the parent is gone
    stop_evt.set()
    t.join(timeout=spec["timeout"] * 2 + 5)
    print(json.dumps(out), flush=True)


class Victim:
    """The victim's requests, repeated in a separate process from start()
    until finish(), which returns {name: [(status, ms)]}."""

    def __init__(self, port, calls, every=0.5, max_rounds=2000, timeout=30):
        self.spec = {"port": port, "calls": [list(c) for c in calls], "every": every,
                     "max_rounds": max_rounds, "timeout": timeout}
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [sys.executable, "-B", os.path.abspath(__file__), "--probe"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.proc.stdin.write(json.dumps(self.spec) + "\n")
        self.proc.stdin.flush()
        return self

    def finish(self):
        try:
            out, _ = self.proc.communicate("stop\n", timeout=self.spec["timeout"] * 2 + 10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        try:
            return {k: [tuple(x) for x in v] for k, v in json.loads(out).items()}
        except ValueError:
            return {c[0]: [("probe failed", 0.0)] for c in self.spec["calls"]}


def summarize(results):
    """{'GET /api/me': [(status, ms)]} -> ('200x12', 'max 5 / med 2')"""
    statuses, lat = [], []
    for name, rs in results.items():
        counts = {}
        for st, _ in rs:
            counts[st] = counts.get(st, 0) + 1
        tag = ",".join(f"{k}x{v}" for k, v in sorted(counts.items(), key=str)) or "none"
        ms = [m for _, m in rs]
        statuses.append(f"{name}: {tag}" if len(results) > 1 else tag)
        if ms:
            lat.append((f"{name}: " if len(results) > 1 else "")
                       + f"max {max(ms):.0f} / med {median(ms):.0f} (n={len(ms)})")
    return "; ".join(statuses), "; ".join(lat)


# --------------------------------------------------------------------------
# Raw sockets


def raw_exchange(port, data, timeout=10):
    """Sends `data` on a new connection, reads until closed; returns the status."""
    s = socket.create_connection((HOST, port), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(out) < 65536:
            chunk = s.recv(4096)
            if not chunk:
                break
            out += chunk
            if b"\r\n\r\n" in out and b"content-length: 0" in out.lower():
                break
        line = out.split(b"\r\n", 1)[0].decode("latin-1")
        parts = line.split()
        return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else (line or "closed")
    except socket.timeout:
        return "timeout"
    except OSError as e:
        return type(e).__name__
    finally:
        s.close()


class Watcher:
    """Watches non-blocking sockets for what the server sends and for the
    server closing them. For socket i: `first[i]` is the seconds from
    `opened[i]` to its first byte from the server, `closed[i]` to the close,
    `buf[i]` the first bytes. With `trickle(i)` giving the next byte, `poll`
    sends one byte to each open socket every `every` seconds."""

    def __init__(self, socks, opened, trickle=None, every=2.0):
        self.socks, self.opened = socks, opened
        self.trickle, self.every = trickle, every
        self.first, self.closed = {}, {}
        self.buf = {i: b"" for i in range(len(socks))}
        self.next_trickle = time.monotonic() + every

    def _close(self, i, now):
        self.closed.setdefault(i, now - self.opened[i])

    def poll(self, bound, until=None):
        """Polls for at most `bound` seconds, or until every socket is
        closed, or until `until()` is true."""
        deadline = time.monotonic() + bound
        while time.monotonic() < deadline:
            now = time.monotonic()
            for i, s in enumerate(self.socks):
                if i in self.closed:
                    continue
                try:
                    chunk = s.recv(4096)
                    if chunk:
                        self.first.setdefault(i, now - self.opened[i])
                        if len(self.buf[i]) < 4096:
                            self.buf[i] += chunk
                    else:
                        self._close(i, now)
                except BlockingIOError:
                    pass
                except OSError:
                    self._close(i, now)
            if self.trickle and now >= self.next_trickle:
                self.next_trickle = now + self.every
                for i, s in enumerate(self.socks):
                    if i in self.closed:
                        continue
                    try:
                        s.send(self.trickle(i))
                    except BlockingIOError:
                        pass
                    except OSError:
                        self._close(i, time.monotonic())
            if len(self.closed) == len(self.socks) or (until and until()):
                break
            time.sleep(0.05)


def status_of(head):
    parts = head.split(b"\r\n", 1)[0].split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


# --------------------------------------------------------------------------
# Attacks: each returns (victim_status, victim_latency, figure); peak RSS is
# read by the caller before the server is stopped.


def attack_metrics(srv):
    victim = srv.token("victim")
    before = request(srv.port, "GET", "/metrics")
    v = Victim(srv.port, [("GET /api/me", "GET", "/api/me", victim, None)], every=0.02)
    v.start()
    time.sleep(0.3)  # the probe process is up
    n, threads = 2300, 8
    statuses = {}
    lock = threading.Lock()
    counter = iter(range(n))
    deadline = time.monotonic() + 240

    def worker():
        while time.monotonic() < deadline:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            method = f"X{i}" + "M" * (1000 - len(str(i)) - 1)
            st = raw_exchange(srv.port, f"{method} /health/live HTTP/1.1\r\nHost: x\r\n"
                              "Connection: close\r\n\r\n".encode())
            with lock:
                statuses[st] = statuses.get(st, 0) + 1

    t0 = time.monotonic()
    ws = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for w in ws:
        w.start()
    for w in ws:
        w.join(timeout=260)
    took = time.monotonic() - t0
    vs, vl = summarize(v.finish())
    after = request(srv.port, "GET", "/metrics")
    text = after.body.decode("utf-8", "replace")
    other = "other" if 'method="other"' in text else "no 'other' label"
    fig = (f"/metrics {len(after.body)} B after (before {len(before.body)} B, status {after.status}); "
           f"{'made-up methods ARE labels' if 'MMMM' in text else 'no made-up method label'}, {other}; "
           f"{sum(statuses.values())} sent in {took:.1f}s, answers {statuses}")
    return vs, vl, fig


def attack_babies(srv):
    mallory, victim = srv.token("mallory"), srv.token("victim")
    created, stop_status, stop_body = 0, "nothing (no limit up to 1000)", ""
    deadline = time.monotonic() + 300
    t0 = time.monotonic()
    for i in range(1000):
        if time.monotonic() > deadline:
            stop_status = "time bound (300 s)"
            break
        r = request(srv.port, "POST", "/api/babies", mallory, {"name": f"baby {i}"})
        if r.status not in (200, 201):
            stop_status = r.status
            stop_body = r.body[:160].decode("utf-8", "replace")
            break
        created += 1
    create_s = time.monotonic() - t0
    r = request(srv.port, "POST", "/api/babies", victim, {"name": "own"})
    assert r.status == 201, (r.status, r.body)

    rounds = []
    mall_results = []
    victim_results = {"victim pull": []}
    for _ in range(3):
        barrier = threading.Barrier(9)
        out = [None] * 8

        def mall(k):
            barrier.wait(timeout=30)
            out[k] = request(srv.port, "POST", "/api/sync/pull", mallory,
                             pull_body(str(uuid.uuid4())), timeout=120)

        ts = [threading.Thread(target=mall, args=(k,), daemon=True) for k in range(8)]
        for t in ts:
            t.start()
        barrier.wait(timeout=30)
        time.sleep(0.005)
        vr = request(srv.port, "POST", "/api/sync/pull", victim,
                     pull_body(str(uuid.uuid4())), timeout=120)
        victim_results["victim pull"].append((vr.status, vr.ms))
        for t in ts:
            t.join(timeout=130)
        mall_results += [o for o in out if o is not None]
        rounds.append(vr)
    vs, vl = summarize(victim_results)
    mst = {}
    for o in mall_results:
        mst[o.status] = mst.get(o.status, 0) + 1
    ok = [o for o in mall_results if o.status == 200]
    nb = len(ok[0].json()["babies"]) if ok and ok[0].json() else "?"
    mms = [o.ms for o in mall_results]
    err = ""
    bad = [o for o in mall_results if o.status != 200]
    if bad:
        err = f"; a failed pull said: {bad[0].body[:160].decode('utf-8', 'replace')}"
    fig = (f"created {created} babies in {create_s:.1f}s, stopped by {stop_status} {stop_body}; "
           f"24 attacker pulls (3 rounds of 8): {mst}, max {max(mms):.0f} / med {median(mms):.0f} ms, "
           f"{nb} babies in a pull{err}")
    return vs, vl, fig


PUSH_HEAD = ("POST /api/sync/push HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tok}\r\n"
             "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
             "{{\"protocolVersion\":1,")


def attack_slow_bodies(srv):
    mallory, victim = srv.token("mallory"), srv.token("victim")
    r = request(srv.port, "POST", "/api/babies", victim, {"name": "own"})
    assert r.status == 201, (r.status, r.body)
    head = PUSH_HEAD.format(tok=mallory).encode()
    socks, opened = [], []
    open_err = None
    try:
        for _ in range(530):
            try:
                s = socket.create_connection((HOST, srv.port), timeout=10)
                s.sendall(head)
                s.setblocking(False)
            except OSError as e:
                open_err = f"{type(e).__name__} after {len(socks)} connections"
                break
            socks.append(s)
            opened.append(time.monotonic())
        w = Watcher(socks, opened)
        w.poll(0.5)
        early = len(w.first)  # answered before the victim started (e.g. shed at once)
        v = Victim(srv.port, [("GET /api/babies", "GET", "/api/babies", victim, None)], every=0.5)
        v.start()
        # The victim runs for 3 s, or until a stalled one is answered if
        # that comes later (at most 120 s): while they stall.
        t0 = time.monotonic()
        w.poll(3)
        if len(w.first) == early:
            w.poll(117, until=lambda: len(w.first) > early)
        vs, vl = summarize(v.finish())
        victim_window = time.monotonic() - t0
        # Then wait for every stalled one's answer (at most 120 s in all).
        w.poll(max(1.0, 120 - (time.monotonic() - opened[0])),
               until=lambda: len(w.first) + len(set(w.closed) - set(w.first)) >= len(socks))
    finally:
        for s in socks:
            s.close()
    statuses = {}
    for i in range(len(socks)):
        st = status_of(w.buf[i]) if i in w.first else ("closed, no answer" if i in w.closed else "no answer")
        statuses[st] = statuses.get(st, 0) + 1
    ts = sorted(w.first.values())
    if 0 in w.first:
        line = w.buf[0].split(b"\r\n", 1)[0].decode("latin-1")
        body = w.buf[0].split(b"\r\n\r\n", 1)[-1][:110].decode("utf-8", "replace")
        one = f"one reads '{line}' {body!r} after {w.first[0]:.1f}s"
    else:
        one = "one got no answer" + (f" (closed after {w.closed[0]:.1f}s)" if 0 in w.closed else "")
    fig = (f"{len(socks)} stalled{' (' + open_err + ')' if open_err else ''}; {one}; all: {statuses}, "
           + (f"answers after {ts[0]:.1f}..{ts[-1]:.1f}s" if ts else "none answered within ~120 s")
           + f"; {len(w.closed)} closed by the server; victim window {victim_window:.1f}s")
    return vs, vl, fig


def attack_big_pulls(srv):
    alice, victim = srv.token("alice"), srv.token("victim")
    baby = str(uuid.uuid4())
    r = request(srv.port, "POST", "/api/babies", alice, {"id": baby, "name": "Ada"})
    assert r.status == 201, (r.status, r.body)
    client = str(uuid.uuid4())
    note = "n" * 2000
    total, batch = 5000, 400
    mid = applied = 0
    t0 = time.monotonic()
    for start in range(0, total, batch):
        muts = []
        for _ in range(min(batch, total - start)):
            mid += 1
            muts.append({"id": mid, "entity": "feed_log", "op": "create",
                         "data": {"id": str(uuid.uuid4()), "babyId": baby, "method": "bottle",
                                  "startedAt": "2026-11-20T07:05:00.000Z", "amountMl": 120,
                                  "notes": note}})
        r = request(srv.port, "POST", "/api/sync/push", alice,
                    {"protocolVersion": 1, "clientId": client, "mutations": muts}, timeout=120)
        if r.status != 200:
            raise RuntimeError(f"push at {start}: {r.status} {r.body[:200]!r}")
        for res in (r.json() or {}).get("results", []):
            applied += res.get("status") == "applied"
    push_s = time.monotonic() - t0

    plain = request(srv.port, "POST", "/api/sync/pull", alice, pull_body(client, 5000), timeout=120)
    zipped = request(srv.port, "POST", "/api/sync/pull", alice, pull_body(client, 5000),
                     headers={"Accept-Encoding": "gzip"}, timeout=120)
    pj = plain.json() or {}
    n_entries = sum(len(v) for v in (pj.get("changes") or {}).values())
    enc = zipped.headers.get("content-encoding", "none")
    unzipped = len(gzip.decompress(zipped.body)) if enc == "gzip" else len(zipped.body)

    rss_before = srv.rss_mib()
    hwm_before = srv.hwm_mib()
    # /health/live (no database) beside /api/me tells a starved runtime
    # from a starved database pool.
    v = Victim(srv.port, [("GET /api/me", "GET", "/api/me", victim, None),
                          ("GET /health/live", "GET", "/health/live", None, None)],
               every=0.05).start()
    time.sleep(0.3)  # the probe process is up
    out = [None] * 24
    barrier = threading.Barrier(25)

    def one(k):
        barrier.wait(timeout=30)
        r = request(srv.port, "POST", "/api/sync/pull", alice, pull_body(client, 5000), timeout=300)
        out[k] = Resp(r.status, r.ms, b"", {"len": len(r.body)})

    ts = [threading.Thread(target=one, args=(k,), daemon=True) for k in range(24)]
    for t in ts:
        t.start()
    peak_sampled = 0.0
    barrier.wait(timeout=30)
    deadline = time.monotonic() + 310
    while any(t.is_alive() for t in ts) and time.monotonic() < deadline:
        rss = srv.rss_mib()
        if rss:
            peak_sampled = max(peak_sampled, rss)
        time.sleep(0.05)
    vs, vl = summarize(v.finish())
    hwm_after = srv.hwm_mib()
    st = {}
    for o in out:
        k = o.status if o else "unfinished"
        st[k] = st.get(k, 0) + 1
    ms = [o.ms for o in out if o]
    fig = (f"pushed {total} in {push_s:.1f}s ({applied} applied); one pull limit 5000: {plain.status}, {len(plain.body)} B, "
           f"{n_entries} entries, hasMore={pj.get('hasMore')}; gzip: {zipped.status}, {len(zipped.body)} B "
           f"(content-encoding {enc}, {unzipped} B unzipped); 24 pulls at once: {st}, "
           f"max {max(ms):.0f} / med {median(ms):.0f} ms; RSS {rss_before:.1f} MiB before "
           f"(HWM {hwm_before:.1f}), peak {hwm_after:.1f} MiB (sampled RSS max {peak_sampled:.1f})")
    return vs, vl, fig


LORIS_HEAD = b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Slow: "


def attack_slowloris(srv):
    victim = srv.token("victim")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 8192 if hard == resource.RLIM_INFINITY else min(hard, 8192)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    n = 1020
    socks, opened, sent = [], [], []
    open_err = None
    try:
        t0 = time.monotonic()
        for _ in range(n):
            try:
                s = socket.create_connection((HOST, srv.port), timeout=10)
                s.send(LORIS_HEAD[:1])
                s.setblocking(False)
            except OSError as e:
                open_err = f"{type(e).__name__}: {e} after {len(socks)}"
                break
            socks.append(s)
            opened.append(time.monotonic())
            sent.append(1)
        open_s = time.monotonic() - t0
        fds_during = srv.fds()

        def next_byte(i):
            k = sent[i]
            sent[i] += 1
            return LORIS_HEAD[k:k + 1] if k < len(LORIS_HEAD) else b"a"

        w = Watcher(socks, opened, trickle=next_byte, every=2.0)
        # The victim, on new connections, while the slow ones are open: for
        # 6 s after the last one opened (the server may close them from 10 s).
        v = Victim(srv.port, [("GET /health/live", "GET", "/health/live", None, None),
                              ("GET /api/me", "GET", "/api/me", victim, None)], every=1.0)
        v.start()
        w.poll(6)
        still_open = len(socks) - len(w.closed)
        vs, vl = summarize(v.finish())
        w.poll(90)
    finally:
        for s in socks:
            s.close()
    step = max(1, len(socks) // 20)
    idx = list(range(0, len(socks), step))[:20]
    sample = [w.closed[i] for i in idx if i in w.closed]
    not_closed = len(idx) - len(sample)
    all_t = sorted(w.closed.values())
    answered = len(w.first)
    fig = (f"{len(socks)} slow connections opened in {open_s:.1f}s"
           f"{' (' + open_err + ')' if open_err else ''}, server fds {fds_during} "
           f"(its limit {srv.nofile_limit()}); {still_open} still open when the victim finished; sample of 20: "
           + (f"closed after {min(sample):.1f}/{median(sample):.1f}/{max(sample):.1f}s (min/med/max)"
              if sample else "none closed")
           + (f", {not_closed} of 20 not closed within ~96 s" if not_closed else "")
           + f"; all: {len(w.closed)}/{len(socks)} closed"
           + (f" after {all_t[0]:.1f}..{all_t[-1]:.1f}s" if all_t else "")
           + (f"; {answered} got bytes before closing" if answered else ""))
    return vs, vl, fig


ATTACKS = {
    "1": ("metrics labels", attack_metrics),
    "2": ("many babies", attack_babies),
    "3": ("slow bodies", attack_slow_bodies),
    "4": ("big pulls", attack_big_pulls),
    "5": ("slowloris", attack_slowloris),
}


def run(binary, backend, which):
    rows = []
    for key in which:
        name, fn = ATTACKS[key]
        log(f"{backend}: attack {key} ({name})")
        srv = Server(binary, backend)
        row = {"attack": f"{key} {name}", "backend": backend}
        try:
            srv.start()
            vs, vl, fig = fn(srv)
            row.update(victim_status=vs, victim_ms=vl, figure=fig)
        except Exception as e:  # noqa: BLE001
            row.update(victim_status="-", victim_ms="-", figure=f"ATTACK FAILED: {type(e).__name__}: {e}")
        finally:
            row["peak_rss_mib"] = f"{srv.hwm_mib():.1f}" if srv.hwm_mib() is not None else "?"
            row["server"] = ("alive" if srv.proc and srv.alive()
                             else f"DIED (exit {srv.proc.returncode if srv.proc else '?'})")
            row["log_levels"] = srv.log_levels()
            srv.stop()
        rows.append(row)
        print_row(row)
    return rows


def print_row(r):
    print(f"\n== {r['backend']} / attack {r['attack']}  (server {r['server']}, log lines by level {r['log_levels']})")
    print(f"   victim status : {r['victim_status']}")
    print(f"   victim ms     : {r['victim_ms']}")
    print(f"   peak RSS      : {r['peak_rss_mib']} MiB")
    print(f"   figure        : {r['figure']}", flush=True)


def print_table(rows, binary):
    print(f"\n\n# babysync attacks against {binary}")
    print("| backend | attack | victim status | victim latency ms | peak RSS MiB | figure | server |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['backend']} | {r['attack']} | {r['victim_status']} | {r['victim_ms']} | "
              f"{r['peak_rss_mib']} | {r['figure']} | {r['server']} |")
    sys.stdout.flush()


def main():
    if sys.argv[1:] == ["--probe"]:
        return probe_main()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("binary")
    ap.add_argument("--postgres", action="store_true", help="on PostgreSQL instead of SQLite")
    ap.add_argument("--attacks", default="1,2,3,4,5")
    args = ap.parse_args()
    which = [a.strip() for a in args.attacks.split(",") if a.strip()]
    for a in which:
        if a not in ATTACKS:
            ap.error(f"unknown attack {a}")
    if not os.access(args.binary, os.X_OK):
        ap.error(f"{args.binary} is not an executable")
    backend = "postgres" if args.postgres else "sqlite"
    rows = run(args.binary, backend, which)
    print_table(rows, args.binary)


if __name__ == "__main__":
    main()
