"""tests/integration/test_shovel_deadletter.py — what a shovel does with a
message the destination keeps refusing (docs/protocol.md §9.4, §9.5):
- an unroutable message is retried max_attempts times, then dead-lettered
  at the source into NAME.dlq (counted as dead_lettered_total), and the
  link carries on with the next messages, in order;
- a cycle of two shovels (A.q -> B, B.q -> A) does not loop: a message
  published at A reaches B once and ends in B's dead-letter queue
  (loops_total), never back in A's queue."""

import unittest

import harness
from test_shovel_common import consume_all, link, shovel, wait_drained


def header(msg, key):
    return (msg.get("headers") or {}).get(key)


class ShovelDeadLetterTest(harness.FedqTestCase):

    def test_unroutable_goes_to_dlq_after_max_attempts(self):
        # B routes only order.created; A keeps each message's own key.
        b = self.node("bdl", queues=[{"name": "orders", "durable": True}],
                      exchanges=[{"name": "orders", "type": "direct"}],
                      bindings=[{"exchange": "orders", "queue": "orders",
                                 "key": "order.created"}])
        a = self.node("adl", queues=[{"name": "outbox", "durable": True}],
                      exchanges=[{"name": "events", "type": "topic"}],
                      bindings=[{"exchange": "events", "queue": "outbox",
                                 "key": "#"}],
                      shovels=[shovel("to-b", "outbox", b.endpoint,
                                      exchange="orders", max_attempts=2)])
        b.start()
        a.start()
        a.cli.check("publish", "events", "order.created", "--count", 5,
                    "--id", "ok1")
        a.cli.check("publish", "events", "order.bogus", "--id", "bad")
        a.cli.check("publish", "events", "order.created", "--count", 5,
                    "--id", "ok2")

        ln = harness.wait_until(
            lambda: (lambda x: x if x["dead_lettered_total"] >= 1 else None)(
                link(a, "to-b")), timeout=30, msg="dead-lettered")
        ln = wait_drained(a, "to-b", timeout=30)
        self.assertEqual(ln["dead_lettered_total"], 1, ln)
        self.assertGreaterEqual(ln["rejected_total"], 2,
                                "dead-lettered before max_attempts: %r" % ln)
        self.assertEqual(ln["confirmed_total"], 10, ln)
        self.assertEqual(ln["loops_total"], 0, ln)

        # The refused message is in the dlq at the source, with its cause.
        dead = consume_all(a, "to-b.dlq", expected=1)
        self.assertEqual(dead[0]["message_id"], "bad")
        self.assertEqual(dead[0]["routing_key"], "order.bogus")
        self.assertEqual(dead[0]["origin"], "adl")
        self.assertIn("EUNROUTABLE", header(dead[0], "x-death-reason") or "",
                      dead[0])

        # The rest went through, in order, once each.
        msgs = consume_all(b, "orders", expected=10)
        self.assertEqual([m["message_id"] for m in msgs],
                         ["ok1-%d" % i for i in range(1, 6)]
                         + ["ok2-%d" % i for i in range(1, 6)])

        # The link still runs: a later message goes through.
        a.cli.check("publish", "events", "order.created", "--id", "after")
        self.assertEqual(consume_all(b, "orders", expected=1)[0]
                         ["message_id"], "after")

    def test_two_node_cycle_does_not_loop(self):
        b = self.node("bcy", queues=[{"name": "q", "durable": True}],
                      exchanges=[{"name": "in", "type": "fanout"}],
                      bindings=[{"exchange": "in", "queue": "q", "key": ""}])
        a = self.node("acy", queues=[{"name": "q", "durable": True}],
                      exchanges=[{"name": "in", "type": "fanout"}],
                      bindings=[{"exchange": "in", "queue": "q", "key": ""}],
                      shovels=[shovel("a-to-b", "q", b.endpoint,
                                      exchange="in")])
        b.sections["shovels"] = [shovel("b-to-a", "q", a.endpoint,
                                        exchange="in")]
        b.start()
        a.start()
        a.cli.check("publish", "", "q", "--id", "round")

        # B's shovel sent it to A, which refused it (ELOOP): dead-lettered
        # at B at once (no retries), counted as a loop.
        lb = harness.wait_until(
            lambda: (lambda x: x if x["dead_lettered_total"] >= 1 else None)(
                link(b, "b-to-a")), timeout=30, msg="loop dead-lettered at B")
        self.assertEqual(lb["loops_total"], 1, lb)
        self.assertEqual(lb["dead_lettered_total"], 1, lb)
        self.assertEqual(lb["confirmed_total"], 0, lb)
        self.assertEqual(lb["rejected_total"], 1, lb)
        wait_drained(b, "b-to-a", timeout=30)
        la = wait_drained(a, "a-to-b", timeout=30)
        self.assertEqual(la["forwarded_total"], 1,
                         "A forwarded the message again: it came back to "
                         "A's q: %r" % la)
        self.assertEqual(la["confirmed_total"], 1, la)
        self.assertEqual(la["dead_lettered_total"], 0, la)
        self.assertEqual(a.depth("q"), 0)
        self.assertEqual(b.depth("q"), 0)
        self.assertIsNone(a.queue("a-to-b.dlq"), "A dead-lettered something")

        dead = consume_all(b, "b-to-a.dlq", expected=1)
        m = dead[0]
        self.assertEqual((m["message_id"], m["origin"]), ("round", "acy"))
        self.assertEqual(header(m, "x-fedq-shovel"), "a-to-b", m)
        self.assertEqual(header(m, "x-fedq-source"), "acy", m)
        self.assertIn("loop", header(m, "x-death-reason") or "", m)

        # A message published at B crosses to A once and stops at A's dlq.
        b.cli.check("publish", "", "q", "--id", "from-b")
        la = harness.wait_until(
            lambda: (lambda x: x if x["loops_total"] >= 1 else None)(
                link(a, "a-to-b")), timeout=30, msg="loop dead-lettered at A")
        back = consume_all(a, "a-to-b.dlq", expected=1)
        self.assertEqual((back[0]["message_id"], back[0]["origin"]),
                         ("from-b", "bcy"))
        self.assertEqual(link(b, "b-to-a")["confirmed_total"], 1)


if __name__ == "__main__":
    unittest.main()
