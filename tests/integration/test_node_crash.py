"""tests/integration/test_node_crash.py — DESIGN.md §2 "Node": a confirmed
publish survives kill -9. Publishers run at a bounded rate with
`--confirmed FILE`; the node is killed with SIGKILL at random moments
(seeded: the seed is printed, set FEDQ_SEED to replay one) and started
again on the same data_dir; at the end every message is consumed and
checked: every confirmed id delivered exactly once, no id delivered twice.

    FEDQ_LONG=1   50 kills per fsync policy instead of 10
    FEDQ_SEED=N   replay one run

fsync `never` is tested for kill -9 only: it does not promise to survive
a power loss (docs/operations.md, "Node").
"""

import collections
import json
import os
import random
import signal
import subprocess
import sys
import unittest

import harness

LONG = os.environ.get("FEDQ_LONG") == "1"
KILLS = 50 if LONG else 10
PUBLISHERS = 2
RATE = 2500             # messages per second per publisher
SIZE = 200


def read_ids(path):
    """The ids a publisher wrote to its --confirmed file (a subset of what
    was confirmed: the file is flushed every 100 ms, and a killed
    publisher may lose its last lines, never add one)."""
    try:
        with open(path) as f:
            return [ln.strip() for ln in f if ln.strip()]
    except FileNotFoundError:
        return []


class NodeCrashTest(harness.FedqTestCase):

    def seed(self):
        seed = int(os.environ.get("FEDQ_SEED") or random.randrange(1 << 31))
        sys.stderr.write("\n%s: FEDQ_SEED=%d\n" % (self.id(), seed))
        return random.Random(seed), seed

    def start_publishers(self, node, generation):
        pubs = []
        for j in range(PUBLISHERS):
            prefix = "g%dp%d" % (generation, j)
            path = os.path.join(node.dir, "confirmed-%s" % prefix)
            self.confirmed_files.append(path)
            pubs.append(node.cli.start(
                "publish", "", "work", "--count", 10000000, "--size", SIZE,
                "--id", prefix, "--confirmed", path, "--rate", RATE,
                "--timeout", 1000,
                stdout_path=os.path.join(node.dir, "pub-%s.out" % prefix)))
        return pubs

    def stop_publishers(self, pubs):
        # SIGINT: a publisher stops sending, waits (bounded by its
        # --timeout) for the confirms in flight and flushes its file.
        for p in pubs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in pubs:
            harness.stop_process(p, grace_s=15, sig=signal.SIGINT)

    def start_consumer(self, node, generation):
        path = os.path.join(node.dir, "consumed-%d.jsonl" % generation)
        self.consumed_files.append(path)
        # stdout alone (the JSON lines); stderr to its own file.
        with open(path, "wb") as out, open(path + ".err", "wb") as err:
            return harness.track(subprocess.Popen(
                node.cli.argv("consume", "work", "--json", "--prefetch",
                              100), stdin=subprocess.DEVNULL, stdout=out,
                stderr=err, env=harness.child_env()))

    def crash_loop(self, fsync, kills, consumer=False):
        rng, seed = self.seed()
        node = self.start_node(
            "crash-" + fsync, fsync=fsync,
            queues=[{"name": "work", "durable": True}],
            # Small segments: kills land around segment rolls too.
            node_extra={"segment_bytes": "1MiB"})
        self.confirmed_files = []
        self.consumed_files = []
        truncations = 0
        generation = 0
        pubs = self.start_publishers(node, generation)
        cons = [self.start_consumer(node, 0)] if consumer else []
        for k in range(kills):
            # Kill once a random number more publishes were confirmed: a
            # random moment in the publish stream, reached by polling.
            def progress():
                return node.status()["node"]["stats"]["confirmed_total"]
            target = progress() + rng.randint(50, 3000)
            harness.wait_until(
                lambda: progress() >= target, timeout=60,
                msg="%d confirmed (kill %d, seed %d)" % (target, k + 1, seed))
            node.kill9()
            before = node.log_text().count("cut a torn tail")
            node.start()
            # The publishers' sends in flight come back ESESSION from the
            # new process: stop them, and start new ones (new ids).
            self.stop_publishers(pubs + cons)
            truncations += node.log_text().count("cut a torn tail") - before
            generation += 1
            pubs = self.start_publishers(node, generation)
            if consumer:
                cons = [self.start_consumer(node, generation)]
        # A last stretch of publishing, then a clean stop of everything.
        base = node.status()["node"]["stats"]["confirmed_total"]
        harness.wait_until(
            lambda: node.status()["node"]["stats"]["confirmed_total"]
            >= base + 500, timeout=60, msg="publishing after the last kill")
        self.stop_publishers(pubs + cons)

        # A publisher cut off by a restart is told its session is unknown
        # (ESESSION), never that the node speaks another protocol.
        for f in os.listdir(node.dir):
            if f.startswith("pub-"):
                with open(os.path.join(node.dir, f)) as fh:
                    text = fh.read()
                self.assertNotIn("EPROTO", text, "%s:\n%s" % (f, text))
        confirmed = []
        for path in self.confirmed_files:
            confirmed.extend(read_ids(path))
        self.assertEqual(len(confirmed), len(set(confirmed)),
                         "a publisher confirmed one id twice")
        depth = node.depth("work")
        msgs = node.cli.consume("work", depth, timeout_s=300) if depth else []
        self.assertEqual(len(msgs), depth)
        # Nothing beyond depth: a second consume finds the queue empty.
        r = node.fedq("get", "work")
        self.assertEqual(r.rc, 1, "queue not empty after consuming depth "
                         "messages: %r" % (r,))
        if consumer:
            return self.check_with_consumer(msgs, confirmed, kills, seed)

        got = collections.Counter(m.get("message_id") for m in msgs)
        dup_ids = [i for i, c in got.items() if c > 1]
        self.assertEqual(dup_ids[:20], [], "ids delivered twice (seed %d)"
                         % seed)
        ident = collections.Counter(m["id"] for m in msgs)
        self.assertEqual([i for i, c in ident.items() if c > 1][:20], [],
                         "origin:seq delivered twice (seed %d)" % seed)
        self.assertNotIn(None, got, "a message without its message_id")
        lost = [i for i in confirmed if i not in got]
        self.assertEqual(lost[:20], [], "%d confirmed ids lost after %d "
                         "kills (fsync %s, seed %d)" % (len(lost), kills,
                                                        fsync, seed))
        # Every publisher's stream is a prefix of it in log order: within
        # one --id prefix the delivered ids keep their publish order.
        last = {}
        for m in msgs:
            prefix, n = m["message_id"].rsplit("-", 1)
            self.assertGreater(int(n), last.get(prefix, 0),
                               "publisher %s out of order" % prefix)
            last[prefix] = int(n)
        self.assertGreater(len(confirmed), kills * 50,
                           "too little was confirmed to prove anything")
        sys.stderr.write("%s: fsync %s, %d kills, %d confirmed, %d stored, "
                         "%d unconfirmed but stored, %d torn tails cut\n"
                         % (self.id().split(".")[-1], fsync, kills,
                            len(confirmed), len(msgs),
                            len(msgs) - len(confirmed), truncations))
        self.assertEqual(node.stop(), 0)

    def check_with_consumer(self, final, confirmed, kills, seed):
        """With a consumer acking while the node is killed, an ack that was
        not yet durable brings its message back: at least once, and every
        copy after the first is marked redelivered."""
        seen = []
        for path in self.consumed_files:
            with open(path) as f:
                # A consumer stopped mid-line leaves at most one partial
                # last line; it was not acked, so it comes again.
                lines = f.read().splitlines()
            for i, line in enumerate(lines):
                try:
                    seen.append(json.loads(line))
                except ValueError:
                    self.assertEqual(i, len(lines) - 1, "bad line %r" % line)
        seen.extend(final)
        by_id = collections.defaultdict(list)
        for m in seen:
            by_id[m["message_id"]].append(m)
        lost = [i for i in confirmed if i not in by_id]
        self.assertEqual(lost[:20], [], "%d confirmed ids never delivered "
                         "(seed %d)" % (len(lost), seed))
        again = 0
        for mid, copies in by_id.items():
            for c in copies[1:]:
                again += 1
                self.assertTrue(c["redelivered"], "%s delivered again without "
                                "the redelivered flag (seed %d): %r"
                                % (mid, seed, copies))
            self.assertEqual(len({c["id"] for c in copies}), 1,
                             "one message_id under two identities: %r"
                             % copies)
        sys.stderr.write("%s: %d kills, %d confirmed, %d delivered by the "
                         "consumers, %d at the end, %d redeliveries\n"
                         % (self.id().split(".")[-1], kills, len(confirmed),
                            len(seen) - len(final), len(final), again))

    def test_kill9_fsync_batch_with_consumer(self):
        # Acks, segment deletion and recovery of settlements under kills.
        self.crash_loop("batch", KILLS, consumer=True)

    def test_kill9_fsync_batch(self):
        self.crash_loop("batch", KILLS)

    def test_kill9_fsync_always(self):
        self.crash_loop("always", KILLS)

    def test_kill9_fsync_never(self):
        # `never` leaves flushing to the OS: a killed process loses
        # nothing (the page cache survives it); a power loss may.
        self.crash_loop("never", max(3, KILLS // 2))


if __name__ == "__main__":
    unittest.main()
