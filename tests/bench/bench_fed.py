#!/usr/bin/env python3
"""tests/bench/bench_fed.py — the federated queue benchmark behind
`scripts/bench federation`: fedq's federated queue and RabbitMQ's
federated exchange and federated queue side by side on this machine. A
benchmark, not a test: it reports figures, it asserts no speed.

Measured for each body size (default 1 KiB), REPEAT times, medians:
- fedq drain: a federated queue `audit` on M members (full mesh; M = 3,
  and 2 for the like-for-like comparison with RabbitMQ's two nodes). N
  messages are published at n1 while the other members are down (n1
  keeps its history for them: they are in its peer list); then they start.
  `bench_shovel waitcount` on each (started before it, so it sees the
  first arrival) polls the depth every 0.5 ms: rate from the first arrival
  to the N-th, as the RabbitMQ anchor measures its links; the slowest
  member's rate is the figure. Also the time from starting them until
  every member has N (includes their start-up).
- fedq live: every member up and linked; N published flat out at n1
  (window 5000); time until every member has N, and N / that time.
- fedq latency: a publisher paced at a fixed rate into n1, a consumer
  on n2; latency = delivery time at n2 - send time stamped in the body
  (publish and fsync at n1, the federation hop, apply and fsync at n2,
  delivery): p50 / p99 / max and the rate reached. With 2 members at
  every rate of --lat-rates (2,000 and 20,000 msg/s) and every size of
  --lat-sizes (100 B, 1 KiB, 16 KiB), side by side with RabbitMQ; with
  other member counts at the first rate only.
- CPU seconds and peak RSS of every process of each workload (members,
  RabbitMQ nodes, load clients).
- RabbitMQ (two nodes, the anchor's settings, cluster names set): the
  federated exchange backlog drain (link paused by revoking the
  federation user's permissions, N published to fx@A, link resumed;
  rate first to N-th arrival in fq@B), the federated queue backlog drain
  (N preloaded in fq2@A, a consumer on fq2@B, first to last delivery),
  and both latencies at LAT_RATE.

usage: bench_fed.py [--quick] [--sizes 1024] [-n N] [--repeat R]
                    [--members 3,2] [--lat-rates 2000,20000]
                    [--lat-sizes 100,1024,16384] [--lat-secs S]
                    [--fsync F] [--no-rabbitmq] [--dir DIR] [--out DIR]
Output: a markdown table on stdout, MET/MISS against the targets (1 KiB:
fedq drain >= 20x RabbitMQ's federated exchange drain (anchor 14.1k) and
>= 15x its federated queue drain (anchor 17.8k); p99 < 1 ms at 2,000
msg/s), the same ratios against RabbitMQ as measured in this run, and a
CSV of every run under bench-results/.
environment: FEDQ_BUILD (build folder; scripts/bench makes a Release one),
FEDQ_BENCH_DIR (where node data goes), FEDQ_RMQ_PORT (default 5721 here).
"""

import argparse
import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import harness  # noqa: E402
from benchlib import (ProcWatch, amqp_paced, emit_pair,  # noqa: E402
                      finish, fmt, kv, med, ratio, run_client, tool,
                      write_runs)

RMQ = os.path.join(HERE, "rabbitmq.sh")
ANCHOR = {"fedx_drain": 14069, "fedq_drain": 17778}     # 1 KiB, anchor
QUEUE = "audit"


def say(msg):
    sys.stderr.write("bench federation: %s\n" % msg)
    sys.stderr.flush()


def load_average():
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError):
        return None


def node_procs(nodes):
    return [("fedq-" + x.id, x.pid) for x in nodes]


#  -- fedq -----------------------------------------------------------------

def members(root, m, fsync):
    """m Nodes n1..nm in root, federated queue audit in a full mesh."""
    nodes = [harness.Node("n%d" % (i + 1), root, fsync=fsync)
             for i in range(m)]
    for n in nodes:
        n.sections["federated_queues"] = [{
            "name": QUEUE, "durable": True,
            "peers": [{"id": p.id, "endpoint": p.endpoint}
                      for p in nodes if p is not n]}]
    return nodes


def fed_links(node):
    return [ln for ln in node.status().get("links", [])
            if ln.get("kind") == "federation"]


def all_running(nodes):
    harness.wait_until(lambda: all(
        ln["state"] == "running" for n in nodes for ln in fed_links(n))
        and all(len(fed_links(n)) == len(nodes) - 1 for n in nodes),
        timeout=30, msg="every federation link running")


def waiter(node, n):
    return harness.track(subprocess.Popen(
        [tool(), "waitcount", node.endpoint, QUEUE, str(n), "600"],
        stdout=subprocess.PIPE, text=True))


def stop_all(nodes):
    for n in nodes:
        try:
            n.stop()
        except Exception:  # noqa: BLE001
            pass


def fedq_drain(root, size, n, m, fsync):
    nodes = members(root, m, fsync)
    first, rest = nodes[0], nodes[1:]
    try:
        first.start()
        first.cli.check("publish", "", QUEUE, "--count", n, "--size", size,
                        "--window", 5000, timeout_s=600)
        # The waiters connect lazily: started first, they see the members'
        # first depth as soon as each answers.
        ws = [waiter(x, n) for x in rest]
        t0 = time.monotonic()
        for x in rest:
            x.start(wait=False)
        harness.wait_until(lambda: all(x.running() and x.pid for x in rest),
                           timeout=10, msg="members started")
        watch = ProcWatch(node_procs(nodes))
        outs = []
        for w in ws:
            out, usage = finish(w, harness.scaled(900))
            watch.client("waitcount", usage)
            outs.append(out)
        converge = time.monotonic() - t0
        watch.stop()
        rates, bounds = [], []
        for out in outs:
            lines = out.splitlines()
            r = kv(lines[-1] if lines else "")
            if r.get("ok") != "1":
                raise RuntimeError("waitcount: %r" % out)
            rate = float(r["msgs_per_s"])
            seen = rate * (float(r["last_s"]) - float(r["first_s"]))
            if seen < n / 2:
                # The member had most of the backlog before the waiter
                # first saw its depth grow: too few arrivals timed for a
                # rate. N / the time from starting the members instead,
                # start-up included: a lower bound.
                rate = n / converge
                bounds.append(1)
            rates.append(rate)
        dups = sum(ln.get("duplicates_dropped_total", 0)
                   for x in nodes for ln in fed_links(x))
        return dict(watch.summary(n * (m - 1)), rate=min(rates),
                    rate_each=rates, converge_s=converge,
                    lower_bound=1 if bounds else 0,
                    cpu=100 * watch.cpu_s() / watch.secs, dups=dups)
    finally:
        stop_all(nodes)


def fedq_live(root, size, n, m, fsync):
    nodes = members(root, m, fsync)
    try:
        for x in nodes:
            x.start()
        all_running(nodes)
        ws = [waiter(x, n) for x in nodes[1:]]
        for w in ws:
            line = w.stdout.readline()
            if not line.startswith("ready"):
                raise RuntimeError("waitcount: %r" % line)
        watch = ProcWatch(node_procs(nodes))
        t0 = time.monotonic()
        rc, _, err, usage = run_client(nodes[0].cli.argv(
            "publish", "", QUEUE, "--count", n, "--size", size, "--window",
            5000), timeout_s=600)
        watch.client("fedq publish", usage)
        pub_s = time.monotonic() - t0
        if rc != 0:
            raise RuntimeError("publish: %s" % err)
        for w in ws:
            _, usage = finish(w, harness.scaled(900))
            watch.client("waitcount", usage)
        converge = time.monotonic() - t0
        watch.stop()
        return dict(watch.summary(n * (m - 1)), rate=n / converge,
                    converge_s=converge, publish_rate=n / pub_s,
                    cpu=100 * watch.cpu_s() / watch.secs)
    finally:
        stop_all(nodes)


def fedq_latency(root, size, rate, secs, m, fsync):
    nodes = members(root, m, fsync)
    try:
        for x in nodes:
            x.start()
        all_running(nodes)
        watch = ProcWatch(node_procs(nodes))
        rc, out, err, usage = run_client(
            [tool(), "latency", nodes[0].endpoint, "", QUEUE,
             nodes[1].endpoint, QUEUE, rate, secs, size],
            timeout_s=secs * 10 + 120)
        watch.client("bench_shovel", usage)
        watch.stop()
        res = kv(out)
        if res.get("ok") != "1":
            raise RuntimeError("latency: %s %s" % (out, err))
        return dict(watch.summary(int(res["received"])),
                    p50=float(res["lat_p50_ms"]),
                    p99=float(res["lat_p99_ms"]),
                    max=float(res["lat_max_ms"]),
                    reached=float(res["msgs_per_s"]),
                    cpu=100 * watch.cpu_s() / watch.secs)
    finally:
        stop_all(nodes)


#  -- RabbitMQ -------------------------------------------------------------

class Rabbit:
    """Two RabbitMQ nodes (tests/bench/rabbitmq.sh) with the federation
    plugin; the anchor's federated exchange and federated queue set-ups."""

    def __init__(self, folder):
        self.env = {
            "FEDQ_RMQ_PORT": os.environ.get("FEDQ_RMQ_PORT", "5721"),
            "FEDQ_RMQ_BASE": os.path.join(folder, "rmq"),
            "FEDQ_RMQ_NAME": "fedqfedbench",
            "FEDQ_RMQ_PLUGINS": "rabbitmq_shovel rabbitmq_federation"}
        self.port_a = int(self.env["FEDQ_RMQ_PORT"])
        self.port_b = self.port_a + 1
        self.bench = os.path.join(folder, "amqpbench")
        self.started = False
        r = harness.run(["cc", "-O2", "-Wall", "-o", self.bench,
                         os.path.join(HERE, "amqpbench.c"), "-lrabbitmq"],
                        timeout_s=120)
        if r.rc != 0:
            raise RuntimeError("cannot build amqpbench: %s" % r.stderr)
        self.started = True
        try:
            r = harness.run([RMQ, "start"], timeout_s=300, env=self.env)
            if r.rc != 0:
                raise RuntimeError("cannot start RabbitMQ: %s %s"
                                   % (r.stdout, r.stderr))
            self.uri_a = "amqp://guest:guest@127.0.0.1:%d" % self.port_a
            self.ctl("A", "add_user", "fed", "fedpw")
        except Exception:
            self.stop()
            raise

    def stop(self):
        if self.started:
            harness.run([RMQ, "stop"], timeout_s=180, env=self.env)
            self.started = False

    def procs(self):
        return [("beam-" + s, int(harness.run(
            [RMQ, "pid", s], env=self.env).stdout.strip() or 0))
            for s in "AB"]

    def ab(self, *args, timeout_s=900):
        r = harness.run([self.bench] + [str(a) for a in args],
                        timeout_s=timeout_s)
        if r.rc != 0:
            raise RuntimeError("amqpbench %s: %s %s" % (
                " ".join(map(str, args)), r.stdout, r.stderr))
        return kv(r.stdout)

    def ctl(self, *args, check=True):
        r = harness.run([RMQ, "ctl"] + list(args), timeout_s=120,
                        env=self.env)
        if check and r.rc != 0:
            raise RuntimeError("rabbitmqctl %s: %s %s" % (
                " ".join(args), r.stdout, r.stderr))
        return r.stdout

    def wait_fed_running(self):
        harness.wait_until(lambda: "running" in self.ctl(
            "B", "federation_status"), timeout=60, interval=0.2,
            msg="RabbitMQ federation link running")

    def link_id(self):
        m = re.search(r'id\s*=>\s*<<"([^"]+)">>|"id"\s*:\s*"([^"]+)"|'
                      r'^\s*id\s*[:|]\s*(\S+)', self.ctl(
                          "B", "federation_status"), re.M)
        if not m:
            raise RuntimeError("no federation link id in federation_status")
        return next(g for g in m.groups() if g)

    def upstream(self, uri, extra=""):
        self.ctl("B", "set_parameter", "federation-upstream", "siteA",
                 '{"uri":"%s","prefetch-count":1000,"ack-mode":"on-confirm"'
                 '%s}' % (uri, extra))

    def fedx_setup(self):
        self.ctl("A", "set_permissions", "fed", ".*", ".*", ".*")
        self.ab("declare-exchange", self.port_a, "fx", "fanout")
        self.ab("declare-exchange", self.port_b, "fx", "fanout")
        self.ab("declare-queue", self.port_b, "fq")
        self.ab("purge", self.port_b, "fq")
        self.ab("bind", self.port_b, "fq", "fx", "")
        self.upstream("amqp://fed:fedpw@127.0.0.1:%d" % self.port_a,
                      ',"reconnect-delay":3600')
        self.ctl("B", "set_policy", "fedx", "^fx$",
                 '{"federation-upstream-set":"all"}', "--apply-to",
                 "exchanges")
        self.wait_fed_running()

    def fedx_teardown(self):
        self.ctl("B", "clear_policy", "fedx", check=False)
        self.ctl("B", "clear_parameter", "federation-upstream", "siteA",
                 check=False)
        self.ab("delete-queue", self.port_b, "fq")
        self.ab("delete-exchange", self.port_b, "fx")
        self.ab("delete-exchange", self.port_a, "fx")

    def fedx_drain(self, size, n):
        self.fedx_setup()
        try:
            lid = self.link_id()
            # Pause the link (the anchor's way): revoke the federation
            # user's permissions on A, close its connection; the link waits
            # reconnect-delay (3600 s) while its upstream queue fills.
            self.ctl("A", "clear_permissions", "fed")
            self.ctl("A", "close_all_connections", "pause federation link")
            harness.wait_until(lambda: "running" not in self.ctl(
                "B", "federation_status"), timeout=30, interval=0.2,
                msg="RabbitMQ federation link paused")
            self.ab("publish", self.port_a, "fx", "", n, size, 1000, 0)
            self.ctl("A", "set_permissions", "fed", ".*", ".*", ".*")
            w = harness.track(subprocess.Popen(
                [self.bench, "waitcount", str(self.port_b), "fq", str(n),
                 "900"], stdout=subprocess.PIPE, text=True))
            watch = ProcWatch(self.procs())
            self.ctl("B", "restart_federation_link", lid)
            out, usage = finish(w, 1200)
            watch.client("amqpbench waitcount", usage)
            watch.stop()
            r = kv(out)
            if "msgs_per_s" not in r:
                raise RuntimeError("fedx drain: %s" % out)
            return dict(watch.summary(n), rate=float(r["msgs_per_s"]),
                        cpu=100 * watch.cpu_s() / watch.secs)
        finally:
            self.fedx_teardown()

    def fedq_setup(self):
        for p in (self.port_a, self.port_b):
            self.ab("declare-queue", p, "fq2")
            self.ab("purge", p, "fq2")
        self.upstream(self.uri_a)
        self.ctl("B", "set_policy", "fedq", "^fq2$",
                 '{"federation-upstream-set":"all"}', "--apply-to", "queues")
        self.wait_fed_running()

    def fedq_teardown(self):
        self.ctl("B", "clear_policy", "fedq", check=False)
        self.ctl("B", "clear_parameter", "federation-upstream", "siteA",
                 check=False)
        for p in (self.port_a, self.port_b):
            self.ab("delete-queue", p, "fq2")

    def fedq_drain(self, size, n):
        self.fedq_setup()
        try:
            self.ab("publish", self.port_a, "", "fq2", n, size, 1000, 0)
            watch = ProcWatch(self.procs())
            rc, out, err, usage = run_client(
                [self.bench, "consume", self.port_b, "fq2", n, 1000, 60])
            watch.client("amqpbench consume", usage)
            watch.stop()
            if rc != 0 or "msgs_per_s" not in kv(out):
                raise RuntimeError("fedq drain: %s %s" % (out, err))
            return dict(watch.summary(n), rate=float(kv(out)["msgs_per_s"]),
                        cpu=100 * watch.cpu_s() / watch.secs)
        finally:
            self.fedq_teardown()

    def latency(self, size, rate, secs, queue, exch, key):
        n = int(rate * secs)
        cons = harness.track(subprocess.Popen(
            [self.bench, "consume", str(self.port_b), queue, str(n), "1000",
             "60"], stdout=subprocess.PIPE, text=True))
        harness.wait_until(lambda: re.search(
            r"^%s\s+1\s*$" % queue, self.ctl("B", "list_queues", "name",
                                             "consumers"), re.M),
            timeout=60, interval=0.2, msg="RabbitMQ consumer on %s" % queue)
        watch = ProcWatch(self.procs())
        r = amqp_paced(self.bench, self.port_a, exch, key, n, size, rate,
                       secs, cons, watch)
        return dict(r, cpu=100 * watch.cpu_s() / watch.secs)

    def fedx_latency(self, size, rate, secs):
        self.fedx_setup()
        try:
            return self.latency(size, rate, secs, "fq", "fx", "")
        finally:
            self.fedx_teardown()

    def fedq_latency(self, size, rate, secs):
        self.fedq_setup()
        try:
            return self.latency(size, rate, secs, "fq2", "", "fq2")
        finally:
            self.fedq_teardown()


#  -- Report ---------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="1 run, 2 members, latency at 1 KiB "
                         "only, 2 s per rate")
    ap.add_argument("--sizes", default="1024")
    ap.add_argument("--lat-sizes", default=None,
                    help="sizes of the latency runs at each rate (2 "
                         "members; default 100,1024,16384, 1024 with "
                         "--quick)")
    ap.add_argument("--lat-rates", default="2000,20000",
                    help="paced rates of the latency runs, msg/s")
    ap.add_argument("-n", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=None)
    ap.add_argument("--members", default=None,
                    help="member counts to run fedq with (default 3,2; 2 "
                         "with --quick)")
    ap.add_argument("--lat-rate", type=float, default=None,
                    help="one rate only (overrides --lat-rates)")
    ap.add_argument("--lat-secs", type=float, default=None,
                    help="seconds per latency run (default 10 at 2,000 "
                         "msg/s and below, 5 above; 2 with --quick)")
    ap.add_argument("--fsync", default="batch")
    ap.add_argument("--no-rabbitmq", action="store_true")
    ap.add_argument("--dir", default=os.environ.get("FEDQ_BENCH_DIR"),
                    help="where node data goes (default: $TMPDIR)")
    ap.add_argument("--out", default=os.path.join(harness.REPO,
                                                  "bench-results"))
    args = ap.parse_args()
    n = args.n or 100000
    repeat = args.repeat or (1 if args.quick else 3)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    lat_sizes = [int(s) for s in (args.lat_sizes or (
        "1024" if args.quick else "100,1024,16384")).split(",") if s]
    counts = [int(m) for m in (args.members or (
        "2" if args.quick else "3,2")).split(",") if m]
    rates = ([args.lat_rate] if args.lat_rate else
             [float(r) for r in args.lat_rates.split(",") if r])
    args.lat_rate = rates[0]

    def lat_secs(rate):
        if args.lat_secs:
            return args.lat_secs
        return 2 if args.quick else (10 if rate <= 2000 else 5)

    def lat_plan(m):
        """(size, rate) of the latency runs: every size and rate with 2
        members (like-for-like with RabbitMQ), the first rate at the drain
        sizes otherwise."""
        if m == 2:
            return [(s, r) for r in rates for s in lat_sizes]
        return [(s, rates[0]) for s in sizes]
    if not os.access(tool(), os.X_OK) or not harness.binaries_present():
        say("binaries missing in %s (build first: cmake --build %s)"
            % (harness.build_dir(), harness.build_dir()))
        return 2
    load0 = load_average()
    say("build %s, N=%d, %d run(s), sizes %s, members %s, latency at %s "
        "msg/s, sizes %s, load average %s" % (
            harness.build_dir(), n, repeat, sizes, counts, rates, lat_sizes,
            load0))

    work = tempfile.mkdtemp(prefix="fedq-bench-fed-", dir=args.dir)
    results = collections.OrderedDict()     # (system, case, size) -> runs
    notes = []

    def record(key, fn):
        try:
            results.setdefault(key, []).append(fn())
            say("%s: %s" % (" ".join(map(str, key)), results[key][-1]))
        except Exception as e:  # noqa: BLE001 (a failed run is reported)
            notes.append("%s failed: %s" % (" ".join(map(str, key)), e))
            say(notes[-1])

    def run_dir():
        # As for the shovel: the previous run's files go before the next.
        for old in os.listdir(work):
            if old.startswith("run-"):
                shutil.rmtree(os.path.join(work, old), ignore_errors=True)
        return tempfile.mkdtemp(dir=work, prefix="run-")

    def lat_kind(rate):
        return "latency@%g" % rate

    try:
        for _ in range(repeat):
            for size in sizes:
                for m in counts:
                    record(("fedq-%d" % m, "drain", size), lambda: fedq_drain(
                        run_dir(), size, n, m, args.fsync))
                    record(("fedq-%d" % m, "live", size), lambda: fedq_live(
                        run_dir(), size, n, m, args.fsync))
            for m in counts:
                for size, rate in lat_plan(m):
                    record(("fedq-%d" % m, lat_kind(rate), size),
                           lambda: fedq_latency(run_dir(), size, rate,
                                                lat_secs(rate), m,
                                                args.fsync))
        rabbit = None
        if args.no_rabbitmq:
            notes.append("RabbitMQ skipped (--no-rabbitmq)")
        elif not os.access("/usr/lib/rabbitmq/bin/rabbitmq-server", os.X_OK):
            notes.append("RabbitMQ skipped: not installed (apt-get install "
                         "rabbitmq-server librabbitmq-dev)")
        else:
            try:
                rabbit = Rabbit(work)
            except Exception as e:  # noqa: BLE001 (it stopped itself)
                notes.append("RabbitMQ skipped: %s" % e)
                rabbit = None
        if rabbit:
            try:
                for _ in range(repeat):
                    for size in sizes:
                        record(("rabbitmq-fedx", "drain", size),
                               lambda: rabbit.fedx_drain(size, n))
                        record(("rabbitmq-fedq", "drain", size),
                               lambda: rabbit.fedq_drain(size, n))
                    for size, rate in lat_plan(2):
                        record(("rabbitmq-fedx", lat_kind(rate), size),
                               lambda: rabbit.fedx_latency(
                                   size, rate, lat_secs(rate)))
                        record(("rabbitmq-fedq", lat_kind(rate), size),
                               lambda: rabbit.fedq_latency(
                                   size, rate, lat_secs(rate)))
            finally:
                rabbit.stop()
    finally:
        harness.kill_all()
        shutil.rmtree(work, ignore_errors=True)

    def get(system, case, size, key):
        return med(results.get((system, case, size), []), key)

    for (system, case, size), runs in results.items():
        if any(r.get("lower_bound") for r in runs):
            notes.append("%s %s %d B: a member had most of the backlog "
                         "before the waiter saw its depth grow; the rate "
                         "is N / time from the members' start (start-up "
                         "included), a lower bound" % (system, case, size))
    load1 = load_average()
    lines = ["## Federated queues: fedq and RabbitMQ on this machine", ""]
    lines.append(
        "N=%d per drain, %d run(s), medians; latency at %s msg/s for %s s "
        "(publish at one member/node, consume at another); fedq fsync %s, "
        "full mesh; RabbitMQ 2 nodes, on-confirm, prefetch 1000, durable "
        "queues, persistent messages, cluster names set. Load average "
        "%s before, %s after (2 cores; other work on the machine shows "
        "here). msg/s of a latency run: the rate reached (publisher side "
        "for RabbitMQ, received for fedq). CPU s / 100k: every process "
        "(nodes and load clients) per 100k messages delivered." % (
            n, repeat, ", ".join("%g" % r for r in rates),
            ", ".join("%g" % lat_secs(r) for r in rates), args.fsync, load0,
            load1))
    lines.append("")
    lines.append("| system | case | size B | msg/s | converge s | p50 ms | "
                 "p99 ms | max ms | CPU % (all) | CPU s/100k |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    for (system, case, size), runs in results.items():
        if not runs:
            continue
        lines.append("| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s |"
                     % (system, case, size, fmt(med(runs, "rate") or med(
                         runs, "reached")),
                        fmt(med(runs, "converge_s"), "%.2f"),
                        fmt(med(runs, "p50"), "%.3f"),
                        fmt(med(runs, "p99"), "%.3f"),
                        fmt(med(runs, "max"), "%.1f"), fmt(med(runs, "cpu")),
                        fmt(med(runs, "cpu_per_100k"), "%.2f")))
    lines.append("")
    lines.append("Ratios at 1 KiB (fedq drain = the slowest member's rate "
                 "from first arrival to N-th, like the RabbitMQ figures):")
    lines.append("")
    verdicts = []
    for m in counts:
        d = get("fedq-%d" % m, "drain", 1024, "rate")
        if d is None:
            continue
        for what, anchor, target in (("fedx", ANCHOR["fedx_drain"], 20),
                                     ("fedq", ANCHOR["fedq_drain"], 15)):
            here = get("rabbitmq-%s" % what, "drain", 1024, "rate")
            name = ("federated exchange" if what == "fedx"
                    else "federated queue")
            lines.append("- fedq %d members vs RabbitMQ %s drain: %s the "
                         "anchor (%d), %s the run here (%s); target >= %dx"
                         % (m, name, ratio(d, anchor), anchor,
                            ratio(d, here), fmt(here), target))
            if m == counts[0]:
                verdicts.append("%s fedq %d-member 1 KiB drain >= %dx "
                                "RabbitMQ %s (anchor %d): %.0f msg/s (%s)"
                                % ("MET " if d >= target * anchor else
                                   "MISS", m, target, name, anchor, d,
                                   ratio(d, anchor)))
    p99 = get("fedq-%d" % counts[0], lat_kind(rates[0]), 1024, "p99")
    if p99 is not None:
        verdicts.append("%s fedq 1 KiB p99 < 1 ms at %g msg/s: %.3f ms"
                        % ("MET " if p99 < 1.0 else "MISS", args.lat_rate,
                           p99))
    lines.append("")
    lines += verdicts
    for note in notes:
        lines.append("- " + note)
    if args.quick:
        lines.append("(--quick: smaller counts, one run; run without it "
                     "for the figures the targets speak of)")
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, "federation-%s%s" % (
        time.strftime("%Y%m%d-%H%M%S"), "-quick" if args.quick else ""))
    with open(stem + ".md", "w") as f:
        f.write(text)
    keys = ("rate", "converge_s", "publish_rate", "p50", "p99", "max",
            "reached", "cpu", "cpu_s", "cpu_per_100k", "dups", "lower_bound")
    write_runs(stem + ".csv", results, keys)
    print("csv: %s" % os.path.relpath(stem + ".csv", harness.REPO))
    emit_rows(args.out, results, counts, sizes, rates, lat_plan)
    return 1 if any("failed" in x for x in notes) else 0


def emit_rows(out, results, counts, sizes, rates, lat_plan):
    """The rows of the combined report (scripts/bench all): fedq's
    federated queue against RabbitMQ's federated queue (the like-for-like
    multi-master queue) and federated exchange."""
    for size in sizes:
        for m in counts:
            fr = results.get(("fedq-%d" % m, "drain", size))
            low = any(r.get("lower_bound") for r in fr or [])
            emit_pair(out, "federation", "federation drain, %d members "
                      "(RabbitMQ fed. queue)" % m, size, "rate", fr,
                      results.get(("rabbitmq-fedq", "drain", size)),
                      ceiling_ref="durable link", lower_bound=low)
            if m == 2:
                emit_pair(out, "federation", "federation drain, 2 members "
                          "(RabbitMQ fed. exchange)", size, "rate", fr,
                          results.get(("rabbitmq-fedx", "drain", size)),
                          ceiling_ref="durable link", lower_bound=low)
            emit_pair(out, "federation", "federation live, %d members" % m,
                      size, "rate", results.get(("fedq-%d" % m, "live",
                                                 size)), None,
                      ceiling_ref="durable link")
    for size, rate in lat_plan(2):
        kind = "latency@%g" % rate
        fr = results.get(("fedq-2", kind, size))
        rr = results.get(("rabbitmq-fedq", kind, size))
        for q in ("p50", "p99"):
            emit_pair(out, "federation", "federation latency %s @%s msg/s, "
                      "2 members" % (q, "{:,.0f}".format(rate)), size, q,
                      fr, rr, unit="ms", better="lower",
                      ceiling_ref="2 fdatasync " + q, rate=rate, metric=q,
                      max_fedq=med(fr or [], "max"),
                      max_rabbitmq=med(rr or [], "max"))


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    sys.exit(main())
