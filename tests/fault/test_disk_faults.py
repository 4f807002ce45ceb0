#!/usr/bin/env python3
"""tests/fault/test_disk_faults.py — shovel exactly-once when a node's disk
fills up or its fdatasync fails, step by step (the nemesis draws the same
faults at random: scripts/chaos --faults diskfull,eio).

Each node's data dir is a small tmpfs (needs root); a fault proxy sits in
front of the destination so the test decides when messages may cross.

    FEDQ_BUILD=build python3 tests/fault/test_disk_faults.py -v

Run by scripts/test with the integration tests (skipped without root).
test_source_disk_full_while_acking is the regression test of a fixed
bug: duplicates after the source could not write its acks (200 of 200
stored twice before the fix; docs/operations.md, "Fault suite").
"""

import json
import os
import shutil
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import checker  # noqa: E402
import harness  # noqa: E402
import nemesis  # noqa: E402


def can_mount():
    return os.geteuid() == 0 and shutil.which("mount") is not None


@unittest.skipUnless(can_mount(), "needs root (a tmpfs per data dir)")
class DiskFaultTest(harness.FedqTestCase):
    def setUp(self):
        super().setUp()
        self.mounts = []
        self.proxy = None
        self.confirmed = os.path.join(self.tmp, "confirmed")

    def tearDown(self):
        if self.proxy:
            self.proxy.stop()
        super().tearDown()
        for m in self.mounts:
            harness.run(["umount", m])

    def pair(self, size="16m"):
        """a -> (proxy) -> b, both on their own tmpfs."""
        b = nemesis.FaultNode("b", self.tmp, queues=[{"name": "out",
                                                      "durable": True}],
                              node_extra={"segment_bytes": "64KiB"})
        self.proxy = nemesis.Proxy("a-to-b", b.port,
                                   os.path.join(self.tmp, "proxy.log"))
        a = nemesis.FaultNode(
            "a", self.tmp, queues=[{"name": "in", "durable": True}],
            node_extra={"segment_bytes": "64KiB"},
            shovels=[{"name": "a-to-b", "source": {"queue": "in"},
                      "destination": {"endpoint": self.proxy.endpoint,
                                      "queue": "out"},
                      "reconnect_delay": "100ms",
                      "max_reconnect_delay": "500ms",
                      "heartbeat": "500ms"}])
        for n in (a, b):
            self.nodes.append(n)
            n.port_fixed = True
            os.makedirs(n.data_dir, exist_ok=True)
            r = harness.run(["mount", "-t", "tmpfs", "-o", "size=" + size,
                             "fedq-test", n.data_dir])
            self.assertEqual(r.rc, 0, r.stderr)
            self.mounts.append(n.data_dir)
        b.start()
        a.start()
        return a, b

    def publish(self, node, prefix, count):
        node.cli.check("publish", "", "in", "--count", count, "--id", prefix,
                       "--confirmed", self.confirmed, "--size", 200)

    def link(self, node):
        return node.link("a-to-b") or {}

    def drain_and_check(self, b, expect):
        harness.wait_until(lambda: b.depth("out") >= expect, timeout=30,
                           msg="%d messages at b" % expect)
        depth = b.depth("out")
        path = os.path.join(self.tmp, "drain.jsonl")
        r = harness.run(b.cli.argv("consume", "out", "--count", depth,
                                   "--json"), timeout_s=60)
        with open(path, "w") as f:
            f.write(r.stdout)
        run = checker.Run("disk")
        run.add_confirmed(self.confirmed)
        run.add_delivered("b", path)
        res = checker.check(run)
        self.assertTrue(res["passed"], json.dumps(
            {k: res[k] for k in ("confirmed", "lost", "duplicated",
                                 "reordered", "examples")}, indent=1))
        self.assertEqual(depth, expect)

    def test_destination_disk_full_then_freed(self):
        a, b = self.pair()
        nemesis.fill_disk(b.data_dir)
        self.publish(a, "P1", 300)
        harness.wait_until(lambda: self.link(a).get("state") == "blocked",
                           timeout=20, msg="link blocked by the full disk")
        os.remove(os.path.join(b.data_dir, "filler"))
        harness.wait_until(lambda: self.link(a).get("backlog_messages") == 0,
                           timeout=30, msg="backlog forwarded once freed")
        self.drain_and_check(b, 300)

    def test_source_disk_full_while_acking(self):
        # The destination confirms while the source cannot write the acks
        # (and link mark) of what it forwarded; later acks succeed. After
        # a restart of the source nothing may be forwarded twice.
        a, b = self.pair()
        self.proxy.ctl("blackhole both")
        self.publish(a, "P1", 200)                 # held at a
        nemesis.fill_disk(a.data_dir)
        self.proxy.ctl("heal")                     # b stores and confirms
        harness.wait_until(
            lambda: (b.depth("out") or 0) >= 200, timeout=30,
            msg="b stored the 200 (a could not write their acks)")
        os.remove(os.path.join(a.data_dir, "filler"))
        self.publish(a, "P2", 10)                  # acked durably
        harness.wait_until(lambda: (b.depth("out") or 0) >= 210, timeout=30,
                           msg="b stored the 10 more")
        harness.wait_until(lambda: self.link(a).get("backlog_messages") == 0,
                           timeout=30, msg="a's backlog empty")
        a.kill9()
        a.start()
        harness.wait_until(lambda: self.link(a).get("state") == "running",
                           timeout=30, msg="link running again")
        harness.wait_until(lambda: self.link(a).get("backlog_messages") == 0
                           and a.depth("in") == 0, timeout=30,
                           msg="a settled after its restart")
        self.drain_and_check(b, 210)

    @unittest.skipUnless(shutil.which("strace"), "needs strace")
    def test_destination_fdatasync_eio(self):
        a, b = self.pair()
        self.publish(a, "P1", 100)
        harness.wait_until(lambda: (b.depth("out") or 0) >= 100, timeout=30,
                           msg="first 100 at b")
        b.kill9()
        b.wrap = ["strace", "-f", "-qq", "--seccomp-bpf", "-o",
                  os.path.join(b.dir, "strace.log"), "-e", "trace=fdatasync",
                  "-e", "inject=fdatasync:error=EIO:when=2+"]
        b.start()
        self.publish(a, "P2", 100)
        harness.wait_until(
            lambda: self.link(a).get("backlog_messages", 0) > 0
            and self.link(a).get("rejected_total", 0) > 0, timeout=20,
            msg="b refuses what it cannot sync")
        b.kill9()
        b.wrap = []
        b.start()
        harness.wait_until(lambda: self.link(a).get("backlog_messages") == 0,
                           timeout=30, msg="backlog forwarded after b heals")
        self.drain_and_check(b, 200)


if __name__ == "__main__":
    unittest.main(verbosity=2)
