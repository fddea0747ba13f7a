#!/usr/bin/env python3
"""Sums an `ncu --csv` kernel log (gpu__time_duration.sum, dram__bytes_read.sum) per kernel name
over the last STEPS decode steps (steps split at each output-matrix or argmax kernel is too
fragile; instead the log's last STEPS fraction of launches after the prompt is used: the caller
runs N decode steps and the kernels after the prompt's are divided by N).
usage: ncu_summary.py LOG.csv STEPS"""
import csv
import collections
import sys


def main():
    path, steps = sys.argv[1], int(sys.argv[2])
    rows = collections.OrderedDict()
    with open(path, newline="", errors="replace") as f:
        lines = [l for l in f if l.startswith('"')]
    for r in csv.DictReader(lines):
        k = (r["ID"], r["Kernel Name"])
        v = float(r["Metric Value"].replace(",", ""))
        unit = r["Metric Unit"]
        if unit in ("nsecond", "ns"):
            v /= 1000.0
        elif unit in ("msecond", "ms"):
            v *= 1000.0
        elif unit in ("Kbyte", "KB"):
            v *= 1e3
        elif unit in ("Mbyte", "MB"):
            v *= 1e6
        elif unit in ("Gbyte", "GB"):
            v *= 1e9
        rows.setdefault(k, {})[r["Metric Name"]] = v
    kernels = list(rows.items())
    # A decode step's kernels repeat with the same sequence of names: find the period from the
    # end (the last name's previous occurrence spacing that repeats STEPS - 1 times).
    names = [k[1] for k, _ in kernels]
    n = len(names)
    period = None
    for p in range(50, n // max(steps - 1, 1) + 1):
        if all(names[n - 1 - i] == names[n - 1 - i - p] for i in range(p * (steps - 2))):
            period = p
            break
    if period is None:
        print("no repeating decode step found")
        return
    step = kernels[n - period:]
    agg = collections.OrderedDict()
    for (_, name), m in step:
        short = name.split("(")[0][:60]
        a = agg.setdefault(short, [0, 0.0, 0.0])
        a[0] += 1
        a[1] += m.get("gpu__time_duration.sum", 0.0)
        a[2] += m.get("dram__bytes_read.sum", 0.0)
    total_t = sum(a[1] for a in agg.values())
    total_b = sum(a[2] for a in agg.values())
    print(f"one decode step: {period} kernels, {total_t:.1f} us of kernel time (serialized), "
          f"{total_b / 1e6:.1f} MB read from DRAM, {total_b / total_t / 1e6:.2f} TB/s")
    print(f"{'kernel':60s} {'n':>4s} {'us':>8s} {'us/call':>8s} {'MB':>8s} {'TB/s':>6s}")
    for name, (c, t, b) in sorted(agg.items(), key=lambda kv: -kv[1][1]):
        print(f"{name:60s} {c:4d} {t:8.1f} {t / c:8.2f} {b / 1e6:8.1f} {b / t / 1e6 if t else 0:6.2f}")


main()
