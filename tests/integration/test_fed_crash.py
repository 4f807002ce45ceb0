"""tests/integration/test_fed_crash.py — kill -9 in the middle of a
federation sync. A member comes back to a large backlog; while it streams
in, the receiving member (then, in a second test, a sending member) is
killed with SIGKILL and restarted. Every member must end with the same
set of messages, each once (the version vectors are durable with the
events, so a resend is dropped as a duplicate), per-origin order kept.

    FEDQ_BUILD=build python3 tests/integration/run.py test_fed_crash
    FEDQ_LONG=1 ...    larger backlogs
"""

import os
import time
import unittest

import fedlib
import harness

LONG = os.environ.get("FEDQ_LONG") == "1"
COUNT = 150000 if LONG else 50000      # per publishing member
SIZE = 256


class FedCrashTest(harness.FedqTestCase):

    def backlog_at(self, n1, n2, n3, tag):
        """n3 down; n1 and n2 each publish COUNT. Returns the expected
        producer counts (added to self.expected)."""
        n3.kill9()
        pubs = [fedlib.Publisher(self, n, tag + n.id, COUNT, size=SIZE)
                for n in (n1, n2)]
        for p in pubs:
            p.check(timeout=180)
            self.expected[p.producer] = COUNT

    def kill_mid_sync(self, watch, victim, low, high):
        """Poll watch's depth as fast as `fedq status` answers; as soon as
        it is strictly between low and high, SIGKILL victim. Returns the
        depth seen, or None when the sync finished first."""
        deadline = time.monotonic() + harness.scaled(60)
        while time.monotonic() < deadline:
            d = watch.depth("audit")
            if d is not None and low < d < high:
                victim.kill9()
                return d
            if d is not None and d >= high:
                return None
        self.fail("%s never started syncing (depth %s)" % (watch.id, d))

    def run_crash(self, kill_receiver):
        nodes = fedlib.make_members(self, ["n1", "n2", "n3"], "mesh")
        n1, n2, n3 = nodes
        fedlib.start_all(nodes)
        self.expected = {}
        fedlib.publish(n1, "warm", 100)
        self.expected["warm"] = 100
        fedlib.wait_converged(nodes, 100, timeout=30)

        seen = None
        for attempt in range(3):
            low = n3.depth("audit")
            self.backlog_at(n1, n2, n3, "r%d" % attempt)
            total = sum(self.expected.values())
            n3.start()
            victim = n3 if kill_receiver else n1
            seen = self.kill_mid_sync(n3, victim, low, total)
            if seen is not None:
                break
            # The sync beat the poll: make a larger backlog and retry.
        self.assertIsNotNone(seen, "never caught the sync in the middle")

        # Restart what was killed; it all converges, exactly once.
        if kill_receiver:
            n3.start()
            self.assertLessEqual(n3.depth("audit"), total)
        else:
            n1.start()
        fedlib.wait_converged(nodes, total, timeout=90)
        dups = sum(ln.get("duplicates_dropped_total", 0)
                   for n in nodes for ln in fedlib.fed_links(n))
        per = {n.id: fedlib.drain(n, total, timeout_s=300) for n in nodes}
        fedlib.check_same_everywhere(self, per, self.expected)
        print("\n  killed %s at n3 depth %d of %d; duplicates dropped on "
              "links after restart: %d" % ("n3" if kill_receiver else "n1",
                                           seen, total, dups))

    def test_kill_receiver_mid_sync(self):
        self.run_crash(kill_receiver=True)

    def test_kill_sender_mid_sync(self):
        self.run_crash(kill_receiver=False)


if __name__ == "__main__":
    unittest.main()
