"""tests/integration/fedlib.py — helpers for the federated queue tests
(test_fed_*.py): member configs for mesh, ring and hub-and-spokes
topologies, background publishers, federation link status, and the
convergence check of DESIGN.md §2 "Federated queue" (same set on every
member, each id once, per-origin order kept).

Not a test module itself; the test_fed_*.py files import it."""

import collections
import os
import re
import subprocess

import harness

QUEUE = "audit"


def fed_entry(peers, consume="local", name=QUEUE, **opts):
    """One federated_queues entry: peers is a list of Nodes (not started;
    their ports are already picked)."""
    e = collections.OrderedDict()
    e["name"] = name
    e["consume"] = consume
    e["peers"] = [collections.OrderedDict([("id", p.id),
                                           ("endpoint", p.endpoint)])
                  for p in peers]
    e.update(opts)
    return e


def topology(kind, n):
    """Peer lists by member index: {i: [j, ...]} for "mesh" (everyone
    lists everyone), "ring" (each lists only the next) and "hub" (member
    0 is the hub and lists nobody; the spokes list the hub)."""
    if kind == "mesh":
        return {i: [j for j in range(n) if j != i] for i in range(n)}
    if kind == "ring":
        return {i: [(i + 1) % n] for i in range(n)}
    if kind == "hub":
        return {i: ([] if i == 0 else [0]) for i in range(n)}
    raise ValueError(kind)


def make_members(tc, ids, kind="mesh", consume="local", fsync="batch",
                 http=False, proxies=None, **opts):
    """Create (not start) one Node per id in tc, with the federated queue
    wired as `kind`. Returns the nodes in the order of ids.

    With proxies (a dict), every link goes through a fault proxy started
    here: proxies[(from_id, to_id)] is the Proxy in front of to_id that
    from_id's link uses."""
    nodes = [tc.node(i, fsync=fsync, http=http) for i in ids]
    peers = topology(kind, len(nodes))
    for i, n in enumerate(nodes):
        targets = []
        for j in peers[i]:
            if proxies is None:
                targets.append((nodes[j].id, nodes[j].endpoint))
            else:
                px = Proxy(tc, "%s-%s" % (n.id, nodes[j].id), nodes[j].port)
                proxies[(n.id, nodes[j].id)] = px
                targets.append((nodes[j].id, px.endpoint))
        e = collections.OrderedDict()
        e["name"] = QUEUE
        e["consume"] = consume
        e["peers"] = [collections.OrderedDict([("id", pid), ("endpoint", ep)])
                      for pid, ep in targets]
        e.update(opts)
        n.sections["federated_queues"] = [e]
    return nodes


def start_all(nodes):
    for n in nodes:
        n.start()


# -- Publishing ---------------------------------------------------------

class Publisher:
    """A `fedq publish` running in the background against one node, with
    message ids PRODUCER-1..N (the --id convention of docs/client.md)."""

    def __init__(self, tc, node, producer, count, size=64, rate=None,
                 window=None, queue=QUEUE):
        self.node = node
        self.producer = producer
        self.count = count
        self.out = os.path.join(tc.tmp, "pub-%s-%s.log" % (node.id, producer))
        args = ["publish", "", queue, "--count", count, "--size", size,
                "--id", producer, "--timeout", "30s"]
        if rate:
            args += ["--rate", rate]
        if window:
            args += ["--window", window]
        self.proc = node.cli.start(*args, stdout_path=self.out)

    def done(self):
        return self.proc.poll() is not None

    def wait(self, timeout=120):
        harness.wait_until(self.done, timeout=timeout,
                           msg="publisher %s on %s to exit"
                           % (self.producer, self.node.id))
        harness.untrack(self.proc)
        return self.proc.returncode

    def output(self):
        with open(self.out, errors="replace") as f:
            return f.read()

    def check(self, timeout=120):
        rc = self.wait(timeout)
        if rc != 0:
            raise AssertionError("publisher %s on %s exited %s:\n%s"
                                 % (self.producer, self.node.id, rc,
                                    self.output()[-2000:]))

    def stop(self):
        harness.stop_process(self.proc)


def publish(node, producer, count, size=64, queue=QUEUE, timeout_s=120):
    """Publish count messages with ids PRODUCER-N, confirmed (exit 0)."""
    node.cli.check("publish", "", queue, "--count", count, "--size", size,
                   "--id", producer, timeout_s=timeout_s)


# -- Looking at members -------------------------------------------------

def fed_links(node, queue=QUEUE):
    """The federation entries of node's status links for queue."""
    return [ln for ln in node.status().get("links", [])
            if ln.get("kind") == "federation"
            and ln.get("queue", queue) == queue]


def depths(nodes, queue=QUEUE):
    return {n.id: n.depth(queue) for n in nodes}


def converged(nodes, total, queue=QUEUE, expect_links=True):
    """True when every node has depth total and every federation link it
    shows has backlog 0 (and, with expect_links, it shows at least one)."""
    for n in nodes:
        if n.depth(queue) != total:
            return False
        links = fed_links(n, queue)
        if expect_links and not links:
            return False
        if any(ln.get("backlog_messages") != 0 for ln in links):
            return False
    return True


def wait_converged(nodes, total, timeout=60, queue=QUEUE):
    """Poll until converged(); on timeout the message has each member's
    depth and link backlogs."""
    def state():
        if converged(nodes, total, queue):
            return True
        return None

    try:
        harness.wait_until(state, timeout=timeout,
                           msg="%d messages on every member" % total)
    except harness.WaitTimeout as e:
        detail = []
        for n in nodes:
            try:
                detail.append("%s depth=%s links=%s" % (
                    n.id, n.depth(queue),
                    [(ln["peer"], ln["state"], ln["backlog_messages"])
                     for ln in fed_links(n, queue)]))
            except Exception as ex:  # noqa: BLE001
                detail.append("%s: %s" % (n.id, ex))
        raise AssertionError("%s\n%s" % (e, "\n".join(detail)))


def drain(node, total, queue=QUEUE, timeout_s=180):
    """Consume exactly total messages from node (acking them) and return
    the parsed JSON lines in consume order."""
    return node.cli.consume(queue, total, "--prefetch", 2000,
                            timeout_s=timeout_s)


def check_member(tc, node_id, msgs):
    """Each id once, and every origin's seqs (and each producer's message
    id numbers) increasing in this member's consume order. Returns the
    set of ids."""
    ids = [m["id"] for m in msgs]
    dup = [i for i, c in collections.Counter(ids).items() if c > 1]
    tc.assertEqual(dup, [], "%s delivered %d ids more than once, e.g. %s"
                   % (node_id, len(dup), dup[:5]))
    last_seq = {}
    last_n = {}
    for pos, m in enumerate(msgs):
        o, s = m["origin"], m["seq"]
        tc.assertGreater(s, last_seq.get(o, 0),
                         "%s: origin %s out of order at position %d "
                         "(seq %d after %d)" % (node_id, o, pos, s,
                                                last_seq.get(o, 0)))
        last_seq[o] = s
        mid = m.get("message_id")
        if mid and "-" in mid:
            prod, n = mid.rsplit("-", 1)
            n = int(n)
            tc.assertGreater(n, last_n.get(prod, 0),
                             "%s: producer %s out of order at %d (%d after "
                             "%d)" % (node_id, prod, pos, n,
                                      last_n.get(prod, 0)))
            last_n[prod] = n
    return set(ids)


def check_same_everywhere(tc, per_member, expected_by_producer=None):
    """per_member: {node_id: [msgs in consume order]}. Every member holds
    the same ids, each once, in per-origin order; with
    expected_by_producer ({producer: count}) every message id PRODUCER-1..N
    is there."""
    sets = {nid: check_member(tc, nid, msgs)
            for nid, msgs in per_member.items()}
    ref_id, ref = next(iter(sets.items()))
    for nid, s in sets.items():
        tc.assertEqual(len(s ^ ref), 0,
                       "%s and %s differ: %d only on %s, %d only on %s"
                       % (nid, ref_id, len(s - ref), nid, len(ref - s),
                          ref_id))
    if expected_by_producer:
        for nid, msgs in per_member.items():
            have = collections.Counter(
                m["message_id"].rsplit("-", 1)[0] for m in msgs
                if m.get("message_id"))
            for prod, count in expected_by_producer.items():
                tc.assertEqual(have.get(prod, 0), count,
                               "%s has %d of producer %s's %d messages"
                               % (nid, have.get(prod, 0), prod, count))
    return ref


# -- Partitions -------------------------------------------------------

def proxy_bin():
    return os.environ.get("FAULT_PROXY") or os.path.join(
        harness.build_dir(), "tests", "fault", "fault_proxy")


def have_proxy():
    return os.access(proxy_bin(), os.X_OK)


class Proxy:
    """A fault_proxy (tests/fault/) in front of one member's endpoint, so a
    test can cut one link while both nodes keep running: partition()
    resets every connection and refuses new ones; heal() lets them in."""

    def __init__(self, tc, name, target_port):
        self.name = name
        log = open(os.path.join(tc.tmp, "proxy-%s.log" % name), "ab")
        self.proc = harness.track(subprocess.Popen(
            [proxy_bin(), "--listen", "127.0.0.1:0", "--target",
             "127.0.0.1:%d" % target_port], stdout=subprocess.PIPE,
            stderr=log, stdin=subprocess.DEVNULL))
        log.close()
        line = self.proc.stdout.readline().decode()
        m = re.search(r"listen 127\.0\.0\.1:(\d+) .* control "
                      r"127\.0\.0\.1:(\d+)", line)
        if not m:
            harness.stop_process(self.proc, 5)
            raise AssertionError("fault_proxy %s did not start: %r"
                                 % (name, line))
        self.port, self.control = int(m.group(1)), int(m.group(2))
        tc.addCleanup(self.stop)

    @property
    def endpoint(self):
        return "tcp://127.0.0.1:%d" % self.port

    def ctl(self, *words):
        r = harness.run([proxy_bin(), "--send", "127.0.0.1:%d"
                         % self.control] + list(words), timeout_s=15)
        if r.rc != 0 or not r.stdout.startswith("ok"):
            raise AssertionError("proxy %s: %s -> %s %s" % (
                self.name, " ".join(words), r.stdout.strip(),
                r.stderr.strip()))
        return r.stdout.strip()

    def partition(self):
        self.ctl("reject", "on")
        self.ctl("reset")

    def heal(self):
        self.ctl("heal")

    def stop(self):
        if self.proc.poll() is None:
            harness.stop_process(self.proc, 5)
        self.proc.stdout.close()


def cut(proxies, node_id):
    """Partition node_id from every other member (both directions)."""
    for (a, b), px in proxies.items():
        if node_id in (a, b):
            px.partition()


def heal(proxies):
    for px in proxies.values():
        px.heal()
