"""tests/integration/test_shovel_stall.py — a frozen destination
(SIGSTOP): the shovel must say so (reconnecting or blocked, never running
while its backlog grows), its lag must rise, and after SIGCONT it drains
to backlog 0, lag 0, running, with every message at the destination once
(DESIGN.md §2 "Shovel", §3)."""

import os
import time
import unittest

import harness
from test_shovel_common import (check_exactly_once, consume_all, link,
                                read_confirmed, shovel, wait_drained)

BEFORE = 2000       # published and drained before the freeze
DURING = 3000       # published while the destination is frozen
RATE = 1000         # msg/s while frozen: the stall lasts >= 3 s


class ShovelStallTest(harness.FedqTestCase):

    def test_sigstop_destination_then_sigcont(self):
        b = self.node("bstall", queues=[{"name": "inbox", "durable": True}])
        a = self.node("astall", queues=[{"name": "outbox", "durable": True}],
                      shovels=[shovel("to-b", "outbox", b.endpoint,
                                      queue="inbox")])
        b.start()
        a.start()
        conf = [os.path.join(self.tmp, "c1"), os.path.join(self.tmp, "c2")]

        a.cli.check("publish", "", "outbox", "--count", BEFORE, "--id", "p1",
                    "--confirmed", conf[0], timeout_s=60)
        wait_drained(a, "to-b", timeout=30)
        self.assertEqual(b.depth("inbox"), BEFORE)

        # Freeze the destination; publish at A meanwhile (A is healthy, so
        # the publisher is confirmed by A; the link cannot confirm).
        b.sigstop()
        try:
            pub = a.cli.start("publish", "", "outbox", "--count", DURING,
                              "--id", "p2", "--confirmed", conf[1],
                              "--rate", RATE,
                              stdout_path=os.path.join(self.tmp, "pub.out"))
            turned = harness.wait_until(
                lambda: (lambda ln: ln if ln["state"] in
                         ("reconnecting", "blocked") else None)(
                    link(a, "to-b")),
                timeout=15, msg="link reconnecting or blocked after SIGSTOP")
            self.assertTrue(turned["last_error"], turned)

            # While frozen: never "running" with a backlog, lag rising.
            samples = []
            deadline = time.monotonic() + harness.scaled(30)
            while (pub.poll() is None and time.monotonic() < deadline
                   and len(samples) < 5000):
                ln = link(a, "to-b")
                samples.append(ln)
                self.assertIn(ln["state"], ("reconnecting", "blocked"),
                              "link shows %s while the destination is "
                              "frozen: %r" % (ln["state"], ln))
                self.assertGreater(ln["backlog_messages"], 0, ln)
            self.assertEqual(harness.stop_process(pub, grace_s=30), 0,
                             "publisher at A failed while B was frozen")
            ln = link(a, "to-b")
            samples.append(ln)
            self.assertIn(ln["state"], ("reconnecting", "blocked"), ln)
            self.assertGreaterEqual(len(samples), 5, "too few samples")
            lags = [s["lag_seconds"] for s in samples]
            self.assertGreater(lags[-1], lags[0],
                               "lag_seconds did not rise: %r" % lags)
            self.assertEqual(lags, sorted(lags),
                             "lag_seconds went down while frozen: %r" % lags)
            self.assertGreaterEqual(ln["backlog_messages"], DURING, ln)
            self.assertGreater(ln["backlog_bytes"], 0, ln)
        finally:
            b.sigcont()

        ln = wait_drained(a, "to-b", timeout=60)
        self.assertEqual(ln["state"], "running")
        self.assertEqual(ln["lag_seconds"], 0)
        self.assertGreaterEqual(ln["reconnects_total"], 1, ln)
        confirmed = read_confirmed(conf[0]) + read_confirmed(conf[1])
        self.assertEqual(len(confirmed), BEFORE + DURING)
        msgs = consume_all(b, "inbox", expected=BEFORE + DURING)
        check_exactly_once(self, msgs, confirmed,
                           published={"p1": BEFORE, "p2": DURING})


if __name__ == "__main__":
    unittest.main()
