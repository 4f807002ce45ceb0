#!/usr/bin/env python3
"""tests/fault/test_nemesis_plan.py — the nemesis's fault schedule depends
on the seed alone (a seed replays exactly), differs between seeds, and
keeps its own rules (no overlapping faults on one target, nothing in the
warm-up or after the cool-down). No binaries needed.
"""

import json
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import nemesis  # noqa: E402
import topology  # noqa: E402


def schedule(seed, topo="chain3", duration=60.0, kinds=nemesis.FAULT_KINDS,
             gap=2.5):
    return nemesis.plan(seed, topology.make(topo), duration, list(kinds),
                        gap)


class PlanTest(unittest.TestCase):
    def test_same_seed_same_schedule(self):
        for seed in (0, 1, 7, 123456789):
            self.assertEqual(json.dumps(schedule(seed)),
                             json.dumps(schedule(seed)))

    def test_replay_in_another_process(self):
        # Nothing process-wide (hash seeds, time) leaks into the plan.
        out = []
        for hashseed in ("1", "2"):
            env = dict(os.environ, PYTHONHASHSEED=hashseed)
            p = subprocess.run([sys.executable, os.path.join(
                HERE, "nemesis.py"), "--seed", "42", "--plan-only"],
                capture_output=True, text=True, env=env, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            out.append(p.stdout)
        self.assertEqual(out[0], out[1])
        self.assertIn("#1 ", out[0])

    def test_seeds_differ(self):
        plans = {json.dumps(schedule(s)) for s in range(20)}
        self.assertEqual(len(plans), 20)

    def test_every_kind_is_drawn(self):
        kinds = set()
        for s in range(10):
            kinds.update(f["kind"] for f in schedule(s))
        self.assertEqual(kinds, set(nemesis.FAULT_KINDS))

    def test_only_the_kinds_asked_for(self):
        for s in range(10):
            for f in schedule(s, kinds=("kill", "reset")):
                self.assertIn(f["kind"], ("kill", "reset"))

    def test_rules(self):
        topo = topology.make("chain3")
        links = {lk.name for lk in topo.links()}
        for s in range(50):
            faults = schedule(s, duration=40)
            self.assertTrue(faults, "seed %d: no faults" % s)
            busy = {}
            for f in faults:
                self.assertGreaterEqual(f["at"], nemesis.WARMUP_S)
                self.assertLessEqual(f["at"] + f["for"],
                                     40 - nemesis.COOLDOWN_S + 1e-6)
                if f["kind"] in nemesis.NODE_FAULTS:
                    self.assertIn(f["node"], topo.nodes)
                    key = f["node"]
                else:
                    self.assertIn(f["link"], links)
                    key = (f["link"], f["kind"])
                self.assertGreaterEqual(f["at"], busy.get(key, 0),
                                        "seed %d: overlap on %s" % (s, key))
                busy[key] = f["at"] + f["for"]
            self.assertEqual([f["n"] for f in faults],
                             list(range(1, len(faults) + 1)))

    def test_topologies(self):
        for name in topology.TOPOLOGIES:
            topo = topology.make(name)
            links = topo.links()
            self.assertEqual(len(links), len(topo.nodes) - 1)
            for node in topo.nodes:
                sec = topo.sections(node, lambda n: "tcp://127.0.0.1:1")
                self.assertTrue(sec["queues"])
            self.assertTrue(topo.sinks)
            self.assertTrue(topo.entries)
        with self.assertRaises(ValueError):
            topology.make("moebius")


if __name__ == "__main__":
    unittest.main(verbosity=2)
