"""tests/integration/test_fed_mesh.py — a federated queue on three members
in a full mesh (DESIGN.md §2 "Federated queue"): publishing at every
member at once, one member partitioned away (killed and kept down, then
alone while its peers are down), and the heal. Every member must end with
the same set of messages, each once, each origin's (and each producer's)
order kept, and every federation link at backlog 0.

    FEDQ_BUILD=build python3 tests/integration/run.py test_fed_mesh
    FEDQ_LONG=1 ...    ten times the messages
"""

import os
import unittest

import fedlib
import harness

LONG = os.environ.get("FEDQ_LONG") == "1"
N = 20000 if LONG else 2000         # per producer per phase
SIZE = 200


class FedMeshTest(harness.FedqTestCase):

    def links_healthy(self, nodes):
        """Each member shows a federation link to each other member,
        running, backlog 0, lag 0. The messages may converge through the
        links the peers opened before a member's own link finished its
        handshake, so wait (bounded) until every link says so."""
        def healthy():
            try:
                self._links_healthy_now(nodes)
                return True
            except AssertionError:
                return False
        try:
            harness.wait_until(healthy, timeout=30,
                               msg="every federation link running, backlog 0")
        except harness.WaitTimeout:
            pass
        self._links_healthy_now(nodes)     # the assertion, with details

    def _links_healthy_now(self, nodes):
        for n in nodes:
            links = fedlib.fed_links(n)
            peers = sorted(ln["peer"] for ln in links)
            self.assertEqual(peers, sorted(m.id for m in nodes if m is not n),
                             "%s links: %r" % (n.id, links))
            for ln in links:
                self.assertEqual(ln["kind"], "federation")
                self.assertEqual(ln["state"], "running", ln)
                self.assertEqual(ln["backlog_messages"], 0, ln)
                self.assertEqual(ln["lag_seconds"], 0, ln)

    def test_concurrent_publish_partition_heal(self):
        nodes = fedlib.make_members(self, ["n1", "n2", "n3"], "mesh")
        fedlib.start_all(nodes)
        n1, n2, n3 = nodes
        harness.wait_until(
            lambda: all(ln["state"] == "running" for n in nodes
                        for ln in fedlib.fed_links(n)),
            timeout=20, msg="every federation link running")
        expected = {}

        # 1. Every member publishes at once.
        pubs = [fedlib.Publisher(self, n, "a" + n.id, N, size=SIZE)
                for n in nodes]
        for p in pubs:
            p.check()
            expected[p.producer] = N
        total = sum(expected.values())
        fedlib.wait_converged(nodes, total, timeout=60)
        self.links_healthy(nodes)

        # 2. n3 partitioned away (kill -9, kept down); both others keep
        #    publishing. Their links to n3 keep a backlog.
        n3.kill9()
        pubs = [fedlib.Publisher(self, n, "b" + n.id, N, size=SIZE)
                for n in (n1, n2)]
        for p in pubs:
            p.check()
            expected[p.producer] = N
        total = sum(expected.values())
        harness.wait_until(lambda: n1.depth("audit") == total
                           and n2.depth("audit") == total, timeout=60,
                           msg="n1 and n2 converged without n3")
        for n in (n1, n2):
            # The dead peer is noticed by its missing heartbeats.
            to_n3 = harness.wait_until(
                lambda: [ln for ln in fedlib.fed_links(n)
                         if ln["peer"] == "n3"
                         and ln["state"] == "reconnecting"],
                timeout=20, msg="%s's link to n3 reconnecting" % n.id)
            self.assertGreaterEqual(to_n3[0]["backlog_messages"], 2 * N,
                                    to_n3)
            self.assertGreaterEqual(to_n3[0]["backlog_bytes"],
                                    to_n3[0]["backlog_messages"] * SIZE,
                                    to_n3)

        # 3. The other side of the partition: n3 alone (its peers down)
        #    takes publishes of its own.
        n1.kill9()
        n2.kill9()
        n3.start()
        fedlib.publish(n3, "cn3", N, size=SIZE)
        expected["cn3"] = N
        self.assertEqual(n3.depth("audit"), 3 * N + N,
                         "n3 alone: its phase 1 messages and its own")
        for ln in fedlib.fed_links(n3):
            self.assertNotEqual(ln["state"], "running", ln)

        # 4. Heal: the peers come back while every member publishes again.
        n1.start()
        n2.start()
        pubs = [fedlib.Publisher(self, n, "d" + n.id, N, size=SIZE)
                for n in nodes]
        for p in pubs:
            p.check()
            expected[p.producer] = N
        total = sum(expected.values())
        fedlib.wait_converged(nodes, total, timeout=90)
        self.links_healthy(nodes)

        # Same set everywhere, each once, per-origin order kept.
        per = {n.id: fedlib.drain(n, total) for n in nodes}
        fedlib.check_same_everywhere(self, per, expected)
        for n in nodes:
            self.assertEqual(n.depth("audit"), 0)

    def test_history_queue_refuses_consumers(self):
        """The history "~fed.audit" is the federation's: a consume or get
        there is refused with a message naming the queue to use."""
        nodes = fedlib.make_members(self, ["n1", "n2"], "mesh")
        fedlib.start_all(nodes)
        fedlib.publish(nodes[0], "p", 10)
        fedlib.wait_converged(nodes, 10, timeout=30)
        for args in (("get", "~fed.audit"),
                     ("consume", "~fed.audit", "--count", 1)):
            r = nodes[0].fedq(*args)
            self.assertEqual(r.rc, 1, r)
            self.assertIn("history of a federated queue", r.stderr)
            self.assertIn('"audit" instead', r.stderr)
            self.assertIn("EDENIED", r.stderr)
        self.assertEqual(nodes[0].depth("audit"), 10)

    def test_member_down_large_backlog(self):
        """Regression: a member that comes back to a backlog larger than
        one stream's window (20000 events) from peers that each have two
        connections to it (mesh) lost events when both connections sent
        parts of one origin's history (fixed in federation/fed.c)."""
        count = 150000 if LONG else 100000
        nodes = fedlib.make_members(self, ["n1", "n2", "n3"], "mesh")
        fedlib.start_all(nodes)
        n1, n2, n3 = nodes
        fedlib.publish(n1, "warm", 100)
        fedlib.wait_converged(nodes, 100, timeout=30)
        n3.kill9()
        pubs = [fedlib.Publisher(self, n, "p" + n.id, count, size=64)
                for n in (n1, n2)]
        for p in pubs:
            p.check()
        total = 100 + 2 * count
        n3.start()
        fedlib.wait_converged(nodes, total, timeout=60)
        msgs = fedlib.drain(n3, total)
        fedlib.check_same_everywhere(
            self, {"n3": msgs}, {"warm": 100, "pn1": count, "pn2": count})


if __name__ == "__main__":
    unittest.main()
