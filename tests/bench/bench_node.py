#!/usr/bin/env python3
"""tests/bench/bench_node.py — `scripts/bench node`: what one fedq-node
does on this machine. A benchmark, not a test: it prints figures and
checks them against the targets, it fails only when it cannot measure.

    python3 tests/bench/bench_node.py [--quick] [--dir DIR] [--runs N]

Figures (fsync batch, loopback, one node, the `fedq` command as client):
  publish   confirmed publish msg/s at 100 B, 1 KiB and 16 KiB bodies
            (`fedq publish --count N --size B`, its msg/s line; median of
            --runs), one publisher, and 4 publishers at once at 1 KiB
  consume   `fedq consume --count N` msg/s (acks included; stdout to
            /dev/null), median of --runs
  restart   1M stored messages of 1 KiB (100k with --quick): kill -9, then
            the time from exec until `fedq ping` answers; page cache warm
            (the log was just written); median of --runs; with the node's
            own "store: opened ... in N ms" figure
  memory    the node's VmRSS, VmHWM, RssAnon and RssFile with those
            messages queued, after publishing and after the restart.
            Bodies are read through a MAP_SHARED mapping of the log:
            they count in RssFile (page cache, reclaimable), not in the
            heap (RssAnon)

Targets (DESIGN.md issue "Node"): >= 222k msg/s confirmed publish at
1 KiB, RSS (anonymous) < 100 MiB with 1M queued, restart < 2 s.

Output: a markdown table on stdout and a CSV under bench-results/
(gitignored). Environment: FEDQ_BUILD as for the integration tests.
"""

import argparse
import csv
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

import harness  # noqa: E402
from benchlib import ProcWatch, emit, run_client  # noqa: E402

RATE = re.compile(r"elapsed ([\d.]+) s, (\d+) msg/s")
OPENED = re.compile(r"store: opened .*? in (\d+) ms")
RECOVERED = re.compile(r"recovered (\d+) queued messages")

TARGET_PUBLISH_1K = 222000
TARGET_RSS_ANON_MIB = 100
TARGET_RESTART_S = 2.0


def proc_status(pid):
    """VmRSS, VmHWM, RssAnon, RssFile of a process, in KiB."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k = line.split(":")[0]
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
                out[k] = int(line.split()[1])
    return out


def mib(kib):
    return kib / 1024.0


class Bench:

    def __init__(self, args):
        self.args = args
        self.rows = []          # (figure, value, unit, note)
        self.root = tempfile.mkdtemp(prefix="fedq-bench-node-",
                                     dir=args.dir)
        self.node = None

    def row(self, figure, value, unit, note=""):
        self.rows.append((figure, value, unit, note))
        print("  %-44s %12s %-8s %s" % (figure, self.fmt(value), unit, note),
              flush=True)

    @staticmethod
    def fmt(v):
        if isinstance(v, float):
            return "%.3f" % v if v < 100 else "%.0f" % v
        return str(v)

    def start(self, name, **kw):
        node = harness.Node(name, self.root, fsync="batch",
                            queues=[{"name": "q", "durable": True}], **kw)
        node.start(timeout_s=120)
        self.node = node
        return node

    def publish_rate(self, node, count, size, extra=(), watch=None):
        rc, out, err, usage = run_client(node.cli.argv(
            "publish", "", "q", "--count", count, "--size", size,
            "--timeout", 30000, *extra), timeout_s=600)
        m = RATE.search(err)
        if rc != 0 or not m:
            raise RuntimeError("publish failed: %s %s" % (out, err))
        if watch:
            watch.client("fedq publish", usage)
        return float(m.group(2))

    def parallel_publish(self, node, publishers, count, size):
        """publishers `fedq publish` at once; total msg/s over the wall
        time from the first start to the last exit."""
        procs = []
        t0 = time.monotonic()
        for _ in range(publishers):
            procs.append(subprocess.Popen(
                node.cli.argv("publish", "", "q", "--count", count,
                              "--size", size, "--timeout", 30000),
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                env=harness.child_env()))
        for p in procs:
            _, err = p.communicate(timeout=600)
            if p.returncode != 0:
                raise RuntimeError("publish failed: %s" % err.decode())
        return publishers * count / (time.monotonic() - t0)

    def consume_rate(self, node, count):
        t0 = time.monotonic()
        r = subprocess.run(node.cli.argv("consume", "q", "--count", count),
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           env=harness.child_env(), timeout=600)
        if r.returncode != 0:
            raise RuntimeError("consume failed: %s" % r.stderr.decode())
        return count / (time.monotonic() - t0)

    def purge(self, node):
        node.cli.check("purge", "q", timeout_s=120)

    # -- the figures -------------------------------------------------------

    def bench_publish_consume(self):
        q = self.args.quick
        runs = self.args.runs
        node = self.start("pub")
        for size, count in ((100, 50000 if q else 300000),
                            (1024, 50000 if q else 300000),
                            (16384, 5000 if q else 30000)):
            rates, cpu = [], []
            for _ in range(runs):
                watch = ProcWatch([("fedq-node", node.pid)])
                rates.append(self.publish_rate(node, count, size,
                                               watch=watch))
                watch.stop()
                cpu.append(watch.summary(count))
                self.purge(node)
            self.row("publish confirmed %s B, 1 publisher" % size,
                     statistics.median(rates), "msg/s",
                     "median of %d x %d (%s)" % (
                         runs, count, ", ".join("%.0f" % r for r in rates)))
            # The combined report's row (scripts/bench all).
            emit(self.args.out, part="node", kind="pair",
                 workload="confirmed publish, one node", size=size,
                 unit="msg/s", better="higher", ceiling_ref="durable link",
                 fedq=statistics.median(rates), rabbitmq=None, runs=runs,
                 cpu_fedq=statistics.median(c["cpu_per_100k"] for c in cpu),
                 cpu_rabbitmq=None, rss_fedq={"fedq-node": max(
                     c["procs"]["fedq-node"]["rss_mib"] for c in cpu)},
                 rss_rabbitmq={})
        count = 25000 if q else 100000
        rates = []
        for _ in range(runs):
            rates.append(self.parallel_publish(node, 4, count, 1024))
            self.purge(node)
        self.row("publish confirmed 1024 B, 4 publishers", statistics.median(
            rates), "msg/s", "median of %d x 4 x %d" % (runs, count))
        for size in (100, 1024):
            count = 50000 if q else 200000
            rates = []
            for _ in range(runs):
                self.publish_rate(node, count, size)
                rates.append(self.consume_rate(node, count))
            self.row("consume %s B (acked, prefetch 500)" % size,
                     statistics.median(rates), "msg/s",
                     "median of %d x %d" % (runs, count))
        st = node.status()["node"]["store"]
        self.row("store fsyncs / commits during the run",
                 "%d/%d" % (st["fsyncs"], st["commits"]), "",
                 "fdatasync mean %.2f ms" % (
                     st["fsync_us_total"] / 1000.0 / max(1, st["fsyncs"])))
        node.stop()
        shutil.rmtree(node.data_dir, ignore_errors=True)

    def ping_until_ready(self, node, deadline_s=120):
        t0 = time.monotonic()
        while time.monotonic() - t0 < deadline_s:
            if node.proc.poll() is not None:
                raise RuntimeError("node exited\n" + node.log_tail())
            r = subprocess.run(node.cli.argv("ping", "--timeout", 200),
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL,
                               env=harness.child_env())
            if r.returncode == 0:
                return time.monotonic() - t0
        raise RuntimeError("node not ready after %ds" % deadline_s)

    def bench_restart_memory(self):
        q = self.args.quick
        total = 100000 if q else 1000000
        label = "%dk" % (total // 1000) if total < 1000000 else "1M"
        node = self.start("big")
        base = proc_status(node.pid)
        self.row("node RSS empty: VmRSS", mib(base["VmRSS"]), "MiB")
        # Fill in chunks (a publisher keeps its window in memory only).
        chunk = 250000
        t0 = time.monotonic()
        done = 0
        while done < total:
            n = min(chunk, total - done)
            self.publish_rate(node, n, 1024)
            done += n
        fill = time.monotonic() - t0
        if node.depth("q") != total:
            raise RuntimeError("depth %s, expected %d" % (node.depth("q"),
                                                          total))
        self.row("fill %s x 1 KiB" % label, total / fill, "msg/s",
                 "%.1f s" % fill)
        self.memory_rows(node, "after publishing %s x 1 KiB" % label)
        times, opened = [], []
        for _ in range(self.args.runs):
            node.kill9()
            node._spawn()
            times.append(self.ping_until_ready(node))
            m = OPENED.findall(node.log_text())
            opened.append(int(m[-1]) if m else -1)
            rec = RECOVERED.findall(node.log_text())
            if not rec or int(rec[-1]) != total:
                raise RuntimeError("recovered %s, expected %d" % (
                    rec[-1:] or "?", total))
        self.row("restart with %s x 1 KiB (kill -9 to ping)" % label,
                 statistics.median(times), "s",
                 "runs %s; store open %s ms" % (
                     ", ".join("%.2f" % t for t in times),
                     ", ".join(map(str, opened))))
        self.restart_s = statistics.median(times)
        self.memory_rows(node, "after restart with %s x 1 KiB" % label)
        # Reading the bodies (a consumer) maps them in: RssFile grows, the
        # heap does not. Half acked (prefetch bounds what is in flight),
        # half no-ack (nothing bounds it but ZeroMQ's send queue).
        half = total // 2
        for what, extra in (("acked, prefetch 2000", ("--prefetch", 2000)),
                            ("no-ack", ("--no-ack",))):
            t0 = time.monotonic()
            r = subprocess.run(
                node.cli.argv("consume", "q", "--count", half, *extra),
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                env=harness.child_env(), timeout=900)
            if r.returncode != 0:
                raise RuntimeError("consume failed: %s" % r.stderr.decode())
            self.row("consume %dk x 1 KiB (%s)" % (half // 1000, what),
                     half / (time.monotonic() - t0), "msg/s")
            self.memory_rows(node, "after consuming %dk (%s)"
                             % (half // 1000, what), queued=False)
        node.stop()
        shutil.rmtree(node.data_dir, ignore_errors=True)

    def memory_rows(self, node, when, queued=True):
        st = proc_status(node.pid)
        self.row("RSS %s: RssAnon (heap)" % when, mib(st["RssAnon"]), "MiB")
        self.row("RSS %s: RssFile (mapped log)" % when, mib(st["RssFile"]),
                 "MiB")
        self.row("RSS %s: VmRSS / VmHWM" % when, "%.1f/%.1f" % (
            mib(st["VmRSS"]), mib(st["VmHWM"])), "MiB")
        if queued:      # the target speaks of the messages queued
            self.max_anon = max(getattr(self, "max_anon", 0),
                                mib(st["RssAnon"]))
            self.max_rss = max(getattr(self, "max_rss", 0),
                               mib(st["VmRSS"]))

    # -- report ------------------------------------------------------------

    def report(self):
        print()
        print("| figure | value | unit | note |")
        print("|---|---:|---|---|")
        for f, v, u, n in self.rows:
            print("| %s | %s | %s | %s |" % (f, self.fmt(v), u, n))
        print()
        checks = []
        pub = [v for f, v, _, _ in self.rows
               if f == "publish confirmed 1024 B, 1 publisher"]
        if pub:
            checks.append(("confirmed publish 1 KiB >= %d msg/s"
                           % TARGET_PUBLISH_1K, pub[0] >= TARGET_PUBLISH_1K,
                           "%.0f" % pub[0]))
        if hasattr(self, "max_anon"):
            checks.append(("RssAnon < %d MiB with the messages queued"
                           % TARGET_RSS_ANON_MIB,
                           self.max_anon < TARGET_RSS_ANON_MIB,
                           "%.1f MiB (max)" % self.max_anon))
            checks.append(("VmRSS < %d MiB with the messages queued"
                           % TARGET_RSS_ANON_MIB,
                           self.max_rss < TARGET_RSS_ANON_MIB,
                           "%.1f MiB (max)" % self.max_rss))
        if hasattr(self, "restart_s"):
            checks.append(("restart < %.0f s" % TARGET_RESTART_S,
                           self.restart_s < TARGET_RESTART_S,
                           "%.2f s" % self.restart_s))
        for what, ok, got in checks:
            print("%s %s: %s" % ("MET " if ok else "MISS", what, got))
        if self.args.quick:
            print("(--quick: smaller counts; run without it for the "
                  "figures the targets speak of)")
        os.makedirs(self.args.out, exist_ok=True)
        path = os.path.join(self.args.out, "node-%s%s.csv" % (
            time.strftime("%Y%m%d-%H%M%S"), "-quick" if self.args.quick
            else ""))
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["figure", "value", "unit", "note"])
            for row in self.rows:
                w.writerow(row)
        print("csv: %s" % os.path.relpath(path, harness.REPO))

    def cleanup(self):
        if self.node is not None:
            try:
                self.node.kill9()
            except Exception:  # noqa: BLE001 (best effort)
                pass
        harness.kill_all()
        shutil.rmtree(self.root, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="smaller counts (seconds, not minutes)")
    ap.add_argument("--runs", type=int, default=3, help="runs per figure")
    ap.add_argument("--dir", default=os.environ.get("FEDQ_BENCH_DIR"),
                    help="where the node's data goes (default: $TMPDIR)")
    ap.add_argument("--out", default=os.path.join(harness.REPO,
                                                  "bench-results"))
    ap.add_argument("--only", choices=("publish", "restart"),
                    help="one group of figures")
    args = ap.parse_args()
    if not harness.binaries_present():
        sys.exit("bench node: no fedq binaries in %s (build first, or set "
                 "FEDQ_BUILD)" % harness.build_dir())
    b = Bench(args)
    print("bench node: %s, build %s, data in %s" % (
        "quick" if args.quick else "full", harness.build_dir(), b.root),
        flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        if args.only in (None, "publish"):
            b.bench_publish_consume()
        if args.only in (None, "restart"):
            b.bench_restart_memory()
        b.report()
    finally:
        b.cleanup()


if __name__ == "__main__":
    main()
