#!/usr/bin/env python3
"""tests/fault/nemesis.py — one seeded chaos run against real fedq nodes.

Given a seed, a topology (tests/fault/topology.py) and a duration, it

  1. plans a fault schedule from random.Random(seed) alone (schedule.json:
     the same seed and options give the same schedule, byte for byte);
  2. starts the nodes, with a fault proxy (fault_proxy) in front of every
     link's destination, and the workload: producers running
     `fedq publish --id P.gN --confirmed FILE`, restarted with a new
     generation N whenever one ends (node killed, session lost, stalled);
  3. applies the faults at their planned times, logging each one with the
     time it really happened (faults.log): kill -9 + restart of a node,
     SIGSTOP/SIGCONT, and on a link's proxy: delay (with jitter), blackhole,
     reset (RST), bandwidth limit; with --faults ...,diskfull,eio also a
     full disk (each data dir a tmpfs) and fdatasync failing with EIO (the
     node restarted under strace);
  4. heals everything, stops the producers, waits (polling `fedq status
     --json` with a deadline) until every link shows backlog 0 and lag 0
     (the topology says what its links are: shovels, or every federation
     member pair) and every transit queue is empty, drains the final
     queues with `fedq consume --json`, and runs the checker
     (tests/fault/checker.py).

It writes result.json in --out and prints one line:
    seed 7: PASS faults=19 (kill 4, pause 3, ...) confirmed=... lost=0 ...
Exit 0 when the run passed, 1 when it failed, 2 on bad usage.

usage: nemesis.py --seed S [--duration 60] [--topology chain3]
                  [--out DIR] [--producers N] [--rate 200] [--size 256]
                  [--faults kill,pause,delay,blackhole,reset,bandwidth]
                  [--gap 2.5] [--live-consumer] [--tmpfs-size 64m]
                  [--plan-only] [--keep] [--verbose]

Environment: FEDQ_BUILD (default build) as for the integration tests;
FAULT_PROXY overrides the proxy binary.
"""

import argparse
import collections
import errno
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import checker  # noqa: E402
import harness  # noqa: E402
import topology  # noqa: E402

FAULT_KINDS = ("kill", "pause", "delay", "blackhole", "reset", "bandwidth")
#  Drawn only when asked for (--faults ...,diskfull,eio): they need root
#  (a tmpfs per data dir) and strace.
EXTRA_KINDS = ("diskfull", "eio")
ALL_KINDS = FAULT_KINDS + EXTRA_KINDS
NODE_FAULTS = ("kill", "pause", "diskfull", "eio")
BIG_COUNT = 1000000000
WARMUP_S = 2.0          # no faults in the first seconds
COOLDOWN_S = 2.0        # nor in the last ones (every fault ends by then)


def proxy_bin():
    return os.environ.get("FAULT_PROXY") or os.path.join(
        harness.build_dir(), "tests", "fault", "fault_proxy")


# -- The plan ----------------------------------------------------------------

def plan(seed, topo, duration, kinds, gap):
    """The fault schedule: a list of dicts sorted by start time, drawn
    from random.Random(seed) and nothing else. Faults on one node, or of
    one kind on one link, never overlap; every fault ends before
    duration - COOLDOWN_S."""
    rng = random.Random(seed)
    links = [lk.name for lk in topo.links()]
    end = duration - COOLDOWN_S
    busy = {}
    faults = []
    t = WARMUP_S
    while True:
        t += rng.uniform(0.4 * gap, 1.6 * gap)
        if t >= end:
            break
        kind = rng.choice(kinds)
        f = {"at": round(t, 3), "kind": kind}
        if kind in NODE_FAULTS:
            f["node"] = rng.choice(topo.nodes)
            key = ("node", f["node"])
            if kind == "kill":
                f["for"] = round(rng.uniform(0.1, 3.0), 3)
            elif kind == "eio":
                f["for"] = round(rng.uniform(1.0, 5.0), 3)
                f["when"] = rng.randint(1, 10)
            else:
                f["for"] = round(rng.uniform(0.5, 6.0), 3)
        else:
            f["link"] = rng.choice(links)
            key = ("link", f["link"], kind)
            if kind == "reset":
                f["for"] = 0.0
            else:
                f["for"] = round(rng.uniform(1.0, 8.0), 3)
                f["dir"] = rng.choice(("both", "up", "down"))
            if kind == "delay":
                ms = rng.choice((10, 50, 100, 250, 500, 1000))
                f["ms"] = ms
                f["jitter_ms"] = rng.randint(0, ms // 2)
            elif kind == "bandwidth":
                f["bytes_per_s"] = rng.choice((5000, 20000, 100000, 1000000))
        f["for"] = min(f["for"], round(end - t, 3))
        if busy.get(key, 0.0) > t:
            continue            # the target is busy: drawn, not used
        busy[key] = t + f["for"] + (1.0 if kind in ("kill", "eio") else 0.0)
        faults.append(f)
    for i, f in enumerate(faults, 1):
        f["n"] = i
    return faults


def describe_fault(f):
    what = f.get("node") or f.get("link")
    extra = ""
    if f["kind"] == "delay":
        extra = " %s %dms jitter %dms" % (f["dir"], f["ms"], f["jitter_ms"])
    elif f["kind"] == "bandwidth":
        extra = " %s %d B/s" % (f["dir"], f["bytes_per_s"])
    elif f["kind"] == "blackhole":
        extra = " " + f["dir"]
    elif f["kind"] == "eio":
        extra = " (fdatasync #%d on fails)" % f["when"]
    dur = "" if f["kind"] == "reset" else " for %.2fs" % f["for"]
    return "#%d %s %s%s%s" % (f["n"], f["kind"], what, extra, dur)


# -- Processes ---------------------------------------------------------------

class FaultNode(harness.Node):
    """A harness node that can run under a wrapper (strace injecting EIO
    into fdatasync). Signals go to the node itself, not to the wrapper."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.wrap = []

    def _spawn(self):
        self.write_config()
        self.starts += 1
        argv = self.wrap + [harness.node_bin(), "-c", self.config_path]
        with open(self.log_path, "ab") as log:
            log.write(("=== nemesis: start #%d of %s at %s: %s\n" % (
                self.starts, self.id, time.strftime("%H:%M:%S"),
                " ".join(argv))).encode())
            log.flush()
            self.proc = harness.track(subprocess.Popen(
                argv, cwd=self.dir, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, env=harness.child_env()))

    def node_pid(self):
        """The fedq-node process: the wrapper's child when wrapped."""
        if not self.proc or not self.wrap:
            return self.pid
        try:
            with open("/proc/%d/task/%d/children" % (self.pid, self.pid)) as f:
                kids = [int(k) for k in f.read().split()]
        except OSError:
            kids = []
        return kids[0] if kids else None

    def kill9(self):
        if self.wrap and self.running():
            child = self.node_pid()
            if child:
                try:
                    os.kill(child, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        return super().kill9()

    def sigstop(self):
        os.kill(self.node_pid() or self.pid, signal.SIGSTOP)

    def sigcont(self):
        os.kill(self.node_pid() or self.pid, signal.SIGCONT)


def fill_disk(folder, limit_bytes=1 << 34):
    """Write a filler file in folder until the disk is full (ENOSPC);
    return the bytes written."""
    path = os.path.join(folder, "filler")
    chunk = b"\0" * 65536
    written = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        while written < limit_bytes:
            try:
                n = os.write(fd, chunk)
            except OSError as e:
                if e.errno == errno.ENOSPC:
                    break
                raise
            written += n
            if n < len(chunk):
                chunk = chunk[:max(1, len(chunk) - n)]
                if len(chunk) == 1 and n == 0:
                    break
    finally:
        os.close(fd)
    return written


class Proxy:
    """A fault_proxy in front of one link's destination."""

    def __init__(self, name, target_port, log_path):
        self.name = name
        self.log_path = log_path
        self.log = open(log_path, "ab")
        self.proc = harness.track(subprocess.Popen(
            [proxy_bin(), "--listen", "127.0.0.1:0", "--target",
             "127.0.0.1:%d" % target_port], stdout=subprocess.PIPE,
            stderr=self.log, stdin=subprocess.DEVNULL))
        line = self.proc.stdout.readline().decode()
        m = re.search(r"listen 127\.0\.0\.1:(\d+) .* control "
                      r"127\.0\.0\.1:(\d+)", line)
        if not m:
            self.stop()
            raise RuntimeError("fault_proxy for %s did not start: %r"
                               % (name, line))
        self.port, self.control = int(m.group(1)), int(m.group(2))

    @property
    def endpoint(self):
        return "tcp://127.0.0.1:%d" % self.port

    def ctl(self, command):
        r = harness.run([proxy_bin(), "--send", "127.0.0.1:%d"
                         % self.control] + command.split(), timeout_s=15)
        if r.rc != 0:
            raise RuntimeError("proxy %s: %r -> %s %s" % (
                self.name, command, r.stdout.strip(), r.stderr.strip()))
        return r.stdout.strip()

    def stop(self):
        if self.proc.poll() is None:
            harness.stop_process(self.proc, 5)
        self.proc.stdout.close()
        self.log.close()


class Producer(threading.Thread):
    """The publisher wrapper: runs `fedq publish` generation after
    generation (P.g0, P.g1, ...) until stopped. Every confirmed id is in
    NAME.confirmed (written by fedq itself); NAME.published gets one
    "PREFIX COUNT" line per generation with what it handed to the node.
    A generation is ended (SIGINT: it settles what is in flight) when its
    node lost the session or it made no progress for stall_s."""

    STALL_S = 4.0
    MAX_GENERATIONS = 500

    def __init__(self, name, node, exchange, key, rate, size, workdir, log):
        super().__init__(name="producer-" + name, daemon=True)
        self.pname = name
        self.node = node
        self.exchange, self.key = exchange, key
        self.rate, self.size = rate, size
        self.workdir = workdir
        self.log = log
        self.confirmed_path = os.path.join(workdir, name + ".confirmed")
        self.published_path = os.path.join(workdir, name + ".published")
        self.stop_ev = threading.Event()
        self.generations = []       # (prefix, rc, published, confirmed)
        self.error = None

    def run(self):
        try:
            self._run()
        except Exception as e:  # noqa: BLE001 (reported by the nemesis)
            self.error = "%s: %s" % (type(e).__name__, e)

    def _run(self):
        gen = 0
        while not self.stop_ev.is_set() and gen < self.MAX_GENERATIONS:
            started = time.monotonic()
            self._generation("%s.g%d" % (self.pname, gen))
            gen += 1
            # Pace restarts when a node is down (fedq exits at once).
            rest = 0.3 - (time.monotonic() - started)
            if rest > 0:
                self.stop_ev.wait(rest)

    def _generation(self, prefix):
        err_path = os.path.join(self.workdir, prefix + ".err")
        argv = [harness.client_bin(), "-e", self.node.endpoint, "publish",
                self.exchange, self.key, "--count", str(BIG_COUNT),
                "--rate", str(self.rate), "--size", str(self.size),
                "--id", prefix, "--confirmed", self.confirmed_path,
                "--timeout", "5000"]
        with open(err_path, "wb") as err:
            proc = harness.track(subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=err,
                stderr=subprocess.STDOUT, env=harness.child_env()))
        last_size = self._size()
        last_progress = time.monotonic()
        why = None
        while proc.poll() is None:
            if self.stop_ev.wait(0.2):
                why = "stopped"
            else:
                size = self._size()
                if size != last_size:
                    last_size, last_progress = size, time.monotonic()
                if self._says(err_path, "unknown session"):
                    why = "session lost"
                elif time.monotonic() - last_progress > self.STALL_S:
                    why = "no confirms for %.0fs" % self.STALL_S
            if why:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=harness.scaled(20))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                    why += ", then killed"
                break
        harness.untrack(proc)
        text = self._text(err_path)
        m = re.search(r"published (\d+), confirmed (\d+)", text)
        published = int(m.group(1)) if m else BIG_COUNT
        confirmed = int(m.group(2)) if m else None
        with open(self.published_path, "a") as f:
            f.write("%s %d\n" % (prefix, published))
        self.generations.append((prefix, proc.returncode, published,
                                 confirmed))
        self.log("producer %s ended (%s): rc=%s published=%s confirmed=%s"
                 % (prefix, why or "exited", proc.returncode,
                    published if m else "?", confirmed))

    def _size(self):
        try:
            return os.path.getsize(self.confirmed_path)
        except OSError:
            return 0

    @staticmethod
    def _text(path):
        try:
            with open(path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _says(self, path, needle):
        return needle in self._text(path)


class LiveConsumer(threading.Thread):
    """`fedq consume QUEUE --json` at a sink during the run, restarted
    when it ends (its node was killed) or when its node restarted under
    it: `fedq consume` then opens a new session but does not subscribe
    again (known issue 5 in docs/operations.md), so it would wait for
    ever. Deliveries go to live-N.jsonl."""

    RESTARTED = "does not know this session"

    def __init__(self, node, queue, outdir, log, prefix=""):
        super().__init__(name="consumer-" + node.id, daemon=True)
        self.node, self.queue, self.outdir, self.log = node, queue, outdir, log
        self.prefix = prefix
        self.stop_ev = threading.Event()
        self.runs = 0

    def run(self):
        while not self.stop_ev.is_set() and self.runs < 500:
            path = os.path.join(self.outdir, "%slive-%d.jsonl"
                                % (self.prefix, self.runs))
            self.runs += 1
            with open(path, "wb") as out, open(path + ".err", "wb") as err:
                proc = harness.track(subprocess.Popen(
                    [harness.client_bin(), "-e", self.node.endpoint,
                     "consume", self.queue, "--json", "--prefetch", "50"],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                    env=harness.child_env()))
            while proc.poll() is None and not self.stop_ev.wait(0.2):
                if self.RESTARTED in Producer._text(path + ".err"):
                    self.log("consumer at %s: its node restarted, the "
                             "consumer starts again" % self.node.id)
                    break
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=harness.scaled(10))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            harness.untrack(proc)
            self.stop_ev.wait(0.3)


# -- The run -----------------------------------------------------------------

class Nemesis:
    def __init__(self, args):
        self.args = args
        self.topo = topology.make(args.topology)
        self.out = args.out
        self.t0 = None
        self.failures = []          # what failed beside the checker
        self.crashes = []
        self.log_file = open(os.path.join(self.out, "faults.log"), "a")
        self.nodes = {}
        self.proxies = {}
        self.producers = []
        self.consumers = []
        self.down = set()           # nodes killed by a fault, not back yet
        self.paused = set()
        self.filled = set()         # nodes whose disk is full
        self.eio = set()            # nodes under strace, fdatasync failing
        self.mounts = []            # tmpfs data dirs to unmount
        self.eio_exits = 0

    # Logging
    def elapsed(self):
        return 0.0 if self.t0 is None else time.monotonic() - self.t0

    def log(self, text):
        line = "%8.3fs %s" % (self.elapsed(), text)
        self.log_file.write(line + "\n")
        self.log_file.flush()
        if self.args.verbose:
            print(line, flush=True)

    def fail(self, text):
        self.failures.append(text)
        self.log("FAILURE: " + text)

    # Set up
    def start(self):
        root = os.path.join(self.out, "nodes")
        os.makedirs(root, exist_ok=True)
        extra = {}
        if "diskfull" in self.args.faults:
            #  Small segments: settled ones are deleted, so a small disk
            #  holds the live backlog, not the whole run.
            extra["segment_bytes"] = "256KiB"
        for nid in self.topo.nodes:
            node = FaultNode(nid, root, fsync="batch", node_extra=extra)
            self.nodes[nid] = node
            if "diskfull" in self.args.faults:
                os.makedirs(node.data_dir, exist_ok=True)
                r = harness.run(["mount", "-t", "tmpfs", "-o", "size=%s"
                                 % self.args.tmpfs_size, "fedq-chaos",
                                 node.data_dir])
                if r.rc != 0:
                    raise RuntimeError("diskfull needs a tmpfs per data dir "
                                       "(root): mount: %s" % r.stderr.strip())
                self.mounts.append(node.data_dir)
        os.makedirs(os.path.join(self.out, "proxies"), exist_ok=True)
        for link in self.topo.links():
            self.proxies[link.name] = Proxy(
                link.name, self.nodes[link.dst].port,
                os.path.join(self.out, "proxies", link.name + ".log"))
        for nid, node in self.nodes.items():
            node.port_fixed = True
            node.sections.update(self.topo.sections(
                nid, lambda name: self.proxies[name].endpoint))
        for node in self.nodes.values():
            node.start()
        harness.wait_until(self.links_running, timeout=30,
                           msg="every link running")

    def statuses(self):
        return {nid: node.status() for nid, node in self.nodes.items()}

    def links_running(self):
        return self.topo.links_running(self.statuses())

    # Faults
    def check_nodes(self):
        """A node that exited without being killed by a fault crashed."""
        for nid, node in self.nodes.items():
            if nid in self.down or node.running():
                continue
            rc = node.proc.returncode if node.proc else None
            if nid in self.eio:
                #  Exiting when fsync fails is a fair policy: note it, and
                #  start it again (still under the fault).
                self.log("node %s exited (rc %s) under the EIO fault:\n%s"
                         % (nid, rc, node.log_tail(5)))
                self.eio_exits += 1
                node.start(wait=False)
                continue
            text = "node %s exited on its own (rc %s)\n%s" % (
                nid, rc, node.log_tail(30))
            self.crashes.append(text)
            self.fail(text)
            node.start(wait=False)
            self.log("restarted %s after its crash" % nid)

    def begin(self, f):
        kind = f["kind"]
        if kind == "kill":
            node = self.nodes[f["node"]]
            self.down.add(f["node"])
            node.kill9()
        elif kind == "pause":
            self.paused.add(f["node"])
            self.nodes[f["node"]].sigstop()
        elif kind == "diskfull":
            node = self.nodes[f["node"]]
            self.filled.add(f["node"])
            n = fill_disk(node.data_dir)
            self.log("filled %s's data dir with %d bytes" % (f["node"], n))
        elif kind == "eio":
            node = self.nodes[f["node"]]
            self.eio.add(f["node"])
            node.kill9()
            node.wrap = ["strace", "-f", "-qq", "--seccomp-bpf", "-o",
                         os.path.join(node.dir, "strace.log"), "-e",
                         "trace=fdatasync", "-e",
                         "inject=fdatasync:error=EIO:when=%d+" % f["when"]]
            node.start(wait=False)
        else:
            p = self.proxies[f["link"]]
            if kind == "delay":
                p.ctl("delay %s %d %d" % (f["dir"], f["ms"], f["jitter_ms"]))
            elif kind == "bandwidth":
                p.ctl("bandwidth %s %d" % (f["dir"], f["bytes_per_s"]))
            elif kind == "blackhole":
                p.ctl("blackhole %s" % f["dir"])
            elif kind == "reset":
                p.ctl("reset")
        self.log("begin " + describe_fault(f) + " (planned at %.3fs)"
                 % f["at"])

    def end(self, f):
        kind = f["kind"]
        if kind == "kill":
            self.nodes[f["node"]].start(wait=False)
            self.down.discard(f["node"])
        elif kind == "pause":
            self.nodes[f["node"]].sigcont()
            self.paused.discard(f["node"])
        elif kind == "diskfull":
            os.remove(os.path.join(self.nodes[f["node"]].data_dir, "filler"))
            self.filled.discard(f["node"])
        elif kind == "eio":
            node = self.nodes[f["node"]]
            node.kill9()
            node.wrap = []
            node.start(wait=False)
            self.eio.discard(f["node"])
        elif kind == "reset":
            return
        else:
            p = self.proxies[f["link"]]
            p.ctl({"delay": "delay %s 0" % f["dir"],
                   "bandwidth": "bandwidth %s 0" % f["dir"],
                   "blackhole": "blackhole off"}[kind])
        self.log("end   #%d %s %s" % (f["n"], kind,
                                      f.get("node") or f.get("link")))

    def run_schedule(self, faults):
        events = []
        for f in faults:
            events.append((f["at"], 0, f["n"], "begin", f))
            if kind_has_end(f):
                events.append((f["at"] + f["for"], 1, f["n"], "end", f))
        events.sort(key=lambda e: e[:3])
        stop = threading.Event()
        for at, _, _, what, f in events:
            while True:
                self.check_nodes()
                wait = at - self.elapsed()
                if wait <= 0:
                    break
                stop.wait(min(wait, 0.25))
            (self.begin if what == "begin" else self.end)(f)
        while self.elapsed() < self.args.duration:
            self.check_nodes()
            stop.wait(min(0.25, self.args.duration - self.elapsed()))

    def heal(self):
        """Undo everything: continue paused nodes, start killed ones, heal
        every proxy; then every node must answer."""
        for nid in sorted(self.paused):
            self.nodes[nid].sigcont()
        self.paused.clear()
        for nid in sorted(self.down):
            self.nodes[nid].start(wait=False)
        self.down.clear()
        for nid in sorted(self.filled):
            os.remove(os.path.join(self.nodes[nid].data_dir, "filler"))
        self.filled.clear()
        for nid in sorted(self.eio):
            node = self.nodes[nid]
            node.kill9()
            node.wrap = []
            node.start(wait=False)
        self.eio.clear()
        for p in self.proxies.values():
            p.ctl("heal")
        self.check_nodes()
        for node in self.nodes.values():
            node.wait_ready(timeout_s=60)
        self.log("healed: every node up, every proxy clear")

    # Workload
    def start_workload(self):
        wdir = os.path.join(self.out, "workload")
        os.makedirs(wdir, exist_ok=True)
        entries = self.topo.entries
        for i in range(self.args.producers):
            nid, exchange, key = entries[i % len(entries)]
            p = Producer("P%d" % (i + 1), self.nodes[nid], exchange, key,
                         self.args.rate, self.args.size, wdir, self.log)
            self.producers.append(p)
            p.start()
        if self.args.live_consumer:
            several = len(self.topo.live_sinks) > 1
            for group, nid, queue in self.topo.live_sinks:
                d = os.path.join(self.out, "delivered", group)
                os.makedirs(d, exist_ok=True)
                #  Several sites in one group: files SITE.live-N.jsonl (the
                #  checker tells the sites apart by the prefix).
                c = LiveConsumer(self.nodes[nid], queue, d, self.log,
                                 prefix=nid + "." if several else "")
                self.consumers.append(c)
                c.start()

    def stop_threads(self, threads, grace_s, what):
        """Stop producers or consumers: all are told at once, then each
        gets grace_s to finish; what(thread) names one that did not."""
        for t in threads:
            t.stop_ev.set()
        for t in threads:
            t.join(harness.scaled(grace_s))
            if t.is_alive():
                self.fail("%s did not stop" % what(t))

    def stop_consumers(self):
        self.stop_threads(self.consumers, 30,
                          lambda c: "live consumer at " + c.node.id)
        if self.consumers:
            self.log("live consumers stopped: %s" % ", ".join(
                "%s %d runs" % (c.node.id, c.runs) for c in self.consumers))
        self.consumers = []

    def stop_workload(self):
        self.stop_threads(self.producers, 60,
                          lambda p: "producer " + p.pname)
        for p in self.producers:
            if p.error:
                self.fail("producer %s: %s" % (p.pname, p.error))
        self.log("producers stopped: %s" % ", ".join(
            "%s %d generations" % (p.pname, len(p.generations))
            for p in self.producers))

    # Settle and drain
    def settled(self):
        """Every link idle (the topology says what that is: shovels at
        backlog 0, lag 0, running; federation: every member pair at
        backlog 0) and every transit queue empty."""
        statuses = self.statuses()
        if not self.topo.links_idle(statuses):
            return False
        for tnode, q in self.topo.transit:
            for e in statuses[tnode].get("queues", []):
                if e.get("name") == q and e.get("depth"):
                    return False
        return True

    def settle(self):
        t = time.monotonic()
        try:
            # Twice in a row: nothing was in flight between two nodes.
            harness.wait_until(lambda: self.settled() and self.settled(),
                               timeout=self.args.settle_timeout,
                               msg="links idle (backlog 0, lag 0) and "
                                   "transit queues empty")
            self.log("settled in %.1fs" % (time.monotonic() - t))
        except harness.WaitTimeout as e:
            self.fail("did not settle: %s" % e)
            for nid, node in self.nodes.items():
                try:
                    self.log("status of %s: %s" % (nid, json.dumps(
                        {"links": node.status().get("links"),
                         "queues": node.status().get("queues")})))
                except Exception as ee:  # noqa: BLE001
                    self.log("status of %s: %s" % (nid, ee))

    def drain(self):
        self.stop_consumers()
        for group, nid, queue in self.topo.sinks:
            node = self.nodes[nid]
            d = os.path.join(self.out, "delivered", group)
            os.makedirs(d, exist_ok=True)
            depth = node.depth(queue) or 0
            several = len(self.topo.live_sinks) > 1
            path = os.path.join(d, (nid + "." if several and
                                    self.args.live_consumer else "")
                                + "drain.jsonl")
            with open(path, "w") as f:
                if depth:
                    r = harness.run(node.cli.argv(
                        "consume", queue, "--count", depth, "--json",
                        "--prefetch", 500), timeout_s=300)
                    f.write(r.stdout)
                    if r.rc != 0:
                        self.fail("draining %s/%s: rc %d: %s" % (
                            nid, queue, r.rc, r.stderr.strip()[-500:]))
            left = node.depth(queue)
            self.log("drained %d from %s/%s (%s left)" % (depth, nid, queue,
                                                           left))
            if left:
                self.fail("%s/%s still holds %s after draining %d"
                          % (nid, queue, left, depth))
        if self.topo.empty_after_drain:
            self.wait_empty()

    def wait_empty(self):
        """consume: global: the drain's acks reach every member, which
        must then hold nothing."""
        queue = self.topo.sinks[0][2]
        try:
            harness.wait_until(lambda: all(
                not n.depth(queue) for n in self.nodes.values()),
                timeout=self.args.settle_timeout,
                msg="every member empty after the drain")
        except harness.WaitTimeout as e:
            self.fail("%s: %s" % (e, {nid: n.depth(queue)
                                      for nid, n in self.nodes.items()}))

    def snapshot(self):
        sdir = os.path.join(self.out, "status")
        os.makedirs(sdir, exist_ok=True)
        links = {}
        for nid, node in self.nodes.items():
            st = node.status()
            with open(os.path.join(sdir, nid + ".json"), "w") as f:
                json.dump(st, f, indent=1)
            for lk in st.get("links", []):
                #  A federation entry is named QUEUE/PEER on each member.
                key = lk.get("name")
                if lk.get("kind") == "federation":
                    key = "%s:%s" % (nid, key)
                links[key] = {k: lk.get(k) for k in (
                    "state", "forwarded_total", "confirmed_total",
                    "applied_total", "duplicates_dropped_total",
                    "duplicates_total", "resent_total", "reconnects_total",
                    "last_error") if k in lk}
        return links

    def stop_all(self):
        for nid in list(self.paused):
            self.nodes[nid].sigcont()
        for nid, node in self.nodes.items():
            rc = node.stop()
            if rc not in (0, None):
                self.log("node %s exited %s on SIGTERM" % (nid, rc))
        for p in self.proxies.values():
            p.stop()
        harness.kill_all()
        for m in self.mounts:
            r = harness.run(["umount", m])
            if r.rc != 0:
                self.log("umount %s: %s" % (m, r.stderr.strip()))
        for nid, node in self.nodes.items():
            for line in node.sanitizer_reports()[:5]:
                self.fail("sanitizer in %s: %s" % (nid, line))


def kind_has_end(f):
    return f["kind"] != "reset"


def run(args):
    faults = plan(args.seed, topology.make(args.topology), args.duration,
                  args.faults, args.gap)
    if args.only:
        #  Reducing a failure: the same plan, only some of its faults.
        faults = [f for f in faults if f["n"] in args.only]
    with open(os.path.join(args.out, "schedule.json"), "w") as f:
        json.dump({"seed": args.seed, "topology": args.topology,
                   "duration": args.duration, "faults": faults}, f,
                  indent=1, sort_keys=True)
        f.write("\n")
    nem = Nemesis(args)
    t_start = time.monotonic()
    result = {"seed": args.seed, "topology": args.topology,
              "duration": args.duration, "rate": args.rate,
              "producers": args.producers}
    counts = collections.Counter(f["kind"] for f in faults)
    result["faults"] = {k: counts.get(k, 0) for k in ALL_KINDS}
    result["faults_total"] = len(faults)
    verdict = None
    try:
        nem.log("seed %d, topology %s, %d faults planned: %s" % (
            args.seed, args.topology, len(faults),
            "; ".join(describe_fault(f) for f in faults)))
        nem.start()
        nem.t0 = time.monotonic()
        nem.log("nodes up, links running; workload starts")
        nem.start_workload()
        nem.run_schedule(faults)
        nem.heal()
        nem.stop_workload()
        if nem.topo.redelivery == "sites":
            #  Consumers at every member: stopped before settling, so
            #  that their last acks are replicated before the drain.
            nem.stop_consumers()
        nem.settle()
        nem.drain()
        result["links"] = nem.snapshot()
    except Exception as e:  # noqa: BLE001 (the run fails, with the cause)
        nem.fail("%s: %s" % (type(e).__name__, e))
    finally:
        nem.stop_all()
    run_data = checker.Run.from_dir(args.out)
    verdict = checker.check(run_data, allow_redelivery=bool(
        args.live_consumer), cross_site=nem.topo.redelivery == "sites")
    result["check"] = verdict
    result["generations"] = {p.pname: len(p.generations)
                             for p in nem.producers}
    result["failures"] = nem.failures
    result["crashes"] = len(nem.crashes)
    result["eio_exits"] = nem.eio_exits
    result["passed"] = verdict["passed"] and not nem.failures
    result["seconds"] = round(time.monotonic() - t_start, 1)
    with open(os.path.join(args.out, "result.json"), "w") as f:
        json.dump(result, f, indent=1, sort_keys=True)
        f.write("\n")
    nem.log("result: %s" % summary(result))
    nem.log_file.close()
    return result


def summary(r):
    c = r.get("check") or {}
    kinds = ", ".join("%s %d" % (k, v) for k, v in r["faults"].items() if v)
    text = ("seed %d: %s faults=%d (%s) confirmed=%s lost=%s duplicated=%s "
            "unexpected=%s reordered=%s (%.0fs)" % (
                r["seed"], "PASS" if r["passed"] else "FAIL",
                r["faults_total"], kinds or "none", c.get("confirmed"),
                c.get("lost"), c.get("duplicated"), c.get("unexpected"),
                c.get("reordered"), r["seconds"]))
    if "cross_site_duplicates" in c:
        text += " cross_site_duplicates=%d" % c["cross_site_duplicates"]
    for f in r.get("failures", [])[:3]:
        text += "\n    " + f.splitlines()[0]
    return text


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--topology", default="chain3",
                    choices=sorted(topology.TOPOLOGIES))
    ap.add_argument("--out", help="run folder (default: a new temp folder)")
    ap.add_argument("--producers", type=int, default=None,
                    help="default 2, or one per entry when the topology "
                         "has more (a producer at every member)")
    ap.add_argument("--rate", type=int, default=200,
                    help="messages/s per producer")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--faults", default=",".join(FAULT_KINDS),
                    help="kinds to draw from (comma separated): %s"
                         % ", ".join(ALL_KINDS))
    ap.add_argument("--tmpfs-size", default="64m",
                    help="with diskfull: each data dir is a tmpfs this big")
    ap.add_argument("--gap", type=float, default=2.5,
                    help="mean seconds between faults")
    ap.add_argument("--settle-timeout", type=float, default=120.0)
    ap.add_argument("--live-consumer", action="store_true",
                    help="consume at the sink during the run too "
                         "(repeats after a crash are then allowed)")
    ap.add_argument("--only", default="",
                    help="apply only these faults of the plan (numbers, "
                         "comma separated: reducing a failed seed)")
    ap.add_argument("--plan-only", action="store_true",
                    help="print the schedule and exit")
    ap.add_argument("--keep", action="store_true",
                    help="keep node data even when the run passed")
    ap.add_argument("--verbose", "-v", action="store_true")
    args = ap.parse_args(argv)
    args.faults = [k.strip() for k in args.faults.split(",") if k.strip()]
    topo = topology.make(args.topology)
    if args.producers is None:
        args.producers = max(2, len(topo.entries))
    if topo.redelivery == "sites":
        args.live_consumer = True   # the topology consumes at every site
    try:
        args.only = {int(n) for n in args.only.split(",") if n.strip()}
    except ValueError:
        ap.error("--only: fault numbers, comma separated")
    bad = [k for k in args.faults if k not in ALL_KINDS]
    if bad or not args.faults:
        ap.error("--faults: unknown %s (have %s)" % (bad, ALL_KINDS))
    if args.duration < WARMUP_S + COOLDOWN_S + 1:
        ap.error("--duration must be at least %.0fs"
                 % (WARMUP_S + COOLDOWN_S + 1))
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.plan_only:
        for f in plan(args.seed, topology.make(args.topology),
                      args.duration, args.faults, args.gap):
            print("%8.3fs %s" % (f["at"], describe_fault(f)))
        return 0
    for b in (harness.node_bin(), harness.client_bin(), proxy_bin()):
        if not os.access(b, os.X_OK):
            print("nemesis: %s is missing (build with cmake first; "
                  "FEDQ_BUILD=%s)" % (b, harness.build_dir()),
                  file=sys.stderr)
            return 2
    made = False
    if not args.out:
        args.out = tempfile.mkdtemp(prefix="fedq-chaos-%d-" % args.seed)
        made = True
    os.makedirs(args.out, exist_ok=True)
    for sub in ("workload", "delivered", "nodes", "status"):
        # A run folder holds one run: never mix two runs' files.
        shutil.rmtree(os.path.join(args.out, sub), ignore_errors=True)
    for stale in ("faults.log", "result.json", "schedule.json"):
        if os.path.exists(os.path.join(args.out, stale)):
            os.remove(os.path.join(args.out, stale))
    result = run(args)
    print(summary(result), flush=True)
    if result["passed"] and not args.keep:
        shutil.rmtree(os.path.join(args.out, "nodes"), ignore_errors=True)
        if made:
            shutil.rmtree(args.out, ignore_errors=True)
    else:
        print("    run folder: %s" % args.out, flush=True)
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
