"""tests/integration/test_smoke.py — one node, the fedq command, the
guarantees of DESIGN.md §2 "Node" at their simplest: what is confirmed is
stored, delivered once with its identity, and survives kill -9."""

import base64
import os
import re
import unittest

import harness

BATCH = 1000
SIZE = 1024


def body_len(msg):
    """Length in bytes of a `consume --json` message body."""
    if "body_b64" in msg:
        return len(base64.b64decode(msg["body_b64"]))
    return len(msg.get("body", "").encode("utf-8"))


class SmokeTest(harness.FedqTestCase):

    def check_messages(self, msgs, node_id, queue, size):
        """Every message carries its identity (DESIGN.md §6); return the
        seqs, checked unique and increasing (one publisher, one queue)."""
        seqs = []
        for i, m in enumerate(msgs):
            for field in ("id", "origin", "seq", "exchange", "routing_key",
                          "redelivered", "published_at"):
                self.assertIn(field, m, "message %d lacks %r: %r"
                              % (i, field, m))
            self.assertTrue("body" in m or "body_b64" in m,
                            "message %d has neither body nor body_b64" % i)
            self.assertEqual(m["origin"], node_id)
            self.assertIsInstance(m["seq"], int)
            self.assertEqual(m["id"], "%s:%d" % (m["origin"], m["seq"]))
            self.assertEqual(m["exchange"], "")
            self.assertEqual(m["routing_key"], queue)
            self.assertEqual(body_len(m), size, "message %s" % m["id"])
            seqs.append(m["seq"])
        self.assertEqual(len(set(seqs)), len(seqs), "duplicate seqs")
        self.assertEqual(seqs, sorted(seqs), "out of publish order")
        return seqs

    def test_publish_consume_kill9_restart(self):
        node = self.start_node("smoke")
        fedq = node.cli

        st = fedq.status()
        self.assertEqual(st["node"]["id"], "smoke")

        fedq.check("declare", "queue", "work", "--durable")
        self.assertIsNotNone(node.queue("work"), "declared queue not in status")
        self.assertEqual(node.depth("work"), 0)

        # Batch 1: publish, confirmed (exit 0), all there, consume all.
        fedq.check("publish", "", "work", "--count", BATCH, "--size", SIZE,
                   timeout_s=120)
        q = node.queue("work")
        self.assertEqual(q["depth"], BATCH, q)
        self.assertGreaterEqual(q.get("bytes", BATCH * SIZE), BATCH * SIZE)

        msgs = fedq.consume("work", BATCH, timeout_s=120)
        self.assertEqual(len(msgs), BATCH)
        seqs1 = self.check_messages(msgs, "smoke", "work", SIZE)
        self.assertFalse(any(m["redelivered"] for m in msgs))
        harness.wait_until(lambda: node.depth("work") == 0, timeout=10,
                           msg="depth 0 once batch 1 is acked")

        # Batch 2: confirmed, then kill -9 and restart on the same data.
        fedq.check("publish", "", "work", "--count", BATCH // 2, "--size",
                   SIZE, timeout_s=120)
        self.assertEqual(node.depth("work"), BATCH // 2)
        node.kill9()
        node.start()
        self.assertEqual(node.depth("work"), BATCH // 2,
                         "confirmed messages lost (or acked ones back) "
                         "after kill -9")

        # A publish after the restart must not reuse an id.
        fedq.check("publish", "", "work", "--count", 1, "--size", SIZE)
        msgs = fedq.consume("work", BATCH // 2 + 1, timeout_s=120)
        seqs2 = self.check_messages(msgs, "smoke", "work", SIZE)
        self.assertGreater(min(seqs2), max(seqs1),
                           "batch 2 reuses the seqs of batch 1")
        self.assertEqual(seqs2[:-1], list(range(seqs2[0],
                                                seqs2[0] + BATCH // 2)),
                         "batch 2 is not contiguous after recovery")
        harness.wait_until(lambda: node.depth("work") == 0, timeout=10,
                           msg="depth 0 once batch 2 is acked")

        self.assertEqual(node.stop(), 0, "node did not exit 0 on SIGTERM\n"
                         + node.log_tail())

    def test_kill9_during_publish_keeps_a_clean_prefix(self):
        node = self.start_node("crash")
        node.cli.check("declare", "queue", "work", "--durable")
        # Bounded rate: the queue is small when the kill lands.
        pub = node.cli.start("publish", "", "work", "--count", 1000000,
                             "--size", 512, "--rate", 5000,
                             stdout_path=os.path.join(node.dir, "pub.out"))
        harness.wait_until(lambda: (node.depth("work") or 0) >= 2000,
                           timeout=60, msg="publisher making progress")
        node.kill9()
        harness.stop_process(pub)
        node.start()
        depth = node.depth("work")
        self.assertGreaterEqual(depth, 1)
        msgs = node.cli.consume("work", depth, timeout_s=120)
        seqs = self.check_messages(msgs, "crash", "work", 512)
        self.assertEqual(seqs, list(range(seqs[0], seqs[0] + len(seqs))),
                         "recovered log is not a contiguous prefix")

    def test_config_check(self):
        good = self.node("checked", queues=[{"name": "q", "durable": True}])
        good.write_config()
        r = harness.run([harness.node_bin(), "--check", "-c",
                         good.config_path])
        self.assertEqual(r.rc, 0, r)

        bad = self.node("broken", queues=[{"name": "q", "max_length": -5}])
        bad.write_config()
        for argv in ([harness.node_bin(), "--check", "-c", bad.config_path],
                     [harness.node_bin(), "-c", bad.config_path]):
            r = harness.run(argv)
            self.assertEqual(r.rc, 2, r)
            text = r.stdout + r.stderr
            self.assertRegex(text, re.escape(bad.config_path) + r":\d+:\d+: ",
                             "error without FILE:LINE:COL")
        self.assertFalse(os.path.exists(os.path.join(bad.data_dir, "log")),
                         "an invalid config created a log")


if __name__ == "__main__":
    unittest.main()
