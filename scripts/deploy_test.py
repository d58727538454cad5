#!/usr/bin/env python3
"""The deployment test: babysync scaled out on real parts, under faults.

    scripts/deploy_test.py BINARY

Starts, all on this machine and all stopped at the end (or by themselves:
every process runs under `timeout`):

- a PostgreSQL primary (its own cluster, made with `initdb` on a free port)
  and a streaming read replica (`pg_basebackup -R`, another port);
- PgBouncer (Debian's) in transaction mode in front of the primary;
- a one-off `babysync migrate up` job (straight to the primary);
- three babysync replicas (`MIGRATE_ON_START=false`): `DATABASE_URL`
  through PgBouncer, `DATABASE_DIRECT_URL` to the primary (live updates,
  migration lock), `DATABASE_READ_URL` to the read replica;
- HAProxy (Debian's) in front of them, health-checking `/health/ready`.

Where the machine allows network namespaces (root, `ip netns`), each
babysync replica runs in a namespace of its own, joined to the database
host by a veth pair, so that faults can be put between one replica and the
database. Elsewhere they run on 127.0.0.1 and the network faults are skipped
with a message.

Then, with pushers and pullers running through the load balancer:
SIGKILL one babysync replica and start it again; restart PgBouncer; restart
the primary; (namespaces) loss, latency and a partition between one replica
and the database. Afterwards it checks that every push answered 200 is
stored exactly once, that retried pushes came back `applied` or
`duplicate`, that every puller saw every write with versions only going up
(no skip, no step back), that a client's pull after its push shows that
push, that pokes reach streams on another replica, and (replay paused on
the read replica) that a lagging replica is not read from. It prints, for
each fault, the requests that failed and the time to recover.

Python 3 standard library only. Exits non-zero on the first failed check.
"""

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

SECRET = "deploy-test-hs256-secret-0123456789abcdef"
HOST = "127.0.0.1"
PG_BIN = None  # set in main()
KEEP = []  # processes to stop at the end
NETNS = []  # namespaces made
FIGURES = []  # (fault, failed requests, recovery seconds, note)
THREAD_ERRORS = []  # what a load thread failed on


def log(msg):
    print(f"[deploy {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def fail(msg):
    log(f"FAILED: {msg}")
    if threading.current_thread() is not threading.main_thread():
        THREAD_ERRORS.append(msg)
    raise SystemExit(1)


def no_thread_failed():
    if THREAD_ERRORS:
        fail(f"a load thread failed: {THREAD_ERRORS[0]}")


def check(cond, msg):
    if not cond:
        fail(msg)


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def run(cmd, check_rc=True, user=None, timeout=120, env=None):
    if user and os.geteuid() == 0:
        cmd = ["runuser", "-u", user, "--"] + cmd
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if check_rc and r.returncode != 0:
        fail(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.strip()[-800:]}")
    return r


def spawn(cmd, logfile, env=None, user=None, netns=None, seconds=900):
    """A background process that stops by itself after `seconds`."""
    full = ["timeout", "-s", "TERM", str(seconds)] + cmd
    if user and os.geteuid() == 0:
        full = ["runuser", "-u", user, "--"] + full
    if netns:
        full = ["ip", "netns", "exec", netns] + full
    out = open(logfile, "ab")
    p = subprocess.Popen(full, stdout=out, stderr=subprocess.STDOUT, env=env,
                         start_new_session=True)
    KEEP.append(p)
    return p


def stop(p, sig=signal.SIGTERM):
    try:
        os.killpg(p.pid, sig)
    except ProcessLookupError:
        pass
    try:
        p.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=5)


# --------------------------------------------------------------------------
# HTTP


class Resp:
    def __init__(self, status, body=b"", ms=0.0):
        self.status = status
        self.body = body
        self.ms = ms

    def json(self):
        return json.loads(self.body)


def request(host, port, method, path, token=None, body=None, timeout=30):
    h = {}
    if token:
        h["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    t0 = time.monotonic()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        return Resp(r.status, r.read(), (time.monotonic() - t0) * 1000)
    except (OSError, http.client.HTTPException) as e:
        return Resp(type(e).__name__, b"", (time.monotonic() - t0) * 1000)
    finally:
        conn.close()


def wait_for(what, cond, seconds):
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        if cond():
            return time.monotonic() - t0
        time.sleep(0.1)
    fail(f"{what}: not within {seconds} s")


# --------------------------------------------------------------------------
# PostgreSQL primary, read replica, PgBouncer


class Cluster:
    def __init__(self, root, name, port, listen):
        self.dir = os.path.join(root, name)
        self.port = port
        self.listen = listen
        self.log = os.path.join(root, f"{name}.log")

    def conf(self, extra=""):
        with open(os.path.join(self.dir, "postgresql.auto.conf"), "a") as f:
            f.write(f"\nport = {self.port}\nlisten_addresses = '{self.listen}'\n"
                    f"unix_socket_directories = '{os.path.dirname(self.dir)}'\n"
                    "shared_buffers = 32MB\nmax_connections = 120\n"
                    "hot_standby = on\nmax_wal_senders = 5\nwal_level = replica\n"
                    f"{extra}")

    def start(self):
        run([f"{PG_BIN}/pg_ctl", "-D", self.dir, "-l", self.log, "-w", "-t", "60", "start"],
            user="postgres")

    def stop(self, mode="fast"):
        run([f"{PG_BIN}/pg_ctl", "-D", self.dir, "-m", mode, "-w", "-t", "60", "stop"],
            user="postgres", check_rc=False)

    def sql(self, sql, db="postgres"):
        r = run(["psql", "-h", HOST, "-p", str(self.port), "-U", "postgres", "-d", db,
                 "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql])
        return r.stdout.strip()


def make_databases(root, listen):
    primary = Cluster(root, "primary", free_port(), listen)
    run([f"{PG_BIN}/initdb", "-D", primary.dir, "-U", "postgres", "--auth=trust",
         "-E", "UTF8", "--locale=C"], user="postgres")
    with open(os.path.join(primary.dir, "pg_hba.conf"), "a") as f:
        f.write("host all all 10.78.0.0/16 trust\nhost replication all 10.78.0.0/16 trust\n")
    primary.conf()
    primary.start()
    replica = Cluster(root, "replica", free_port(), listen)
    run([f"{PG_BIN}/pg_basebackup", "-h", HOST, "-p", str(primary.port), "-U", "postgres",
         "-D", replica.dir, "-R", "-X", "stream", "-c", "fast"], user="postgres")
    replica.conf()
    replica.start()
    check(replica.sql("SELECT pg_is_in_recovery()") == "t", "the replica is not in recovery")
    primary.sql("CREATE DATABASE babysync")
    return primary, replica


def start_pgbouncer(root, primary, listen):
    port = free_port()
    ini = os.path.join(root, "pgbouncer.ini")
    users = os.path.join(root, "userlist.txt")
    with open(users, "w") as f:
        f.write('"postgres" ""\n')
    with open(ini, "w") as f:
        f.write(f"""[databases]
babysync = host={HOST} port={primary.port} dbname=babysync

[pgbouncer]
listen_addr = {listen}
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {users}
pool_mode = transaction
; PgBouncer 1.18 passes prepared statements through as they are: babysync
; (DATABASE_DIRECT_URL set) keeps none past a transaction, and this drops
; what a transaction left on its server connection.
server_reset_query = DEALLOCATE ALL
server_reset_query_always = 1
ignore_startup_parameters = extra_float_digits
max_client_conn = 500
default_pool_size = 20
server_connect_timeout = 3
server_login_retry = 1
query_wait_timeout = 10
logfile = {root}/pgbouncer.log
pidfile = {root}/pgbouncer.pid
""")
    os.chmod(root, 0o777)
    for p in (ini, users):
        os.chmod(p, 0o644)
    proc = spawn(["pgbouncer", ini], os.path.join(root, "pgbouncer.out"), user="postgres")
    wait_for("pgbouncer listening", lambda: port_open(HOST, port), 15)
    return proc, port, ini


def port_open(host, port):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------
# Network namespaces


def netns_available():
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return "not root or no `ip`"
    r = subprocess.run(["ip", "netns", "add", "bsdeploy-probe"], capture_output=True, text=True)
    if r.returncode != 0:
        return r.stderr.strip()
    subprocess.run(["ip", "netns", "del", "bsdeploy-probe"], capture_output=True)
    if shutil.which("iptables") is None:
        return "no iptables"
    return None


def make_netns(i):
    """Namespace bsdeploy-i: the replica at 10.78.i.2, the host at 10.78.i.1."""
    ns = f"bsdeploy-{i}"
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    subprocess.run(["ip", "link", "del", f"bsd{i}h"], capture_output=True)
    for cmd in (
        ["ip", "netns", "add", ns],
        ["ip", "link", "add", f"bsd{i}h", "type", "veth", "peer", "name", f"bsd{i}n"],
        ["ip", "link", "set", f"bsd{i}n", "netns", ns],
        ["ip", "addr", "add", f"10.78.{i}.1/24", "dev", f"bsd{i}h"],
        ["ip", "link", "set", f"bsd{i}h", "up"],
        ["ip", "netns", "exec", ns, "ip", "addr", "add", f"10.78.{i}.2/24", "dev", f"bsd{i}n"],
        ["ip", "netns", "exec", ns, "ip", "link", "set", f"bsd{i}n", "up"],
        ["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"],
    ):
        run(cmd)
    NETNS.append(i)
    return ns


def drop_netns():
    for i in NETNS:
        subprocess.run(["ip", "netns", "del", f"bsdeploy-{i}"], capture_output=True)
        subprocess.run(["ip", "link", "del", f"bsd{i}h"], capture_output=True)


# --------------------------------------------------------------------------
# babysync replicas and the load balancer


class Replica:
    def __init__(self, binary, root, i, urls, ns):
        self.binary = binary
        self.i = i
        self.ns = ns
        self.host = f"10.78.{i}.2" if ns else HOST
        self.port = free_port()
        db_host = f"10.78.{i}.1" if ns else HOST
        self.env = dict(os.environ)
        self.env.update({
            "DATABASE_URL": f"postgres://postgres@{db_host}:{urls['bouncer']}/babysync",
            "DATABASE_DIRECT_URL": f"postgres://postgres@{db_host}:{urls['primary']}/babysync",
            "DATABASE_READ_URL": f"postgres://postgres@{db_host}:{urls['replica']}/babysync",
            "MIGRATE_ON_START": "false",
            "JWT_SECRET": SECRET,
            "BIND_ADDR": f"{self.host}:{self.port}",
            "RATE_LIMIT_PER_SEC": "0",
            "DB_MAX_CONNECTIONS": "8",
            "DB_CONNECT_TIMEOUT_SECS": "30",
            "REQUEST_TIMEOUT_SECS": "5",
            "LOG_FORMAT": "json",
            "RUST_LOG": "warn",
        })
        self.log = os.path.join(root, f"babysync-{i}.log")
        self.proc = None

    def start(self):
        self.proc = spawn([self.binary, "serve"], self.log, env=self.env, netns=self.ns)

    def ready(self):
        return request(self.host, self.port, "GET", "/health/ready", timeout=2).status == 200

    def metric(self, name, labels):
        for _ in range(20):
            r = request(self.host, self.port, "GET", "/metrics", timeout=5)
            if r.status == 200:
                break
            time.sleep(0.25)
        else:
            fail(f"replica {self.i}: /metrics answered {r.status}")
        total = 0.0
        for line in r.body.decode().splitlines():
            if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total


def pull_reads(replicas, on):
    """Pulls read `on` the primary or the replica, over every server."""
    return sum(r.metric("babysync_reads_total", {"route": "pull", "on": on}) for r in replicas)


def start_haproxy(root, replicas):
    port = free_port()
    cfg = os.path.join(root, "haproxy.cfg")
    servers = "\n".join(
        f"    server r{r.i} {r.host}:{r.port} check inter 300ms fall 2 rise 1"
        for r in replicas)
    with open(cfg, "w") as f:
        f.write(f"""global
    maxconn 2000

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    # A request that could not be sent (the replica is gone) goes to another.
    retries 3
    retry-on conn-failure empty-response
    option redispatch

frontend api
    bind {HOST}:{port}
    default_backend babysync

backend babysync
    balance roundrobin
    option httpchk GET /health/ready
    http-check expect status 200
{servers}
""")
    run(["haproxy", "-c", "-f", cfg])
    proc = spawn(["haproxy", "-db", "-f", cfg], os.path.join(root, "haproxy.log"))
    wait_for("haproxy listening", lambda: port_open(HOST, port), 15)
    return proc, port


# --------------------------------------------------------------------------
# Load: pushers and pullers through the load balancer


class Family:
    """One user, one baby, a pushing device and a pulling device."""

    def __init__(self, lb, token, n):
        self.lb = lb
        self.token = token
        self.n = n
        self.baby = None
        self.push_client = str(uuid.uuid4())
        self.pull_client = str(uuid.uuid4())
        self.next_id = 1
        self.acked = set()  # entry ids of pushes answered 200
        self.failed_pushes = []  # (time, status)
        self.failed_pulls = []
        self.ok_pushes = []  # times
        self.retried_results = []  # statuses of retried batches
        self.replayed_by_lb = 0  # first answers with duplicates (the balancer retried)
        self.seen = {}  # puller: entry id -> version
        self.max_version = 0
        self.own_checks = 0
        self.cursor = None
        self.lock = threading.Lock()

    def call(self, method, path, body=None, timeout=30):
        return request(HOST, self.lb, method, path, self.token, body, timeout)

    def create_baby(self):
        r = self.call("POST", "/api/babies", {"name": f"Baby {self.n}"})
        check(r.status in (200, 201), f"create baby: {r.status} {r.body[:200]}")
        self.baby = r.json()["id"]

    def batch(self, size=10):
        muts = []
        for _ in range(size):
            eid = str(uuid.uuid4())
            muts.append({"id": self.next_id, "entity": "nappy_log", "op": "create",
                         "data": {"id": eid, "babyId": self.baby, "type": "wee",
                                  "startedAt": "2026-12-01T03:00:00Z"}})
            self.next_id += 1
        return muts

    def push_until_acked(self, muts, deadline):
        body = {"protocolVersion": 1, "clientId": self.push_client, "mutations": muts}
        tries = 0
        while True:
            r = self.call("POST", "/api/sync/push", body, timeout=15)
            tries += 1
            if r.status == 200:
                ans = r.json()
                statuses = [x["status"] for x in ans["results"]]
                if tries > 1:
                    self.retried_results.extend(statuses)
                elif "duplicate" in statuses:
                    # HAProxy replayed it (retry-on empty-response): the
                    # server it first went to committed it and died before
                    # answering. Exactly once all the same.
                    self.replayed_by_lb += 1
                check(all(s in ("applied", "duplicate") for s in statuses),
                      f"push results {statuses}")
                with self.lock:
                    self.acked.update(m["data"]["id"] for m in muts)
                    self.ok_pushes.append(time.monotonic())
                return ans["lastMutationId"]
            self.failed_pushes.append((time.monotonic(), r.status))
            if time.monotonic() > deadline:
                fail(f"family {self.n}: a push not answered 200 in time (last {r.status})")
            time.sleep(0.2)

    def pull_page(self, client, cursor):
        return self.call("POST", "/api/sync/pull",
                         {"protocolVersion": 1, "clientId": client, "cursor": cursor,
                          "limit": 500}, timeout=15)

    def pusher(self, stop_evt):
        while not stop_evt.is_set():
            muts = self.batch()
            last = self.push_until_acked(muts, time.monotonic() + 120)
            # The same device pulls: it must see its own push at once.
            r = self.pull_page(self.push_client, None)
            if r.status == 200:
                got = r.json()["lastMutationId"]
                check(got >= last, f"family {self.n}: pulled lastMutationId {got} after push acknowledged {last}")
                self.own_checks += 1
            time.sleep(0.05)

    def pull_once(self):
        """One pull of the puller's chain; checks that versions only go up."""
        r = self.pull_page(self.pull_client, self.cursor)
        if r.status != 200:
            self.failed_pulls.append((time.monotonic(), r.status))
            return None
        page = r.json()
        check(self.baby not in page["revokedBabyIds"], f"family {self.n}: own baby revoked")
        versions = []
        for kind in page["changes"].values():
            for e in kind:
                if e["babyId"] != self.baby:
                    continue
                check(e["id"] not in self.seen, f"family {self.n}: entry {e['id']} pulled twice")
                self.seen[e["id"]] = e["version"]
                versions.append(e["version"])
        if versions:
            check(min(versions) > self.max_version,
                  f"family {self.n}: a pull went back: version {min(versions)} after {self.max_version}")
            self.max_version = max(versions)
        self.cursor = page["cursor"]
        return page

    def puller(self, stop_evt):
        while not stop_evt.is_set():
            self.pull_once()
            time.sleep(0.1)

    def drain(self):
        for _ in range(200):
            page = self.pull_once()
            if page is not None and not page["hasMore"]:
                return
            time.sleep(0.1)
        fail(f"family {self.n}: could not pull to the end")


def failures_between(families, t0, t1):
    n = 0
    for f in families:
        n += sum(1 for t, _ in f.failed_pushes if t0 <= t <= t1)
        n += sum(1 for t, _ in f.failed_pulls if t0 <= t <= t1)
    return n


def first_ok_push_after(families, t):
    times = [x for f in families for x in f.ok_pushes if x > t]
    return min(times) if times else None


def recover_time(families, t_fault, settle=60):
    """Seconds from the fault until every family has pushed again."""
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline:
        lasts = [max([x for x in f.ok_pushes if x > t_fault], default=None) for f in families]
        if all(x is not None for x in lasts):
            firsts = [min(x for x in f.ok_pushes if x > t_fault) for f in families]
            return max(firsts) - t_fault
        time.sleep(0.2)
    fail("pushes did not resume within 60 s of a fault")


# --------------------------------------------------------------------------
# Live updates across replicas


def poke_crosses_replicas(listen_on, push_via, token, family):
    """A stream on one replica is poked by a push through another."""
    conn = http.client.HTTPConnection(listen_on.host, listen_on.port, timeout=10)
    conn.request("GET", "/api/sync/events", headers={"Authorization": f"Bearer {token}"})
    resp = conn.getresponse()
    check(resp.status == 200, f"events stream: {resp.status}")
    buf = b""
    got = threading.Event()
    ready = threading.Event()

    def reader():
        nonlocal buf
        try:
            while not got.is_set():
                line = resp.fp.readline()
                if not line:
                    return
                buf += line
                if b"event: ready" in buf:
                    ready.set()
                if b"event: poke" in buf and family.baby.encode() in buf:
                    got.set()
        except OSError:
            return

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    check(ready.wait(10), "events stream: no ready event")
    # A client of its own: the family's pusher may be running.
    eid = str(uuid.uuid4())
    muts = [{"id": 1, "entity": "nappy_log", "op": "create",
             "data": {"id": eid, "babyId": family.baby, "type": "mixed",
                      "startedAt": "2026-12-01T05:00:00Z"}}]
    body = {"protocolVersion": 1, "clientId": str(uuid.uuid4()), "mutations": muts}
    t0 = time.monotonic()
    r = request(push_via.host, push_via.port, "POST", "/api/sync/push", token, body)
    check(r.status == 200, f"push for the poke: {r.status} {r.body[:200]}")
    with family.lock:
        family.acked.update(m["data"]["id"] for m in muts)
    check(got.wait(5), f"no poke on replica {listen_on.i} for a push through replica {push_via.i}")
    ms = (time.monotonic() - t0) * 1000
    conn.close()
    return ms


# --------------------------------------------------------------------------


def main():
    global PG_BIN
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    binary = os.path.abspath(sys.argv[1])
    for tool in ("pgbouncer", "haproxy", "pg_basebackup", "psql", "timeout"):
        if shutil.which(tool) is None:
            fail(f"`{tool}` is not installed (apt-get install pgbouncer haproxy postgresql)")
    versions = sorted(os.listdir("/usr/lib/postgresql"))
    PG_BIN = f"/usr/lib/postgresql/{versions[-1]}/bin"

    root = tempfile.mkdtemp(prefix="babysync-deploy-")
    os.chmod(root, 0o777)
    why_not = netns_available()
    if why_not:
        log(f"SKIP network faults: no network namespaces here ({why_not}); replicas run on {HOST}")
    namespaces = []
    if not why_not:
        namespaces = [make_netns(i) for i in (1, 2, 3)]
    listen = ",".join([HOST] + [f"10.78.{i}.1" for i in (1, 2, 3) if namespaces])
    try:
        scenario(binary, root, listen, namespaces)
    finally:
        for p in reversed(KEEP):
            stop(p)
        for name in ("replica", "primary"):
            d = os.path.join(root, name)
            if os.path.isdir(d):
                run([f"{PG_BIN}/pg_ctl", "-D", d, "-m", "immediate", "-w", "stop"],
                    user="postgres", check_rc=False)
        drop_netns()
        if os.environ.get("KEEP_DEPLOY_DIR"):
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def scenario(binary, root, listen, namespaces):
    primary, replica_db = make_databases(root, listen)
    log(f"primary :{primary.port}, read replica :{replica_db.port}")
    bouncer, bouncer_port, bouncer_ini = start_pgbouncer(root, primary, listen)
    log(f"pgbouncer :{bouncer_port} (transaction mode)")

    env = dict(os.environ)
    env.update({"DATABASE_URL": f"postgres://postgres@{HOST}:{primary.port}/babysync",
                "JWT_SECRET": SECRET})
    out = run(["timeout", "120", binary, "migrate", "up"], env=env)
    log(f"migrate job: {out.stdout.strip()}")

    urls = {"bouncer": bouncer_port, "primary": primary.port, "replica": replica_db.port}
    replicas = [Replica(binary, root, i, urls, namespaces[i - 1] if namespaces else None)
                for i in (1, 2, 3)]
    for r in replicas:
        r.start()
    for r in replicas:
        wait_for(f"babysync replica {r.i} ready", r.ready, 60)
    lb_proc, lb = start_haproxy(root, replicas)
    wait_for("the load balancer answering", lambda: request(HOST, lb, "GET", "/health/ready").status == 200, 15)
    log(f"3 babysync replicas behind haproxy :{lb}")

    def token(sub):
        return run([binary, "token", "--sub", sub, "--ttl", "2h"], env=env).stdout.strip()

    families = []
    for n in range(4):
        f = Family(lb, token(f"parent-{n}"), n)
        f.create_baby()
        families.append(f)

    # Live updates cross replicas: a stream on replica 1, a push through 2.
    poke_ms = poke_crosses_replicas(replicas[0], replicas[1], families[0].token, families[0])
    log(f"poke across replicas: {poke_ms:.0f} ms")

    stop_evt = threading.Event()
    threads = []
    for f in families:
        for target in (f.pusher, f.puller):
            t = threading.Thread(target=target, args=(stop_evt,), daemon=True)
            t.start()
            threads.append(t)
    time.sleep(1)
    steady = {on: pull_reads(replicas, on) for on in ("replica", "primary")}
    time.sleep(4)
    for on in steady:
        steady[on] = pull_reads(replicas, on) - steady[on]
    log(f"steady load, 4 s: pulls read on the replica {steady['replica']:.0f}, on the primary {steady['primary']:.0f}")
    check(steady["replica"] >= 20 and steady["replica"] >= 2 * steady["primary"],
          "under steady load, most pulls should be read on the replica")

    no_thread_failed()
    # 1. SIGKILL a babysync replica, start it again.
    victim = replicas[1]
    t0 = time.monotonic()
    stop(victim.proc, signal.SIGKILL)
    time.sleep(2)
    victim.start()
    back = wait_for("the killed replica ready again", victim.ready, 60)
    t1 = time.monotonic()
    time.sleep(2)
    FIGURES.append(("SIGKILL one babysync replica, start it again",
                    failures_between(families, t0, time.monotonic()),
                    recover_time(families, t0), f"ready {back + 2:.1f} s after the kill"))
    check(failures_between(families, t0, t1) <= 8,
          "killing one replica of three failed more than a few requests")

    no_thread_failed()
    # 2. Restart PgBouncer.
    t0 = time.monotonic()
    stop(bouncer)
    KEEP.remove(bouncer)
    bouncer = spawn(["pgbouncer", bouncer_ini], os.path.join(root, "pgbouncer.out"), user="postgres")
    wait_for("pgbouncer back", lambda: port_open(HOST, bouncer_port), 15)
    rec = recover_time(families, t0)
    time.sleep(2)
    FIGURES.append(("restart PgBouncer", failures_between(families, t0, time.monotonic()), rec, ""))

    no_thread_failed()
    # 3. Restart the primary.
    t0 = time.monotonic()
    primary.stop("fast")
    primary.start()
    rec = recover_time(families, t0)
    time.sleep(2)
    FIGURES.append(("restart the PostgreSQL primary", failures_between(families, t0, time.monotonic()), rec, ""))
    # The listener came back too: a poke still crosses replicas.
    poke_ms = poke_crosses_replicas(replicas[2], replicas[0], families[0].token, families[0])
    log(f"poke across replicas after the primary's restart: {poke_ms:.0f} ms")

    # 4. Network faults between replica 3 and the database.
    if namespaces:
        network_faults(replicas[2], families, urls)

    time.sleep(1)
    stop_evt.set()
    for t in threads:
        t.join(timeout=180)
        check(not t.is_alive(), "a load thread did not finish")
    no_thread_failed()

    # Every acknowledged push stored once, every puller saw every write.
    for f in families:
        f.drain()
        check(set(f.seen) >= f.acked,
              f"family {f.n}: {len(f.acked - set(f.seen))} acknowledged entries never pulled")
        fresh = Family(lb, f.token, f.n)
        fresh.baby = f.baby
        fresh.drain()
        check(set(fresh.seen) == f.acked,
              f"family {f.n}: stored {len(fresh.seen)} entries, acknowledged {len(f.acked)}")
        check(f.own_checks > 0, f"family {f.n}: never checked its own pushes in a pull")
    stored = sum(int(primary.sql(f"SELECT count(*) FROM nappy_log WHERE baby_id = '{f.baby}'", "babysync"))
                 for f in families)
    acked = sum(len(f.acked) for f in families)
    check(stored == acked, f"{stored} rows stored, {acked} entries acknowledged")
    retried = [s for f in families for s in f.retried_results]
    replayed = sum(f.replayed_by_lb for f in families)
    log(f"{acked} entries acknowledged and stored once; {len(retried)} results of retried pushes: "
        f"{sum(s == 'duplicate' for s in retried)} duplicate, {sum(s == 'applied' for s in retried)} applied; "
        f"{replayed} pushes replayed by HAProxy came back duplicate")

    on_replica = pull_reads(replicas, "replica")
    on_primary = pull_reads(replicas, "primary")
    log(f"pulls read on the replica: {on_replica:.0f}, on the primary: {on_primary:.0f}")
    check(on_replica > 0, "no pull was read on the read replica")

    lagging_replica(replica_db, primary, replicas, families[1])

    print("\nfault | requests failed | recovered in | note")
    print("---|---|---|---")
    for name, failed, rec, note in FIGURES:
        rec_s = f"{rec:.1f} s" if isinstance(rec, float) else rec
        print(f"{name} | {failed} | {rec_s} | {note}")
    print(f"\nacknowledged entries {acked}, stored {stored}; pulls on the replica {on_replica:.0f}, "
          f"on the primary {on_primary:.0f} (steady load before the faults, 4 s: "
          f"{steady['replica']:.0f} and {steady['primary']:.0f})")
    log("deployment test passed")


def lagging_replica(replica_db, primary, replicas, family):
    """Replay paused: pulls still see every write (read on the primary)."""
    replica_db.sql("SELECT pg_wal_replay_pause()")
    try:
        before = pull_reads(replicas, "primary")
        before_replica = pull_reads(replicas, "replica")
        muts = family.batch(5)
        last = family.push_until_acked(muts, time.monotonic() + 30)
        t0 = time.monotonic()
        page = family.pull_once()
        ms = (time.monotonic() - t0) * 1000
        check(page is not None, "a pull failed while the replica lagged")
        for m in muts:
            check(m["data"]["id"] in family.seen, "a write missing from a pull while the replica lagged")
        r = family.pull_page(family.push_client, None)
        check(r.status == 200 and r.json()["lastMutationId"] >= last,
              "lastMutationId behind while the replica lagged")
        check(pull_reads(replicas, "primary") >= before + 2, "the pulls were not read on the primary")
        check(pull_reads(replicas, "replica") == before_replica, "the lagging replica was read from")
        lag = replica_db.sql("SELECT pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())")
        log(f"replay paused ({lag} bytes behind): the pull saw the new writes, read on the primary, in {ms:.0f} ms")
        FIGURES.append(("read replica replay paused", 0, "—",
                        f"pulls read on the primary; one took {ms:.0f} ms"))
    finally:
        replica_db.sql("SELECT pg_wal_replay_resume()")
    before = pull_reads(replicas, "replica")
    target = primary.sql("SELECT pg_current_wal_flush_lsn()")
    wait_for("the replica catching up", lambda: replica_db.sql(
        f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn") == "t", 30)
    # The servers leave a lagging replica alone for 1 s, then try it again.
    def back_on_replica():
        family.pull_once()
        return pull_reads(replicas, "replica") > before
    wait_for("reads back on the replica after it caught up", back_on_replica, 20)


def network_faults(victim, families, urls):
    ns = victim.ns
    dev = f"bsd{victim.i}n"
    db = f"10.78.{victim.i}.1"
    ports = ",".join(str(p) for p in (urls["bouncer"], urls["primary"], urls["replica"]))
    token = families[2].token

    def direct_push():
        f = families[2]
        # A fresh client each time: these pushes do not disturb the family's own.
        body = {"protocolVersion": 1, "clientId": str(uuid.uuid4()),
                "mutations": [{"id": 1, "entity": "nappy_log", "op": "create",
                               "data": {"id": str(uuid.uuid4()), "babyId": f.baby, "type": "poo",
                                        "startedAt": "2026-12-01T04:00:00Z"}}]}
        r = request(victim.host, victim.port, "POST", "/api/sync/push", token, body, timeout=30)
        if r.status == 200:
            with f.lock:
                f.acked.add(body["mutations"][0]["data"]["id"])
        return r

    # Latency (needs the kernel's netem).
    r = subprocess.run(["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "root",
                        "netem", "delay", "40ms"], capture_output=True, text=True)
    if r.returncode != 0:
        log(f"SKIP latency: tc netem is not available here ({r.stderr.strip()})")
        FIGURES.append(("40 ms latency, replica to database", "skipped", "—", "no sch_netem in this kernel"))
    else:
        t0 = time.monotonic()
        results = [direct_push() for _ in range(10)]
        subprocess.run(["ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", dev, "root"])
        bad = [x.status for x in results if x.status != 200]
        check(not bad, f"pushes with 40 ms latency failed: {bad}")
        FIGURES.append(("40 ms latency, replica to database", 0, "—",
                        f"10 pushes, median {sorted(x.ms for x in results)[5]:.0f} ms"))
        log(f"latency: 10 pushes in {time.monotonic() - t0:.1f} s")

    # Loss: 10 % of the replica's packets to the database dropped.
    rule = ["-p", "tcp", "-d", db, "-m", "multiport", "--dports", ports,
            "-m", "statistic", "--mode", "random", "--probability", "0.1", "-j", "DROP"]
    run(["ip", "netns", "exec", ns, "iptables", "-A", "OUTPUT"] + rule)
    t0 = time.monotonic()
    results = [direct_push() for _ in range(10)]
    run(["ip", "netns", "exec", ns, "iptables", "-D", "OUTPUT"] + rule)
    statuses = [x.status for x in results]
    check(all(s in (200, 503) for s in statuses), f"pushes under 10 % loss: {statuses}")
    FIGURES.append(("10 % packet loss, replica to database", sum(s != 200 for s in statuses), "—",
                    f"10 direct pushes in {time.monotonic() - t0:.1f} s, slowest {max(x.ms for x in results):.0f} ms"))

    # Partition: nothing from the replica reaches the database.
    rule = ["-p", "tcp", "-d", db, "-m", "multiport", "--dports", ports, "-j", "DROP"]
    run(["ip", "netns", "exec", ns, "iptables", "-A", "OUTPUT"] + rule)
    t0 = time.monotonic()
    during = [direct_push() for _ in range(3)]
    for x in during:
        check(x.status == 503, f"a push during the partition answered {x.status}, not 503")
        check(x.ms < 5000 + 2000, f"a push during the partition took {x.ms:.0f} ms")
        check(json.loads(x.body)["error"]["code"] == "unavailable", f"partition error {x.body[:200]}")
    wait_for("the partitioned replica reporting not ready", lambda: not victim.ready(), 15)
    time.sleep(2)
    failed_lb = failures_between(families, t0, time.monotonic())
    run(["ip", "netns", "exec", ns, "iptables", "-D", "OUTPUT"] + rule)
    t_heal = time.monotonic()
    back = wait_for("the replica recovering after the partition", lambda: direct_push().status == 200, 60)
    FIGURES.append(("partition between one replica and the database", failed_lb, back,
                    f"direct requests to it: 503 in {max(x.ms for x in during) / 1000:.1f} s at most; "
                    "requests through the load balancer"))
    log(f"partition: direct pushes 503 in ≤ {max(x.ms for x in during):.0f} ms; recovered "
        f"{time.monotonic() - t_heal:.1f} s after healing")


if __name__ == "__main__":
    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    main()
