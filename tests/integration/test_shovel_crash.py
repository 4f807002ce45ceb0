"""tests/integration/test_shovel_crash.py — the shovel's guarantee under
crashes (DESIGN.md §2 "Shovel", on-confirm): publishers confirm messages
with ids into `outbox` on node A while the shovel A.outbox -> B (exchange
+ routing key) forwards them, and A and B are each kill -9'd several times
at random moments (seeded). At the end, once A's link shows backlog 0,
every confirmed id is at B exactly once, in source order, and nothing
else is.

A publisher whose node restarts gets its in-flight publishes returned
and exits non-zero: a new one takes over with a fresh id prefix, and
every confirmed file is kept.

Environment:
    FEDQ_LONG=1       100k messages, 10 crashes (default 30k, 5)
    FEDQ_CRASH_SEED   the seed (default: random, printed)
"""

import os
import random
import signal
import sys
import time
import unittest

import harness
from test_shovel_common import (LONG, check_exactly_once, link, shovel,
                                split_mid, wait_drained)

N = 100000 if LONG else 30000
RATE = 5000 if LONG else 4000       # msg/s per publisher
CRASHES = 10 if LONG else 5
SIZE = 256


class ConfirmedFile:
    """A publisher's --confirmed file, read as it grows."""

    def __init__(self, path):
        self.path = path
        self.ids = []
        self._partial = ""
        self._offset = 0

    def poll(self):
        try:
            with open(self.path) as f:
                f.seek(self._offset)
                data = f.read()
                self._offset = f.tell()
        except FileNotFoundError:
            return len(self.ids)
        data = self._partial + data
        lines = data.split("\n")
        self._partial = lines.pop()
        self.ids.extend(ln for ln in lines if ln)
        return len(self.ids)


class ShovelCrashTest(harness.FedqTestCase):

    def setUp(self):
        super().setUp()
        env = os.environ.get("FEDQ_CRASH_SEED")
        self.seed = int(env) if env else random.randrange(1 << 32)
        sys.stderr.write("\n%s: seed %d (FEDQ_CRASH_SEED=%d to repeat), "
                         "%d messages, %d crashes\n"
                         % (self.id(), self.seed, self.seed, N, CRASHES))
        self.rng = random.Random(self.seed)

    def plan(self):
        """CRASHES kill events: (confirmed count that triggers it, extra
        delay in s, victim "A" or "B", for B: wait for the link to notice
        before restarting or restart at once). Both nodes are killed."""
        points = sorted(self.rng.uniform(0.05, 0.9) * N
                        for _ in range(CRASHES))
        victims = [self.rng.choice("AB") for _ in range(CRASHES)]
        if len(set(victims)) < 2:
            victims[self.rng.randrange(CRASHES)] = (
                "B" if victims[0] == "A" else "A")
        return [(int(p), self.rng.uniform(0, 0.5), v, self.rng.random() < 0.5)
                for p, v in zip(points, victims)]

    def test_kill9_both_ends_exactly_once_in_order(self):
        b = self.node("bcrash", queues=[{"name": "inbox", "durable": True}],
                      exchanges=[{"name": "orders", "type": "direct"}],
                      bindings=[{"exchange": "orders", "queue": "inbox",
                                 "key": "order.created"}])
        a = self.node("acrash",
                      queues=[{"name": "outbox", "durable": True}],
                      shovels=[shovel("outbox-to-b", "outbox", b.endpoint,
                                      exchange="orders",
                                      routing_key="order.created")])
        b.start()
        a.start()

        plan = self.plan()
        sys.stderr.write("crash plan (confirmed, delay s, node, wait): %r\n"
                         % [(p, round(d, 2), v, w) for p, d, v, w in plan])
        files = []          # ConfirmedFile per publisher
        published = {}      # prefix -> count asked for (ids PREFIX-1..)
        exits = []
        pub = None
        done_kills = 0
        kill_at = None      # monotonic time of the next kill once triggered
        deadline = time.monotonic() + harness.scaled(300 if LONG else 150)

        def confirmed():
            return sum(f.poll() for f in files)

        def start_publisher():
            prefix = "p%d" % len(files)
            count = max(2, N - confirmed())   # ids PREFIX-N need 2+
            path = os.path.join(self.tmp, prefix + ".confirmed")
            files.append(ConfirmedFile(path))
            published[prefix] = count
            return a.cli.start(
                "publish", "", "outbox", "--count", count, "--id", prefix,
                "--size", SIZE, "--rate", RATE, "--confirmed", path,
                "--timeout", 3000,
                stdout_path=os.path.join(self.tmp, prefix + ".out"))

        def kill(victim, wait_notice):
            if victim == "A":
                a.kill9()
                a.start()
                # Its session is gone with the node: what it sends now is
                # returned. Stop it (Ctrl-C: it settles what it sent and
                # exits); a new publisher with a new prefix takes over.
                if pub is not None and pub.poll() is None:
                    pub.send_signal(signal.SIGINT)
                return
            b.kill9()
            if wait_notice:
                harness.wait_until(
                    lambda: link(a, "outbox-to-b")["state"] != "running",
                    timeout=20, msg="A's link notices B is gone")
            b.start()

        def attention():
            """What to do next: "publisher" (it ended, or none runs and
            messages remain), "trigger" (a crash point was passed), "kill"
            (its delay is over), "done"; None: nothing yet."""
            n = confirmed()
            if pub is not None and pub.poll() is not None:
                return "publisher"
            if pub is None and n < N:
                return "publisher"
            if kill_at is not None and time.monotonic() >= kill_at:
                return "kill"
            if kill_at is None and done_kills < len(plan) \
                    and n >= plan[done_kills][0]:
                return "trigger"
            if n >= N and pub is None and done_kills == len(plan):
                return "done"
            return None

        for _ in range(10000):
            self.assertLess(time.monotonic(), deadline,
                            "publishing did not finish: %d of %d confirmed"
                            % (confirmed(), N))
            what = harness.wait_until(
                attention, timeout=60, interval=0.02,
                msg="publisher progress (%d of %d confirmed)"
                % (confirmed(), N))
            if what == "done":
                break
            if what == "publisher":
                if pub is not None:
                    exits.append(harness.stop_process(pub))
                    self.assertLess(len(exits), 3 * CRASHES + 5,
                                    "publishers keep failing: exits %r\n%s"
                                    % (exits, self._pub_tail(files)))
                pub = start_publisher() if confirmed() < N else None
            elif what == "trigger":
                kill_at = time.monotonic() + plan[done_kills][1]
            elif what == "kill":
                _, _, victim, wait_notice = plan[done_kills]
                kill(victim, wait_notice)
                done_kills += 1
                kill_at = None
        self.assertEqual(done_kills, len(plan), "not every crash happened")
        self.assertGreaterEqual(confirmed(), N)

        # Everything confirmed at A must cross: wait for backlog 0.
        ln = wait_drained(a, "outbox-to-b", timeout=120 if LONG else 60)
        sys.stderr.write("link after the run: %r\npublisher exits: %r\n"
                         % ({k: ln[k] for k in (
                             "forwarded_total", "resent_total",
                             "confirmed_total", "duplicates_dropped_total",
                             "reconnects_total", "dead_lettered_total")},
                            exits))
        self.assertEqual(ln["dead_lettered_total"], 0, ln)
        self.assertEqual(a.depth("outbox"), 0)

        depth = b.depth("inbox")
        all_confirmed = [i for f in files for i in f.ids]
        self.assertGreaterEqual(depth, len(all_confirmed))
        msgs = b.cli.consume("inbox", depth, timeout_s=300)
        self.assertEqual(len(msgs), depth)
        self.assertEqual(b.depth("inbox"), 0)
        check_exactly_once(self, msgs, all_confirmed, published=published)

        # Source order also by the origin's own sequence, and every copy
        # is recognisably the message published at A, forwarded by the
        # shovel, routed by B's exchange.
        seqs = [m["seq"] for m in msgs]
        self.assertEqual(seqs, sorted(seqs), "origin seqs out of order")
        self.assertEqual(len(set(seqs)), len(seqs), "an origin seq twice")
        for m in msgs[:: max(1, len(msgs) // 200)]:
            self.assertEqual(m["origin"], "acrash", m)
            self.assertEqual(m["id"], "acrash:%d" % m["seq"], m)
            self.assertEqual(m["routing_key"], "order.created", m)
            self.assertEqual(m["headers"].get("x-fedq-shovel"),
                             "outbox-to-b", m)
            self.assertEqual(m["headers"].get("x-fedq-source"), "acrash", m)
            split_mid(m["message_id"])
        sys.stderr.write("arrived %d, confirmed %d, publishers %d\n"
                         % (len(msgs), len(all_confirmed), len(files)))

    def _pub_tail(self, files):
        out = []
        for f in files[-3:]:
            try:
                with open(f.path[:-len(".confirmed")] + ".out") as h:
                    out.append(h.read()[-500:])
            except OSError:
                pass
        return "\n".join(out)


if __name__ == "__main__":
    unittest.main()
