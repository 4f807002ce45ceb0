"""tests/integration/test_fed_history.py — bounded federation history and
full resync (docs/operations.md, "Bounded history and full resync"):

- with a small history_max_messages, a member that is down while the
  others publish well past the cap comes back to a full resync of the
  live messages: it ends with every live message exactly once, in
  per-origin order; the counters show the resync, and the others'
  history stayed within the cap;
- the same with consume: global, where messages acked while the member
  was away (their tombstones dropped from the history by the cap) must
  not reappear on it.

    FEDQ_BUILD=build python3 tests/integration/run.py test_fed_history
"""

import unittest

import fedlib
import harness

CAP = 300


class FedHistoryTest(harness.FedqTestCase):

    def members(self, consume):
        nodes = fedlib.make_members(self, ["n1", "n2", "n3"], "mesh",
                                    consume=consume,
                                    history_max_messages=CAP)
        fedlib.start_all(nodes)
        return nodes

    def history_within_cap(self, nodes):
        """Every link's view of its node's history stays within the cap;
        returns the events the cap dropped per node."""
        dropped = {}
        for n in nodes:
            for ln in fedlib.fed_links(n):
                self.assertLessEqual(ln["history_events"], CAP, ln)
                self.assertEqual(ln["history_max_messages"], CAP, ln)
                dropped[n.id] = ln["history_dropped_total"]
        return dropped

    def to_peer(self, node, peer):
        return [ln for ln in fedlib.fed_links(node) if ln["peer"] == peer][0]

    def restart_after_compaction(self, nodes, member, total, gone, why):
        """Once every history is compacted (the tombstones that removed
        `gone` are gone everywhere), kill -9 and restart member: it must
        converge to total messages and none of gone may come back."""
        harness.wait_until(lambda: all(
            ln["history_events"] == 0 and ln["backlog_messages"] == 0
            for n in nodes for ln in fedlib.fed_links(n)), timeout=30,
            msg="histories compacted")
        member.kill9()
        member.start()
        fedlib.wait_converged(nodes, total, timeout=60)
        msgs = fedlib.drain(member, total)
        have = {m["message_id"] for m in msgs}
        self.assertEqual(have & gone, set(), why)
        return msgs

    def test_member_back_after_cap_gets_resync(self):
        nodes = self.members("local")
        n1, n2, n3 = nodes
        fedlib.publish(n1, "a1", 100)
        fedlib.publish(n3, "a3", 100)
        fedlib.wait_converged(nodes, 200, timeout=30)

        n3.kill9()
        # Well past the cap while n3 is away, checked as it happens.
        pubs = [fedlib.Publisher(self, n1, "b1", 1500),
                fedlib.Publisher(self, n2, "b2", 1500)]
        def published():
            self.history_within_cap([n1, n2])
            return all(p.done() for p in pubs)
        harness.wait_until(published, timeout=120, msg="publishers done")
        for p in pubs:
            p.check()
        harness.wait_until(lambda: n1.depth("audit") == 3200
                           and n2.depth("audit") == 3200, timeout=60,
                           msg="n1 and n2 have each other's messages")
        dropped = self.history_within_cap([n1, n2])
        self.assertGreater(dropped["n1"], 0, "the cap dropped events")
        self.assertGreater(dropped["n2"], 0, "the cap dropped events")
        self.assertIn("history cap reached", n1.log_text())

        n3.start()
        fedlib.wait_converged(nodes, 3200, timeout=90)
        resync = [self.to_peer(n, "n3") for n in (n1, n2)]
        self.assertGreaterEqual(sum(x["resync_total"] for x in resync), 1,
                                resync)
        self.assertGreater(sum(x["resync_sent_total"] for x in resync), 0,
                           resync)
        # Nothing was consumed anywhere: no event was lost to n3.
        self.assertEqual([x["resync_skipped_total"] for x in resync],
                         [0, 0], resync)
        self.assertIn("full resync", n1.log_text() + n2.log_text())
        self.history_within_cap(nodes)

        per_member = {n.id: fedlib.drain(n, 3200) for n in nodes}
        fedlib.check_same_everywhere(self, per_member, {
            "a1": 100, "a3": 100, "b1": 1500, "b2": 1500})

    def test_global_acked_while_away_stay_removed(self):
        nodes = self.members("global")
        n1, n2, n3 = nodes
        # n3's own messages first in queue order, so some of those acked
        # while it is away are its own (its origin's floors count too).
        fedlib.publish(n3, "a3", 100)
        fedlib.wait_converged(nodes, 100, timeout=30)
        # At n1 they are held for the handoff (global_handoff) first:
        # once ready they are ahead of n1's own a1 below.
        harness.wait_until(lambda: n1.queue("audit")["held"] == 0,
                           timeout=30, msg="n1 released n3's messages")
        fedlib.publish(n1, "a1", 200)
        fedlib.wait_converged(nodes, 300, timeout=30)

        n3.kill9()
        # 150 acked on n1 (all of a3, half of a1): tombstones reach n2,
        # not n3.
        gone = fedlib.drain(n1, 150)
        gone_ids = {m["message_id"] for m in gone}
        self.assertEqual(len(gone_ids), 150)
        self.assertEqual(sum(1 for m in gone_ids if m.startswith("a3-")),
                         100)
        harness.wait_until(lambda: n2.depth("audit") == 150, timeout=30,
                           msg="n2 applied the tombstones")
        # Push the tombstones out of the history.
        fedlib.publish(n2, "b2", 1000)
        harness.wait_until(lambda: n1.depth("audit") == 1150
                           and n2.depth("audit") == 1150, timeout=60,
                           msg="n1 and n2 converged")
        dropped = self.history_within_cap([n1, n2])
        self.assertGreater(dropped["n1"], 0)

        n3.start()
        fedlib.wait_converged(nodes, 1150, timeout=90)
        removed = sum(ln["resync_removed_total"]
                      for ln in fedlib.fed_links(n3))
        self.assertEqual(removed, 150, fedlib.fed_links(n3))
        self.assertIn("held messages removed", n3.log_text())
        # Durable: once the tombstones that removed them are compacted
        # away everywhere, a kill -9 and restart does not bring them back.
        msgs = self.restart_after_compaction(
            nodes, n3, 1150, gone_ids,
            "messages acked while n3 was away reappeared")
        have = {m["message_id"] for m in msgs}
        self.assertEqual(len(have), 1150)
        fedlib.check_member(self, "n3", msgs)
        # n3's consumption is global: the others end empty.
        harness.wait_until(lambda: n1.depth("audit") == 0
                           and n2.depth("audit") == 0, timeout=30,
                           msg="n3's acks removed them everywhere")


    @unittest.skipUnless(fedlib.have_proxy(), "needs tests/fault/fault_proxy")
    def test_global_removed_behind_live_head_stay_removed(self):
        """The messages a resync removes sit behind a live one on the
        member (not at the head, where a tick settles them): once their
        tombstones leave every history, a kill -9 and restart must not
        bring them back."""
        proxies = {}
        nodes = fedlib.make_members(self, ["n1", "n2", "n3"], "mesh",
                                    consume="global", proxies=proxies,
                                    history_max_messages=CAP)
        n1, n2, n3 = nodes
        fedlib.start_all(nodes)
        # n3's own h3 first on n3, n1's a1 first on n1 and n2.
        fedlib.cut(proxies, "n3")
        fedlib.publish(n3, "h3", 10)
        fedlib.publish(n1, "a1", 200)
        fedlib.heal(proxies)
        fedlib.wait_converged(nodes, 210, timeout=60)

        n3.kill9()
        gone = {m["message_id"] for m in fedlib.drain(n1, 150)}
        self.assertTrue(all(m.startswith("a1-") for m in gone), gone)
        fedlib.publish(n2, "b2", 1000)      # the tombstones leave history
        harness.wait_until(lambda: n1.depth("audit") == 1060
                           and n2.depth("audit") == 1060, timeout=60,
                           msg="n1 and n2 converged")
        n3.start()
        fedlib.wait_converged(nodes, 1060, timeout=90)
        msgs = self.restart_after_compaction(
            nodes, n3, 1060, gone, "removed messages came back")
        have = {m["message_id"] for m in msgs}
        self.assertEqual(len(have), 1060)


if __name__ == "__main__":
    unittest.main()
