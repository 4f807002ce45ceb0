"""tests/integration/test_fed_relay.py — relays in a full mesh
(docs/protocol.md §10.3): a member tells its peers which origins it gets
from the origin itself (FED_DIRECT), and they stop relaying those
origins' events to it. When the link to an origin is cut, the member says
so and its peers send it what they skipped, from its vector: nothing may
be lost or arrive out of order on the way.

The cuts are real: each link goes through a fault proxy
(tests/fault/fault_proxy) that resets its connections and refuses new
ones, while all three members keep running.

    FEDQ_BUILD=build python3 tests/integration/run.py test_fed_relay

With FEDQ_OLD_BUILD=DIR (a build of an earlier version, without
FED_EVENTS and FED_DIRECT), test_mixed_versions runs one member on it.
"""

import os
import unittest

import fedlib
import harness

N = 2000        # events per phase


def link(node, peer):
    links = [ln for ln in fedlib.fed_links(node) if ln["peer"] == peer]
    if len(links) != 1:
        raise AssertionError("%s: links to %s: %r" % (node.id, peer, links))
    return links[0]


def cut_pair(proxies, a, b):
    """Cut both links between members a and b (each lists the other)."""
    proxies[(a, b)].partition()
    proxies[(b, a)].partition()


def heal_pair(proxies, a, b):
    proxies[(a, b)].heal()
    proxies[(b, a)].heal()


def wait_pair_down(a, b):
    harness.wait_until(lambda: link(a, b.id)["state"] != "running"
                       and link(b, a.id)["state"] != "running",
                       timeout=30, msg="links %s-%s down" % (a.id, b.id))


def wait_pair_up(a, b):
    harness.wait_until(lambda: link(a, b.id)["state"] == "running"
                       and link(b, a.id)["state"] == "running",
                       timeout=30, msg="links %s-%s running" % (a.id, b.id))


def wait_depths(nodes, total):
    """Every member holds total messages (links may be cut: their
    backlogs are not looked at)."""
    harness.wait_until(lambda: all(n.depth(fedlib.QUEUE) == total
                                   for n in nodes), timeout=90,
                       msg="%d messages on every member" % total)


def wait_all_running(nodes):
    harness.wait_until(lambda: all(
        ln["state"] == "running" for n in nodes
        for ln in fedlib.fed_links(n)), timeout=30,
        msg="every federation link running")


@unittest.skipUnless(fedlib.have_proxy(), "needs tests/fault/fault_proxy")
class FedRelayTest(harness.FedqTestCase):

    def go_around(self, proxies, nodes, a, x, tag):
        """Cut a-x while both publish (producers pTAG at a, qTAG at x);
        returns how many they published."""
        cut_pair(proxies, a.id, x.id)
        # At 500/s the publishing spans the ~3 s before x notices the cut,
        # while the third member still skips a's events for x.
        pa = fedlib.Publisher(self, a, "p" + tag, N, rate=500)
        px = fedlib.Publisher(self, x, "q" + tag, N // 2, rate=250)
        wait_pair_down(a, x)
        pa.check()
        px.check()
        return N + N // 2

    def test_cut_links_events_go_around(self):
        proxies = {}
        nodes = fedlib.make_members(self, ["a", "b", "c"], "mesh",
                                    proxies=proxies)
        a, b, c = nodes
        fedlib.start_all(nodes)
        wait_all_running(nodes)

        # Healthy mesh: b and c get a's events from a, and do not relay
        # them to each other (they would be dropped as known).
        fedlib.publish(a, "p0", N)
        fedlib.wait_converged(nodes, N, timeout=60)
        skipped = link(b, "c")["relays_skipped_total"] \
            + link(c, "b")["relays_skipped_total"]
        dups = sum(ln["duplicates_dropped_total"] for n in nodes
                   for ln in fedlib.fed_links(n))
        self.assertGreaterEqual(skipped, N, "relays of a's events not "
                                "skipped between b and c")
        self.assertLess(dups, N, "most relays still sent (%d duplicates "
                        "dropped)" % dups)

        # Cut a-c while a publishes (and c too): c gets a's events through
        # b, including those b skipped before c noticed the cut.
        total = N + self.go_around(proxies, nodes, a, c, "1")
        wait_depths(nodes, total)

        # Heal a-c, cut a-b: now b gets a's events through c.
        heal_pair(proxies, "a", "c")
        wait_pair_up(a, c)
        total += self.go_around(proxies, nodes, a, b, "2")
        wait_depths(nodes, total)

        # Everything everywhere, each once, each origin in order.
        heal_pair(proxies, "a", "b")
        fedlib.wait_converged(nodes, total, timeout=90)
        per_member = {n.id: fedlib.drain(n, total) for n in nodes}
        fedlib.check_same_everywhere(
            self, per_member, {"p0": N, "p1": N, "q1": N // 2, "p2": N,
                               "q2": N // 2})
        for n in nodes:
            for ln in fedlib.fed_links(n):
                self.assertEqual(ln["errors_total"], 0, ln)


    def test_no_skip_for_origin_that_does_not_list_the_member(self):
        """a does not list c (c lists a): after a restart a keeps nothing
        for c, so c does not claim a and b keeps relaying a's events to
        c."""
        nodes = fedlib.make_members(self, ["a", "b", "c"], "mesh")
        a, b, c = nodes
        fq = a.sections["federated_queues"][0]
        fq["peers"] = [p for p in fq["peers"] if p["id"] != "c"]
        fedlib.start_all(nodes)
        wait_all_running(nodes)
        fedlib.publish(a, "pa", N)
        fedlib.publish(c, "pc", N)
        fedlib.wait_converged(nodes, 2 * N, timeout=60)
        # c links to a but a does not list c: c claims nothing of a, and
        # b relays a's events to c. a has no link to c: it claims nothing
        # of c, and b relays c's events to a.
        self.assertEqual(link(b, "c")["relays_skipped_total"], 0)
        self.assertEqual(link(b, "a")["relays_skipped_total"], 0)
        per_member = {n.id: fedlib.drain(n, 2 * N) for n in nodes}
        fedlib.check_same_everywhere(self, per_member, {"pa": N, "pc": N})


class FedBatchTest(harness.FedqTestCase):

    def test_full_frames_small_max_message_bytes(self):
        """A backlog fills FED_EVENTS frames to their cap; members with
        node.max_message_bytes 1KiB (their endpoint then takes parts of
        about 130 KiB) still take every frame."""
        nodes = fedlib.make_members(self, ["a", "b", "c"], "mesh")
        for n in nodes:
            n.node_extra["max_message_bytes"] = "1KiB"
        # Only a links to b and c, so it sends everything into their
        # endpoints (not over connections they opened).
        for n in nodes[1:]:
            fq = n.sections["federated_queues"][0]
            fq["peers"] = [p for p in fq["peers"] if p["id"] != "a"]
        a = nodes[0]
        a.start()
        fedlib.publish(a, "pa", 5 * N, size=1000)
        for n in nodes[1:]:
            n.start()
        fedlib.wait_converged(nodes, 5 * N, timeout=90)
        # A frame too big for b's or c's endpoint makes it drop a's
        # connection; a's link then hears it does not know the session.
        with open(a.log_path, errors="replace") as f:
            self.assertNotIn("does not know this connection", f.read())
        for n in nodes:
            for ln in fedlib.fed_links(n):
                self.assertEqual(ln["errors_total"], 0, ln)
        per_member = {n.id: fedlib.drain(n, 5 * N) for n in nodes}
        fedlib.check_same_everywhere(self, per_member, {"pa": 5 * N})


class FedMixedVersionsTest(harness.FedqTestCase):

    @unittest.skipUnless(os.environ.get("FEDQ_OLD_BUILD"),
                         "needs FEDQ_OLD_BUILD (a build without FED_EVENTS)")
    def test_mixed_versions(self):
        """b runs the older build: a and c send it FED_EVENT and no
        FED_DIRECT, and relay to it as before; it still gets all."""
        old = os.path.join(os.environ["FEDQ_OLD_BUILD"], "node", "fedq-node")
        nodes = fedlib.make_members(self, ["a", "b", "c"], "mesh")
        a, b, c = nodes
        new_bin = harness.node_bin
        harness.node_bin = lambda: old
        try:
            b.start()
        finally:
            harness.node_bin = new_bin
        a.start()
        c.start()
        wait_all_running(nodes)
        fedlib.publish(a, "pa", N)
        fedlib.publish(b, "pb", N)
        fedlib.publish(c, "pc", N)
        fedlib.wait_converged(nodes, 3 * N, timeout=90)
        per_member = {n.id: fedlib.drain(n, 3 * N) for n in nodes}
        fedlib.check_same_everywhere(self, per_member,
                                     {"pa": N, "pb": N, "pc": N})
        # b takes no FED_DIRECT and sends none (so never says it lists a
        # or c): a and c relay everything to it, and b's events to each
        # other; a claims only c and c only a, whose events no one but
        # themselves would skip.
        for n in (a, c):
            for ln in fedlib.fed_links(n):
                self.assertEqual(ln["relays_skipped_total"], 0, ln)


if __name__ == "__main__":
    unittest.main()
