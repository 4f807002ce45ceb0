"""tests/integration/test_fed_lag.py — federation lag as operators read it
(DESIGN.md §3): while a member is down, every other member shows a
federation link to it with a backlog and a lag that grows, its alert
fires, the history it is kept for grows (up to history_max_messages /
history_max_bytes, far above these figures; test_fed_history.py covers
the cap); once the member is back the
backlog and lag return to 0 everywhere, the alert clears and the history
is compacted away. Read through `fedq status --json`, `fedq lag` and
GET /metrics.

    FEDQ_BUILD=build python3 tests/integration/run.py test_fed_lag
"""

import re
import unittest
import urllib.request

import fedlib
import harness

M = 1000
SIZE = 512


def metric(node, name, **labels):
    """The value of one sample of GET /metrics, or None."""
    with urllib.request.urlopen(node.http_url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    for line in text.splitlines():
        m = re.match(r"^([a-z_]+)\{(.*)\} (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2)))
        if all(have.get(k) == v for k, v in labels.items()):
            return float(m.group(3))
    return None


class FedLagTest(harness.FedqTestCase):

    def to(self, node, peer):
        links = [ln for ln in fedlib.fed_links(node) if ln["peer"] == peer]
        self.assertEqual(len(links), 1, fedlib.fed_links(node))
        return links[0]

    def test_lag_while_member_down(self):
        nodes = fedlib.make_members(self, ["n1", "n2", "n3"], "mesh",
                                    http=True, lag_alert="1s")
        n1, n2, n3 = nodes
        fedlib.start_all(nodes)
        fedlib.publish(n1, "warm", 100)
        fedlib.wait_converged(nodes, 100, timeout=30)
        # Fully acknowledged history is compacted (every member has it).
        harness.wait_until(lambda: all(
            ln["history_events"] == 0 for n in nodes
            for ln in fedlib.fed_links(n)), timeout=20,
            msg="history compacted once every member has it")

        n3.kill9()
        harness.wait_until(lambda: all(
            self.to(n, "n3")["state"] == "reconnecting" for n in (n1, n2)),
            timeout=20, msg="links to n3 reconnecting")
        fedlib.publish(n1, "p1", M, size=SIZE)
        fedlib.publish(n2, "p2", M, size=SIZE)
        harness.wait_until(lambda: n1.depth("audit") == 100 + 2 * M
                           and n2.depth("audit") == 100 + 2 * M,
                           timeout=30, msg="n1 and n2 converged")

        # Both survivors hold n3's backlog: n1's and n2's events.
        first = {}
        for n in (n1, n2):
            ln = self.to(n, "n3")
            self.assertEqual(ln["kind"], "federation")
            self.assertEqual(ln["backlog_messages"], 2 * M, ln)
            self.assertGreaterEqual(ln["backlog_bytes"], 2 * M * SIZE, ln)
            self.assertGreater(ln["lag_seconds"], 0, ln)
            self.assertNotEqual(ln["last_error"], "", ln)
            self.assertGreaterEqual(ln["history_events"], 2 * M, ln)
            first[n.id] = ln["lag_seconds"]
            # The link between the survivors is healthy.
            other = self.to(n, "n2" if n is n1 else "n1")
            self.assertEqual(other["state"], "running", other)
            self.assertEqual(other["backlog_messages"], 0, other)

        # Lag grows with time, and passes lag_alert (1s).
        for n in (n1, n2):
            harness.wait_until(
                lambda: self.to(n, "n3")["lag_seconds"] > first[n.id] + 1
                and self.to(n, "n3")["lag_alert"], timeout=20,
                msg="%s's lag to n3 growing past its alert" % n.id)
        # /metrics serves a snapshot refreshed every 500 ms.
        fed = {"kind": "federation", "peer": "n3", "link": "audit/n3"}
        harness.wait_until(
            lambda: metric(n1, "fedq_link_lag_seconds", **fed) > 1
            and metric(n1, "fedq_link_lag_alert", **fed) == 1, timeout=10,
            msg="/metrics: lag past 1 s, alert raised")
        self.assertEqual(metric(n1, "fedq_link_backlog_messages", **fed),
                         2 * M)
        lag_table = n1.cli.check("lag")
        row = [ln for ln in lag_table.splitlines() if "audit/n3" in ln]
        self.assertEqual(len(row), 1, lag_table)
        self.assertIn("federation", row[0])
        self.assertIn("reconnecting", row[0])

        # History is kept for n3 while it is away: more events, more
        # history (below the default caps).
        fedlib.publish(n1, "p1b", M, size=SIZE)
        harness.wait_until(lambda: self.to(n2, "n3")["history_events"]
                           >= 3 * M, timeout=20, msg="history grows")
        self.assertEqual(self.to(n1, "n3")["backlog_messages"], 3 * M)

        # n3 back: backlog and lag 0 everywhere, alerts clear, history
        # compacted.
        n3.start()
        fedlib.wait_converged(nodes, 100 + 3 * M, timeout=60)

        def clear():
            for n in nodes:
                for ln in fedlib.fed_links(n):
                    if (ln["state"] != "running" or ln["lag_seconds"] != 0
                            or ln["lag_alert"] or ln["backlog_bytes"] != 0
                            or ln["history_events"] != 0):
                        return False
            return True
        harness.wait_until(clear, timeout=30,
                           msg="lag 0, alerts clear, history compacted")
        harness.wait_until(
            lambda: metric(n1, "fedq_link_backlog_messages", **fed) == 0
            and metric(n1, "fedq_link_lag_alert", **fed) == 0, timeout=10,
            msg="/metrics: backlog 0, alert cleared")
        per = {n.id: fedlib.drain(n, 100 + 3 * M) for n in nodes}
        fedlib.check_same_everywhere(self, per, {"warm": 100, "p1": M,
                                                 "p2": M, "p1b": M})


if __name__ == "__main__":
    unittest.main()
