"""tests/integration/test_node_semantics.py — the broker of DESIGN.md §1
through the `fedq` command: every exchange type, every queue option, every
settle path, the errors a publisher or client gets, and declarations made
in the config or by `fedq declare` surviving a restart.

Settlements the command line does not offer (nack, reject, a consumer
that holds its deliveries) go through the test tool fedq_raw
(tests/tools/fedq_raw.c, via hostile.py)."""

import json
import os
import re
import unittest

import harness
import hostile

SUMMARY = re.compile(r"published (\d+), confirmed (\d+), returned (\d+)")


def summary(result):
    """(published, confirmed, returned) from a `fedq publish` run."""
    m = SUMMARY.search(result.stderr)
    if not m:
        raise AssertionError("no publish summary in %r" % (result,))
    return tuple(int(x) for x in m.groups())


class NodeSemanticsTest(harness.FedqTestCase):

    # -- helpers ---------------------------------------------------------

    def pub(self, node, exchange, key, *args, ok=True):
        r = node.fedq("publish", exchange, key, *args, timeout_s=60)
        if ok:
            self.assertEqual(r.rc, 0, r)
        return r

    def take(self, node, queue, n, *args):
        """Consume n messages (acking them) and check nothing is left."""
        msgs = node.cli.consume(queue, n, *args) if n else []
        self.assertEqual(len(msgs), n)
        return msgs

    def bodies(self, msgs):
        return [m.get("body") for m in msgs]

    def depths(self, node):
        return {q["name"]: q["depth"] for q in node.status()["queues"]}

    def stats(self, node):
        return node.status()["node"]["stats"]

    def raw(self, node):
        return hostile.Raw(node.endpoint, self.tmp)

    def raw_settle(self, node, queue, how, count=1):
        """GET `count` messages of queue over a raw session and settle each
        with how (ack, nack, reject); return the replies."""
        msgs = [[hostile.hello()]]
        msgs += [[hostile.frame("GET", rid=10 + i, q=queue)]
                 for i in range(count)]
        r = self.raw(node).send(msgs, settle=how, idle_ms=500,
                                expect=1 + count)
        self.assertEqual(r.rc, 0, r)
        delivers = [x for x in r.replies if x.get("cmd_name") == "DELIVER"]
        self.assertEqual(len(delivers), count, r)
        return delivers

    # -- exchanges -------------------------------------------------------

    def test_direct_fanout_topic_and_default_exchanges(self):
        topic_binds = {"qa": "order.*", "qb": "order.#", "qc": "#",
                       "qd": "*.created", "qe": "order.*.eu"}
        node = self.start_node(
            "route",
            exchanges=[{"name": "dx", "type": "direct"},
                       {"name": "fx", "type": "fanout"},
                       {"name": "tx", "type": "topic"}],
            queues=[{"name": n} for n in
                    ("d1", "d2", "f1", "f2", "qa", "qb", "qc", "qd", "qe")],
            bindings=[{"exchange": "dx", "queue": "d1", "key": "k1"},
                      {"exchange": "dx", "queue": "d2", "key": "k2"},
                      {"exchange": "fx", "queue": "f1", "key": "ignored"},
                      {"exchange": "fx", "queue": "f2"}]
            + [{"exchange": "tx", "queue": q, "key": k}
               for q, k in topic_binds.items()])

        # direct: exact key only.
        self.pub(node, "dx", "k1", "one")
        self.pub(node, "dx", "k2", "two")
        d = self.depths(node)
        self.assertEqual((d["d1"], d["d2"]), (1, 1))
        self.assertEqual(self.bodies(self.take(node, "d1", 1)), ["one"])
        self.assertEqual(self.bodies(self.take(node, "d2", 1)), ["two"])

        # fanout: every bound queue, whatever the key; the same message
        # (one identity) in both.
        self.pub(node, "fx", "whatever", "fan")
        a, b = self.take(node, "f1", 1), self.take(node, "f2", 1)
        self.assertEqual(a[0]["id"], b[0]["id"])
        self.assertEqual(a[0]["exchange"], "fx")
        self.assertEqual(a[0]["routing_key"], "whatever")

        # topic: * one word, # zero or more words.
        expect = {
            "order.created": {"qa", "qb", "qc", "qd"},
            "order": {"qb", "qc"},
            "order.created.eu": {"qb", "qc", "qe"},
            "user.created": {"qc", "qd"},
            "order.x.y.eu": {"qb", "qc"},
            "x": {"qc"},
        }
        for key, queues in expect.items():
            with self.subTest(key=key):
                before = self.depths(node)
                self.pub(node, "tx", key, key)
                after = self.depths(node)
                grew = {q for q in topic_binds if after[q] > before[q]}
                self.assertEqual(grew, queues)
                for q in queues:
                    self.assertEqual(after[q], before[q] + 1)
        for q in topic_binds:
            self.take(node, q, self.depths(node)[q])

        # The default exchange routes to the queue named by the key.
        self.pub(node, "", "d1", "default")
        self.assertEqual(self.bodies(self.take(node, "d1", 1)), ["default"])

    def test_unroutable_missing_exchange_missing_queue(self):
        node = self.start_node(
            "errors", exchanges=[{"name": "dx", "type": "direct"}],
            queues=[{"name": "q"}])
        before = self.stats(node)["unroutable_total"]
        r = self.pub(node, "dx", "nobody", "--count", 3, ok=False)
        self.assertEqual(r.rc, 1)
        self.assertEqual(summary(r), (3, 0, 3))
        self.assertIn("EUNROUTABLE", r.stderr)
        r = self.pub(node, "", "no-such-queue", ok=False)
        self.assertEqual(r.rc, 1)
        self.assertIn("EUNROUTABLE", r.stderr)
        self.assertEqual(self.stats(node)["unroutable_total"], before + 4)
        # A missing exchange is ENOTFOUND, in publish and bind.
        r = self.pub(node, "nope", "k", ok=False)
        self.assertEqual(r.rc, 1)
        self.assertIn("ENOTFOUND", r.stderr)
        r = node.fedq("bind", "nope", "q", "k")
        self.assertEqual(r.rc, 1)
        self.assertIn("ENOTFOUND", r.stderr)
        # A missing queue: consume, get, bind, passive declare.
        for argv in (("consume", "nope", "--count", 1),
                     ("get", "nope"),
                     ("bind", "dx", "nope", "k"),
                     ("declare", "queue", "nope", "--passive"),
                     ("purge", "nope"),
                     ("delete", "queue", "nope")):
            with self.subTest(argv=argv):
                r = node.fedq(*argv)
                self.assertEqual(r.rc, 1, r)
                self.assertIn("ENOTFOUND", r.stderr)
        # Nothing was stored by any of it.
        self.assertEqual(self.depths(node), {"q": 0})
        # An unknown command word is a usage error of the client.
        r = node.fedq("frobnicate")
        self.assertEqual(r.rc, 2, r)

    def test_oversized_message_is_refused_and_node_keeps_serving(self):
        node = self.start_node("big", queues=[{"name": "q"}],
                               node_extra={"max_message_bytes": "1KiB"})
        r = self.pub(node, "", "q", "--size", 2048, ok=False)
        self.assertEqual(r.rc, 1)
        self.assertEqual(summary(r), (1, 0, 1))
        self.assertIn("ETOOBIG", r.stderr)
        self.assertEqual(node.depth("q"), 0)
        # A batch with a few too big: those are returned, the rest stored.
        self.pub(node, "", "q", "--size", 1024, "--count", 5)
        self.assertEqual(node.depth("q"), 5)
        self.assertEqual(len(self.take(node, "q", 5)), 5)
        self.assertTrue(node.running())

    # -- queue options -----------------------------------------------------

    def test_durable_and_transient_queues_across_restart(self):
        node = self.start_node("durable", queues=[
            {"name": "cfg-durable", "durable": True},
            {"name": "cfg-transient", "durable": False}])
        node.cli.check("declare", "queue", "cli-durable", "--durable")
        node.cli.check("declare", "queue", "cli-transient", "--transient")
        for q in ("cfg-durable", "cfg-transient", "cli-durable",
                  "cli-transient"):
            self.pub(node, "", q, "--count", 5)
        self.assertEqual(set(self.depths(node).values()), {5})
        for how in ("stop", "kill9"):
            with self.subTest(restart=how):
                getattr(node, how)()
                node.start()
                d = self.depths(node)
                self.assertEqual(d["cfg-durable"], 5)
                self.assertEqual(d["cli-durable"], 5)
                # A transient queue from the config is declared again,
                # empty; one declared by a client is gone.
                self.assertEqual(d["cfg-transient"], 0)
                self.assertNotIn("cli-transient", d)

    def test_max_length_drop_head_and_dead_letter(self):
        node = self.start_node(
            "maxlen",
            exchanges=[{"name": "dlx", "type": "direct"}],
            queues=[{"name": "q", "max_length": 3},
                    {"name": "qd", "max_length": 3,
                     "dead_letter_exchange": "dlx",
                     "dead_letter_routing_key": "dead"},
                    {"name": "dlq"}],
            bindings=[{"exchange": "dlx", "queue": "dlq", "key": "dead"}])
        for q in ("q", "qd"):
            self.pub(node, "", q, "--count", 5)
        d = self.depths(node)
        self.assertEqual((d["q"], d["qd"], d["dlq"]), (3, 3, 2))
        # The oldest went: what is left is the newest three.
        self.assertEqual(self.bodies(self.take(node, "q", 3)),
                         ["message 3", "message 4", "message 5"])
        dead = self.take(node, "dlq", 2)
        self.assertEqual(self.bodies(dead), ["message 1", "message 2"])
        for m in dead:
            self.assertEqual(m["headers"].get("x-death-reason"), "maxlen")
            self.assertEqual(m["headers"].get("x-death-queue"), "qd")
            self.assertEqual(m["routing_key"], "dead")

    def test_max_length_reject_publish(self):
        node = self.start_node("reject", queues=[
            {"name": "q", "max_length": 3, "overflow": "reject-publish"}])
        r = self.pub(node, "", "q", "--count", 5, "--id", "r", ok=False)
        self.assertEqual(r.rc, 1)
        self.assertEqual(summary(r), (5, 3, 2))
        self.assertIn("EFULL", r.stderr)
        self.assertEqual(node.depth("q"), 3)
        # Nothing of the returned publishes was stored: not after a
        # restart either.
        node.kill9()
        node.start()
        self.assertEqual(node.depth("q"), 3)
        self.assertEqual([m["message_id"] for m in self.take(node, "q", 3)],
                         ["r-1", "r-2", "r-3"])
        # Room again: publishes are accepted.
        self.pub(node, "", "q", "--count", 3)

    def test_max_bytes(self):
        node = self.start_node("bytes", queues=[
            {"name": "drop", "max_bytes": 1000},
            {"name": "full", "max_bytes": 1000,
             "overflow": "reject-publish"}])
        self.pub(node, "", "drop", "--count", 5, "--size", 300)
        q = node.queue("drop")
        self.assertEqual(q["depth"], 3)
        self.assertLessEqual(q["bytes"], 1000)
        self.assertEqual([m["body"][:9] for m in self.take(node, "drop", 3)],
                         ["message 3", "message 4", "message 5"])
        r = self.pub(node, "", "full", "--count", 5, "--size", 300, ok=False)
        self.assertEqual(summary(r), (5, 3, 2))
        self.assertIn("EFULL", r.stderr)
        self.assertEqual(node.depth("full"), 3)

    def test_message_ttl_queue_and_per_message_with_dead_letters(self):
        node = self.start_node(
            "ttl",
            queues=[{"name": "short", "message_ttl": "300ms",
                     "dead_letter_exchange": "",
                     "dead_letter_routing_key": "expired"},
                    {"name": "plain"},
                    {"name": "expired"}])
        self.pub(node, "", "short", "--count", 3)
        self.pub(node, "", "plain", "dies", "--ttl", "200ms")
        self.pub(node, "", "plain", "lives")
        harness.wait_until(lambda: node.depth("short") == 0
                           and node.depth("plain") == 1, timeout=10,
                           msg="expired messages gone")
        self.assertEqual(self.bodies(self.take(node, "plain", 1)),
                         ["lives"])
        dead = self.take(node, "expired", 3)
        self.assertEqual(self.bodies(dead),
                         ["message 1", "message 2", "message 3"])
        for m in dead:
            self.assertEqual(m["headers"].get("x-death-reason"), "expired")
            self.assertEqual(m["headers"].get("x-death-queue"), "short")
        self.assertGreaterEqual(self.stats(node)["expired_total"], 4)

    def test_max_priority_ordering(self):
        node = self.start_node("prio", queues=[{"name": "p",
                                                "max_priority": 5}])
        for body, prio in (("p1", 1), ("p5a", 5), ("p0", 0), ("p3", 3),
                           ("p9", 9), ("p5b", 5)):
            self.pub(node, "", "p", body, "--priority", prio)
        # Highest first (9 counts as the queue's maximum, 5), FIFO within
        # a priority.
        self.assertEqual(self.bodies(self.take(node, "p", 6)),
                         ["p5a", "p9", "p5b", "p3", "p1", "p0"])

    def test_single_active_consumer(self):
        node = self.start_node("sac", queues=[
            {"name": "s", "single_active_consumer": True}])
        self.pub(node, "", "s", "--count", 5)
        out = os.path.join(self.tmp, "holder.out")
        holder = self.raw(node).start_hold(
            [[hostile.hello()], [hostile.consume("s", prefetch=1)]], out)
        harness.wait_until(lambda: any(r.get("cmd_name") == "DELIVER"
                                       for r in hostile.read_replies(out)),
                           timeout=10, msg="first consumer's delivery")
        q = node.queue("s")
        self.assertEqual((q["unacked"], q["consumers"]), (1, 1))
        # A second consumer gets nothing while the first is active (it
        # waits out its --timeout and exits 1).
        r = node.fedq("consume", "s", "--count", 1, "--timeout", 1000)
        self.assertEqual(r.rc, 1, r)
        self.assertEqual(node.queue("s")["unacked"], 1)
        # The first one leaves: the next takes over and gets everything,
        # the message the first held first, marked redelivered.
        p = node.cli.start("consume", "s", "--count", 5, "--json",
                           stdout_path=os.path.join(self.tmp, "second.out"))
        hostile.stop_hold(holder)
        harness.wait_until(lambda: p.poll() is not None, timeout=20,
                           msg="second consumer done")
        self.assertEqual(p.returncode, 0)
        with open(os.path.join(self.tmp, "second.out")) as f:
            msgs = [json.loads(ln) for ln in f if ln.startswith("{")]
        self.assertEqual(self.bodies(msgs),
                         ["message %d" % i for i in range(1, 6)])
        self.assertTrue(msgs[0]["redelivered"])
        self.assertFalse(any(m["redelivered"] for m in msgs[1:]))

    def test_auto_delete(self):
        node = self.start_node("autodel")
        node.cli.check("declare", "queue", "tmp", "--auto-delete")
        self.pub(node, "", "tmp", "--count", 2)
        # No consumer yet: it stays.
        self.assertEqual(node.depth("tmp"), 2)
        self.take(node, "tmp", 1)
        harness.wait_until(lambda: node.queue("tmp") is None, timeout=10,
                           msg="auto-deleted once its consumer left")
        r = self.pub(node, "", "tmp", ok=False)
        self.assertIn("EUNROUTABLE", r.stderr)

    def test_dedup_window(self):
        node = self.start_node("dedup", queues=[
            {"name": "d", "dedup_window": "1m"}, {"name": "plain"}])
        for _ in range(3):
            r = self.pub(node, "", "d", "once", "--id", "order-42")
            self.assertEqual(summary(r), (1, 1, 0))
        self.pub(node, "", "d", "--count", 4, "--id", "batch")
        self.pub(node, "", "d", "--count", 6, "--id", "batch")
        self.assertEqual(node.depth("d"), 7)
        self.assertGreaterEqual(node.queue("d")["duplicates_total"], 6)
        msgs = self.take(node, "d", 7)
        self.assertEqual([m["message_id"] for m in msgs],
                         ["order-42"] + ["batch-%d" % i for i in
                                         range(1, 7)])
        # The window survives a restart (rebuilt from the log) while the
        # messages are stored ...
        self.pub(node, "", "d", "again", "--id", "kept")
        node.kill9()
        node.start()
        self.pub(node, "", "d", "again", "--id", "kept")
        self.assertEqual(node.depth("d"), 1)
        # ... and a queue without a window stores every copy.
        self.pub(node, "", "plain", "x", "--id", "same")
        self.pub(node, "", "plain", "x", "--id", "same")
        self.assertEqual(node.depth("plain"), 2)

    # -- settling ------------------------------------------------------------

    def test_ack_multiple_and_get_no_ack(self):
        node = self.start_node("ack", queues=[{"name": "q"}])
        self.pub(node, "", "q", "--count", 20)
        before = node.queue("q")["acked_total"]
        # consume acks in batches with `multiple`: all ten settled.
        self.take(node, "q", 10)
        q = node.queue("q")
        self.assertEqual((q["depth"], q["unacked"]), (10, 0))
        self.assertEqual(q["acked_total"], before + 10)
        # get --no-ack: settled on delivery, nothing left unacked.
        out = node.cli.check("get", "q", "--no-ack", "--json")
        self.assertEqual(json.loads(out)["body"], "message 11")
        q = node.queue("q")
        self.assertEqual((q["depth"], q["unacked"]), (9, 0))
        # Acked and no-ack'd messages stay gone after a restart.
        node.kill9()
        node.start()
        self.assertEqual(node.depth("q"), 9)
        self.assertEqual(self.take(node, "q", 1)[0]["body"], "message 12")

    def test_bye_gives_back_prefetched_messages_at_once(self):
        # A consumer that leaves (BYE) with messages prefetched and not
        # acked: the node ends its session at once (docs/protocol.md
        # §7.2), so the next client gets them, marked redelivered, in
        # order.
        node = self.start_node("bye", queues=[{"name": "q"}])
        self.pub(node, "", "q", "--count", 20)
        self.take(node, "q", 5, "--prefetch", 10)
        out = node.cli.check("get", "q", "--json")
        m = json.loads(out)
        self.assertEqual((m["body"], m["redelivered"]), ("message 6", True))
        q = node.queue("q")
        self.assertEqual((q["depth"], q["unacked"], q["consumers"]),
                         (14, 0, 0))

    def test_nack_requeue_marks_redelivered(self):
        node = self.start_node("nack", queues=[{"name": "q"}])
        self.pub(node, "", "q", "--count", 3)
        d = self.raw_settle(node, "q", "nack")
        self.assertEqual((d[0]["rd"], d[0]["body"]), (0, "message 1"))
        # Back at the head, marked redelivered.
        q = node.queue("q")
        self.assertEqual((q["depth"], q["unacked"]), (3, 0))
        msgs = self.take(node, "q", 3)
        self.assertEqual(self.bodies(msgs),
                         ["message 1", "message 2", "message 3"])
        self.assertEqual([m["redelivered"] for m in msgs],
                         [True, False, False])

    def test_reject_dead_letters_or_drops(self):
        node = self.start_node(
            "rej",
            exchanges=[{"name": "dlx", "type": "fanout"}],
            queues=[{"name": "withdlx", "dead_letter_exchange": "dlx",
                     "dead_letter_routing_key": "rejected-key"},
                    {"name": "nodlx"}, {"name": "dlq"}],
            bindings=[{"exchange": "dlx", "queue": "dlq"}])
        self.pub(node, "", "withdlx", "--count", 2)
        self.pub(node, "", "nodlx", "--count", 2)
        self.raw_settle(node, "withdlx", "reject")
        self.raw_settle(node, "nodlx", "reject")
        d = self.depths(node)
        self.assertEqual((d["withdlx"], d["nodlx"], d["dlq"]), (1, 1, 1))
        dead = self.take(node, "dlq", 1)[0]
        self.assertEqual(dead["body"], "message 1")
        self.assertEqual(dead["headers"]["x-death-reason"], "rejected")
        self.assertEqual(dead["headers"]["x-death-queue"], "withdlx")
        self.assertEqual(dead["routing_key"], "rejected-key")
        self.assertEqual(dead["exchange"], "dlx")
        # The dead letter keeps its identity.
        self.assertEqual(dead["origin"], "rej")
        # The rejected message without a dead-letter exchange is gone for
        # good, across a restart too.
        node.kill9()
        node.start()
        self.assertEqual(self.bodies(self.take(node, "nodlx", 1)),
                         ["message 2"])

    def test_prefetch_limits_unacked(self):
        node = self.start_node("prefetch", queues=[{"name": "q"}])
        self.pub(node, "", "q", "--count", 10)
        out = os.path.join(self.tmp, "holder.out")
        holder = self.raw(node).start_hold(
            [[hostile.hello()], [hostile.consume("q", prefetch=3)]], out)
        harness.wait_until(lambda: node.queue("q")["unacked"] == 3,
                           timeout=10, msg="3 unacked")
        # It stays at the prefetch: the holder never acks.
        delivers = [r for r in hostile.read_replies(out)
                    if r.get("cmd_name") == "DELIVER"]
        self.assertEqual(len(delivers), 3)
        q = node.queue("q")
        self.assertEqual((q["depth"], q["unacked"], q["ready"]), (10, 3, 7))
        # Its session ends: the three come back, redelivered.
        hostile.stop_hold(holder)
        harness.wait_until(lambda: node.queue("q")["unacked"] == 0,
                           timeout=10, msg="unacked requeued")
        msgs = self.take(node, "q", 10)
        self.assertEqual([m["redelivered"] for m in msgs[:4]],
                         [True, True, True, False])

    # -- declarations --------------------------------------------------------

    def test_declarations_by_client_survive_restart(self):
        node = self.start_node("decl")
        c = node.cli
        c.check("declare", "exchange", "events", "topic")
        c.check("declare", "queue", "audit", "--durable", "--max-length",
                100, "--dead-letter-exchange", "events")
        c.check("declare", "queue", "eu", "--durable")
        c.check("bind", "events", "audit", "#")
        c.check("bind", "events", "eu", "*.eu")
        # Declaring again with the same options is fine; other options:
        # EEXISTS.
        c.check("declare", "queue", "eu", "--durable")
        r = node.fedq("declare", "queue", "eu", "--durable", "--max-length",
                      5)
        self.assertEqual(r.rc, 1, r)
        self.assertIn("EEXISTS", r.stderr)
        with open(os.path.join(node.data_dir, "meta.json")) as f:
            meta = f.read()
        for name in ("events", "audit", "eu"):
            self.assertIn('"%s"' % name, meta)
        for how in ("stop", "kill9"):
            with self.subTest(restart=how):
                getattr(node, how)()
                node.start()
                d = self.depths(node)
                self.assertEqual(set(d), {"audit", "eu"})
                self.pub(node, "events", "order.eu")
                self.pub(node, "events", "order.us")
                d = self.depths(node)
                self.assertEqual((d["audit"], d["eu"]), (2, 1))
                self.take(node, "audit", 2)
                self.take(node, "eu", 1)
        # Unbind and delete also last.
        c.check("unbind", "events", "eu", "*.eu")
        c.check("delete", "queue", "audit")
        node.stop()
        node.start()
        self.assertEqual(set(self.depths(node)), {"eu"})
        r = self.pub(node, "events", "order.eu", ok=False)
        self.assertIn("EUNROUTABLE", r.stderr)


if __name__ == "__main__":
    unittest.main()
