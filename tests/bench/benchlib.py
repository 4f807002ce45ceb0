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


def med(runs, key):
    vals = [r[key] for r in runs if r and r.get(key) is not None]
    return statistics.median(vals) if vals else None


def fmt(v, spec="%.0f"):
    return "-" if v is None else spec % v


def ratio(a, b, spec="%.1fx"):
    return "-" if a is None or not b else spec % (a / b)
