"""tests/integration/test_fed_global.py — `consume: global` (DESIGN.md §2):
an ack on one member is replicated as a tombstone and removes the message
on every member, so the federated queue is one work queue across sites.
During a partition both sides may each deliver the same message once:
measured here (and printed), never lost, and after the heal a message
consumed on either side is gone everywhere.

The partition is real: every link goes through a fault proxy
(tests/fault/fault_proxy) that resets its connections and refuses new
ones, while all three members keep running and serving consumers.

    FEDQ_BUILD=build python3 tests/integration/run.py test_fed_global
"""

import os
import unittest

import fedlib
import harness

LONG = os.environ.get("FEDQ_LONG") == "1"
N = 10000 if LONG else 1000


class FedGlobalTest(harness.FedqTestCase):

    def test_ack_removes_everywhere(self):
        nodes = fedlib.make_members(self, ["n1", "n2", "n3"], "mesh",
                                    consume="global")
        n1, n2, n3 = nodes
        fedlib.start_all(nodes)
        fedlib.publish(n1, "p1", N)
        fedlib.publish(n2, "p2", N)
        fedlib.wait_converged(nodes, 2 * N, timeout=60)

        # A third consumed at n3 leaves every member.
        got = fedlib.drain(n3, 2 * N // 3)
        fedlib.check_member(self, "n3", got)
        fedlib.wait_converged(nodes, 2 * N - len(got), timeout=60)

        # The rest consumed at n1 and n2 (a shared work queue): each
        # message delivered once in all, every member ends empty.
        rest = 2 * N - len(got)
        a = fedlib.drain(n1, rest // 2)
        fedlib.wait_converged(nodes, rest - len(a), timeout=60)
        b = fedlib.drain(n2, rest - len(a))
        fedlib.wait_converged(nodes, 0, timeout=60)
        ids = [m["id"] for m in got + a + b]
        self.assertEqual(len(ids), len(set(ids)),
                         "a message delivered twice without a partition")
        self.assertEqual(len(ids), 2 * N)
        for n in nodes:
            r = n.fedq("get", "audit")
            self.assertEqual(r.rc, 1, "%s still delivers: %s" % (n.id,
                                                                  r.stdout))

    @unittest.skipUnless(fedlib.have_proxy(), "needs tests/fault/fault_proxy")
    def test_partition_both_sides_deliver_once_never_lost(self):
        proxies = {}
        nodes = fedlib.make_members(self, ["n1", "n2", "n3"], "mesh",
                                    consume="global", proxies=proxies)
        n1, n2, n3 = nodes
        fedlib.start_all(nodes)
        fedlib.publish(n1, "p1", N)
        fedlib.wait_converged(nodes, N, timeout=60)

        # Partition n3 from n1 and n2 (both directions), all keep running.
        fedlib.cut(proxies, "n3")
        harness.wait_until(lambda: all(
            ln["state"] != "running" for ln in fedlib.fed_links(n3)),
            timeout=20, msg="n3's links down")
        harness.wait_until(lambda: all(
            ln["state"] != "running" for n in (n1, n2)
            for ln in fedlib.fed_links(n) if ln["peer"] == "n3"),
            timeout=20, msg="n1's and n2's links to n3 down")

        # Both sides consume at once: n3 alone, and n1 on the majority.
        k = N // 4
        outs = {}
        procs = {}
        for n in (n3, n1):
            outs[n.id] = os.path.join(self.tmp, "consume-%s.jsonl" % n.id)
            procs[n.id] = n.cli.start("consume", "audit", "--count", k,
                                      "--json", stdout_path=outs[n.id])
        for nid, p in procs.items():
            harness.wait_until(lambda: p.poll() is not None, timeout=60,
                               msg="consumer at %s" % nid)
            harness.untrack(p)
            self.assertEqual(p.returncode, 0, "consumer at %s" % nid)
        side = {}
        for nid, path in outs.items():
            with open(path) as f:
                side[nid] = harness.parse_json_lines(f.read())
            self.assertEqual(len(side[nid]), k)
            fedlib.check_member(self, nid, side[nid])
        a = {m["id"] for m in side["n1"]}
        b = {m["id"] for m in side["n3"]}
        both = a & b
        # Each side's view: n3 lost k of its own, n1 and n2 lost n1's k
        # (n2 got n1's tombstones: it is on the same side).
        harness.wait_until(lambda: n2.depth("audit") == N - k, timeout=30,
                           msg="n2 sees n1's acks during the partition")
        self.assertEqual(n3.depth("audit"), N - k)

        # Heal: each side's tombstones reach the other; what either side
        # consumed is gone everywhere.
        fedlib.heal(proxies)
        union = a | b
        fedlib.wait_converged(nodes, N - len(union), timeout=60)
        rest = fedlib.drain(n2, N - len(union))
        r = {m["id"] for m in rest}
        self.assertEqual(r & union, set(),
                         "a message consumed during the partition was "
                         "delivered again after the heal")
        self.assertEqual(len(union | r), N, "messages lost")
        fedlib.wait_converged(nodes, 0, timeout=60)
        print("\n  partition: n1 side and n3 side consumed %d each; %d "
              "messages (%.0f%%) delivered on both sides, 0 lost, 0 "
              "delivered after the heal" % (k, len(both),
                                            100.0 * len(both) / k))


if __name__ == "__main__":
    unittest.main()
