#!/usr/bin/env python3
"""Samples /proc while a benchmark phase runs: CPU seconds of the server, of
PostgreSQL (every process named postgres, including backends that come and
go) and of the load generator, and the server's peak RSS.

    procstat.py OUT.json SERVER_PID [GENERATOR_PID [MARK_FILE]]

Runs until SIGTERM/SIGINT; if MARK_FILE appears first, the figures are those
of that moment (the load generator creates it when its measured load ends).
"""
import json
import os
import signal
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def cpu_of(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime
    except (OSError, IndexError, ValueError):
        return None


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def hwm_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main():
    out, server = sys.argv[1], int(sys.argv[2])
    generator = int(sys.argv[3]) if len(sys.argv) > 3 else None
    mark = sys.argv[4] if len(sys.argv) > 4 else None
    first, last = {}, {}  # pid -> cpu seconds, for postgres processes
    start = {"server": cpu_of(server) or 0.0, "generator": (cpu_of(generator) or 0.0) if generator else 0.0}
    end = dict(start)
    peak = 0
    stop = False
    first_pass = True

    def finish(*_):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGINT, finish)
    while True:
        for name in os.listdir("/proc"):
            if name.isdigit() and comm(name) == "postgres":
                c = cpu_of(name)
                if c is not None:
                    # Processes there at the start count from now; later ones from zero.
                    first.setdefault(name, c if first_pass else 0.0)
                    last[name] = c
        first_pass = False
        c = cpu_of(server)
        if c is not None:
            end["server"] = c
            peak = max(peak, hwm_kib(server))
        if generator:
            c = cpu_of(generator)
            if c is not None:
                end["generator"] = c
        if stop or (mark and os.path.exists(mark)):
            break
        time.sleep(0.2)
    result = {
        "server_cpu_secs": round(end["server"] - start["server"], 2),
        "database_cpu_secs": round(sum(last[p] - first[p] for p in last), 2),
        "generator_cpu_secs": round(end["generator"] - start["generator"], 2),
        "server_peak_rss_mib": round(peak / 1024, 1),
    }
    with open(out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
