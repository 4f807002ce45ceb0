"""tests/integration/test_node_recovery.py — DESIGN.md §2 "Node": recovery
after a crash truncates a torn tail record (CRC-checked), reports what it
dropped, and never serves a corrupt message; damage in the middle of the
log stops the node with the file and offset, changing nothing on disk.

The log format is docs/storage.md; `LogFile` below reads just enough of it
to find records, their message ids and their bodies.
"""

import hashlib
import os
import random
import re
import shutil
import struct
import unittest

import harness

TORN = re.compile(r"cut a torn tail of (\d+) bytes at offset (\d+)")
REC_MSG, REC_SETTLE, REC_MARKS, REC_CHECKPOINT = 1, 2, 3, 4


def extent(length):
    return (9 + length + 7) & ~7


class Record:
    def __init__(self, data, off):
        self.off = off
        self.crc, self.len = struct.unpack_from("<II", data, off)
        self.type = data[off + 8]
        self.end = off + 9 + self.len          # end of the payload
        self.extent = extent(self.len)
        self.message_id = None
        self.body_off = None
        if self.type == REC_MSG:
            nmarks = data[off + 10]
            nqueues, nsettles = struct.unpack_from("<HH", data, off + 12)
            body_len = struct.unpack_from("<I", data, off + 44)[0]
            origin_len, mid_len = struct.unpack_from("<HH", data, off + 48)
            at = (off + 56 + 8 * nqueues + 16 * nsettles + 8 * nmarks
                  + 2 * nmarks + origin_len)
            self.message_id = data[at:at + mid_len].decode()
            self.body_off = self.end - body_len
            self.body_len = body_len


class LogFile:
    """One segment file: its records, walked from offset 0."""

    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            self.data = f.read()
        self.records = []
        off = 0
        while off + 9 <= len(self.data):
            r = Record(self.data, off)
            if r.end > len(self.data):
                break
            self.records.append(r)
            off += r.extent

    def msgs(self):
        return [r for r in self.records if r.type == REC_MSG]


def segments(data_dir):
    d = os.path.join(data_dir, "log")
    return sorted(os.path.join(d, f) for f in os.listdir(d)
                  if f.endswith(".seg"))


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def tree_digest(data_dir):
    """Every file of a data_dir (but the lock file) and its digest."""
    out = {}
    for root, _, files in os.walk(data_dir):
        for f in files:
            if f == "LOCK":
                continue
            p = os.path.join(root, f)
            out[os.path.relpath(p, data_dir)] = sha256(p)
    return out


def flip_bit(path, off, bit=0):
    with open(path, "r+b") as f:
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([b[0] ^ (1 << bit)]))


class NodeRecoveryTest(harness.FedqTestCase):

    N = 300

    def make_log(self, node_id, count=None, size=100, **kw):
        """A node with `count` confirmed messages ids m-1.. in queue q,
        stopped cleanly; returns it and a pristine copy of its data_dir."""
        count = count or self.N
        node = self.start_node(node_id, queues=[{"name": "q"}], **kw)
        node.cli.check("publish", "", "q", "--count", count, "--size", size,
                       "--id", "m", timeout_s=60)
        self.assertEqual(node.depth("q"), count)
        self.assertEqual(node.stop(), 0)
        pristine = node.data_dir + ".pristine"
        shutil.copytree(node.data_dir, pristine)
        return node, pristine

    def restore(self, node, pristine):
        shutil.rmtree(node.data_dir)
        shutil.copytree(pristine, node.data_dir)

    def consume_ids(self, node, count):
        msgs = node.cli.consume("q", count, timeout_s=60) if count else []
        ids = [m["message_id"] for m in msgs]
        r = node.fedq("get", "q")
        self.assertEqual(r.rc, 1, "more than %d messages: %r" % (count, r))
        return ids

    def start_expect_torn(self, node, seg, off, cut):
        """Start; the log must report a torn tail of `cut` bytes at `off`
        in segment `seg`."""
        before = len(TORN.findall(node.log_text()))
        node.start()
        found = TORN.findall(node.log_text())
        self.assertEqual(len(found), before + 1, "no torn-tail report:\n"
                         + node.log_tail())
        self.assertEqual(found[-1], (str(cut), str(off)), node.log_tail())
        line = [ln for ln in node.log_text().splitlines()
                if "cut a torn tail" in ln][-1]
        self.assertIn(os.path.basename(seg), line)
        self.assertEqual(os.path.getsize(seg), off,
                         "the torn tail was not cut from the file")

    def publish_after(self, node, count):
        """New publishes after a recovery land, and are served."""
        node.cli.check("publish", "", "q", "--count", count, "--id", "after",
                       timeout_s=60)

    # -- Torn tails --------------------------------------------------------

    def test_torn_last_record_is_cut(self):
        node, pristine = self.make_log("torn")
        seg = segments(pristine)[-1]
        log = LogFile(seg)
        last = log.records[-1]
        self.assertEqual(last.type, REC_MSG, "last record is not the last "
                         "message: %d" % last.type)
        self.assertEqual(last.message_id, "m-%d" % self.N)
        seg_name = os.path.relpath(seg, pristine)
        # Cuts inside the last record: in its header, in its payload, one
        # byte short of its end.
        cuts = [last.off + 3, last.off + 9, (last.off + last.end) // 2,
                last.end - 1]
        for i, cut_at in enumerate(cuts):
            with self.subTest(cut_at=cut_at):
                self.restore(node, pristine)
                path = os.path.join(node.data_dir, seg_name)
                os.truncate(path, cut_at)
                self.start_expect_torn(node, path, last.off,
                                       cut_at - last.off)
                self.assertEqual(node.depth("q"), self.N - 1)
                # Everything confirmed before the last record is there (the
                # full check once; the depth each time).
                if i == 0:
                    ids = self.consume_ids(node, self.N - 1)
                    self.assertEqual(ids, ["m-%d" % k
                                           for k in range(1, self.N)])
                self.publish_after(node, 5)
                self.assertEqual(self.consume_ids(
                    node, node.depth("q"))[-5:],
                    ["after-%d" % k for k in range(1, 6)])
                self.assertEqual(node.stop(), 0)
                # The cut is made once: a second start finds a clean log.
                node.start()
                self.assertEqual(node.log_text().count("cut a torn tail"),
                                 i + 1)
                self.assertEqual(node.stop(), 0)

    def test_cut_in_padding_drops_the_record(self):
        # A file that ends inside the zero padding after the last record's
        # payload: that write was never finished (a confirmed record is
        # synced whole, padding included), so the record is a torn tail
        # like any other. Records appended after the cut must stay readable
        # (8-aligned).
        node, pristine = self.make_log("pad", size=101)
        seg = segments(pristine)[-1]
        last = LogFile(seg).records[-1]
        if last.extent == 9 + last.len:
            self.skipTest("the last record has no padding")
        seg_name = os.path.relpath(seg, pristine)
        self.restore(node, pristine)
        path = os.path.join(node.data_dir, seg_name)
        os.truncate(path, last.end)
        self.start_expect_torn(node, path, last.off, last.end - last.off)
        self.assertEqual(node.depth("q"), self.N - 1)
        self.publish_after(node, 5)
        ids = self.consume_ids(node, self.N + 4)
        self.assertEqual(ids, ["m-%d" % k for k in range(1, self.N)]
                         + ["after-%d" % k for k in range(1, 6)])
        self.assertEqual(node.stop(), 0)
        node.start()
        self.assertEqual(node.depth("q"), 0)

    def test_garbage_after_the_tail_is_cut(self):
        node, pristine = self.make_log("garbage")
        seg_name = os.path.relpath(segments(pristine)[-1], pristine)
        rng = random.Random(7)
        for what, junk in (("random", bytes(rng.getrandbits(8)
                                             for _ in range(1000))),
                           ("zeros", bytes(4096)),
                           ("short", b"\x01\x02\x03")):
            with self.subTest(what=what):
                self.restore(node, pristine)
                path = os.path.join(node.data_dir, seg_name)
                size = os.path.getsize(path)
                with open(path, "ab") as f:
                    f.write(junk)
                self.start_expect_torn(node, path, size, len(junk))
                self.assertEqual(node.depth("q"), self.N)
                status = node.status()
                self.assertEqual(status["queues"][0]["depth"], self.N)
                self.publish_after(node, 3)
                ids = self.consume_ids(node, self.N + 3)
                self.assertEqual(ids[:self.N], ["m-%d" % k for k in
                                                range(1, self.N + 1)])
                self.assertEqual(node.stop(), 0)

    def test_restart_does_not_keep_the_log_mapped(self):
        # Recovery reads every record through its mapping of the log; it
        # must not leave those pages in the node's RSS (1M queued 1 KiB
        # messages would show as 1.1 GB), nor hold them all at once
        # (VmHWM): a segment at a time. 88 MiB of log in 4 MiB segments.
        node = self.start_node("rss", queues=[{"name": "q"}],
                               node_extra={"segment_bytes": "4MiB"})
        node.cli.check("publish", "", "q", "--count", 80000, "--size", 1024,
                       timeout_s=120)
        node.kill9()
        node.start()
        self.assertEqual(node.depth("q"), 80000)
        log_kib = sum(os.path.getsize(p)
                      for p in segments(node.data_dir)) // 1024
        self.assertGreater(log_kib, 80000)
        with open("/proc/%d/status" % node.pid) as f:
            st = {k: int(v.split()[0]) for k, v in
                  (ln.split(":", 1) for ln in f)
                  if k in ("RssFile", "VmHWM")}
        self.assertLess(st["RssFile"], log_kib // 2,
                        "RssFile %d KiB after recovering %d KiB of log"
                        % (st["RssFile"], log_kib))
        self.assertLess(st["VmHWM"], log_kib // 2,
                        "VmHWM %d KiB while recovering %d KiB of log"
                        % (st["VmHWM"], log_kib))

    # -- Corruption in the middle -----------------------------------------

    def expect_refused(self, node, seg, off):
        """The node must refuse to start, naming seg and off, saying what
        to do, and change nothing in data_dir."""
        before = tree_digest(node.data_dir)
        r = harness.run([harness.node_bin(), "-c", node.write_config()],
                        cwd=node.dir, timeout_s=30)
        self.assertNotEqual(r.rc, 0, "the node started on a corrupt log")
        err = r.stderr
        self.assertIn(os.path.basename(seg), err, err)
        self.assertRegex(err, r"offset %d\b" % off)
        self.assertRegex(err, r"(?i)backup")
        self.assertRegex(err, r"(?i)move this segment")
        self.assertEqual(tree_digest(node.data_dir), before,
                         "a refused start changed the data_dir")
        return err

    def test_flipped_bit_mid_log_refuses_to_start(self):
        node, pristine = self.make_log("midlog")
        seg_name = os.path.relpath(segments(pristine)[-1], pristine)
        log = LogFile(segments(pristine)[-1])
        msgs = log.msgs()
        victim = msgs[len(msgs) // 2]
        path = os.path.join(node.data_dir, seg_name)
        cases = (("body", victim.body_off + victim.body_len // 2),
                 ("crc", victim.off + 1),
                 # A length that grows makes the record run over the next
                 # ones: still not a torn tail, since good records follow.
                 ("length", victim.off + 5),
                 ("type", victim.off + 8))
        for what, off in cases:
            with self.subTest(what=what):
                self.restore(node, pristine)
                flip_bit(path, off, bit=3)
                self.expect_refused(node, path, victim.off)
        # The same log, unflipped, starts and has everything.
        self.restore(node, pristine)
        node.start()
        self.assertEqual(node.depth("q"), self.N)

    def test_flipped_bit_in_older_segment(self):
        # Small segments: the damage is in a segment before the last one.
        node, pristine = self.make_log("oldseg", count=2000, size=200,
                                       node_extra={"segment_bytes": "64KiB"})
        segs = segments(pristine)
        self.assertGreaterEqual(len(segs), 3, segs)
        seg_name = os.path.relpath(segs[1], pristine)
        log = LogFile(segs[1])
        # The very last record of an older segment: damage there must not
        # pass for a torn tail.
        victim = log.msgs()[-1]
        self.restore(node, pristine)
        path = os.path.join(node.data_dir, seg_name)
        flip_bit(path, victim.body_off, bit=0)
        self.expect_refused(node, path, victim.off)
        # What the message says to do: move the segment aside. The node
        # then starts without that segment's messages and keeps the rest.
        lost = {r.message_id for r in log.msgs()}
        os.rename(path, path + ".bad")
        node.start()
        depth = node.depth("q")
        self.assertEqual(depth, 2000 - len(lost))
        ids = self.consume_ids(node, depth)
        self.assertEqual(set(ids) & lost, set())
        self.assertEqual(len(ids), len(set(ids)))

    # -- A message damaged while the node runs ------------------------------

    def test_corrupt_message_is_never_served(self):
        node = self.start_node("live", queues=[{"name": "q"}])
        node.cli.check("publish", "", "q", "--count", self.N, "--size", 64,
                       "--id", "m", timeout_s=60)
        # Damage the bodies of three messages the node has not delivered
        # yet, in place: the node reads them through its mapping of the
        # segment, so it sees the damage at delivery.
        seg = segments(node.data_dir)[-1]
        log = LogFile(seg)
        by_id = {r.message_id: r for r in log.msgs()}
        victims = ["m-1", "m-%d" % (self.N // 2), "m-%d" % self.N]
        for v in victims:
            flip_bit(seg, by_id[v].body_off + 10, bit=5)
        self.assertEqual(node.depth("q"), self.N)
        msgs = node.cli.consume("q", self.N - len(victims), timeout_s=60)
        ids = [m["message_id"] for m in msgs]
        self.assertEqual(ids, ["m-%d" % k for k in range(1, self.N + 1)
                               if "m-%d" % k not in victims])
        for m in msgs:     # the bodies served are the ones published
            self.assertEqual(m["body"], ("message %s" % m["message_id"][2:])
                             .ljust(64, "x"), m)
        r = node.fedq("get", "q")
        self.assertEqual(r.rc, 1, "a corrupt message was served: %r" % (r,))
        st = node.status()["node"]
        self.assertGreaterEqual(st["stats"]["corrupt_total"], len(victims))
        self.assertGreaterEqual(st["store"]["corrupt_reads"], len(victims))
        self.assertEqual(node.depth("q"), 0)
        self.assertRegex(node.log_text(), r"%s offset %d: message record "
                         r"fails its CRC check; not served"
                         % (re.escape(os.path.basename(seg)),
                            by_id[victims[0]].off))
        # The node keeps serving.
        node.cli.check("publish", "", "q", "--count", 3, "--id", "later")
        self.assertEqual([m["message_id"] for m in node.cli.consume("q", 3)],
                         ["later-1", "later-2", "later-3"])
        # The damaged record stays in its segment until the segment is
        # deleted (every message in it settled, as here) or compacted; a
        # restart before that would refuse to start, as for any damage in
        # the middle of the log (docs/operations.md, "Node").
        self.assertEqual(node.stop(), 0)
        if os.path.exists(seg):
            self.expect_refused(node, seg, by_id[victims[0]].off)


if __name__ == "__main__":
    unittest.main()
