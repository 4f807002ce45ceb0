#!/usr/bin/env python3
"""tests/bench/bench_shovel.py — the shovel benchmark behind `scripts/bench
shovel`: fedq's shovel and RabbitMQ's side by side on this machine. A
benchmark, not a test: it reports figures, it asserts no speed.

Measured, for each body size (100 B, 1 KiB, 16 KiB; 1 KiB with --quick),
REPEAT times, medians reported:
- backlog drain: N messages preloaded into `outbox` on node A, then a
  shovel A.outbox -> B.inbox is added (SIGHUP); bench_shovel waitcount
  polls B's depth every 0.5 ms: rate from the first arrival to the N-th
  (as the RabbitMQ anchor measures its shovel);
- end-to-end latency at fixed rates (2,000 and 20,000 msg/s): a publisher
  paced at the rate into A, a consumer on B; latency = receive time - send
  time stamped in the body (publish into A + shovel hop + delivery from
  B), p50 / p99 / max, and the rate reached (16 KiB at 20k msg/s may be
  more than the disk takes: then the rate reached says what was);
- the same against RabbitMQ (two nodes, dynamic shovel, on-confirm,
  prefetch 1000: the anchor's settings), when it is installed
  (`scripts/install-deps --with bench`);
- WAN (tests/fault/fault_proxy delaying both directions, when it is
  built): 1 KiB drain at 10 ms and 50 ms round trip, and the latency at
  the first rate at 50 ms (not with --quick), for both; the report gives
  fedq's WAN / loopback drain ratio;
- CPU seconds (utime+stime) and peak RSS (VmHWM) of every process of each
  workload: both nodes, the load clients (their rusage), the proxy.

usage: bench_shovel.py [--quick] [--sizes 100,1024,16384] [-n N]
                       [--repeat R] [--lat-rates 2000,20000] [--lat-secs S]
                       [--wan-rtts 10,50] [--prefetch P] [--fsync F]
                       [--no-rabbitmq] [--no-wan] [--dir DIR] [--out DIR]
Output: a markdown table on stdout, MET/MISS against the targets (1 KiB
drain >= 290k msg/s, 20x RabbitMQ's anchor; p99 < 1 ms at 2,000 msg/s), a
CSV of every run under bench-results/, and in a `scripts/bench all` run
the rows of the combined report (bench_report.py).
environment: FEDQ_BUILD (build folder; scripts/bench makes a Release one),
FEDQ_BENCH_DIR (where node data goes), FEDQ_RMQ_BASE / FEDQ_RMQ_PORT
(tests/bench/rabbitmq.sh).
"""

import argparse
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
from benchlib import (ProcWatch, amqp_paced, emit, emit_pair,  # noqa: E402
                      finish, fmt, fsync_hist, fsync_quantiles, kv,
                      load_average, med, ratio, run_client, tool,
                      write_runs)

RMQ = os.path.join(HERE, "rabbitmq.sh")
WAN_RTTS_MS = "10,50"           # round trips through the fault proxy
LAT_RATES = "2000,20000"        # msg/s of the paced latency runs


def say(msg):
    sys.stderr.write("bench shovel: %s\n" % msg)
    sys.stderr.flush()


def fault_proxy():
    for p in (os.path.join(harness.build_dir(), "tests", "fault",
                           "fault_proxy"),):
        if os.access(p, os.X_OK):
            return p
    return None


class Proxy:
    """tests/fault/fault_proxy in front of target_port, delaying both
    directions."""

    def __init__(self, binary, target_port, delay_ms, folder):
        self.binary = binary
        ports = os.path.join(folder, "proxy.ports")
        if os.path.exists(ports):   # a previous proxy's, in the same folder
            os.unlink(ports)
        self.proc = harness.track(subprocess.Popen(
            [binary, "--listen", "127.0.0.1:0", "--target",
             "127.0.0.1:%d" % target_port, "--control", "127.0.0.1:0",
             "--ports-file", ports],
            stdout=subprocess.DEVNULL, stderr=open(
                os.path.join(folder, "proxy.log"), "ab")))
        harness.wait_until(lambda: os.path.exists(ports) and open(
            ports).read().split(), timeout=10, msg="fault_proxy ports")
        self.port, self.control = (int(x) for x in open(ports).read().split())
        self.send("delay", "both", str(delay_ms))

    def send(self, *cmd):
        r = harness.run([self.binary, "--send", "127.0.0.1:%d" % self.control]
                        + list(cmd), timeout_s=10)
        if r.rc != 0 or not r.stdout.startswith("ok"):
            raise RuntimeError("fault_proxy %s: %s %s" % (
                " ".join(cmd), r.stdout, r.stderr))

    def stop(self):
        harness.stop_process(self.proc)


def proxy_proc(proxy):
    return [("fault_proxy", proxy.proc.pid)] if proxy else []


#  -- fedq -----------------------------------------------------------------

class FedqPair:
    """Nodes A (outbox) and B (inbox) in a fresh folder."""

    def __init__(self, root, fsync):
        self.b = harness.Node("bench-b", root, fsync=fsync,
                              queues=[{"name": "inbox", "durable": True}])
        self.a = harness.Node("bench-a", root, fsync=fsync,
                              queues=[{"name": "outbox", "durable": True}])

    def shovel(self, endpoint, prefetch):
        return {"name": "bench", "source": {"queue": "outbox"},
                "destination": {"endpoint": endpoint, "queue": "inbox"},
                "prefetch": prefetch}

    def start(self):
        self.b.start()
        self.a.start()

    def procs(self):
        return [("fedq-A", self.a.pid), ("fedq-B", self.b.pid)]

    def stop(self):
        for n in (self.a, self.b):
            n.stop()


def fedq_drain(root, size, n, prefetch, fsync, proxy_delay=None):
    pair = FedqPair(root, fsync)
    pair.start()
    proxy = None
    try:
        t0 = time.monotonic()
        pair.a.cli.check("publish", "", "outbox", "--count", n, "--size",
                         size, "--window", 5000, timeout_s=600)
        preload = n / (time.monotonic() - t0)
        # Start from clean page cache: the preload's writeback would
        # otherwise compete with the drain's fsyncs (done for RabbitMQ too).
        os.sync()
        endpoint = pair.b.endpoint
        if proxy_delay is not None:
            proxy = Proxy(fault_proxy(), pair.b.port, proxy_delay, root)
            endpoint = "tcp://127.0.0.1:%d" % proxy.port
        waiter = harness.track(subprocess.Popen(
            [tool(), "waitcount", pair.b.endpoint, "inbox", str(n), "600"],
            stdout=subprocess.PIPE, text=True))
        # It says "ready" once it has read B's depth the first time.
        ready = waiter.stdout.readline()
        if not ready.startswith("ready"):
            raise RuntimeError("bench_shovel waitcount: %r" % ready)
        watch = ProcWatch(pair.procs() + proxy_proc(proxy))
        pair.a.sections["shovels"] = [pair.shovel(endpoint, prefetch)]
        pair.a.reload()
        out, usage = finish(waiter, harness.scaled(900))
        watch.client("waitcount", usage)
        watch.stop()
        r = kv(out)
        if r.get("ok") != "1":
            raise RuntimeError("fedq drain failed: %s" % out)
        ln = harness.wait_until(lambda: (lambda x: x if x[
            "backlog_messages"] == 0 else None)(pair.a.link("bench")),
            timeout=60, msg="backlog 0 at A")
        return dict(watch.summary(n), rate=float(r["msgs_per_s"]),
                    total_s=float(r["total_s"]), cpu_a=watch.pct("fedq-A"),
                    cpu_b=watch.pct("fedq-B"), preload=preload,
                    window=ln["window"])
    finally:
        if proxy:
            proxy.stop()
        pair.stop()


def disk_floor(root, rate):
    """tests/bench/bench_fsync in root: a 1 KiB append and fdatasync on
    two files in series at `rate`, what every message's path waits for.
    {} when that build has no bench_fsync."""
    binary = os.path.join(harness.build_dir(), "tests", "bench_fsync")
    if not os.access(binary, os.X_OK):
        return {}
    r = harness.run([binary, "-d", root, "-n", "4000", "-r", str(rate)],
                    timeout_s=300)
    res = kv(r.stdout)
    if res.get("ok") != "1":
        raise RuntimeError("bench_fsync failed: %s %s" % (r.stdout,
                                                          r.stderr))
    return {"disk_sync_p50": float(res["sync_p50_ms"]),
            "disk_sync_p99": float(res["sync_p99_ms"]),
            "disk_pair_p50": float(res["pair_p50_ms"]),
            "disk_pair_p99": float(res["pair_p99_ms"]),
            "disk_pair_over_1ms": float(res["pair_over_1ms_pct"])}


def fedq_latency(root, size, rate, secs, prefetch, fsync, proxy_delay=None):
    pair = FedqPair(root, fsync)
    pair.b.start()
    proxy = None
    try:
        endpoint = pair.b.endpoint
        if proxy_delay is not None:
            proxy = Proxy(fault_proxy(), pair.b.port, proxy_delay, root)
            endpoint = "tcp://127.0.0.1:%d" % proxy.port
        pair.a.sections["shovels"] = [pair.shovel(endpoint, prefetch)]
        pair.a.start()
        harness.wait_until(lambda: pair.a.link("bench")["state"] ==
                           "running", timeout=30, msg="shovel running")
        # Each message waits for A's fdatasync, then B's: their latency in
        # the same run is the floor of the end-to-end figures.
        hist_a, hist_b = fsync_hist(pair.a), fsync_hist(pair.b)
        watch = ProcWatch(pair.procs() + proxy_proc(proxy))
        rc, out, err, usage = run_client(
            [tool(), "latency", pair.a.endpoint, "", "outbox",
             pair.b.endpoint, "inbox", rate, secs, size],
            timeout_s=secs * 10 + 120)
        watch.client("bench_shovel", usage)
        watch.stop()
        res = kv(out)
        if res.get("ok") != "1":
            raise RuntimeError("fedq latency failed: %s %s" % (out, err))
        result = dict(watch.summary(int(res["received"])),
                      p50=float(res["lat_p50_ms"]),
                      p99=float(res["lat_p99_ms"]),
                      max=float(res["lat_max_ms"]),
                      reached=float(res["msgs_per_s"]),
                      cpu_a=watch.pct("fedq-A"), cpu_b=watch.pct("fedq-B"))
        for name, node, before in (("a", pair.a, hist_a),
                                   ("b", pair.b, hist_b)):
            q = fsync_quantiles(before, fsync_hist(node))
            result["fsyncs_" + name] = q["fsyncs"]
            result["fsync_p50_" + name] = q["fsync_p50_le_ms"]
            result["fsync_p99_" + name] = q["fsync_p99_le_ms"]
        if fsync != "never" and proxy_delay is None:
            result.update(disk_floor(root, rate))
        return result
    finally:
        if proxy:
            proxy.stop()
        pair.stop()


#  -- RabbitMQ -------------------------------------------------------------

class Rabbit:
    def __init__(self, folder):
        self.port_a = int(os.environ.get("FEDQ_RMQ_PORT", "5711"))
        self.port_b = self.port_a + 1
        self.bench = os.path.join(folder, "amqpbench")
        r = harness.run(["cc", "-O2", "-Wall", "-o", self.bench,
                         os.path.join(HERE, "amqpbench.c"), "-lrabbitmq"],
                        timeout_s=120)
        if r.rc != 0:
            raise RuntimeError("cannot build amqpbench: %s" % r.stderr)
        r = harness.run([RMQ, "start"], timeout_s=300)
        if r.rc != 0:
            raise RuntimeError("cannot start RabbitMQ: %s %s"
                               % (r.stdout, r.stderr))
        self.started = True

    def stop(self):
        if self.started:
            harness.run([RMQ, "stop"], timeout_s=120)
            self.started = False

    def procs(self):
        return [("beam-" + s, int(harness.run([RMQ, "pid", s]).stdout.strip()
                                  or 0)) for s in "AB"]

    def ab(self, *args, timeout_s=900):
        r = harness.run([self.bench] + [str(a) for a in args],
                        timeout_s=timeout_s)
        if r.rc != 0:
            raise RuntimeError("amqpbench %s: %s %s" % (
                " ".join(map(str, args)), r.stdout, r.stderr))
        return kv(r.stdout)

    def ctl(self, *args):
        r = harness.run([RMQ, "ctl"] + list(args), timeout_s=120)
        if r.rc != 0:
            raise RuntimeError("rabbitmqctl %s: %s" % (" ".join(args),
                                                       r.stderr))
        return r.stdout

    def shovel_def(self, dest_port):
        return ('{"src-protocol":"amqp091","src-uri":"amqp://guest:guest@'
                '127.0.0.1:%d","src-queue":"qs","dest-protocol":"amqp091",'
                '"dest-uri":"amqp://guest:guest@127.0.0.1:%d","dest-queue":'
                '"qs","ack-mode":"on-confirm","src-prefetch-count":1000}'
                % (self.port_a, dest_port))

    def fresh_queues(self):
        for p in (self.port_a, self.port_b):
            self.ab("declare-queue", p, "qs")
            self.ab("purge", p, "qs")

    def drain(self, size, n, proxy=None):
        self.fresh_queues()
        pub = self.ab("publish", self.port_a, "", "qs", n, size, 1000, 0)
        os.sync()       # as for fedq: no writeback of the preload pending
        waiter = harness.track(subprocess.Popen(
            [self.bench, "waitcount", str(self.port_b), "qs", str(n), "900"],
            stdout=subprocess.PIPE, text=True))
        watch = ProcWatch(self.procs() + proxy_proc(proxy))
        self.ctl("A", "set_parameter", "shovel", "s1",
                 self.shovel_def(proxy.port if proxy else self.port_b))
        out, usage = finish(waiter, 1200)
        watch.client("amqpbench waitcount", usage)
        watch.stop()
        self.ctl("A", "clear_parameter", "shovel", "s1")
        r = kv(out)
        if "msgs_per_s" not in r:
            raise RuntimeError("RabbitMQ drain failed: %s" % out)
        return dict(watch.summary(n), rate=float(r["msgs_per_s"]),
                    cpu_a=watch.pct("beam-A"), cpu_b=watch.pct("beam-B"),
                    publish=float(pub["msgs_per_s"]))

    def latency(self, size, rate, secs, proxy=None):
        self.fresh_queues()
        self.ctl("A", "set_parameter", "shovel", "s1",
                 self.shovel_def(proxy.port if proxy else self.port_b))
        harness.wait_until(lambda: "running" in self.ctl(
            "A", "shovel_status"), timeout=60, interval=0.2,
            msg="RabbitMQ shovel running")
        n = int(rate * secs)
        cons = harness.track(subprocess.Popen(
            [self.bench, "consume", str(self.port_b), "qs", str(n), "1000",
             "60"], stdout=subprocess.PIPE, text=True))
        # The consumer must be attached before the first publish.
        harness.wait_until(lambda: re.search(r"^qs\s+1\s*$", self.ctl(
            "B", "list_queues", "name", "consumers"), re.M), timeout=60,
            interval=0.2, msg="RabbitMQ consumer on qs@B")
        watch = ProcWatch(self.procs() + proxy_proc(proxy))
        r = amqp_paced(self.bench, self.port_a, "", "qs", n, size, rate,
                       secs, cons, watch)
        self.ctl("A", "clear_parameter", "shovel", "s1")
        return dict(r, cpu_a=watch.pct("beam-A"), cpu_b=watch.pct("beam-B"))


#  -- Report ---------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="N=50000, 1 run, 1 KiB only, 2 s per latency rate, "
                         "WAN drains only")
    ap.add_argument("--sizes", default=None,
                    help="default 100,1024,16384 (1024 with --quick)")
    ap.add_argument("-n", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=None)
    ap.add_argument("--lat-rates", default=LAT_RATES,
                    help="paced rates of the latency runs, msg/s")
    ap.add_argument("--lat-rate", type=float, default=None,
                    help="one rate only (overrides --lat-rates)")
    ap.add_argument("--lat-secs", type=float, default=None,
                    help="seconds per latency run (default 10 at 2,000 "
                         "msg/s and below, 5 above; 2 with --quick)")
    ap.add_argument("--prefetch", type=int, default=1000,
                    help="shovel prefetch (initial window), default 1000 "
                         "like the RabbitMQ shovel")
    ap.add_argument("--fsync", default="batch")
    ap.add_argument("--no-rabbitmq", action="store_true")
    ap.add_argument("--no-wan", action="store_true")
    ap.add_argument("--wan-rtts", default=WAN_RTTS_MS,
                    help="round trips (ms) of the WAN drains, default 10,50")
    ap.add_argument("--dir", default=os.environ.get("FEDQ_BENCH_DIR"),
                    help="where node data goes (default: $TMPDIR)")
    ap.add_argument("--out", default=os.path.join(harness.REPO,
                                                  "bench-results"),
                    help="folder for the CSV and the markdown report")
    args = ap.parse_args()
    n = args.n or (50000 if args.quick else 100000)
    repeat = args.repeat or (1 if args.quick else 3)
    sizes = [int(s) for s in (args.sizes or (
        "1024" if args.quick else "100,1024,16384")).split(",") if s]
    rates = ([args.lat_rate] if args.lat_rate else
             [float(r) for r in args.lat_rates.split(",") if r])
    rtts = [int(r) for r in args.wan_rtts.split(",") if r]

    def lat_secs(rate):
        if args.lat_secs:
            return args.lat_secs
        return 2 if args.quick else (10 if rate <= 2000 else 5)

    if not os.access(tool(), os.X_OK) or not harness.binaries_present():
        say("binaries missing in %s (build first: cmake --build %s)"
            % (harness.build_dir(), harness.build_dir()))
        return 2
    cache = harness.run(["grep", "-m1", "CMAKE_BUILD_TYPE:",
                         os.path.join(harness.build_dir(),
                                      "CMakeCache.txt")]).stdout.strip()
    load0 = load_average()
    say("build %s (%s), N=%d, %d run(s), sizes %s, latency at %s msg/s, "
        "WAN round trips %s ms, load average %s" % (
            harness.build_dir(), cache.split("=")[-1] or "?", n, repeat,
            sizes, rates, rtts, load0))

    work = tempfile.mkdtemp(prefix="fedq-bench-shovel-", dir=args.dir)
    results = {}            # (system, kind, size) -> [runs]
    notes = []

    def record(key, fn):
        try:
            results.setdefault(key, []).append(fn())
            say("%s: %s" % (" ".join(map(str, key)), results[key][-1]))
        except Exception as e:  # noqa: BLE001 (a failed run is reported)
            notes.append("%s failed: %s" % (" ".join(map(str, key)), e))
            say(notes[-1])

    def run_dir():
        # One folder per run, removed when the next starts: deleting a
        # run's files drops its dirty pages instead of writing them back
        # during the next run.
        for old in os.listdir(work):
            if old.startswith("run-"):
                shutil.rmtree(os.path.join(work, old), ignore_errors=True)
        return tempfile.mkdtemp(dir=work, prefix="run-")

    def lat_kind(rate, rtt=None):
        return "%slatency@%g" % ("wan%dms-" % rtt if rtt else "", rate)

    # The WAN latency: at the largest round trip and the lowest rate, not
    # with --quick.
    wan_lat = None if args.quick else (max(rtts) if rtts else None)
    try:
        for rep in range(repeat):
            for size in sizes:
                record(("fedq", "drain", size), lambda: fedq_drain(
                    run_dir(), size, n, args.prefetch, args.fsync))
                for rate in rates:
                    record(("fedq", lat_kind(rate), size),
                           lambda: fedq_latency(
                               run_dir(), size, rate, lat_secs(rate),
                               args.prefetch, args.fsync))
        wan = not args.no_wan and fault_proxy() and rtts
        if not args.no_wan and not wan:
            notes.append("WAN case skipped: no fault proxy at %s/tests/fault"
                         "/fault_proxy (build the fault suite)"
                         % harness.build_dir())
        if wan:
            for rep in range(repeat):
                for rtt in rtts:
                    record(("fedq", "wan%dms-drain" % rtt, 1024),
                           lambda: fedq_drain(
                               run_dir(), 1024, n, args.prefetch, args.fsync,
                               proxy_delay=rtt // 2))
                if wan_lat:
                    record(("fedq", lat_kind(rates[0], wan_lat), 1024),
                           lambda: fedq_latency(
                               run_dir(), 1024, rates[0], lat_secs(rates[0]),
                               args.prefetch, args.fsync,
                               proxy_delay=wan_lat // 2))
        rabbit = None
        if args.no_rabbitmq:
            notes.append("RabbitMQ skipped (--no-rabbitmq)")
        elif not os.access("/usr/lib/rabbitmq/bin/rabbitmq-server", os.X_OK):
            notes.append("RabbitMQ skipped: not installed (scripts/"
                         "install-deps --with bench)")
        else:
            try:
                rabbit = Rabbit(work)
            except Exception as e:  # noqa: BLE001
                notes.append("RabbitMQ skipped: %s" % e)
        if rabbit:
            try:
                for rep in range(repeat):
                    for size in sizes:
                        record(("rabbitmq", "drain", size),
                               lambda: rabbit.drain(size, n))
                        for rate in rates:
                            record(("rabbitmq", lat_kind(rate), size),
                                   lambda: rabbit.latency(
                                       size, rate, lat_secs(rate)))
                for rtt in (rtts if wan else []):
                    proxy = Proxy(fault_proxy(), rabbit.port_b, rtt // 2,
                                  work)
                    try:
                        for rep in range(repeat):
                            record(("rabbitmq", "wan%dms-drain" % rtt, 1024),
                                   lambda: rabbit.drain(1024, n, proxy))
                            if rtt == wan_lat:
                                record(("rabbitmq", lat_kind(rates[0], rtt),
                                        1024), lambda: rabbit.latency(
                                            1024, rates[0],
                                            lat_secs(rates[0]), proxy))
                    finally:
                        proxy.stop()
            finally:
                rabbit.stop()
    finally:
        harness.kill_all()
        shutil.rmtree(work, ignore_errors=True)

    def get(system, kind, size, key):
        return med(results.get((system, kind, size), []), key)

    kinds = [("drain", s) for s in sizes]
    kinds += [(lat_kind(r), s) for r in rates for s in sizes]
    kinds += [("wan%dms-drain" % rtt, 1024) for rtt in rtts]
    if wan_lat:
        kinds.append((lat_kind(rates[0], wan_lat), 1024))
    load1 = load_average()
    text = report(results, kinds, notes, args, n, repeat, rates, lat_secs,
                  load0, load1)
    sys.stdout.write(text)
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, "shovel-%s%s" % (
        time.strftime("%Y%m%d-%H%M%S"), "-quick" if args.quick else ""))
    with open(stem + ".md", "w") as f:
        f.write(text)
    write_runs(stem + ".csv", dict(sorted(results.items())), (
        "rate", "p50", "p99", "max", "reached", "cpu_a", "cpu_b", "cpu_s",
        "cpu_per_100k", "window", "preload", "fsyncs_a", "fsync_p50_a",
        "fsync_p99_a", "fsyncs_b", "fsync_p50_b", "fsync_p99_b",
        "disk_sync_p50", "disk_sync_p99", "disk_pair_p50", "disk_pair_p99",
        "disk_pair_over_1ms"))
    print("csv: %s" % os.path.relpath(stem + ".csv", harness.REPO))

    # The rows of the combined report (scripts/bench all). The preload of
    # a RabbitMQ drain is its confirmed publish into one node (window 1000,
    # the anchor's baseline): the RabbitMQ side of the node part's row.
    for size in sizes:
        rr = results.get(("rabbitmq", "drain", size))
        if rr:
            emit(args.out, part="node", kind="pair", workload="confirmed "
                 "publish, one node", size=size, unit="msg/s",
                 better="higher", ceiling_ref="durable link",
                 rabbitmq=med(rr, "publish"))
    for kind, size in kinds:
        fr = results.get(("fedq", kind, size))
        rr = results.get(("rabbitmq", kind, size))
        if kind == "drain":
            emit_pair(args.out, "shovel", "shovel drain", size, "rate", fr,
                      rr, ceiling_ref="durable link")
        elif kind.endswith("-drain"):
            emit_pair(args.out, "shovel", "shovel drain, %s RTT" % kind[3:-6]
                      .replace("ms", " ms"), size, "rate", fr, rr,
                      ceiling_ref="fedq:shovel drain")
        else:
            rate = float(kind.split("@")[1])
            where = (", %s RTT" % kind[3:kind.index("-")].replace(
                "ms", " ms")) if kind.startswith("wan") else ""
            for q in ("p50", "p99"):
                emit_pair(args.out, "shovel", "shovel latency %s @%s msg/s%s"
                          % (q, "{:,.0f}".format(rate), where), size, q, fr,
                          rr, unit="ms", better="lower",
                          ceiling_ref=None if where else "2 fdatasync " + q,
                          rate=rate, metric=q,
                          max_fedq=med(fr or [], "max"),
                          max_rabbitmq=med(rr or [], "max"))
    return 1 if any("failed" in x for x in notes) else 0


def report(results, kinds, notes, args, n, repeat, rates, lat_secs, load0,
           load1):
    """The markdown table of this part."""
    def get(system, kind, size, key):
        return med(results.get((system, kind, size), []), key)

    lines = ["## Shovel: fedq and RabbitMQ on this machine", ""]
    lines.append("N=%d per drain, %d run(s), medians; latency at %s msg/s "
                 "for %s s; fedq fsync %s, shovel prefetch %d; RabbitMQ "
                 "shovel on-confirm, prefetch 1000, durable queues, "
                 "persistent messages. CPU s / 100k: every process of the "
                 "workload (both nodes, the load clients, the proxy). Load "
                 "average %s before, %s after." % (
                     n, repeat, ", ".join("%g" % r for r in rates),
                     ", ".join("%g" % lat_secs(r) for r in rates),
                     args.fsync, args.prefetch, load0, load1))
    lines.append("")
    lines.append("| case | size B | fedq | RabbitMQ | fedq / RabbitMQ | "
                 "fedq CPU A/B % | RabbitMQ CPU A/B % | CPU s/100k fedq / "
                 "RabbitMQ |")
    lines.append("|---|---|---|---|---|---|---|---|")
    for kind, size in kinds:
        if not results.get(("fedq", kind, size)) and not results.get(
                ("rabbitmq", kind, size)):
            continue
        cpu = "%s / %s" % (fmt(get("fedq", kind, size, "cpu_a")),
                           fmt(get("fedq", kind, size, "cpu_b")))
        rcpu = "%s / %s" % (fmt(get("rabbitmq", kind, size, "cpu_a")),
                            fmt(get("rabbitmq", kind, size, "cpu_b")))
        per = "%s / %s" % (
            fmt(get("fedq", kind, size, "cpu_per_100k"), "%.2f"),
            fmt(get("rabbitmq", kind, size, "cpu_per_100k"), "%.2f"))
        if kind.endswith("drain"):
            f, r = (get("fedq", kind, size, "rate"),
                    get("rabbitmq", kind, size, "rate"))
            lines.append("| %s msg/s | %d | %s | %s | %s | %s | %s | %s |"
                         % (kind, size, fmt(f), fmt(r), ratio(f, r), cpu,
                            rcpu, per))
            continue
        for q in ("p50", "p99", "max", "reached"):
            f, r = (get("fedq", kind, size, q),
                    get("rabbitmq", kind, size, q))
            first = q == "p50"
            lines.append("| %s %s %s | %d | %s | %s | %s | %s | %s | %s |" % (
                kind, q, "msg/s" if q == "reached" else "ms", size,
                fmt(f, "%.0f" if q == "reached" else "%.3f"),
                fmt(r, "%.0f" if q == "reached" else "%.3f"),
                ratio(f, r, "%.2fx"), cpu if first else "",
                rcpu if first else "", per if first else ""))
    lines.append("")
    for kind, size in kinds:
        if kind.endswith("ms-drain"):
            w, lo = (get("fedq", kind, size, "rate"),
                     get("fedq", "drain", size, "rate"))
            lines.append("fedq %s / loopback drain at %d B: %s" % (
                kind[:-6], size, ratio(w, lo, "%.2f")))
    drains = results.get(("fedq", "drain", 1024), [])
    if drains:
        lines.append("fedq 1 KiB drain runs (msg/s): %s; target >= 290000 "
                     "(20x RabbitMQ's 14.5k)." % ", ".join(
                         "%.0f" % r["rate"] for r in drains))
    lk = "latency@%g" % rates[0]
    lat = results.get(("fedq", lk, 1024), [])
    if lat:
        lines.append("fedq 1 KiB p99 runs at %g msg/s (ms): %s; target < 1 "
                     "ms." % (rates[0], ", ".join("%.3f" % r["p99"]
                                                  for r in lat)))
        if args.fsync != "never":
            # Node histograms: bucket bounds, not exact quantiles.
            lines.append(
                "fdatasync during those runs (node histograms; p50 / p99 "
                "fall in buckets up to): A %s / %s ms, B %s / %s ms. "
                "Every message waits for one at A, then one at B." % tuple(
                    fmt(get("fedq", lk, 1024, k), "%g") for k in (
                        "fsync_p50_a", "fsync_p99_a", "fsync_p50_b",
                        "fsync_p99_b")))
            if get("fedq", lk, 1024, "disk_pair_p99") is not None:
                lines.append(
                    "The disk in the same run (tests/bench/bench_fsync, 1 KiB "
                    "append + fdatasync at %g/s): one sync p50 / p99 %s / %s "
                    "ms; two in series, as on a shovelled message's path, "
                    "%s / %s ms, over 1 ms for %s %% of them." % ((
                        rates[0],) + tuple(
                        fmt(get("fedq", lk, 1024, k), "%.3f")
                        for k in ("disk_sync_p50", "disk_sync_p99",
                                  "disk_pair_p50", "disk_pair_p99")) + (
                        fmt(get("fedq", lk, 1024, "disk_pair_over_1ms"),
                            "%.1f"),)))
    for note in notes:
        lines.append("- " + note)
    lines.append("")
    d = get("fedq", "drain", 1024, "rate")
    p99 = get("fedq", lk, 1024, "p99")
    if d is not None:
        lines.append("%s 1 KiB drain >= 290000 msg/s: %.0f" % (
            "MET " if d >= 290000 else "MISS", d))
    if p99 is not None:
        lines.append("%s 1 KiB p99 < 1 ms at %g msg/s: %.3f ms" % (
            "MET " if p99 < 1.0 else "MISS", rates[0], p99))
    if args.quick:
        lines.append("(--quick: smaller counts, one run; run without it "
                     "for the figures the targets speak of)")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    sys.exit(main())
