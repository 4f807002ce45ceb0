#!/usr/bin/env python3
"""tests/bench/bench_limits.py — `scripts/bench limits`: the machine's
ceilings, measured in the same run as fedq and RabbitMQ (bench_limits.c
does the measuring). A benchmark, not a test: it reports figures.

- raw ZeroMQ PUSH -> PULL over tcp loopback at each size: the ceiling of
  any link on ZeroMQ (no disk, no acknowledgements);
- append + fdatasync on the disk where the nodes keep their data
  (FEDQ_BENCH_DIR / --dir, default $TMPDIR): syncs/s and the latency of
  one fdatasync, p50 / p99 / max. A durable confirmed hop waits for a sync
  at the source (publish confirm) and one at the destination (the
  shovel's confirm) in series: 2 x the sync p50 / p99 bound the end-to-end
  latency of a durable link from below;
- a bare durable confirmed link (two processes, DEALER -> ROUTER, one
  write + fdatasync per batch, cumulative confirms, 8 batches in flight)
  at batches of 64 and 1024: the ceiling of the shovel and the federation
  drains at that size.

usage: bench_limits.py [--quick] [--sizes 100,1024,16384] [--repeat R]
                       [--dir DIR] [--out DIR]
Output: a markdown table on stdout, a CSV under bench-results/, and, in a
`scripts/bench all` run, the ceilings for the combined report.
"""

import argparse
import csv
import os
import signal
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import harness  # noqa: E402
from benchlib import emit, fmt, kv, load_average, med  # noqa: E402

BATCHES = (64, 1024)
WINDOW = 8


def say(msg):
    sys.stderr.write("bench limits: %s\n" % msg)
    sys.stderr.flush()


def tool():
    return os.path.join(harness.build_dir(), "tests", "bench_limits")


def counts(size, quick):
    """(zmq N, link N) for a size: a second or so each."""
    zmq = {100: 1000000, 1024: 300000, 16384: 60000}.get(size, 100000)
    link = {100: 500000, 1024: 300000, 16384: 60000}.get(size, 100000)
    if quick:
        return zmq // 2, link // 2
    return zmq, link


def measure(*args):
    res = harness.run([tool()] + [str(a) for a in args], timeout_s=300)
    r = kv(res.stdout)
    if res.rc != 0 or r.get("ok") != "1":
        raise RuntimeError("bench_limits %s: %s %s" % (
            " ".join(map(str, args)), res.stdout.strip(),
            res.stderr.strip()))
    return {k: float(v) for k, v in r.items()
            if k not in ("ok", "what")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="half the counts, 1 run")
    ap.add_argument("--sizes", default=None,
                    help="default 100,1024,16384 (1024,16384 with --quick)")
    ap.add_argument("--repeat", type=int, default=None)
    ap.add_argument("--syncs", type=int, default=None,
                    help="fdatasyncs to time (default 3000; 1000 quick)")
    ap.add_argument("--dir", default=os.environ.get("FEDQ_BENCH_DIR"),
                    help="the disk the nodes use (default: $TMPDIR)")
    ap.add_argument("--out", default=os.path.join(harness.REPO,
                                                  "bench-results"))
    args = ap.parse_args()
    sizes = [int(s) for s in (args.sizes or (
        "1024,16384" if args.quick else "100,1024,16384")).split(",") if s]
    repeat = args.repeat or (1 if args.quick else 3)
    syncs = args.syncs or (1000 if args.quick else 3000)
    if not os.access(tool(), os.X_OK):
        say("no %s (build first: cmake --build %s)" % (
            tool(), harness.build_dir()))
        return 2
    data_dir = args.dir or tempfile.gettempdir()
    say("sizes %s, %d run(s), disk of %s, load average %s" % (
        sizes, repeat, data_dir, load_average()))
    results = {}        # (what, size, batch) -> [runs]
    notes = []

    def record(key, *cmd):
        try:
            results.setdefault(key, []).append(measure(*cmd))
            say("%s: %s" % (" ".join(map(str, key)), results[key][-1]))
        except Exception as e:  # noqa: BLE001 (a failed run is reported)
            notes.append("%s failed: %s" % (" ".join(map(str, key)), e))
            say(notes[-1])

    for _ in range(repeat):
        record(("fsync", 1024, 0), "fsync", data_dir, syncs, 1024)
        for size in sizes:
            zn, ln = counts(size, args.quick)
            record(("zmq", size, 0), "zmq", zn, size)
            for b in BATCHES:
                record(("link", size, b), "link", data_dir, ln, size, b,
                       WINDOW)

    def get(what, size, batch, key):
        return med(results.get((what, size, batch), []), key)

    lines = ["## Ceilings of this machine (same run)", ""]
    lines.append("%d run(s), medians; disk: the one holding %s; load "
                 "average %s." % (repeat, data_dir, load_average()))
    lines.append("")
    lines.append("| ceiling | size B | msg/s | MB/s |")
    lines.append("|---|---|---|---|")
    for size in sizes:
        lines.append("| raw ZeroMQ PUSH/PULL, tcp loopback | %d | %s | %s |"
                     % (size, fmt(get("zmq", size, 0, "msgs_per_s")),
                        fmt(get("zmq", size, 0, "MB_per_s"))))
        for b in BATCHES:
            lines.append("| durable confirmed link, batch %d | %d | %s | %s |"
                         % (b, size, fmt(get("link", size, b, "msgs_per_s")),
                            fmt(get("link", size, b, "MB_per_s"))))
    lines.append("")
    rate = get("fsync", 1024, 0, "syncs_per_s")
    p50 = get("fsync", 1024, 0, "sync_p50_ms")
    p99 = get("fsync", 1024, 0, "sync_p99_ms")
    mx = get("fsync", 1024, 0, "sync_max_ms")
    lines.append("append 1 KiB + fdatasync: %s syncs/s; one fdatasync p50 "
                 "%s ms, p99 %s ms, max %s ms: a durable link's end-to-end "
                 "latency (two syncs in series) is at least %s ms p50, %s ms "
                 "p99." % (fmt(rate), fmt(p50, "%.3f"), fmt(p99, "%.3f"),
                           fmt(mx, "%.2f"),
                           fmt(p50 and 2 * p50, "%.3f"),
                           fmt(p99 and 2 * p99, "%.3f")))
    for note in notes:
        lines.append("- " + note)
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)

    out = args.out
    os.makedirs(out, exist_ok=True)
    stem = os.path.join(out, "limits-%s%s" % (
        time.strftime("%Y%m%d-%H%M%S"), "-quick" if args.quick else ""))
    with open(stem + ".md", "w") as f:
        f.write(text)
    keys = ("msgs_per_s", "MB_per_s", "syncs_per_s", "sync_p50_ms",
            "sync_p99_ms", "sync_max_ms", "secs")
    with open(stem + ".csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["what", "size", "batch", "run"] + list(keys))
        for (what, size, batch), runs in sorted(results.items()):
            for i, r in enumerate(runs, 1):
                w.writerow([what, size, batch, i] + [
                    "" if r.get(k) is None else "%.4g" % r[k] for k in keys])
    print("csv: %s" % os.path.relpath(stem + ".csv", harness.REPO))

    for size in sizes:
        emit(out, part="limits", kind="ceiling", workload="raw ZeroMQ",
             size=size, unit="msg/s", value=get("zmq", size, 0,
                                                "msgs_per_s"))
        for b in BATCHES:
            emit(out, part="limits", kind="ceiling",
                 workload="durable link batch %d" % b, size=size,
                 unit="msg/s", value=get("link", size, b, "msgs_per_s"))
    emit(out, part="limits", kind="ceiling", workload="fdatasync",
         size=1024, unit="syncs/s", value=rate, p50=p50, p99=p99, max=mx)
    return 1 if notes else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    sys.exit(main())
