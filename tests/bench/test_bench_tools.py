#!/usr/bin/env python3
"""tests/bench/test_bench_tools.py — the benchmark's own tools do what
they say: bench_limits measures what it names (every message confirmed,
one sync per batch, clear errors), and bench_report turns the parts' rows
into the right table (ratios in the right direction, the right ceiling for
each workload, the RabbitMQ side of a row merged in from another part).

Environment: BENCH_LIMITS = the bench_limits binary (ctest sets it).
"""

import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
sys.path.insert(0, HERE)

from benchlib import kv  # noqa: E402

LIMITS = os.environ.get("BENCH_LIMITS", "")


def limits(*args):
    r = subprocess.run([LIMITS] + [str(a) for a in args], capture_output=True,
                       text=True, timeout=120)
    return r.returncode, kv(r.stdout), r.stderr


@unittest.skipUnless(os.access(LIMITS, os.X_OK), "BENCH_LIMITS not set")
class BenchLimits(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="fedq-test-bench-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_link_confirms_every_message_with_one_sync_per_batch(self):
        for n, batch in ((1000, 64), (5000, 1024), (100, 1)):
            rc, r, err = limits("link", self.dir, n, 100, batch, 8)
            self.assertEqual(rc, 0, err)
            self.assertEqual(r["ok"], "1")
            self.assertEqual(int(r["n"]), n)
            self.assertEqual(int(r["syncs"]), math.ceil(n / batch))
            self.assertGreater(float(r["msgs_per_s"]), 0)
        self.assertEqual(os.listdir(self.dir), [], "probe file left behind")

    def test_fsync_times_each_sync(self):
        rc, r, err = limits("fsync", self.dir, 200, 1024)
        self.assertEqual(rc, 0, err)
        p50, p99, mx = (float(r[k]) for k in (
            "sync_p50_ms", "sync_p99_ms", "sync_max_ms"))
        self.assertTrue(0 < p50 <= p99 <= mx, r)
        self.assertEqual(int(r["n"]), 200)
        self.assertEqual(os.listdir(self.dir), [], "probe file left behind")

    def test_zmq_receives_all(self):
        rc, r, err = limits("zmq", 20000, 1024)
        self.assertEqual(rc, 0, err)
        self.assertEqual(int(r["n"]), 20000)
        self.assertGreater(float(r["msgs_per_s"]), 0)

    def test_bad_input_is_refused_clearly(self):
        rc, _, err = limits("fsync", os.path.join(self.dir, "missing"), 10,
                            100)
        self.assertEqual(rc, 1)
        self.assertIn("cannot create a file in", err)
        rc, _, err = limits("link", self.dir, 100, 100, 0, 8)
        self.assertEqual(rc, 2)
        self.assertIn("must be positive", err)
        rc, _, err = limits("nonsense")
        self.assertEqual(rc, 2)
        self.assertIn("usage:", err)


class BenchReport(unittest.TestCase):

    ROWS = [
        {"part": "limits", "kind": "ceiling", "workload":
         "durable link batch 64", "size": 1024, "unit": "msg/s",
         "value": 150000},
        {"part": "limits", "kind": "ceiling", "workload":
         "durable link batch 1024", "size": 1024, "unit": "msg/s",
         "value": 500000},
        {"part": "limits", "kind": "ceiling", "workload": "fdatasync",
         "size": 1024, "unit": "syncs/s", "value": 4000, "p50": 0.25,
         "p99": 2.0, "max": 5.0},
        {"part": "node", "kind": "pair", "workload":
         "confirmed publish, one node", "size": 1024, "unit": "msg/s",
         "better": "higher", "ceiling_ref": "durable link", "fedq": 250000,
         "rabbitmq": None, "runs": 3},
        {"part": "shovel", "kind": "pair", "workload": "shovel drain",
         "size": 1024, "unit": "msg/s", "better": "higher", "ceiling_ref":
         "durable link", "fedq": 234000, "rabbitmq": 10000, "runs": 3,
         "cpu_fedq": 0.5, "cpu_rabbitmq": 10.0,
         "rss_fedq": {"fedq-A": 80.4, "fedq-B": 20.2, "waitcount": 19.0},
         "rss_rabbitmq": {"beam-A": 500.0, "beam-B": 600.0}},
        {"part": "shovel", "kind": "pair", "workload":
         "shovel latency p99 @2,000 msg/s", "size": 1024, "unit": "ms",
         "better": "lower", "ceiling_ref": "2 fdatasync p99", "fedq": 5.0,
         "rabbitmq": 20.0, "runs": 3, "rate": 2000, "metric": "p99",
         "reached_fedq": 2000, "reached_rabbitmq": 900},
        {"part": "shovel", "kind": "pair", "workload":
         "shovel latency p50 @2,000 msg/s", "size": 1024, "unit": "ms",
         "better": "lower", "ceiling_ref": "2 fdatasync p50", "fedq": 1.0,
         "rabbitmq": 2.0, "runs": 3, "rate": 2000, "metric": "p50"},
        {"part": "shovel", "kind": "pair", "workload":
         "shovel drain, 50 ms RTT", "size": 1024, "unit": "msg/s",
         "better": "higher", "ceiling_ref": "fedq:shovel drain",
         "fedq": 117000, "rabbitmq": 7800, "runs": 3},
        # The RabbitMQ side of the node part's row, from the shovel part.
        {"part": "node", "kind": "pair", "workload":
         "confirmed publish, one node", "size": 1024, "unit": "msg/s",
         "better": "higher", "ceiling_ref": "durable link",
         "rabbitmq": 20000},
    ]

    def test_table(self):
        out = tempfile.mkdtemp(prefix="fedq-test-report-")
        try:
            with open(os.path.join(out, "rows-T.jsonl"), "w") as f:
                for r in self.ROWS:
                    f.write(json.dumps(r) + "\n")
            r = subprocess.run([sys.executable, os.path.join(
                HERE, "bench_report.py"), "--stamp", "T", "--out", out,
                "--load-before", "0.5 0.4 0.3"], capture_output=True,
                text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(os.path.join(out, "report-T.md")) as f:
                md = f.read()
            rows = {c[1].strip(): [x.strip() for x in c[1:]] for c in (
                line.split("|") for line in md.splitlines()
                if line.startswith("| ") and line.count("|") > 10)}
            drain = rows["shovel drain"]
            self.assertEqual(drain[3:8], [
                "234,000", "10,000", "23.4x",
                "durable link, batch 1024: 500,000", "0.47x"])
            self.assertEqual(drain[8], "0.50 / 10.00")
            # Peak RSS of the servers only (not the clients).
            self.assertEqual(drain[9], "80/20; 500/600")
            lat = rows["shovel latency p99 @2,000 msg/s"]
            self.assertEqual(lat[3], "5.000 ms")
            self.assertEqual(lat[4], "20.0 ms (reached 900 msg/s)")
            self.assertEqual(lat[5], "0.25x")
            self.assertEqual(lat[6], "2 x fdatasync p99: 4.000 ms")
            self.assertEqual(lat[7], "1.25x")
            wan = rows["shovel drain, 50 ms RTT"]
            self.assertEqual(wan[6], "fedq on loopback: 234,000")
            self.assertEqual(wan[7], "0.50x")
            node = rows["confirmed publish, one node"]
            self.assertEqual(node[3:6], ["250,000", "20,000", "12.5x"])
            self.assertEqual(md.count("| confirmed publish, one node |"), 1)
            self.assertIn("shovel drain 1 KiB: 23.4x", md)
            self.assertIn("before 0.5 0.4 0.3", md)
            self.assertTrue(re.search(r"\| cores \| \d+ \|", md))
            with open(os.path.join(out, "report-T.csv")) as f:
                csv_text = f.read()
            self.assertEqual(len(csv_text.strip().splitlines()), 1 + 5)
            if shutil.which("gnuplot"):
                for kind in ("throughput", "latency"):
                    with open(os.path.join(out, "report-T-%s.png" % kind),
                              "rb") as f:
                        self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        finally:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
