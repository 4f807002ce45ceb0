#!/usr/bin/env python3
"""tests/bench/bench_report.py — the combined report of `scripts/bench
all`: one table of every workload, fedq and RabbitMQ side by side with the
machine's ceiling measured in the same run, CPU and peak RSS, a CSV and
gnuplot charts. Reads the rows the parts appended to
bench-results/rows-STAMP.jsonl (benchlib.emit).

usage: bench_report.py --stamp STAMP [--out DIR] [--load-before L]
                       [--quick] [--data-dir DIR]
Writes DIR/report-STAMP.md, DIR/report-STAMP.csv and
DIR/report-STAMP-{throughput,latency}.png (charts when gnuplot is there).
"""

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
sys.path.insert(0, HERE)

from benchlib import fmt, load_average  # noqa: E402

PART_ORDER = ["node", "shovel", "federation"]


def sh(*argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True,
                              timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine(data_dir):
    """(label, value) pairs describing this machine and run."""
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            mem_kib = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        mem_kib = 0
    src = sh("findmnt", "-n", "-o", "SOURCE,FSTYPE", "-T", data_dir)
    dev = src.split()[0] if src else ""
    base = os.path.basename(dev)
    rota = sh("cat", "/sys/block/%s/queue/rotational" % base)
    model = sh("cat", "/sys/block/%s/device/model" % base) or sh(
        "cat", "/sys/block/%s/device/vendor" % base)
    disk = "%s (%s%s%s)" % (src or "?", {"0": "non-rotational",
                                          "1": "rotational"}.get(rota, "?"),
                            ", " if model else "", model)
    rmq = sh("dpkg-query", "-W", "-f=${Version}", "rabbitmq-server")
    erl = sh("dpkg-query", "-W", "-f=${Version}", "erlang-base")
    rev = sh("git", "-C", REPO, "rev-parse", "--short", "HEAD")
    return [("cores", str(os.cpu_count())), ("CPU", cpu),
            ("RAM", "%.1f GiB" % (mem_kib / 1048576.0)),
            ("disk of the node data (%s)" % data_dir, disk),
            ("kernel", "%s %s" % (platform.system(), platform.release())),
            ("OS", sh("sh", "-c", ". /etc/os-release && echo "
                      "$PRETTY_NAME")),
            ("RabbitMQ", "%s (Erlang %s)" % (rmq or "not installed",
                                            erl or "?")),
            ("fedq", "commit %s" % (rev or "?"))]


def read_rows(path):
    rows = []
    with open(path) as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    return rows


def merge(rows):
    """Rows of one workload and size from several parts (the RabbitMQ
    side of the node part's row comes from the shovel part) as one: the
    first row, its empty fields filled from the others."""
    out, seen = [], {}
    for r in rows:
        key = (r.get("kind"), r.get("workload"), r.get("size"))
        if r.get("kind") != "pair" or key not in seen:
            seen.setdefault(key, r)
            out.append(r)
            continue
        first = seen[key]
        for k, v in r.items():
            if first.get(k) in (None, {}) and v not in (None, {}):
                first[k] = v
    return out


class Ceilings:
    """The limits part's rows, and what each workload is bounded by."""

    def __init__(self, rows):
        self.rows = [r for r in rows if r.get("kind") == "ceiling"]
        self.pairs = [r for r in rows if r.get("kind") == "pair"]

    def _value(self, workload, size=None):
        for r in self.rows:
            if r["workload"] == workload and (size is None
                                              or r["size"] == size):
                return r
        return None

    def of(self, row):
        """(name, value) of the ceiling of row, or (None, None)."""
        ref = row.get("ceiling_ref")
        size = row["size"]
        if ref == "durable link":
            best = None
            for b in (64, 1024):
                r = self._value("durable link batch %d" % b, size)
                if r and r.get("value") and (best is None or r["value"]
                                             > best[1]):
                    best = ("durable link, batch %d" % b, r["value"])
            return best or (None, None)
        if ref and ref.startswith("2 fdatasync "):
            q = ref.split()[-1]
            r = self._value("fdatasync")
            if r and r.get(q) is not None:
                return ("2 x fdatasync %s" % q, 2 * r[q])
            return (None, None)
        if ref and ref.startswith("fedq:"):
            want = ref[5:]
            for p in self.pairs:
                if p["workload"] == want and p["size"] == size:
                    return ("fedq on loopback", p.get("fedq"))
        return (None, None)


def size_label(size):
    return ("%d KiB" % (size // 1024)) if size >= 1024 and not size % 1024 \
        else "%d B" % size


def value(v, unit):
    if v is None:
        return "-"
    if unit == "ms":
        return "%.3f ms" % v if v < 10 else "%.1f ms" % v
    return "{:,.0f}".format(v)


def ratio(a, b, better):
    if a is None or not b:
        return "-"
    return "%.2fx" % (a / b) if better == "lower" or a / b < 10 \
        else "%.1fx" % (a / b)


def rss(d):
    """Peak RSS of the server processes (nodes, beams), MiB."""
    servers = [(k, v) for k, v in sorted(d.items())
               if k.startswith(("fedq-", "beam-"))]
    return "/".join("%.0f" % v for _, v in servers) or "-"


def gnuplot(script):
    if not shutil.which("gnuplot"):
        return "gnuplot not installed (scripts/install-deps --with bench)"
    r = subprocess.run(["gnuplot"], input=script, capture_output=True,
                       text=True, timeout=60)
    return r.stderr.strip() if r.returncode else None


def bar_chart(png, title, unit, xmin, rows, series):
    """Horizontal grouped bars on a log scale, one group per row: rows =
    [(label, [value or None per series])], series = [(title, colour,
    fill density)]. None when drawn, else what went wrong."""
    width = 0.72 / len(series)
    fd, dat = tempfile.mkstemp(prefix="fedq-bench-chart-", suffix=".dat")
    try:
        with os.fdopen(fd, "w") as f:
            for label, vals in rows:
                f.write('"%s" %s\n' % (label.replace('"', "'"), " ".join(
                    "%.6g" % v if v else "-" for v in vals)))
        plots = []
        for k, (name, colour, fill) in enumerate(series):
            lo = -0.36 + k * width
            plots.append(
                '"%s" using %d:($0):(%g):%d:($0%+.3f):($0%+.3f) with '
                'boxxyerror title "%s" fs solid %.2f lc rgb "%s"' % (
                    dat if k == 0 else "", k + 2, xmin, k + 2, lo,
                    lo + width, name, fill, colour))
        plots.append('"" using (%g):($0):ytic(1) with points pt -1 notitle'
                     % xmin)
        return gnuplot("\n".join([
            'set terminal pngcairo noenhanced size 1400,%d font ",10"'
            % max(400, 30 * len(rows) + 120),
            'set output "%s"' % png, 'set title "%s"' % title,
            'set datafile missing "-"', "set logscale x",
            "set xrange [%g:*]" % xmin, "set grid x",
            "set key outside top center horizontal",
            "set yrange [%d-0.5:-0.5]" % len(rows),
            'set xlabel "%s (log scale)"' % unit,
            "set ytics scale 0 nomirror", "set lmargin 48",
            "plot " + ", \\\n     ".join(plots), ""]))
    finally:
        os.unlink(dat)


def charts(stem, table):
    """Two PNGs: throughput by workload and size (fedq, RabbitMQ, ceiling),
    latency p50/p99 by rate (fedq, RabbitMQ)."""
    notes = []
    thr = [("%s %s" % (t["workload"].replace("(RabbitMQ ", "(").replace(
        "federation", "fed."), size_label(t["size"])),
        [t["fedq"], t["rabbitmq"], t["ceiling"]])
        for t in table if t["unit"] == "msg/s" and t["fedq"]]
    lat = []
    for t in table:
        if t["unit"] != "ms" or t.get("metric") != "p50" or not t["fedq"]:
            continue
        p99 = next((u for u in table if u.get("metric") == "p99"
                    and u["size"] == t["size"] and u["workload"]
                    == t["workload"].replace(" p50 ", " p99 ")), {})
        lat.append(("%s %s" % (t["workload"].replace(" latency p50", "")
                               .replace(" msg/s", "").replace(
                                   "federation", "fed.").replace(
                                   ", 2 members", " 2m"),
                               size_label(t["size"])),
                    [t["fedq"], p99.get("fedq"), t["rabbitmq"],
                     p99.get("rabbitmq")]))
    if thr:
        err = bar_chart(stem + "-throughput.png", "Throughput: fedq, "
                        "RabbitMQ and the machine's ceiling", "msg/s", 100,
                        thr, [("fedq", "#1f77b4", 0.85),
                              ("RabbitMQ", "#ff7f0e", 0.85),
                              ("ceiling", "#999999", 0.85)])
        if err:
            notes.append("throughput chart: %s" % err)
    if lat:
        err = bar_chart(stem + "-latency.png", "End-to-end latency at a "
                        "fixed rate: p50 and p99, fedq and RabbitMQ", "ms",
                        0.01, lat, [("fedq p50", "#1f77b4", 0.85),
                                    ("fedq p99", "#1f77b4", 0.4),
                                    ("RabbitMQ p50", "#ff7f0e", 0.85),
                                    ("RabbitMQ p99", "#ff7f0e", 0.4)])
        if err:
            notes.append("latency chart: %s" % err)
    return notes


def headline(table):
    """`shovel drain 1 KiB: 23.4x` for every throughput row that has both
    systems."""
    return ["%s %s: %s" % (t["workload"], size_label(t["size"]),
                           ratio(t["fedq"], t["rabbitmq"], t["better"]))
            for t in table if t["unit"] == "msg/s" and t["fedq"]
            and t["rabbitmq"] and not t.get("lower_bound")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stamp", required=True)
    ap.add_argument("--out", default=os.path.join(REPO, "bench-results"))
    ap.add_argument("--load-before", default=None)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--data-dir", default=os.environ.get(
        "FEDQ_BENCH_DIR") or tempfile.gettempdir())
    ap.add_argument("--elapsed", default=None, help="seconds the run took")
    args = ap.parse_args()
    path = os.path.join(args.out, "rows-%s.jsonl" % args.stamp)
    if not os.path.exists(path):
        sys.stderr.write("bench report: no rows at %s (did the parts run "
                         "with FEDQ_BENCH_STAMP=%s?)\n" % (path, args.stamp))
        return 2
    rows = merge(read_rows(path))
    ceil = Ceilings(rows)
    table = []
    for r in rows:
        if r.get("kind") != "pair" or (r.get("fedq") is None
                                       and r.get("rabbitmq") is None):
            continue
        name, cval = ceil.of(r)
        table.append(dict(r, ceiling_name=name, ceiling=cval))
    # One node first, then the links; each part's rows in its own order.
    table.sort(key=lambda t: PART_ORDER.index(t["part"])
               if t["part"] in PART_ORDER else len(PART_ORDER))

    stem = os.path.join(args.out, "report-%s" % args.stamp)
    lines = ["# fedq benchmarks: %s run %s" % (
        "quick" if args.quick else "full", args.stamp), ""]
    lines.append("| machine | |")
    lines.append("|---|---|")
    for k, v in machine(args.data_dir):
        lines.append("| %s | %s |" % (k, v))
    lines.append("| load average (1, 5, 15 min) | before %s; after %s |" % (
        args.load_before or "?", load_average()))
    if args.elapsed:
        lines.append("| run time | %s s |" % args.elapsed)
    lines.append("")
    head = headline(table)
    if head:
        lines.append("fedq / RabbitMQ, msg/s (higher is better): " + "; ".join(
            head) + ".")
        lines.append("")
    lines.append("Medians of the runs (column *runs*); side by side in the "
                 "same run. Ratios: fedq / RabbitMQ and fedq / ceiling "
                 "(for latency, lower is better). CPU s/100k: CPU "
                 "seconds of every process of the workload (nodes, load "
                 "clients, proxy) per 100k messages. Peak RSS: VmHWM of "
                 "each node in the workload, MiB (fedq A/B or members; "
                 "RabbitMQ beam A/B).")
    lines.append("")
    lines.append("| workload | size | runs | fedq | RabbitMQ | fedq / "
                 "RabbitMQ | ceiling | fedq / ceiling | CPU s/100k fedq / "
                 "RabbitMQ | peak RSS MiB fedq; RabbitMQ |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    for t in table:
        u = t["unit"]
        fq = value(t["fedq"], u)
        if t.get("lower_bound"):
            fq += " (at least: start-up included)"
        if t.get("rate") and t.get("reached_fedq") and \
                t["reached_fedq"] < 0.95 * t["rate"]:
            fq += " (reached %s msg/s)" % value(t["reached_fedq"], "msg/s")
        rq = value(t["rabbitmq"], u)
        if t.get("rate") and t.get("reached_rabbitmq") and \
                t["reached_rabbitmq"] < 0.95 * t["rate"]:
            rq += " (reached %s msg/s)" % value(t["reached_rabbitmq"],
                                                "msg/s")
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s / %s | "
                     "%s; %s |" % (
                         t["workload"], size_label(t["size"]), t["runs"], fq,
                         rq, ratio(t["fedq"], t["rabbitmq"], t["better"]),
                         "%s: %s" % (t["ceiling_name"], value(
                             t["ceiling"], u)) if t["ceiling_name"] else "-",
                         ratio(t["fedq"], t["ceiling"], t["better"]),
                         fmt(t.get("cpu_fedq"), "%.2f"),
                         fmt(t.get("cpu_rabbitmq"), "%.2f"),
                         rss(t.get("rss_fedq") or {}),
                         rss(t.get("rss_rabbitmq") or {})))
    lines.append("")
    cl = [r for r in rows if r.get("kind") == "ceiling"]
    if cl:
        lines.append("Ceilings measured in this run: " + "; ".join(
            "%s %s: %s %s" % (r["workload"], size_label(r["size"]),
                              value(r.get("value"), "msg/s"), r["unit"])
            for r in cl if r["workload"] != "fdatasync") + ".")
        fs = [r for r in cl if r["workload"] == "fdatasync"]
        if fs and fs[0].get("p50") is not None:
            f = fs[0]
            lines.append("")
            lines.append("fdatasync on the nodes' disk: %s syncs/s; p50 %.3f "
                         "ms, p99 %.3f ms, max %.2f ms. A durable link waits "
                         "for two in series (publish at the source, the hop "
                         "at the destination): end-to-end latency >= %.3f "
                         "ms p50, %.3f ms p99." % (
                             value(f.get("value"), "msg/s"), f["p50"],
                             f["p99"], f["max"], 2 * f["p50"], 2 * f["p99"]))
    if args.quick:
        lines.append("")
        lines.append("(--quick: fewer messages, one run, fewer sizes; a "
                     "valid side-by-side run, but noisier figures)")
    notes = charts(stem, table)
    lines.append("")
    for kind in ("throughput", "latency"):
        png = "%s-%s.png" % (stem, kind)
        if os.path.exists(png):
            lines.append("![%s](%s)" % (kind, os.path.basename(png)))
    for n in notes:
        lines.append("- " + n)
    text = "\n".join(lines) + "\n"
    with open(stem + ".md", "w") as f:
        f.write(text)
    with open(stem + ".csv", "w", newline="") as f:
        w = csv.writer(f)
        keys = ("part", "workload", "size", "unit", "runs", "fedq",
                "rabbitmq", "ceiling_name", "ceiling", "cpu_fedq",
                "cpu_rabbitmq", "reached_fedq", "reached_rabbitmq",
                "max_fedq", "max_rabbitmq")
        w.writerow(list(keys) + ["rss_fedq_mib", "rss_rabbitmq_mib"])
        for t in table:
            w.writerow(["" if t.get(k) is None else t[k] for k in keys] + [
                " ".join("%s:%.0f" % kv for kv in sorted(
                    (t.get(x) or {}).items()))
                for x in ("rss_fedq", "rss_rabbitmq")])
    sys.stdout.write(text)
    print("report: %s.md, csv: %s.csv" % (
        os.path.relpath(stem, REPO), os.path.relpath(stem, REPO)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
