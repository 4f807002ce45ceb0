"""tests/integration/test_shovel_basics.py — the shovel's contract in
small (DESIGN.md §2 "Shovel", docs/protocol.md §9):
- it is the only consumer of its source queue: a client consume or get
  there is refused with a clear error (EDENIED);
- a forwarded message keeps its identity (id, origin, seq, message_id,
  published_at, headers) and gains x-fedq-shovel and x-fedq-source;
- delete_after: N moves N messages, then the link is stopped and the
  rest stays in the source queue, which is free again;
- ack_mode on-publish and no-ack settle each message once."""

import unittest

import harness
from test_shovel_common import consume_all, link, shovel, wait_drained

IDENTITY = ("id", "origin", "seq", "message_id", "published_at", "body")


class ShovelBasicsTest(harness.FedqTestCase):

    def test_source_queue_refuses_clients(self):
        b = self.node("bref", queues=[{"name": "inbox"}])
        a = self.node("aref", queues=[{"name": "outbox", "durable": True}],
                      shovels=[shovel("out", "outbox", b.endpoint,
                                      queue="inbox")])
        b.start()
        a.start()
        for args in (("consume", "outbox", "--count", 1, "--timeout", 2000),
                     ("get", "outbox")):
            r = a.fedq(*args)
            self.assertEqual(r.rc, 1, r)
            self.assertIn("EDENIED", r.stderr, r)
            self.assertIn('shovel "out"', r.stderr, r)
            self.assertIn("outbox", r.stderr, r)
        # ...and the shovel still has it: a message published now crosses.
        a.cli.check("publish", "", "outbox", "--id", "x")
        self.assertEqual(consume_all(b, "inbox", expected=1)[0]
                         ["message_id"], "x")

    def test_forwarded_message_keeps_identity(self):
        b = self.node("bid", queues=[{"name": "inbox"}])
        # A fanout puts the same message (one origin seq) in `outbox`, which
        # the shovel forwards, and in `copy`, read at A for comparison.
        a = self.node("aid", queues=[{"name": "outbox", "durable": True},
                                     {"name": "copy", "durable": True}],
                      exchanges=[{"name": "fan", "type": "fanout"}],
                      bindings=[{"exchange": "fan", "queue": "outbox",
                                 "key": ""},
                                {"exchange": "fan", "queue": "copy",
                                 "key": ""}],
                      shovels=[shovel("a-to-b", "outbox", b.endpoint,
                                      queue="inbox")])
        b.start()
        a.start()
        a.cli.check("publish", "fan", "k.1", "--count", 20, "--id", "m",
                    "--header", "tenant=acme", "--header", "trace=7")
        here = consume_all(a, "copy", expected=20)
        there = consume_all(b, "inbox", expected=20)
        ln = wait_drained(a, "a-to-b")
        self.assertEqual(ln["confirmed_total"], 20, ln)
        self.assertEqual(ln["peer"], "bid", ln)
        self.assertEqual(ln["kind"], "shovel", ln)
        for x, y in zip(here, there):
            for field in IDENTITY:
                self.assertEqual(x[field], y[field],
                                 "%s changed across the shovel: %r -> %r"
                                 % (field, x, y))
            self.assertEqual(y["origin"], "aid")
            self.assertEqual(y["id"], "aid:%d" % y["seq"])
            self.assertEqual(y["headers"].get("x-fedq-shovel"), "a-to-b", y)
            self.assertEqual(y["headers"].get("x-fedq-source"), "aid", y)
            self.assertEqual(y["headers"].get("tenant"), "acme", y)
            self.assertEqual(y["headers"].get("trace"), "7", y)
            self.assertFalse(y["redelivered"], y)
            # destination.queue: through the default exchange, key = queue.
            self.assertEqual((y["exchange"], y["routing_key"]),
                             ("", "inbox"), y)
        self.assertEqual([m["message_id"] for m in there],
                         ["m-%d" % i for i in range(1, 21)])

    def test_delete_after_count_stops(self):
        b = self.node("bdel", queues=[{"name": "inbox"}])
        a = self.node("adel", queues=[{"name": "outbox", "durable": True}],
                      shovels=[shovel("five", "outbox", b.endpoint,
                                      queue="inbox", delete_after=5)])
        b.start()
        a.start()
        a.cli.check("publish", "", "outbox", "--count", 8, "--id", "d")
        ln = harness.wait_until(
            lambda: (lambda x: x if x["state"] == "stopped" else None)(
                link(a, "five")), timeout=30, msg="link stopped")
        self.assertEqual(ln["confirmed_total"], 5, ln)
        self.assertEqual(ln["backlog_messages"], 0, ln)
        msgs = consume_all(b, "inbox", expected=5)
        self.assertEqual([m["message_id"] for m in msgs],
                         ["d-%d" % i for i in range(1, 6)])
        # The rest stays at the source, which clients may consume again.
        self.assertEqual(a.depth("outbox"), 3)
        rest = consume_all(a, "outbox", expected=3)
        self.assertEqual([m["message_id"] for m in rest],
                         ["d-6", "d-7", "d-8"])
        # A stopped link moves nothing more, not even after a restart of
        # its node (the stop point is durable).
        a.cli.check("publish", "", "outbox", "--count", 2, "--id", "late")
        for restart in (a.restart, lambda: a.restart(kill=True)):
            restart()
            self.assertEqual(link(a, "five")["state"], "stopped")
            self.assertEqual(a.depth("outbox"), 2)
            self.assertEqual(b.depth("inbox"), 0)
            self.assertEqual(link(a, "five")["confirmed_total"], 0)
        self.assertEqual(len(consume_all(a, "outbox", expected=2)), 2)

    def test_delete_after_survives_a_crash_midway(self):
        # 2 of 4 moved, then A crashes: after the restart the link moves
        # 2 more, not 4 (the stop point is a durable link sequence).
        b = self.node("bdel2", queues=[{"name": "inbox"}])
        a = self.node("adel2", queues=[{"name": "outbox", "durable": True}],
                      shovels=[shovel("four", "outbox", b.endpoint,
                                      queue="inbox", delete_after=4)])
        a.start()
        a.cli.check("publish", "", "outbox", "--count", 2, "--id", "e")
        b.start()
        harness.wait_until(lambda: b.depth("inbox") == 2, timeout=30,
                           msg="2 moved")
        a.restart(kill=True)
        a.cli.check("publish", "", "outbox", "--count", 5, "--id", "f")
        ln = harness.wait_until(
            lambda: (lambda x: x if x["state"] == "stopped" else None)(
                link(a, "four")), timeout=30, msg="link stopped")
        self.assertEqual(ln["confirmed_total"], 2, ln)
        msgs = consume_all(b, "inbox", expected=4)
        self.assertEqual([m["message_id"] for m in msgs],
                         ["e-1", "e-2", "f-1", "f-2"])
        self.assertEqual(a.depth("outbox"), 3)

    def test_large_messages_fill_the_window(self):
        # The window holds at most 256 MiB: with 16 MiB messages the 17th
        # waits until confirms make room. It used to wait for ever (the
        # link left its consumer blocked): 4 stayed at the source.
        b = self.node("bbig", queues=[{"name": "inbox"}])
        a = self.node("abig", queues=[{"name": "outbox", "durable": True}],
                      shovels=[shovel("big", "outbox", b.endpoint,
                                      queue="inbox")])
        a.start()
        a.cli.check("publish", "", "outbox", "--count", 20, "--size",
                    "16MiB", timeout_s=120)
        # B is not up yet: the link holds a full window, the rest waits.
        b.start()
        ln = wait_drained(a, "big", timeout=120)
        self.assertEqual(ln["confirmed_total"], 20, ln)
        q = b.queue("inbox")
        self.assertEqual(q["depth"], 20, q)
        self.assertGreaterEqual(q["bytes"], 20 * 16 * 1024 * 1024, q)

    def test_weaker_ack_modes_settle_each_message_once(self):
        # on-publish and no-ack settle at the source as soon as a message
        # is sent, inside the loop turn that dispatched it; those
        # settlements must land in the next commit exactly once: every
        # message crosses once, the source holds nothing afterwards
        # (live_refs 0), and a restart of the source forwards nothing
        # again (its settlements were durable).
        for mode in ("on-publish", "no-ack"):
            with self.subTest(ack_mode=mode):
                tag = mode.replace("-", "")
                b = self.start_node("bw" + tag, queues=[{"name": "inbox"}])
                a = self.start_node(
                    "aw" + tag, queues=[{"name": "outbox", "durable": True}],
                    shovels=[shovel("weak", "outbox", b.endpoint,
                                    queue="inbox", ack_mode=mode)])
                a.cli.check("publish", "", "outbox", "--count", 200, "--id",
                            "w")
                msgs = consume_all(b, "inbox", expected=200)
                self.assertEqual([m["message_id"] for m in msgs],
                                 ["w-%d" % i for i in range(1, 201)])
                ln = wait_drained(a, "weak")
                self.assertEqual((ln["forwarded_total"],
                                  ln["confirmed_total"], ln["lost_total"]),
                                 (200, 200, 0), ln)
                self.assertEqual(a.status()["node"]["store"]["live_refs"],
                                 0)
                a.restart()
                harness.wait_until(lambda: link(a, "weak")["state"] ==
                                   "running", timeout=30,
                                   msg="link running after the restart")
                a.cli.check("publish", "", "outbox", "--count", 10, "--id",
                            "after")
                msgs = consume_all(b, "inbox", expected=10)
                self.assertEqual([m["message_id"] for m in msgs],
                                 ["after-%d" % i for i in range(1, 11)])
                self.assertEqual(a.depth("outbox"), 0)
                self.assertEqual(a.status()["node"]["store"]["live_refs"],
                                 0)


if __name__ == "__main__":
    unittest.main()
