"""tests/integration/test_shovel_common.py — helpers shared by the shovel
tests (test_shovel_*.py). It holds no tests itself: two nodes joined by a
shovel, reading a link's figures, draining a queue and checking what
arrived against what the publishers had confirmed.

Environment:
    FEDQ_LONG=1   the long variants (more messages, more crashes)
"""

import collections
import os
import re

import harness

LONG = os.environ.get("FEDQ_LONG") == "1"

#  Short timers so that a dead or frozen peer is noticed within a second
#  and a restarted one is reconnected to at once (defaults are 1 s / 30 s).
FAST_LINK = {"heartbeat": "250ms", "reconnect_delay": "50ms",
             "max_reconnect_delay": "500ms"}

LINK_STATES = ("starting", "running", "reconnecting", "blocked", "stopped")


def shovel(name, source, endpoint, exchange=None, routing_key=None,
           queue=None, **extra):
    """A `shovels[]` entry (DESIGN.md §5) with FAST_LINK timers."""
    dest = {"endpoint": endpoint}
    if queue is not None:
        dest["queue"] = queue
    if exchange is not None:
        dest["exchange"] = exchange
    if routing_key is not None:
        dest["routing_key"] = routing_key
    entry = {"name": name, "source": {"queue": source},
             "destination": dest}
    entry.update(FAST_LINK)
    entry.update(extra)
    return entry


def link(node, name):
    """The link's entry in `status --json` links[]; fails when absent."""
    entry = node.link(name)
    if entry is None:
        raise AssertionError("node %s has no link %r in status: %r"
                             % (node.id, name, node.status().get("links")))
    return entry


def wait_drained(node, name, timeout=60):
    """Wait until the link shows backlog 0, lag 0, state running; return
    its figures."""
    def drained():
        ln = link(node, name)
        if (ln["backlog_messages"] == 0 and ln["lag_seconds"] == 0
                and ln["state"] == "running"):
            return ln
        return None
    return harness.wait_until(drained, timeout=timeout,
                              msg="link %s on %s drained" % (name, node.id))


def consume_all(node, queue, expected=None, timeout_s=120):
    """Consume every message of queue (its depth now, or `expected` once
    the depth reaches it) with `consume --json`; check it is empty after.
    Return the parsed messages in arrival order."""
    if expected is not None:
        harness.wait_until(lambda: node.depth(queue) == expected,
                           timeout=timeout_s,
                           msg="%s@%s depth %d" % (queue, node.id, expected))
    depth = node.depth(queue)
    msgs = node.cli.consume(queue, depth, timeout_s=timeout_s) if depth else []
    if len(msgs) != depth:
        raise AssertionError("consumed %d of %d from %s@%s"
                             % (len(msgs), depth, queue, node.id))
    left = node.depth(queue)
    if left:
        raise AssertionError("%s@%s still holds %d after consuming %d"
                             % (queue, node.id, left, depth))
    return msgs


def read_confirmed(path):
    """The message ids a publisher wrote to its --confirmed FILE."""
    try:
        with open(path) as f:
            return [ln.strip() for ln in f if ln.strip()]
    except FileNotFoundError:
        return []


_MID = re.compile(r"^(.*)-(\d+)$")


def split_mid(mid):
    """"PREFIX-N" -> (PREFIX, N); ValueError otherwise."""
    m = _MID.match(mid or "")
    if not m:
        raise ValueError("message_id %r is not PREFIX-N" % (mid,))
    return m.group(1), int(m.group(2))


def check_exactly_once(tc, msgs, confirmed, published=None):
    """What arrived (msgs, `consume --json` objects in arrival order)
    against what was confirmed (ids) and what may have been published
    (published: prefix -> highest N sent, when given):
    - every message carries a message_id, and no id arrives twice;
    - every confirmed id arrived;
    - per publisher prefix, ids arrive in publish order (N increasing);
    - every id that arrived was published (known prefix, N in range).
    Returns a Counter of findings for the test's report."""
    seen = collections.Counter(m.get("message_id") for m in msgs)
    dups = [(k, c) for k, c in seen.items() if c > 1]
    tc.assertFalse(dups, "ids delivered more than once (first 10): %r"
                   % dups[:10])
    tc.assertNotIn(None, seen, "a message arrived without message_id")
    missing = [c for c in confirmed if c not in seen]
    tc.assertFalse(missing, "%d confirmed ids never arrived (first 10): %r"
                   % (len(missing), missing[:10]))
    last = {}
    for m in msgs:
        prefix, n = split_mid(m["message_id"])
        if published is not None:
            tc.assertIn(prefix, published, "unexpected id %s" % m)
            tc.assertTrue(1 <= n <= published[prefix],
                          "unexpected id %s (prefix %s sent up to %d)"
                          % (m["message_id"], prefix, published[prefix]))
        if prefix in last:
            tc.assertGreater(n, last[prefix],
                             "out of source order: %s after %s-%d"
                             % (m["message_id"], prefix, last[prefix]))
        last[prefix] = n
    return collections.Counter(arrived=len(msgs), confirmed=len(confirmed),
                               unconfirmed_arrived=len(msgs) - len(
                                   set(confirmed)))
