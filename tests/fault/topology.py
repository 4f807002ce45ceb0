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

Adding one (federated queues, a fan-out) is a class here and a line in
TOPOLOGIES; the nemesis and the checker do not change.
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


TOPOLOGIES = {
    "chain2": lambda: ShovelChain(2),
    "chain3": lambda: ShovelChain(3),
}


def make(name):
    try:
        return TOPOLOGIES[name]()
    except KeyError:
        raise ValueError("unknown topology %r (have: %s)"
                         % (name, ", ".join(sorted(TOPOLOGIES))))
