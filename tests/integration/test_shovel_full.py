"""tests/integration/test_shovel_full.py — a full destination queue
(max_length, overflow: reject-publish) blocks the shovel without losing
anything (docs/protocol.md §9.6: LINK_REJECT EFULL is transient): the link
shows blocked with a last_error that says the queue is full, its backlog
stays at the source, and as a consumer at the destination makes room the
link drains; every message arrives once, in order."""

import os
import time
import unittest

import harness
from test_shovel_common import (LONG, check_exactly_once, link,
                                read_confirmed, shovel, wait_drained)

ROOM = 100                      # max_length of the destination queue
TOTAL = 5000 if LONG else 1000  # published at the source


class ShovelFullTest(harness.FedqTestCase):

    def test_full_destination_blocks_then_drains(self):
        b = self.node("bfull", queues=[{
            "name": "inbox", "durable": True, "max_length": ROOM,
            "overflow": "reject-publish"}])
        a = self.node("afull", queues=[{"name": "outbox", "durable": True}],
                      shovels=[shovel("to-b", "outbox", b.endpoint,
                                      queue="inbox")])
        b.start()
        a.start()
        conf = os.path.join(self.tmp, "confirmed")
        a.cli.check("publish", "", "outbox", "--count", TOTAL, "--id", "m",
                    "--size", 200, "--confirmed", conf, timeout_s=60)
        self.assertEqual(len(read_confirmed(conf)), TOTAL)

        def blocked():
            ln = link(a, "to-b")
            return ln if ln["state"] == "blocked" else None
        ln = harness.wait_until(blocked, timeout=30, msg="link blocked")
        self.assertIn("full", ln["last_error"], ln)
        self.assertEqual(b.depth("inbox"), ROOM)
        self.assertEqual(ln["backlog_messages"], TOTAL - ROOM, ln)
        self.assertGreater(ln["lag_seconds"], 0, ln)

        # While nobody consumes at B it stays so: blocked, the backlog
        # unchanged, B at its limit. A few retry rounds (backoff <= 0.5 s).
        retries0 = ln["rejected_total"]
        ln = harness.wait_until(
            lambda: (lambda x: x if x["rejected_total"] >= retries0 + 3
                     else None)(link(a, "to-b")),
            timeout=30, msg="three more refusals while full")
        self.assertEqual(ln["state"], "blocked", ln)
        self.assertEqual(ln["backlog_messages"], TOTAL - ROOM, ln)
        self.assertEqual(ln["confirmed_total"], ROOM, ln)
        self.assertEqual(ln["dead_lettered_total"], 0,
                         "a full queue must not dead-letter: %r" % ln)
        self.assertEqual(b.depth("inbox"), ROOM)
        self.assertIsNone(a.queue("to-b.dlq"))

        # Consume at B: each batch makes room and the link moves on.
        msgs = []
        deadline = time.monotonic() + harness.scaled(120)
        for _ in range(TOTAL):
            if len(msgs) >= TOTAL or time.monotonic() > deadline:
                break
            depth = harness.wait_until(lambda: b.depth("inbox"), timeout=30,
                                       msg="messages at B")
            msgs += b.cli.consume("inbox", depth)
        self.assertEqual(len(msgs), TOTAL)
        ln = wait_drained(a, "to-b", timeout=30)
        self.assertEqual(ln["confirmed_total"], TOTAL, ln)
        self.assertEqual(ln["dead_lettered_total"], 0, ln)
        self.assertEqual(b.depth("inbox"), 0)
        check_exactly_once(self, msgs, read_confirmed(conf),
                           published={"m": TOTAL})


if __name__ == "__main__":
    unittest.main()
