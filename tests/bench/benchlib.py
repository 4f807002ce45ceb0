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
