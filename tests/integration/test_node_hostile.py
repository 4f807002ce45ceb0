"""tests/integration/test_node_hostile.py — DESIGN.md §2 "Node": bad input
(malformed frames, oversized messages, unknown commands, wrong protocol
version) gets a clear error to the sender and changes no stored data.

Raw frames go through the test tool fedq_raw (tests/tools/fedq_raw.c) from
hostile.py. Throughout, the node must stay up, answer another client's
`fedq status`, keep its memory bounded and keep its queues as they were.

    FEDQ_LONG=1   ten times the random frames and floods
    FEDQ_SEED=N   replay the random frames of one run
"""

import hashlib
import os
import random
import subprocess
import sys
import unittest

import harness
import hostile

LONG = os.environ.get("FEDQ_LONG") == "1"
SCALE = 10 if LONG else 1
RSS_BOUND_KIB = 50 * 1024
KEEP = 100


def data_digest(data_dir):
    out = {}
    for root, _, files in os.walk(data_dir):
        for f in files:
            if f == "LOCK":
                continue
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, data_dir)] = hashlib.sha256(
                    fh.read()).hexdigest()
    return out


class NodeHostileTest(harness.FedqTestCase):

    def setUp(self):
        super().setUp()
        if not os.access(hostile.raw_bin(), os.X_OK):
            msg = "test tool not built: %s" % hostile.raw_bin()
            if os.environ.get("FEDQ_REQUIRE_BINARIES") == "1":
                self.fail(msg)
            self.skipTest(msg)
        self.node_ = self.start_node("target", queues=[{"name": "keep"}],
                                     node_extra={"max_message_bytes":
                                                 "64KiB"})
        self.node_.cli.check("publish", "", "keep", "--count", KEEP,
                             "--size", 100, "--id", "k")
        self.raw = hostile.Raw(self.node_.endpoint, self.tmp)

    # -- checks ------------------------------------------------------------

    def rss(self):
        return hostile.rss_kib(self.node_.pid)

    def assert_healthy(self):
        """Up, answering another client, `keep` as it was."""
        node = self.node_
        self.assertTrue(node.running(), "the node died\n" + node.log_tail())
        st = node.status()
        q = {x["name"]: x for x in st["queues"]}["keep"]
        self.assertEqual((q["depth"], q["unacked"]), (KEEP, 0), q)
        return st

    def assert_all_errors(self, r, sent, code="EPROTO", cmd="ERROR"):
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.summary.get("sent"), sent, r)
        self.assertEqual(len(r.replies), sent, "one reply per frame: %r" % r)
        for x in r.replies:
            self.assertNotIn("undecodable", x, r)
            self.assertEqual(x.get("cmd_name"), cmd, x)
            self.assertEqual(x.get("code_name"), code, x)
            self.assertTrue(x.get("text"), "an error without a text: %r" % x)

    def send_after_hello(self, frames, expect=True, **kw):
        """Each frame (a list of parts) after a HELLO on one connection;
        the replies to the frames (HELLO_OK dropped). expect=True waits
        for one reply per frame, False until the replies stop."""
        r = self.raw.send([[hostile.hello()]] + frames,
                          expect=1 + len(frames) if expect else None, **kw)
        self.assertTrue(r.replies and r.replies[0]["cmd_name"] == "HELLO_OK",
                        r)
        r.replies = r.replies[1:]
        r.summary["sent"] -= 1
        return r

    # -- tests -------------------------------------------------------------

    def test_malformed_headers(self):
        node = self.node_
        rss0 = self.rss()
        bad0 = node.status()["node"]["stats"]["bad_frames_total"]
        digest0 = data_digest(node.data_dir)
        cases = {
            "map32": [hostile.map32_bomb()],
            "array32": [hostile.array32_bomb()],
            "nest-array-1000": [hostile.nesting_bomb(1000)],
            "nest-map-1000": [hostile.nesting_bomb(1000, kind="map")],
            # Over the 64 KiB header limit as well as too deep.
            "nest-array-100000": [hostile.nesting_bomb(100000)],
            "big-header": [b"\x81\xa1x\xc6\x00\x02\x00\x00"
                           + bytes(128 * 1024)],
            "empty": [b""],
            "not-a-map": [b"\x93\x01\x02\x03"],
            "bytes-after-map": [hostile.frame("PING") + b"\x00"],
            "never-used-0xc1": [b"\x82\xa1v\x01\xa3cmd\xc1"],
            "int-key": [b"\x82\x01\x01\xa3cmd\x19"],
            "dup-key": [b"\x83\xa1v\x01\xa3cmd\x19\xa1v\x01"],
            "nil-cmd": [hostile.mp({"v": 1, "cmd": None})],
            "no-version": [hostile.mp({"cmd": 25})],
            "no-cmd": [hostile.mp({"v": 1})],
            "name-too-long": [hostile.frame("DECLARE_QUEUE", rid=3,
                                            name="n" * 300)],
        }
        for i, t in enumerate(hostile.truncated_strings()):
            cases["truncated-%d" % i] = [t]
        for what, parts in cases.items():
            with self.subTest(what=what):
                # Without a session, and inside one.
                r = self.raw.send([parts], idle_ms=2000, expect=1)
                self.assert_all_errors(r, 1)
                r = self.send_after_hello([parts], idle_ms=2000)
                self.assert_all_errors(r, 1)
        # Wrong versions: the version error wins, and says so.
        for v in (0, 2, 255, (1 << 32) - 1):
            with self.subTest(version=v):
                r = self.send_after_hello(
                    [[hostile.frame("PING", version=v, rid=77)]])
                self.assert_all_errors(r, 1)
                self.assertIn("unsupported protocol version %d; this node "
                              "speaks 1" % v, r.replies[0]["text"])
                self.assertEqual(r.replies[0].get("rid"), 77)
        # A header cut anywhere: each prefix of a valid DECLARE_QUEUE.
        full = hostile.frame("DECLARE_QUEUE", rid=5, name="zzz",
                             qo={"durable": True, "max_length": 7})
        prefixes = [[full[:n]] for n in range(1, len(full))]
        r = self.send_after_hello(prefixes, idle_ms=2000)
        self.assert_all_errors(r, len(prefixes))

        st = self.assert_healthy()
        self.assertNotIn("zzz", [q["name"] for q in st["queues"]])
        self.assertGreaterEqual(st["node"]["stats"]["bad_frames_total"] - bad0,
                                2 * len(cases) + len(prefixes))
        self.assertEqual(data_digest(node.data_dir), digest0,
                         "malformed frames changed stored data")
        self.assertLess(self.rss() - rss0, RSS_BOUND_KIB)

    def test_wrong_part_counts_and_commands(self):
        node = self.node_
        digest0 = data_digest(node.data_dir)
        ping = hostile.frame("PING", rid=1)
        parts = {2: [ping, b"x"], 4: [ping, b"a", b"b", b"c"],
                 5: [ping, b"a", b"b", b"c", b"d"],
                 70: [ping] + [b"p"] * 69}
        for n, msg in parts.items():
            with self.subTest(parts=n):
                r = self.send_after_hello([msg])
                self.assert_all_errors(r, 1)
                self.assertIn("3 parts", r.replies[0]["text"])
        # Unknown commands, and commands only a node sends.
        for cmd in (0, 28, 39, 99, 1 << 31, "CONFIRM", "DELIVER",
                    "HELLO_OK", "STATUS_OK", "PONG", "ERROR"):
            with self.subTest(cmd=cmd):
                r = self.send_after_hello([[hostile.frame(cmd, rid=9)]])
                self.assert_all_errors(r, 1)
                self.assertIn("unknown or unexpected command",
                              r.replies[0]["text"])
                self.assertEqual(r.replies[0].get("rid"), 9)
        # Before HELLO a session is refused, once, with ESESSION.
        r = self.raw.send([[hostile.frame("STATUS", rid=4)]], expect=1)
        self.assert_all_errors(r, 1, code="ESESSION")
        # Settling what was never delivered.
        for cmd in ("ACK", "NACK", "REJECT"):
            r = self.send_after_hello([[hostile.frame(cmd, dtag=12345)]])
            self.assert_all_errors(r, 1, code="ENOTFOUND")
        # A publish sequence that does not increase.
        r = self.send_after_hello(
            [hostile.publish(5, "nowhere"), hostile.publish(5, "nowhere")],
            expect=False, idle_ms=1000)
        got = sorted((x["cmd_name"], x.get("code_name")) for x in r.replies)
        self.assertEqual(got, [("CONFIRM", None), ("ERROR", "EPROTO"),
                               ("RETURN", "EUNROUTABLE")], r)
        # PUBLISH with a bad envelope, or with 1 part: returned EPROTO.
        r = self.send_after_hello(
            [[hostile.frame("PUBLISH", seq=1, key="keep"), b"\xdf\xff",
              b"body"],
             [hostile.frame("PUBLISH", seq=2, key="keep")]],
            expect=False, idle_ms=1000)
        returns = [x for x in r.replies if x["cmd_name"] == "RETURN"]
        self.assertEqual([x["code_name"] for x in returns],
                         ["EPROTO", "EPROTO"], r)
        # Links and federation spoken wrongly by a client.
        r = self.send_after_hello([[hostile.frame(
            40, rid=3, link="l", epoch=1, node="target")]])
        self.assert_all_errors(r, 1, code="ELOOP")
        self.assert_healthy()
        self.assertEqual(data_digest(node.data_dir), digest0)

    def test_oversized_bodies(self):
        node = self.node_
        rss0 = self.rss()
        # Over node.max_message_bytes (64 KiB): returned ETOOBIG.
        r = self.send_after_hello([hostile.publish(1, "keep",
                                                   b"x" * (65 * 1024))],
                                  idle_ms=2000)
        ret = [x for x in r.replies if x["cmd_name"] == "RETURN"]
        self.assertEqual([x["code_name"] for x in ret], ["ETOOBIG"], r)
        # Far over anything the node reads (ZeroMQ's message size cap is
        # twice max_message_bytes plus the headers): the connection is
        # dropped before the body is buffered; no reply, no harm.
        huge = os.path.join(self.tmp, "huge.bin")
        with open(huge, "wb") as f:
            f.truncate(40 * 1024 * 1024)
        r = self.raw.send([[hostile.hello()],
                           [hostile.frame("PUBLISH", seq=1, key="keep"),
                            hostile.mp({}), huge]], idle_ms=1500)
        self.assertEqual(r.rc, 0, r)
        self.assertNotIn("CONFIRM", [x.get("cmd_name") for x in r.replies])
        self.assert_healthy()
        self.assertLess(self.rss() - rss0, RSS_BOUND_KIB)

    def test_random_bytes_and_floods_while_another_client_works(self):
        node = self.node_
        seed = int(os.environ.get("FEDQ_SEED") or random.randrange(1 << 31))
        sys.stderr.write("\n%s: FEDQ_SEED=%d\n" % (self.id(), seed))
        rss0 = self.rss()
        digest0 = data_digest(node.data_dir)
        bad0 = node.status()["node"]["stats"]["bad_frames_total"]
        frames = hostile.random_frames(seed, 500 * SCALE)
        r = self.raw.send([[f] for f in frames], idle_ms=2000)
        self.assertEqual(r.rc, 0, "%s (seed %d)" % (r, seed))
        # Each is answered with an error. (A random frame that happens to
        # decode is refused once with ESESSION, then dropped: it has no
        # session; allow for a few.)
        self.assertEqual(r.summary["undecodable"], 0, r)
        for x in r.replies:
            self.assertEqual(x["cmd_name"], "ERROR", x)
            self.assertIn(x["code_name"], ("EPROTO", "ESESSION"), x)
        self.assertGreaterEqual(r.summary["errors"], len(frames) * 0.99,
                                "seed %d: %r" % (seed, r))

        # Floods, in the background, while another client uses the node.
        floods = [
            # bombs repeated on one connection
            ([[hostile.map32_bomb()], [hostile.nesting_bomb(1000)],
              [hostile.array32_bomb()]], 3000 * SCALE, False, 3000),
            # the committed fuzz corpus, each file on a new connection
            # (no session: ESESSION or EPROTO)
            ([[p] for p in hostile.corpus_files()], 3 * SCALE, True, 500),
        ]
        procs = []
        for i, (msgs, count, fresh, idle_ms) in enumerate(floods):
            out = os.path.join(self.tmp, "flood-%d.out" % i)
            argv = self.raw.argv(msgs, count=count, fresh=fresh,
                                 idle_ms=idle_ms, quiet=True)
            with open(out, "wb") as fh:
                procs.append((harness.track(subprocess.Popen(
                    argv, stdout=fh, stderr=subprocess.STDOUT,
                    env=harness.child_env())), out,
                    len(msgs) * count))
        polls = []

        def floods_done():
            # Another client's requests are answered throughout.
            self.assertEqual(node.status()["node"]["id"], "target")
            polls.append(1)
            return all(p.poll() is not None for p, _, _ in procs)
        harness.wait_until(floods_done, timeout=120, interval=0.02,
                           msg="floods done")
        self.assertGreaterEqual(len(polls), 2)
        for p, out, sent in procs:
            harness.stop_process(p, grace_s=120)
            self.assertEqual(p.returncode, 0)
            with open(out) as fh:
                res = hostile.RawResult(0, fh.read(), "")
            self.assertEqual(res.summary.get("sent"), sent, res)
            # Every frame of these floods is answered with an ERROR, bar
            # the corpus' own valid HELLO (HELLO_OK) and BYE (no reply).
            self.assertGreaterEqual(res.summary["replies"], sent - 3 * SCALE
                                    * 2, res)
            self.assertEqual(res.summary["undecodable"], 0, res)
        st = self.assert_healthy()
        self.assertGreaterEqual(st["node"]["stats"]["bad_frames_total"] - bad0,
                                len(frames) * 0.99 + 9000 * SCALE)
        grown = self.rss() - rss0
        sys.stderr.write("%s: RSS grew %d KiB over the attacks (VmHWM %d "
                         "KiB)\n" % (self.id().split(".")[-1], grown,
                                     hostile.rss_kib(node.pid, "VmHWM")))
        self.assertLess(grown, RSS_BOUND_KIB)
        self.assertEqual(data_digest(node.data_dir), digest0,
                         "hostile frames changed stored data")
        # The messages stored before are intact and served.
        msgs = node.cli.consume("keep", KEEP)
        self.assertEqual([m["message_id"] for m in msgs],
                         ["k-%d" % i for i in range(1, KEEP + 1)])
        self.assertTrue(all(m["body"].startswith("message ") for m in msgs))

    def test_corpus_after_hello(self):
        # Every committed corpus input inside an open session. The corpus
        # holds valid frames too (a DECLARE_QUEUE of a queue "nnn...",
        # a PUBLISH): those may act, but on nothing of ours.
        node = self.node_
        files = hostile.corpus_files()
        r = self.raw.send([[hostile.hello()]] + [[p] for p in files],
                          idle_ms=1500)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.summary["undecodable"], 0, r)
        self.assertGreaterEqual(r.summary["errors"], len(files) // 2, r)
        self.assert_healthy()


if __name__ == "__main__":
    unittest.main()
