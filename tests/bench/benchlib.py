"""tests/bench/benchlib.py — helpers the benchmark drivers share."""

import os
import statistics
import time

import harness


def kv(line):
    """key=value pairs of a bench tool's output line, as a dict."""
    import re
    return dict(re.findall(r"(\w+)=(\S+)", line or ""))


def tool():
    return os.path.join(harness.build_dir(), "tests", "bench_shovel")


class CpuWatch:
    """utime+stime of processes over a window, % of one core each."""

    def __init__(self, pids):
        self.pids = pids
        self.hz = os.sysconf("SC_CLK_TCK")
        self.t0 = time.monotonic()
        self.c0 = [self._ticks(p) for p in pids]

    @staticmethod
    def _ticks(pid):
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return int(fields[11]) + int(fields[12])
        except (OSError, ValueError, IndexError):
            return 0

    def stop(self):
        dt = time.monotonic() - self.t0
        return [100.0 * (self._ticks(p) - c) / self.hz / dt if dt else 0
                for p, c in zip(self.pids, self.c0)]


def fsync_hist(node):
    """A node's fdatasync latency histogram (status JSON: counts per
    bucket and the buckets' upper bounds in seconds, the last unbounded)."""
    store = node.status()["node"]["store"]
    return store["fsync_hist"], store["fsync_hist_le"]


def fsync_quantiles(before, after):
    """The fdatasyncs a node made between two fsync_hist() readings: their
    count and the bucket bounds (ms) that hold the median and the 99th
    percentile (None past the last bound)."""
    counts = [b - a for a, b in zip(before[0], after[0])]
    total = sum(counts)
    out = {"fsyncs": total}
    for name, q in (("fsync_p50_le_ms", 0.5), ("fsync_p99_le_ms", 0.99)):
        seen, bound = 0, None
        for count, le in zip(counts, after[1]):
            seen += count
            if total and seen >= q * total:
                bound = None if le is None else le * 1000.0
                break
        out[name] = bound
    return out


def med(runs, key):
    vals = [r[key] for r in runs if r and r.get(key) is not None]
    return statistics.median(vals) if vals else None


def fmt(v, spec="%.0f"):
    return "-" if v is None else spec % v


def ratio(a, b, spec="%.1fx"):
    return "-" if a is None or not b else spec % (a / b)


#  -- Processes: CPU seconds and peak RSS ----------------------------------

def _status_kib(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


class ProcWatch:
    """CPU seconds (utime+stime, from /proc/PID/stat) and peak RSS (VmHWM,
    from /proc/PID/status) of the processes of one workload: the servers
    (named pids, sampled at start and end; their VmHWM is reset at the
    start through /proc/PID/clear_refs so that a long-lived RabbitMQ node
    reports this workload's peak), plus the load clients, whose own
    rusage (wait4) is added when they exit (see run_client, reap)."""

    def __init__(self, named_pids):
        self.hz = os.sysconf("SC_CLK_TCK")
        self.t0 = time.monotonic()
        self.procs = [(name, pid) for name, pid in named_pids if pid]
        for _, pid in self.procs:
            try:
                with open("/proc/%d/clear_refs" % pid, "w") as f:
                    f.write("5")
            except OSError:
                pass        # an older kernel: VmHWM since the start
        self.c0 = {name: CpuWatch._ticks(pid) for name, pid in self.procs}
        self.cpu = {}       # name -> seconds
        self.rss = {}       # name -> MiB
        self.secs = None

    def client(self, name, usage):
        """Account a finished client: usage from run_client/reap."""
        if usage:
            self.cpu[name] = self.cpu.get(name, 0) + usage["cpu_s"]
            self.rss[name] = max(self.rss.get(name, 0), usage["rss_mib"])

    def stop(self):
        self.secs = time.monotonic() - self.t0
        for name, pid in self.procs:
            self.cpu[name] = (CpuWatch._ticks(pid) - self.c0[name]) / self.hz
            hwm = _status_kib(pid, "VmHWM")
            if hwm is not None:
                self.rss[name] = hwm / 1024.0
        return self

    def cpu_s(self):
        """CPU seconds of every process watched."""
        return sum(self.cpu.values())

    def pct(self, name):
        """CPU of one process over the window, % of one core."""
        return (100.0 * self.cpu.get(name, 0) / self.secs
                if self.secs else None)

    def summary(self, messages):
        """Fields for a result: CPU s per 100k messages (every process),
        per-process CPU s and peak RSS MiB."""
        total = sum(self.cpu.values())
        out = {"cpu_s": total, "cpu_per_100k": (
            total * 100000.0 / messages if messages else None),
            "procs": {n: {"cpu_s": round(self.cpu.get(n, 0), 3),
                          "rss_mib": round(self.rss.get(n, 0), 1)}
                      for n in sorted(set(self.cpu) | set(self.rss))}}
        return out


def reap(proc, timeout_s=900):
    """Wait for a Popen child with wait4: its rc, CPU seconds and peak RSS
    (None for the usage if it was already reaped). Bounded: on timeout it
    is killed."""
    import subprocess  # noqa: F401 (Popen objects come from it)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        except ChildProcessError:
            proc.wait()
            return proc.returncode, None
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            harness.untrack(proc)
            return proc.returncode, {"cpu_s": ru.ru_utime + ru.ru_stime,
                                     "rss_mib": ru.ru_maxrss / 1024.0}
        if time.monotonic() > deadline:
            proc.kill()
            deadline = time.monotonic() + 10
        time.sleep(0.01)


def run_client(argv, timeout_s=900):
    """Run a load client to its end; (rc, stdout, stderr, usage)."""
    import subprocess
    import tempfile
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = harness.track(subprocess.Popen(
            [str(a) for a in argv], stdin=subprocess.DEVNULL, stdout=out,
            stderr=err, env=harness.child_env()))
        rc, usage = reap(p, harness.scaled(timeout_s))
        out.seek(0)
        err.seek(0)
        return (rc, out.read().decode("utf-8", "replace"),
                err.read().decode("utf-8", "replace"), usage)


def finish(proc, timeout_s=900):
    """The rest of a Popen(stdout=PIPE, text) waiter's output, then reap
    it: (stdout, usage)."""
    out = proc.stdout.read()
    _, usage = reap(proc, timeout_s)
    return out, usage


#  -- The combined report's rows ------------------------------------------

def rows_file(out_dir):
    """bench-results/rows-STAMP.jsonl when `scripts/bench all` set
    FEDQ_BENCH_STAMP, else None: each part appends its summary rows, the
    report (bench_report.py) reads them."""
    stamp = os.environ.get("FEDQ_BENCH_STAMP")
    return os.path.join(out_dir, "rows-%s.jsonl" % stamp) if stamp else None


def emit(out_dir, **row):
    """Append one summary row (workload, size, unit, better, fedq,
    rabbitmq, ceiling, ceiling_name, cpu/rss fields...) to the rows file
    of this `scripts/bench all` run; nothing when run alone."""
    import json
    path = rows_file(out_dir)
    if not path:
        return
    os.makedirs(out_dir, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(row, sort_keys=True) + "\n")


def load_average():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return None


def peak_rss(runs):
    """The highest peak RSS (MiB) of each process over runs."""
    out = {}
    for r in runs or []:
        for name, p in (r or {}).get("procs", {}).items():
            out[name] = max(out.get(name, 0), p["rss_mib"])
    return out


def emit_pair(out_dir, part, workload, size, key, fedq_runs, rmq_runs,
              unit="msg/s", better="higher", ceiling_ref=None, **extra):
    """One row of the combined report: the medians of key for fedq and
    RabbitMQ, with the CPU s per 100k messages and peak RSS per process
    of each."""
    emit(out_dir, part=part, kind="pair", workload=workload, size=size,
         unit=unit, better=better, ceiling_ref=ceiling_ref,
         fedq=med(fedq_runs or [], key),
         rabbitmq=med(rmq_runs or [], key),
         runs=len(fedq_runs or []),
         cpu_fedq=med(fedq_runs or [], "cpu_per_100k"),
         cpu_rabbitmq=med(rmq_runs or [], "cpu_per_100k"),
         rss_fedq=peak_rss(fedq_runs), rss_rabbitmq=peak_rss(rmq_runs),
         reached_fedq=med(fedq_runs or [], "reached"),
         reached_rabbitmq=med(rmq_runs or [], "reached"), **extra)


def amqp_paced(bench, port, exch, key, n, size, rate, secs, cons, watch):
    """RabbitMQ side of a latency run: amqpbench publishes n messages at
    rate into port (cons, an `amqpbench consume` already attached, reads
    them at the other node); the latency figures, the rate the publisher
    reached and the CPU/RSS of watch (stopped here)."""
    rc, pout, perr, usage = run_client(
        [bench, "publish", port, exch, key, n, size, 1000, rate],
        timeout_s=secs * 20 + 300)
    watch.client("amqpbench publish", usage)
    if rc != 0:
        raise RuntimeError("amqpbench publish: %s %s" % (pout, perr))
    out, usage = finish(cons, secs * 20 + 300)
    watch.client("amqpbench consume", usage)
    watch.stop()
    r = kv(out)
    if "lat_p50_ms" not in r:
        raise RuntimeError("RabbitMQ latency failed: %s" % out)
    return dict(watch.summary(int(r["n"])), p50=float(r["lat_p50_ms"]),
                p99=float(r["lat_p99_ms"]), max=float(r["lat_max_ms"]),
                reached=float(kv(pout)["msgs_per_s"]))


def write_runs(path, results, keys):
    """Every run of a part as CSV: system, case, size, run, keys, and
    each process's CPU seconds and peak RSS."""
    import csv
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["system", "case", "size", "run"] + list(keys)
                   + ["procs (CPU s, peak RSS MiB)"])
        for (system, kind, size), runs in results.items():
            for i, r in enumerate(runs, 1):
                w.writerow([system, kind, size, i] + [
                    "" if r.get(k) is None else "%.4g" % r[k]
                    for k in keys] + [" ".join(
                        "%s:%.2fs/%.0fMiB" % (p, v["cpu_s"], v["rss_mib"])
                        for p, v in sorted(r.get("procs", {}).items()))])
