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
            if isinstance(topo, topology.ShovelChain):
                self.assertEqual(len(links), len(topo.nodes) - 1)
            for node in topo.nodes:
                sec = topo.sections(node, lambda n: "tcp://127.0.0.1:1")
                self.assertTrue(sec.get("queues")
                                or sec.get("federated_queues"))
            self.assertTrue(topo.sinks)
            self.assertTrue(topo.entries)
            # Live consumers deliver into sink groups.
            self.assertLessEqual({g for g, _, _ in topo.live_sinks},
                                 {g for g, _, _ in topo.sinks})
        with self.assertRaises(ValueError):
            topology.make("moebius")

    def fed_sections(self, topo):
        """{node: its federated queue entry}, each link's endpoint named
        after the link (so that it is known to go through its proxy)."""
        return {n: topo.sections(n, lambda link: "proxy:" + link)
                ["federated_queues"][0] for n in topo.nodes}

    def test_federation_topologies(self):
        want = {"fed3": ("mesh", "local", 6), "fedring3": ("ring", "local", 3),
                "fedring4": ("biring", "local", 8),
                "fedglobal3": ("mesh", "global", 6)}
        for name, (kind, consume, nlinks) in want.items():
            topo = topology.make(name)
            self.assertEqual((topo.name, topo.kind, topo.consume),
                             (name, kind, consume))
            links = topo.links()
            self.assertEqual(len(links), nlinks)
            self.assertEqual(len({lk.name for lk in links}), nlinks)
            secs = self.fed_sections(topo)
            # Every link is one peer entry of its source, dialled through
            # the link's own proxy; nothing is dialled directly.
            for lk in links:
                peers = {p["id"]: p["endpoint"] for p in secs[lk.src]["peers"]}
                self.assertEqual(peers.get(lk.dst), "proxy:" + lk.name)
            for n, e in secs.items():
                self.assertEqual(e["consume"], consume)
                self.assertEqual(len(e["peers"]),
                                 len([lk for lk in links if lk.src == n]))
            # Producers publish at every member.
            self.assertEqual(sorted(n for n, _, _ in topo.entries),
                             topo.nodes)
            if consume == "local":
                # Every member is a sink group of its own.
                self.assertEqual(sorted((g, n) for g, n, _ in topo.sinks),
                                 [(n, n) for n in topo.nodes])
                self.assertEqual(topo.redelivery, "crash")
            else:
                self.assertEqual(len(topo.sinks), 1)
                self.assertEqual(sorted(n for _, n, _ in topo.live_sinks),
                                 topo.nodes)
                self.assertEqual(topo.redelivery, "sites")
                self.assertTrue(topo.empty_after_drain)
        # The ring still connects everyone: each member has two
        # neighbours (one it dials, one that dials it).
        ring = topology.make("fedring3")
        for n in ring.nodes:
            self.assertEqual(len(ring.neighbours(n)), 2)
        # fedring4 lists both neighbours: a and c are not neighbours.
        ring = topology.make("fedring4")
        for n in ring.nodes:
            self.assertEqual(ring.neighbours(n), ring.peers[n])
        self.assertNotIn("c", ring.neighbours("a"))

    @staticmethod
    def fed_status(topo, backlog=None, state=None, drop=None):
        """{node: status} as the members would show them when settled,
        with backlog[(a, b)] / state[(a, b)] overrides and the pairs in
        drop left out."""
        out = {}
        for a in topo.nodes:
            links = []
            for b in topo.neighbours(a):
                if drop and (a, b) in drop:
                    continue
                links.append({"name": "audit/" + b, "kind": "federation",
                              "queue": "audit", "peer": b,
                              "state": (state or {}).get((a, b), "running"),
                              "backlog_messages":
                                  (backlog or {}).get((a, b), 0),
                              "lag_seconds": 0.0})
            out[a] = {"links": links, "queues": [{"name": "audit",
                                                  "depth": 5}]}
        return out

    def test_federation_settled_uses_every_member_pair(self):
        for name in ("fed3", "fedring3", "fedring4", "fedglobal3"):
            topo = topology.make(name)
            ok = self.fed_status(topo)
            self.assertTrue(topo.links_running(ok))
            self.assertTrue(topo.links_idle(ok))
            for a in topo.nodes:
                for b in topo.neighbours(a):
                    self.assertFalse(topo.links_idle(self.fed_status(
                        topo, backlog={(a, b): 1})), (name, a, b))
                    self.assertFalse(topo.links_idle(self.fed_status(
                        topo, state={(a, b): "reconnecting"})), (name, a, b))
                    # A pair not shown at all (the peer's inbound stream
                    # is not connected) is not settled either.
                    self.assertFalse(topo.links_running(self.fed_status(
                        topo, drop={(a, b)})), (name, a, b))
            # Shovel entries (another kind) are not federation pairs.
            chain = topology.make("chain3")
            self.assertFalse(chain.links_running(ok))

    def test_chain_settled_unchanged(self):
        topo = topology.make("chain3")
        st = {"a": {"links": [{"name": "a-to-b", "state": "running",
                               "backlog_messages": 0, "lag_seconds": 0}]},
              "b": {"links": [{"name": "b-to-c", "state": "running",
                               "backlog_messages": 0, "lag_seconds": 0}]},
              "c": {"links": []}}
        self.assertTrue(topo.links_running(st))
        self.assertTrue(topo.links_idle(st))
        st["b"]["links"][0]["backlog_messages"] = 3
        self.assertFalse(topo.links_idle(st))
        st["b"]["links"] = []
        self.assertFalse(topo.links_running(st))

    def test_federation_plans(self):
        # The federation seed of `scripts/chaos --quick` (seed 1 on fed3,
        # 25 s in CI, 40 s by default) draws node and link faults on the
        # members and their links.
        topo = topology.make("fed3")
        links = {lk.name for lk in topo.links()}
        for duration in (25, 40):
            faults = schedule(1, topo="fed3", duration=duration)
            self.assertTrue(faults)
            self.assertTrue(any(f["kind"] in nemesis.NODE_FAULTS
                                for f in faults))
            self.assertTrue(any("link" in f for f in faults))
        kinds, targets = set(), set()
        for s in range(10):
            for f in schedule(s, topo="fed3"):
                kinds.add(f["kind"])
                targets.add(f.get("node") or f.get("link"))
                if "link" in f:
                    self.assertIn(f["link"], links)
        self.assertEqual(kinds, set(nemesis.FAULT_KINDS))
        self.assertEqual(targets, set(topo.nodes) | links)
        self.assertEqual(json.dumps(schedule(5, topo="fedring3")),
                         json.dumps(schedule(5, topo="fedring3")))

    def test_producers_at_every_member(self):
        self.assertEqual(nemesis.parse_args(
            ["--seed", "1", "--topology", "fed3"]).producers, 3)
        self.assertEqual(nemesis.parse_args(["--seed", "1"]).producers, 2)
        a = nemesis.parse_args(["--seed", "1", "--topology", "fedglobal3"])
        self.assertTrue(a.live_consumer)
        self.assertFalse(nemesis.parse_args(["--seed", "1"]).live_consumer)

if __name__ == "__main__":
    unittest.main(verbosity=2)
