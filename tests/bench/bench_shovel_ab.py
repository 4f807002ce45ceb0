#!/usr/bin/env python3
"""tests/bench/bench_shovel_ab.py — the shovel's latency (and drain) of two
builds side by side, rounds alternated, for before/after comparisons on a
machine shared with other work. A benchmark, not a test: it reports
figures, it asserts no speed.

Each round runs, for each fsync policy, the latency workload of
bench_shovel.py (1 KiB at RATE msg/s for SECS s, publish at A, shovel to
B, consumer on B) with each build, the builds' order swapped every round
so that neither always runs first; with --drain N also the backlog drain
of N messages. Prints every run, then medians per build and policy.

usage: bench_shovel_ab.py BEFORE_BUILD AFTER_BUILD [--rounds R]
                          [--secs S] [--rate R] [--fsync batch,never]
                          [--drain N] [--dir DIR]

    git archive main | tar -x -C /tmp/main && cmake -S /tmp/main \\
        -B /tmp/main/build -DCMAKE_BUILD_TYPE=RelWithDebInfo && \\
        cmake --build /tmp/main/build -j2
    python3 tests/bench/bench_shovel_ab.py /tmp/main/build build \\
        --rounds 6 --drain 100000
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

import bench_shovel  # noqa: E402
import harness  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--secs", type=float, default=5)
    ap.add_argument("--rate", type=float, default=2000)
    ap.add_argument("--fsync", default="batch,never")
    ap.add_argument("--drain", type=int, default=0,
                    help="also drain N messages of 1 KiB per run")
    ap.add_argument("--dir", default=os.environ.get("FEDQ_BENCH_DIR"))
    args = ap.parse_args()
    builds = [("before", os.path.abspath(args.before)),
              ("after", os.path.abspath(args.after))]
    results = {}
    work = tempfile.mkdtemp(prefix="fedq-bench-ab-", dir=args.dir)

    def run(key, fn):
        folder = tempfile.mkdtemp(dir=work)
        try:
            res = fn(folder)
        except Exception as e:  # noqa: BLE001 (a failed run is reported)
            res = {"error": str(e)}
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        results.setdefault(key, []).append(res)
        print("%s %s %s: %s" % (key + (res,)), flush=True)

    try:
        for r in range(args.rounds):
            for fsync in args.fsync.split(","):
                for name, build in builds if r % 2 == 0 else builds[::-1]:
                    os.environ["FEDQ_BUILD"] = build
                    run((name, fsync, "latency"),
                        lambda d: bench_shovel.fedq_latency(
                            d, 1024, args.rate, args.secs, 1000, fsync))
                    if args.drain:
                        run((name, fsync, "drain"),
                            lambda d: bench_shovel.fedq_drain(
                                d, 1024, args.drain, 1000, fsync))
    finally:
        harness.kill_all()
        shutil.rmtree(work, ignore_errors=True)
    print("medians (runs that failed are left out):")
    for key in sorted(results):
        good = [x for x in results[key] if "error" not in x]
        names = ("p50", "p99", "max") if key[2] == "latency" else ("rate",)
        if not good:
            print("  %s %s %s: every run failed" % key)
            continue
        print("  %s %s %s: %s (%d runs)" % (key + (", ".join(
            "%s %.3f" % (n, statistics.median(x[n] for x in good))
            for n in names), len(good))))
    return 1 if any("error" in x for v in results.values() for x in v) else 0


if __name__ == "__main__":
    sys.exit(main())
