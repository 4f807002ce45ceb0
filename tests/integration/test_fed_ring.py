"""tests/integration/test_fed_ring.py — federated queues over topologies
other than the full mesh (DESIGN.md §2: "any connected topology works
without loops"): a ring in which each member lists only the next, and hub
and spokes in which the spokes list the hub and the hub lists nobody.
Events reach members further away through their neighbours; every member
must end with the same set, each message once, per-origin order kept.

Also verifies a known limit of history compaction (docs/operations.md,
"Federated queues"): a member that no peer list of a node names, and that
has not connected to it since it started, is not waited for.

    FEDQ_BUILD=build python3 tests/integration/run.py test_fed_ring
"""

import collections
import os
import unittest

import fedlib
import harness

LONG = os.environ.get("FEDQ_LONG") == "1"
N = 20000 if LONG else 2000
SIZE = 200


class FedTopologyTest(harness.FedqTestCase):

    def all_running(self, nodes, links_each):
        def check():
            for n in nodes:
                links = fedlib.fed_links(n)
                if len(links) < links_each[n.id]:
                    return False
                if any(ln["state"] != "running" for ln in links):
                    return False
            return True
        harness.wait_until(check, timeout=20,
                           msg="every federation link running")

    def converge_through_outage(self, nodes, down, links_each):
        """Everyone publishes at once; `down` is killed and kept down
        while the rest publish; it comes back while everyone publishes
        again. Checks the end state and returns the expected counts."""
        self.all_running(nodes, links_each)
        expected = {}
        pubs = [fedlib.Publisher(self, n, "a" + n.id, N, size=SIZE)
                for n in nodes]
        for p in pubs:
            p.check()
            expected[p.producer] = N
        fedlib.wait_converged(nodes, sum(expected.values()), timeout=60)

        down.kill9()
        up = [n for n in nodes if n is not down]
        pubs = [fedlib.Publisher(self, n, "b" + n.id, N, size=SIZE)
                for n in up]
        for p in pubs:
            p.check()
            expected[p.producer] = N
        total = sum(expected.values())
        # The survivors stay connected to each other (a ring of three
        # minus one member is a chain; the hub still reaches every
        # remaining spoke).
        harness.wait_until(lambda: all(n.depth("audit") == total
                                       for n in up), timeout=60,
                           msg="survivors converged")

        down.start()
        pubs = [fedlib.Publisher(self, n, "c" + n.id, N, size=SIZE)
                for n in nodes]
        for p in pubs:
            p.check()
            expected[p.producer] = N
        total = sum(expected.values())
        fedlib.wait_converged(nodes, total, timeout=90)
        for n in nodes:
            links = fedlib.fed_links(n)
            self.assertGreaterEqual(len(links), links_each[n.id], links)
            for ln in links:
                self.assertEqual(ln["kind"], "federation")
                self.assertEqual(ln["backlog_messages"], 0, ln)

        per = {n.id: fedlib.drain(n, total) for n in nodes}
        fedlib.check_same_everywhere(self, per, expected)

    def test_ring(self):
        """n1 lists n2, n2 lists n3, n3 lists n1; n2 goes down, so n1's
        events reach n3 only over n3's own link to n1."""
        nodes = fedlib.make_members(self, ["n1", "n2", "n3"], "ring")
        for n in nodes:
            self.assertEqual(len(n.sections["federated_queues"][0]["peers"]),
                             1)
        fedlib.start_all(nodes)
        # Each member has its own link and the one its predecessor opened.
        self.converge_through_outage(nodes, nodes[1],
                                     {n.id: 2 for n in nodes})

    def test_hub_and_spokes(self):
        """hub lists nobody; s1..s3 list the hub. A spoke's events reach
        the other spokes only through the hub."""
        nodes = fedlib.make_members(self, ["hub", "s1", "s2", "s3"], "hub")
        self.assertEqual(nodes[0].sections["federated_queues"][0]["peers"],
                         [])
        fedlib.start_all(nodes)
        links = {"hub": 3, "s1": 1, "s2": 1, "s3": 1}
        self.converge_through_outage(nodes, nodes[2], links)

    def hub_restart_while_spoke_down(self, hub_lists_spokes):
        """hub + spokes s1, s2. s2 goes down, the hub restarts, s1
        publishes M, everyone that is up converges and compacts, s2
        returns. Returns (s2's depth, the others' depth)."""
        nodes = fedlib.make_members(self, ["hub", "s1", "s2"], "hub")
        hub, s1, s2 = nodes
        self.nodes_by_id = {n.id: n for n in nodes}
        if hub_lists_spokes:
            hub.sections["federated_queues"][0]["peers"] = [
                {"id": s.id, "endpoint": s.endpoint} for s in (s1, s2)]
        fedlib.start_all(nodes)
        self.all_running(nodes, {"hub": 2, "s1": 1, "s2": 1})
        fedlib.publish(s1, "before", 500)
        fedlib.wait_converged(nodes, 500, timeout=30)

        s2.kill9()
        hub.kill9()
        hub.start()
        harness.wait_until(lambda: any(
            ln["peer"] == "s1" and ln["state"] == "running"
            for ln in fedlib.fed_links(hub)), timeout=30,
            msg="s1 linked to the restarted hub")
        fedlib.publish(s1, "while", 500)
        harness.wait_until(lambda: hub.depth("audit") == 1000, timeout=30,
                           msg="the hub has s1's new messages")
        # Wait until the hub and s1 are done with the history they can
        # compact (a compaction pass runs every second). A hub that waits
        # for s2 keeps its history.
        def settled():
            hl = [ln for ln in fedlib.fed_links(hub) if ln["peer"] == "s1"]
            sl = fedlib.fed_links(s1)
            return (hl and hl[0]["backlog_messages"] == 0
                    and (hub_lists_spokes or hl[0]["history_events"] == 0)
                    and sl and sl[0]["backlog_messages"] == 0
                    and sl[0]["history_events"] == 0)
        harness.wait_until(settled, timeout=30,
                           msg="s1's history compacted (and the hub's, "
                           "unless it waits for s2)")
        hub_history = [ln["history_events"] for ln in fedlib.fed_links(hub)
                       if ln["peer"] == "s1"]

        s2.start()
        harness.wait_until(lambda: any(
            ln["state"] == "running" for ln in fedlib.fed_links(s2)),
            timeout=30, msg="s2 linked to the hub again")
        if hub_lists_spokes:
            fedlib.wait_converged(nodes, 1000, timeout=30)
        else:
            # Nothing more can arrive: wait until the hub's link to s2 is
            # idle (the hub shows a link for s2 once it connected).
            harness.wait_until(lambda: [
                ln for ln in fedlib.fed_links(hub) if ln["peer"] == "s2"
                and ln["state"] == "running"
                and ln["backlog_messages"] == 0], timeout=30,
                msg="hub's link to s2 idle")
        return s2.depth("audit"), hub.depth("audit"), hub_history

    def test_hub_restart_unlisted_spoke_gets_resync(self):
        """The hub lists no peers, so after it restarts it knows only the
        spokes that connected since. s2, down at the time, is not waited
        for: the hub and s1 compact s1's new events once they both have
        them. The compaction raised the history floors, so when s2 comes
        back below them it gets a full resync of the live messages
        (docs/operations.md, "Bounded history and full resync") and ends
        with all 1000 (it used to keep only its 500: a silent gap)."""
        s2_depth, hub_depth, hub_history = \
            self.hub_restart_while_spoke_down(hub_lists_spokes=False)
        self.assertEqual(hub_depth, 1000)
        self.assertEqual(hub_history, [0],
                         "the hub compacted without waiting for s2")
        s2 = self.nodes_by_id["s2"]
        harness.wait_until(lambda: s2.depth("audit") == 1000, timeout=30,
                           msg="s2 resynced to 1000 (had %d)" % s2_depth)
        to_s2 = [ln for ln in fedlib.fed_links(self.nodes_by_id["hub"])
                 if ln["peer"] == "s2"]
        self.assertGreaterEqual(to_s2[0]["resync_total"], 1, to_s2)
        msgs = fedlib.drain(s2, 1000)
        fedlib.check_member(self, "s2", msgs)

    def test_hub_listing_spokes_waits_for_them(self):
        """The remedy for the limit above: a hub that lists its spokes
        keeps history for a spoke that is down across its own restart."""
        s2_depth, hub_depth, hub_history = \
            self.hub_restart_while_spoke_down(hub_lists_spokes=True)
        self.assertEqual(hub_depth, 1000)
        self.assertEqual(s2_depth, 1000)

    @staticmethod
    def link_running(node, peer):
        harness.wait_until(lambda: [
            ln for ln in fedlib.fed_links(node)
            if ln["peer"] == peer and ln["state"] == "running"],
            timeout=30, msg="%s's link to %s running" % (node.id, peer))

    @unittest.skipUnless(fedlib.have_proxy(), "needs tests/fault/fault_proxy")
    def test_ring_member_restart_resyncs_predecessor(self):
        """Found by `scripts/chaos --seed 5 --topology fedring3`. Ring n1 ->
        n2 -> n3 -> n1: n3 does not list n2, so after n3 restarts it does
        not know n2 until n2's link says FED_HELLO again, and compacts
        without it. Before history floors, n3's stream to n2 then started
        after the compacted part, n2 applied later events above its marks
        and n1 (which kept the range for n2) sent it only what is above
        them: n2 lost `during1` and `during3`. Now n2 is below n3's
        floors and gets a full resync of the live messages first.

        n2 is cut off (both its links) while n3 restarts and n1, n3
        publish `during1`, `during3`; n3 compacts them. n2's link to n3
        comes back first and n1, n3 publish `after1`, `after3`; then n1's
        link to n2. n2 must end with everything, once, in per-origin
        order."""
        proxies = {}
        nodes = fedlib.make_members(self, ["n1", "n2", "n3"], "ring",
                                    proxies=proxies)
        n1, n2, n3 = nodes
        fedlib.start_all(nodes)
        self.all_running(nodes, {n.id: 2 for n in nodes})
        for n in nodes:
            fedlib.publish(n, "before" + n.id[1], 100)
        fedlib.wait_converged(nodes, 300, timeout=30)

        fedlib.cut(proxies, "n2")
        harness.wait_until(lambda: all(
            ln["state"] != "running" for n, peer in ((n2, "n3"), (n1, "n2"))
            for ln in fedlib.fed_links(n) if ln["peer"] == peer),
            timeout=20, msg="n2's link to n3 and n1's link to n2 down")
        n3.kill9()
        n3.start()
        self.link_running(n3, "n1")
        fedlib.publish(n1, "during1", 200)
        fedlib.publish(n3, "during3", 200)
        # n1 keeps history for n2 (it lists n2); the restarted n3 does
        # not know n2 and compacts once n1 has everything.
        harness.wait_until(lambda: all(
            ln["history_events"] == 0 and ln["backlog_messages"] == 0
            for ln in fedlib.fed_links(n3)) and n1.depth("audit") == 700,
            timeout=30, msg="n3's history compacted without n2")
        self.assertGreaterEqual(
            [ln for ln in fedlib.fed_links(n1) if ln["peer"] == "n2"][0]
            ["history_events"], 400, "n1 keeps history for n2")

        proxies[("n2", "n3")].heal()
        self.link_running(n2, "n3")
        fedlib.publish(n1, "after1", 100)
        fedlib.publish(n3, "after3", 100)
        harness.wait_until(lambda: n2.depth("audit") >= 500, timeout=30,
                           msg="n3 sent n2 its events after the compacted")
        proxies[("n1", "n2")].heal()
        harness.wait_until(lambda: all(
            ln["state"] == "running" and ln["backlog_messages"] == 0
            for n in nodes for ln in fedlib.fed_links(n))
            and len(fedlib.fed_links(n2)) == 2, timeout=30,
            msg="every link running and idle")

        self.assertEqual(n1.depth("audit"), 900)
        self.assertEqual(n3.depth("audit"), 900)
        msgs = fedlib.drain(n2, n2.depth("audit"))
        got = collections.Counter(m["message_id"].rsplit("-", 1)[0]
                                  for m in msgs)
        fedlib.check_member(self, "n2", msgs)
        self.assertEqual(dict(got), {"before1": 100, "before2": 100,
                                     "before3": 100, "during1": 200,
                                     "during3": 200, "after1": 100,
                                     "after3": 100},
                         "n2 misses what the restarted n3 compacted "
                         "before n2 came back")

if __name__ == "__main__":
    unittest.main()
