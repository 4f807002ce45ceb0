"""tests/fault/topology.py — what the nemesis builds: nodes, their
declarations, the links between them (each through a fault proxy), where
producers publish, and which queues must end up with every message.

A topology is a plain object with:

  name                      as given on the command line
  nodes                     node ids, in start order
  links()                   [Link]: one fault proxy per link, from the node
                            that dials to the node it dials
  sections(node, endpoint)  the node's config sections (queues, shovels,
                            federated_queues, ...) as harness.Node takes
                            them; endpoint(link_name) is the address to
                            dial for that link (its proxy)
  entries                   [(node, exchange, routing_key)]: producers
                            publish here, round robin
  sinks                     [(group, node, queue)]: each group must get
                            every confirmed message exactly once (drained
                            after the run)
  transit                   [(node, queue)]: must be empty once settled
  links_running(statuses)   True when every link is up; statuses is
                            {node: `fedq status --json`} of every node
  links_idle(statuses)      True when every link is up with nothing to
                            send (the "settled" wait, with transit)
  live_sinks                [(group, node, queue)]: with --live-consumer,
                            consumed during the run (default sinks[:1])
  redelivery                "crash" (repeats allowed only with
                            --live-consumer) or "sites" (repeats across
                            a group's members are counted as
                            cross_site_duplicates, never a failure)

Adding one (a fan-out, ...) is a class here and a line in TOPOLOGIES; the
nemesis and the checker do not change.
"""

import collections

Link = collections.namedtuple("Link", "name src dst")

NODE_NAMES = "abcdefgh"


class ShovelChain:
    """a -> b [-> c ...]: producers publish to a's `in`; a shovel moves it
    to b, and so on; the last node's `out` gets everything, once, in
    order."""

    def __init__(self, n, prefetch=200):
        assert 2 <= n <= len(NODE_NAMES)
        self.name = "chain%d" % n
        self.nodes = list(NODE_NAMES[:n])
        self.prefetch = prefetch
        self.entries = [(self.nodes[0], "", self.queue(0))]
        self.sinks = [(self.nodes[-1], self.nodes[-1], self.queue(n - 1))]
        self.transit = [(self.nodes[i], self.queue(i)) for i in range(n - 1)]

    def queue(self, i):
        if i == 0:
            return "in"
        if i == len(self.nodes) - 1:
            return "out"
        return "hop%d" % i

    def links(self):
        return [Link("%s-to-%s" % (self.nodes[i], self.nodes[i + 1]),
                     self.nodes[i], self.nodes[i + 1])
                for i in range(len(self.nodes) - 1)]

    def sections(self, node, endpoint):
        i = self.nodes.index(node)
        queues = [{"name": self.queue(i), "durable": True}]
        shovels = []
        if i + 1 < len(self.nodes):
            link = self.links()[i]
            shovels.append({
                "name": link.name,
                "source": {"queue": self.queue(i)},
                "destination": {"endpoint": endpoint(link.name),
                                "queue": self.queue(i + 1)},
                "ack_mode": "on-confirm",
                "prefetch": self.prefetch,
                "reconnect_delay": "100ms",
                "max_reconnect_delay": "1s",
                "heartbeat": "500ms",
            })
        return {"queues": queues, "shovels": shovels}

    def _links(self, statuses):
        """Every shovel entry of the topology in the statuses (on any
        node), and whether each was seen."""
        names = {lk.name for lk in self.links()}
        seen = {}
        for st in statuses.values():
            for lk in st.get("links", []):
                if lk.get("name") in names:
                    seen.setdefault(lk["name"], []).append(lk)
        return names, seen

    def links_running(self, statuses):
        names, seen = self._links(statuses)
        return (set(seen) == names
                and all(lk.get("state") == "running"
                        for lks in seen.values() for lk in lks))

    def links_idle(self, statuses):
        _, seen = self._links(statuses)
        return all(not (lk.get("backlog_messages") or lk.get("lag_seconds")
                        or lk.get("state") != "running")
                   for lks in seen.values() for lk in lks)

    @property
    def live_sinks(self):
        return self.sinks[:1]

    redelivery = "crash"
    empty_after_drain = False


class FedQueue:
    """One federated queue `audit` on n members (DESIGN.md §2): producers
    publish at every member; every member dials the peers it lists
    through a fault proxy of its own (kind "mesh": everyone lists
    everyone, two links per pair; "ring": each lists the next only, so
    events reach the member after next through the next; "biring": each
    lists the next and the previous, so every neighbour is listed, the
    remedy docs/operations.md gives for unlisted members).

    consume "local": every member is a sink group of its own: each must
    end with every confirmed message exactly once, per-origin (=
    per-producer: each producer publishes at one member) order intact.

    consume "global": an ack on one member removes the message on every
    member. Live consumers at every member take messages during the run
    (through the faults), then the rest is drained at the first member:
    all of them form one group "global" that must get every confirmed
    message at least once. A message delivered at two members (both
    sides of a partition, or a member that had not yet received the
    other's tombstone) is counted as cross_site_duplicates and allowed;
    the same message twice at one member only after a crash there
    (redelivered). Settled, every member must end empty."""

    QUEUE = "audit"

    def __init__(self, n, kind="mesh", consume="local", name=None):
        assert 2 <= n <= len(NODE_NAMES)
        assert kind in ("mesh", "ring", "biring")
        assert consume in ("local", "global")
        self.name = name or "fed%s%d" % ("" if kind == "mesh" else kind, n)
        self.kind, self.consume = kind, consume
        self.nodes = list(NODE_NAMES[:n])
        if kind == "mesh":
            self.peers = {a: [b for b in self.nodes if b != a]
                          for a in self.nodes}
        elif kind == "ring":
            self.peers = {a: [self.nodes[(i + 1) % n]]
                          for i, a in enumerate(self.nodes)}
        else:
            self.peers = {a: sorted({self.nodes[(i + 1) % n],
                                     self.nodes[(i - 1) % n]})
                          for i, a in enumerate(self.nodes)}
        self.entries = [(nid, "", self.QUEUE) for nid in self.nodes]
        if consume == "local":
            self.sinks = [(nid, nid, self.QUEUE) for nid in self.nodes]
            self.live_sinks = self.sinks[:1]
            self.redelivery = "crash"
        else:
            self.sinks = [("global", self.nodes[0], self.QUEUE)]
            self.live_sinks = [("global", nid, self.QUEUE)
                               for nid in self.nodes]
            self.redelivery = "sites"
        self.transit = []
        #  Settled, every member holds this many messages: with global
        #  consumption, the drain at the first member empties them all.
        self.empty_after_drain = consume == "global"

    def links(self):
        return [Link("%s-to-%s" % (a, b), a, b)
                for a in self.nodes for b in self.peers[a]]

    def neighbours(self, node):
        """The members node exchanges events with directly: those it
        lists and those that list it."""
        return sorted(set(self.peers[node])
                      | {a for a in self.nodes if node in self.peers[a]})

    def sections(self, node, endpoint):
        entry = {
            "name": self.QUEUE,
            "consume": self.consume,
            "peers": [{"id": b, "endpoint": endpoint("%s-to-%s" % (node, b))}
                      for b in self.peers[node]],
        }
        return {"federated_queues": [entry]}

    def _pairs(self, statuses):
        """{(member, peer): [entries]} of the federation entries for the
        queue in every member's status."""
        seen = {}
        for nid, st in statuses.items():
            for lk in st.get("links", []):
                if (lk.get("kind") == "federation"
                        and lk.get("queue") == self.QUEUE):
                    seen.setdefault((nid, lk.get("peer")), []).append(lk)
        return seen

    def links_running(self, statuses):
        seen = self._pairs(statuses)
        for a in self.nodes:
            for b in self.neighbours(a):
                lks = seen.get((a, b))
                if not lks or any(lk.get("state") != "running"
                                  for lk in lks):
                    return False
        return True

    def links_idle(self, statuses):
        """Every member pair running, and each member's backlog to each
        direct peer 0 (every event of its history acknowledged: its own
        messages, those it relays, tombstones)."""
        if not self.links_running(statuses):
            return False
        return all(not (lk.get("backlog_messages") or lk.get("lag_seconds"))
                   for lks in self._pairs(statuses).values() for lk in lks)


TOPOLOGIES = {
    "chain2": lambda: ShovelChain(2),
    "chain3": lambda: ShovelChain(3),
    "fed3": lambda: FedQueue(3, "mesh", "local"),
    "fedring3": lambda: FedQueue(3, "ring", "local"),
    "fedring4": lambda: FedQueue(4, "biring", "local", name="fedring4"),
    "fedglobal3": lambda: FedQueue(3, "mesh", "global", name="fedglobal3"),
}


def make(name):
    try:
        return TOPOLOGIES[name]()
    except KeyError:
        raise ValueError("unknown topology %r (have: %s)"
                         % (name, ", ".join(sorted(TOPOLOGIES))))
