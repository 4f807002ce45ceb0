#!/usr/bin/env python3
"""tests/fault/test_checker.py — the checker catches each fault it exists
to catch (loss, duplication, unexpected messages, reordering), so a chaos
run cannot pass vacuously, and it does not flag what is allowed
(unconfirmed messages delivered, redeliveries when allowed, order across
producer generations for unconfirmed messages).

    python3 tests/fault/test_checker.py        (also run by ctest and by
                                                scripts/test, integration)
"""

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from contextlib import redirect_stdout

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import checker  # noqa: E402

CHECKER = os.path.join(HERE, "checker.py")


def delivery(mid, redelivered=False, origin="a", seq=None):
    """One line as `fedq consume --json` prints it."""
    n = seq if seq is not None else abs(hash(mid)) % 100000
    return {"id": "%s:%d" % (origin, n), "origin": origin, "seq": n,
            "message_id": mid, "exchange": "", "routing_key": "dst",
            "headers": {"x-fedq-shovel": "a-to-b"},
            "redelivered": redelivered, "published_at": 1, "body": "m"}


class RunDir:
    """A run folder as nemesis.py writes it."""

    def __init__(self, root, name="run"):
        self.path = os.path.join(root, name)
        os.makedirs(os.path.join(self.path, "workload"))
        os.makedirs(os.path.join(self.path, "delivered"))

    def confirmed(self, producer, ids):
        with open(os.path.join(self.path, "workload", producer
                               + ".confirmed"), "a") as f:
            f.write("".join(i + "\n" for i in ids))

    def published(self, producer, prefix, count):
        with open(os.path.join(self.path, "workload", producer
                               + ".published"), "a") as f:
            f.write("%s %d\n" % (prefix, count))

    def delivered(self, group, consumer, items, raw_tail=""):
        d = os.path.join(self.path, "delivered", group)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, consumer + ".jsonl"), "a") as f:
            for it in items:
                f.write(json.dumps(it) + "\n")
            f.write(raw_tail)

    def check(self, **kw):
        return checker.check(checker.Run.from_dir(self.path), **kw)


def ids(prefix, lo, hi):
    return ["%s-%d" % (prefix, i) for i in range(lo, hi + 1)]


class CheckerTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="fedq-checker-")
        self.run_dir = RunDir(self.tmp)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def clean_run(self, n=100):
        r = self.run_dir
        for p in ("P1.g0", "P2.g0"):
            r.published(p.split(".")[0], p, n)
            r.confirmed(p.split(".")[0], ids(p, 1, n))
        # Interleaved producers, each in order.
        items = []
        for i in range(1, n + 1):
            items.append(delivery("P1.g0-%d" % i))
            items.append(delivery("P2.g0-%d" % i))
        return items

    def assertOnly(self, res, **expected):
        """res failed on exactly the named counts, all others zero."""
        for k in ("lost", "duplicated", "unexpected", "reordered"):
            self.assertEqual(res[k], expected.get(k, 0),
                             "%s: %s" % (k, json.dumps(res, indent=1)))
        self.assertEqual(res["passed"], not any(expected.values()))

    # -- what must pass ------------------------------------------------
    def test_clean_run_passes(self):
        self.run_dir.delivered("c", "drain", self.clean_run())
        res = self.run_dir.check()
        self.assertOnly(res)
        self.assertEqual(res["confirmed"], 200)
        self.assertEqual(res["groups"]["c"]["unique"], 200)

    def test_no_deliveries_is_not_a_pass(self):
        self.clean_run()
        res = self.run_dir.check()
        self.assertOnly(res, lost=200)

    def test_competing_consumers_in_one_group(self):
        items = self.clean_run()
        self.run_dir.delivered("c", "one", items[0::2])
        self.run_dir.delivered("c", "two", items[1::2])
        self.assertOnly(self.run_dir.check())

    def test_unconfirmed_but_published_may_arrive(self):
        items = self.clean_run()
        self.run_dir.published("P1", "P1.g1", 5)   # none confirmed
        items.append(delivery("P1.g1-1"))
        self.run_dir.delivered("c", "drain", items)
        res = self.run_dir.check()
        self.assertOnly(res)
        self.assertEqual(res["unconfirmed_delivered"], 1)

    # -- loss ----------------------------------------------------------
    def test_loss_is_caught(self):
        items = self.clean_run()
        del items[77]
        self.run_dir.delivered("c", "drain", items)
        res = self.run_dir.check()
        self.assertOnly(res, lost=1)
        self.assertIn("c: P2.g0-39", res["examples"]["lost"])

    def test_loss_in_one_group_of_two(self):
        items = self.clean_run()
        self.run_dir.delivered("site-b", "drain", items)
        self.run_dir.delivered("site-c", "drain", items[:-3])
        res = self.run_dir.check()
        self.assertOnly(res, lost=3)
        self.assertEqual(res["groups"]["site-b"]["lost"], 0)
        self.assertEqual(res["groups"]["site-c"]["lost"], 3)

    def test_torn_last_line_counts_as_not_delivered(self):
        items = self.clean_run()
        last = items.pop()
        self.run_dir.delivered("c", "drain", items,
                               raw_tail=json.dumps(last)[:30])
        res = self.run_dir.check()
        self.assertOnly(res, lost=1)
        self.assertEqual(res["malformed_lines"], 1)

    # -- duplication ---------------------------------------------------
    def test_duplicate_is_caught(self):
        items = self.clean_run()
        items.append(items[10])
        self.run_dir.delivered("c", "drain", items)
        res = self.run_dir.check()
        self.assertOnly(res, duplicated=1)
        self.assertTrue(res["examples"]["duplicated"][0].startswith(
            "c: P1.g0-6 x2"), res["examples"])

    def test_duplicate_across_consumers_of_a_group(self):
        items = self.clean_run()
        self.run_dir.delivered("c", "one", items)
        self.run_dir.delivered("c", "two", items[:2])
        self.assertOnly(self.run_dir.check(), duplicated=2)

    def test_redelivery_fails_unless_allowed(self):
        items = self.clean_run()
        items.append(delivery("P1.g0-100", redelivered=True))
        self.run_dir.delivered("c", "drain", items)
        self.assertOnly(self.run_dir.check(), duplicated=1)
        res = self.run_dir.check(allow_redelivery=True)
        self.assertOnly(res)
        self.assertEqual(res["redelivered"], 1)

    # -- unexpected ----------------------------------------------------
    def test_unexpected_is_caught(self):
        items = self.clean_run()
        items.append(delivery("P9.g0-1"))          # no such producer
        items.append(delivery("P1.g0-101"))        # past what was published
        items.append(delivery(None))               # no message_id at all
        self.run_dir.delivered("c", "drain", items)
        res = self.run_dir.check()
        self.assertOnly(res, unexpected=3)

    def test_without_published_files_unconfirmed_is_unexpected(self):
        run = checker.Run("files")
        run.confirmed = ids("P1", 1, 3)
        run.groups = {"c": [("c/x", [delivery(m) for m in
                                      ids("P1", 1, 4)])]}
        self.assertOnly(checker.check(run), unexpected=1)

    # -- reordering ----------------------------------------------------
    def test_reorder_within_a_producer_is_caught(self):
        items = self.clean_run()
        items[20], items[40] = items[40], items[20]    # both P1
        self.run_dir.delivered("c", "drain", items)
        res = self.run_dir.check()
        # P1-21 came early: P1-12..P1-20 and P1-11 each follow it.
        self.assertOnly(res, reordered=10)
        ex = res["examples"]["reordered"][0]
        self.assertEqual((ex["id"], ex["after"]), ("P1.g0-12", "P1.g0-21"))

    def test_order_between_producers_is_free(self):
        items = self.clean_run()
        p1 = [i for i in items if i["message_id"].startswith("P1")]
        p2 = [i for i in items if i["message_id"].startswith("P2")]
        self.run_dir.delivered("c", "drain", p2 + p1)
        self.assertOnly(self.run_dir.check())

    def test_reorder_across_generations(self):
        r = self.run_dir
        r.published("P1", "P1.g0", 10)
        r.confirmed("P1", ids("P1.g0", 1, 8))      # 9, 10 unconfirmed
        r.published("P1", "P1.g1", 5)
        r.confirmed("P1", ids("P1.g1", 1, 5))
        # Unconfirmed g0 messages after g1 ones: allowed.
        ok = [delivery(m) for m in ids("P1.g0", 1, 8) + ids("P1.g1", 1, 2)
              + ["P1.g0-9"] + ids("P1.g1", 3, 5) + ["P1.g0-10"]]
        r.delivered("ok", "drain", ok)
        res = r.check()
        self.assertOnly(res)
        self.assertEqual(res["unconfirmed_delivered"], 2)

    def test_confirmed_old_generation_after_new_is_caught(self):
        r = self.run_dir
        r.published("P1", "P1.g0", 10)
        r.confirmed("P1", ids("P1.g0", 1, 10))
        r.published("P1", "P1.g1", 5)
        r.confirmed("P1", ids("P1.g1", 1, 5))
        bad = [delivery(m) for m in ids("P1.g0", 1, 9) + ids("P1.g1", 1, 5)
               + ["P1.g0-10"]]
        r.delivered("c", "drain", bad)
        self.assertOnly(r.check(), reordered=1)

    def test_per_consumer_order_and_redeliveries(self):
        items = self.clean_run()
        # A redelivered message arrives late at another consumer: allowed.
        self.run_dir.delivered("c", "one", items[:150])
        late = [delivery("P1.g0-3", redelivered=True)]
        self.run_dir.delivered("c", "two", items[150:] + late)
        res = self.run_dir.check(allow_redelivery=True)
        self.assertOnly(res)
        # The same late copy without the flag is a reorder (and a repeat).
        self.run_dir.delivered("c", "two", [delivery("P1.g0-4")])
        res = self.run_dir.check(allow_redelivery=True)
        self.assertOnly(res, reordered=1)

    # -- federated queues ----------------------------------------------
    def fed_run(self, n=50):
        """Three members a, b, c, producer Pa at a, Pb at b, Pc at c:
        {producer: ids}, all confirmed."""
        out = {}
        for site in "abc":
            prod = "P" + site
            self.run_dir.published(prod, prod + ".g0", n)
            out[prod] = ids(prod + ".g0", 1, n)
            self.run_dir.confirmed(prod, out[prod])
        return out

    def test_local_members_interleave_origins_differently(self):
        # consume: local: every member a group, each with another
        # interleaving of the origins, each origin in order: a pass.
        by = self.fed_run()
        orders = {"a": ("Pa", "Pb", "Pc"), "b": ("Pb", "Pc", "Pa"),
                  "c": ("Pc", "Pa", "Pb")}
        for site, first in orders.items():
            items = []
            for prod in first:
                items += [delivery(m, origin=prod[1]) for m in by[prod]]
            self.run_dir.delivered(site, "drain", items)
        res = self.run_dir.check()
        self.assertOnly(res)
        self.assertEqual(sorted(res["groups"]), ["a", "b", "c"])
        self.assertNotIn("cross_site_duplicates", res)

    def test_local_member_missing_or_repeating_an_origin(self):
        by = self.fed_run()
        full = [delivery(m) for p in sorted(by) for m in by[p]]
        self.run_dir.delivered("a", "drain", full)
        # b lost Pc's last message; c got one of Pa's twice and one of
        # Pb's out of its origin's order.
        self.run_dir.delivered("b", "drain", full[:-1])
        c = list(full)
        c.insert(10, delivery("Pa.g0-3"))
        c[60], c[61] = c[61], c[60]
        self.run_dir.delivered("c", "drain", c)
        res = self.run_dir.check()
        self.assertOnly(res, lost=1, duplicated=1, reordered=1)
        self.assertEqual(res["examples"]["lost"], ["b: Pc.g0-50"])

    def global_run(self, slices):
        """consume: global, 20 messages of each of Pa, Pb, Pc: consumer
        file -> (lo, hi) slice of all ids, delivered in order."""
        by = self.fed_run(20)
        every = [m for p in sorted(by) for m in by[p]]
        for name, (lo, hi) in slices.items():
            self.run_dir.delivered("global", name,
                                   [delivery(m) for m in every[lo:hi]])
        return every

    def test_cross_site_duplicates_counted_not_failed(self):
        # consume: global: one group, consumers at three sites; a message
        # taken at two sites is a cross-site duplicate, allowed.
        every = self.global_run({"a.live-0": (0, 30), "b.live-0": (25, 50),
                                 "c.drain": (48, 60)})
        res = self.run_dir.check(cross_site=True)
        self.assertOnly(res)
        self.assertEqual(res["cross_site_duplicates"], 5 + 2)
        self.assertEqual(res["groups"]["global"]["cross_site_duplicates"], 7)
        # The same files without --cross-site: repeats in one group.
        self.assertOnly(self.run_dir.check(), duplicated=7)

    def test_cross_site_still_catches_loss_and_site_repeats(self):
        # b.live-0 and b.live-1 are one site: Pb.g0-15 twice there (a
        # repeat); Pa.g0-1 at a and b (a cross-site duplicate).
        every = self.global_run({"a.live-0": (0, 30), "b.live-0": (30, 40)})
        self.run_dir.delivered("global", "b.live-1",
                               [delivery("Pb.g0-15"), delivery("Pa.g0-1")]
                               + [delivery(m) for m in every[40:59]])
        res = self.run_dir.check(cross_site=True)
        self.assertOnly(res, lost=1, duplicated=1)
        self.assertEqual(res["cross_site_duplicates"], 1)
        self.assertEqual(res["examples"]["lost"], ["global: Pc.g0-20"])
        # A repeat at one site after a crash is a redelivery when allowed.
        res = self.run_dir.check(cross_site=True, allow_redelivery=True)
        self.assertOnly(res, lost=1)
        self.assertEqual(res["redelivered"], 1)

    def test_consumer_site(self):
        self.assertEqual(checker.consumer_site("global/b.live-3.jsonl"), "b")
        self.assertEqual(checker.consumer_site("global/a.drain.jsonl"), "a")
        self.assertEqual(checker.consumer_site("c/drain.jsonl"), "drain")

    # -- the parts -----------------------------------------------------
    def test_parse_id(self):
        self.assertEqual(checker.parse_id("P1-7"), ("P1", 0, 7))
        self.assertEqual(checker.parse_id("P1.g3-7"), ("P1", 3, 7))
        self.assertEqual(checker.parse_id("a-b-c.g12-0"), ("a-b-c", 12, 0))
        for bad in ("P1", "P1-", "-5", "P1-x", None, 5):
            self.assertIsNone(checker.parse_id(bad), bad)

    def test_confirmed_file_with_torn_last_line(self):
        path = os.path.join(self.tmp, "c.txt")
        with open(path, "w") as f:
            f.write("P1-1\nP1-2\nP1-")
        self.assertEqual(checker.read_ids(path), ["P1-1", "P1-2"])

    # -- the command ---------------------------------------------------
    def test_command_line(self):
        self.run_dir.delivered("c", "drain", self.clean_run())
        bad = RunDir(self.tmp, "bad")
        bad.confirmed("P1", ["P1-1", "P1-2"])
        bad.delivered("c", "drain", [delivery("P1-2"), delivery("P1-2")])
        p = subprocess.run([sys.executable, CHECKER, "--quiet",
                            self.run_dir.path, bad.path],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        lines = p.stdout.strip().splitlines()
        self.assertEqual(lines[-1], "chaos: 1 passed, 1 failed")
        self.assertIn("bad: FAIL", p.stdout)
        self.assertIn("lost=1 duplicated=1", p.stdout)
        p = subprocess.run([sys.executable, CHECKER, self.run_dir.path],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertTrue(p.stdout.strip().endswith(
            "chaos: 1 passed, 0 failed"))
        # The JSON comes first and parses.
        body = p.stdout[:p.stdout.rindex("}") + 1]
        self.assertTrue(json.loads(body)["passed"])

    def test_command_line_files(self):
        conf = os.path.join(self.tmp, "conf")
        dl = os.path.join(self.tmp, "dl.jsonl")
        with open(conf, "w") as f:
            f.write("X-1\nX-2\n")
        with open(dl, "w") as f:
            f.write(json.dumps(delivery("X-1")) + "\n")
        out = io.StringIO()
        with redirect_stdout(out):
            rc = checker.main(["--confirmed", conf, "--delivered",
                               "site=" + dl, "--json-only"])
        self.assertEqual(rc, 1)
        res = json.loads(out.getvalue())
        self.assertEqual(res["lost"], 1)
        self.assertEqual(res["examples"]["lost"], ["site: X-2"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
