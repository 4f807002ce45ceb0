#!/usr/bin/env python3
"""tests/fault/checker.py — did every confirmed message arrive, once, in
order? Reads what the publishers confirmed and what the consumers got, and
reports (as JSON, then a line "chaos: N passed, N failed"):

  lost         confirmed, never delivered (in some delivery group)
  duplicated   delivered more than once in one group
  unexpected   delivered, never published
  reordered    at one consumer, a message of a producer delivered after a
               later message of the same producer

With --cross-site (a federated queue with `consume: global`: one group
whose consumers are at several members, files SITE.NAME.jsonl), a group
must get every confirmed message at least once: a message delivered at
more than one site counts as cross_site_duplicates (both sides of a
partition may deliver it; not a failure), repeats at one site as
duplicated (or redelivered with --allow-redelivery).

Message ids are PRODUCER-SEQ as `fedq publish --id PRODUCER` makes them
(PRODUCER-1..PRODUCER-N). A producer restarted by the publisher wrapper
takes a new generation, PRODUCER.gN (P1.g0, P1.g1, ...): order is checked
within a generation for every message, and across generations for
confirmed messages only (an unconfirmed message of an old generation can
still be in flight when the next generation starts; a confirmed one was
stored before it ended).

Inputs, per run:
  confirmed    files of ids, one a line (`fedq publish --confirmed FILE`)
  published    files of "PREFIX COUNT" lines: PREFIX-1..PREFIX-COUNT were
               handed to `fedq publish` (confirmed or not). Delivered but
               not confirmed is fine for these; without published files,
               every delivered id must have been confirmed.
  delivered    files of JSON lines (`fedq consume --json`), in groups: each
               group (a site, a queue) must get every confirmed message
               exactly once; each file is one consumer.

A run folder (what tests/fault/nemesis.py writes) holds
  workload/*.confirmed, workload/*.published, delivered/GROUP/*.jsonl

usage:
  checker.py RUN_DIR [RUN_DIR...]            one verdict per run folder
  checker.py --confirmed F... [--published F...] --delivered [GROUP=]F...
  options: --allow-redelivery  count repeats as "redelivered", not failures
                               (consumers that ran through crashes: an ack
                               lost with a node is at-least-once)
           --cross-site        repeats across sites of a group are
                               cross_site_duplicates, not failures
           --json-only / --quiet

Exit 0 when every run passed, 1 when any failed, 2 on bad usage.
Python standard library only.
"""

import argparse
import glob
import json
import os
import re
import sys

EXAMPLES = 20
_GEN = re.compile(r"^(?P<base>.*)\.g(?P<gen>\d+)$")


def parse_id(message_id):
    """'P1.g2-17' -> ('P1', 2, 17); 'P1-17' -> ('P1', 0, 17); None when
    the id is not PRODUCER-SEQ."""
    if not isinstance(message_id, str) or "-" not in message_id:
        return None
    prefix, _, seq = message_id.rpartition("-")
    if not prefix or not seq.isdigit():
        return None
    m = _GEN.match(prefix)
    if m:
        return m.group("base"), int(m.group("gen")), int(seq)
    return prefix, 0, int(seq)


def read_ids(path):
    """Ids in a confirmed file, one a line; a torn last line is dropped
    (the writer was killed mid-line; its id was not fully recorded)."""
    with open(path, "rb") as f:
        data = f.read().decode("utf-8", "replace")
    lines = data.split("\n")
    if lines and lines[-1] != "":
        lines = lines[:-1]          # no newline: torn
    return [ln.strip() for ln in lines if ln.strip()]


def read_published(path):
    """'PREFIX COUNT' lines -> {PREFIX: COUNT}."""
    out = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            words = line.split()
            if not words:
                continue
            if len(words) != 2 or not words[1].isdigit():
                raise ValueError("%s:%d: expected 'PREFIX COUNT', got %r"
                                 % (path, n, line.strip()))
            out[words[0]] = max(out.get(words[0], 0), int(words[1]))
    return out


def read_deliveries(path):
    """JSON lines -> (list of dicts, malformed line count). A torn last
    line (consumer killed while printing) counts as malformed."""
    items, bad = [], 0
    with open(path, "rb") as f:
        for raw in f:
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                bad += 1
                continue
            if isinstance(obj, dict):
                items.append(obj)
            else:
                bad += 1
    return items, bad


class Run:
    """The inputs of one run."""

    def __init__(self, name):
        self.name = name
        self.confirmed = []         # ids, in file order
        self.published = {}         # prefix -> count
        self.have_published = False
        self.groups = {}            # group -> [(consumer, [deliveries])]
        self.malformed = 0

    def add_confirmed(self, path):
        self.confirmed.extend(read_ids(path))

    def add_published(self, path):
        self.have_published = True
        for k, v in read_published(path).items():
            self.published[k] = max(self.published.get(k, 0), v)

    def add_delivered(self, group, path):
        items, bad = read_deliveries(path)
        self.malformed += bad
        consumer = "%s/%s" % (group, os.path.basename(path))
        self.groups.setdefault(group, []).append((consumer, items))

    @classmethod
    def from_dir(cls, path):
        run = cls(os.path.basename(os.path.normpath(path)))
        for f in sorted(glob.glob(os.path.join(path, "workload",
                                               "*.confirmed"))):
            run.add_confirmed(f)
        for f in sorted(glob.glob(os.path.join(path, "workload",
                                               "*.published"))):
            run.add_published(f)
        for d in sorted(glob.glob(os.path.join(path, "delivered", "*"))):
            if os.path.isdir(d):
                for f in sorted(glob.glob(os.path.join(d, "*.jsonl"))):
                    run.add_delivered(os.path.basename(d), f)
        return run


def was_published(run, message_id):
    p = parse_id(message_id)
    if p is None:
        return False
    prefix = message_id.rpartition("-")[0]
    return 1 <= p[2] <= run.published.get(prefix, 0)


def consumer_site(consumer):
    """'global/b.live-3.jsonl' -> 'b'; a file without a SITE. prefix is a
    site of its own."""
    base = consumer.rpartition("/")[2]
    if base.endswith(".jsonl"):
        base = base[:-len(".jsonl")]
    return base.partition(".")[0] if "." in base else base


def check(run, allow_redelivery=False, cross_site=False):
    """The verdict on one run, as a dict (see the module doc)."""
    confirmed = set(run.confirmed)
    r = {
        "run": run.name,
        "confirmed": len(confirmed),
        "confirmed_lines_repeated": len(run.confirmed) - len(confirmed),
        "published": sum(run.published.values()),
        "groups": {},
        "lost": 0, "duplicated": 0, "unexpected": 0, "reordered": 0,
        "redelivered": 0, "unconfirmed_delivered": 0,
        "malformed_lines": run.malformed,
        "examples": {"lost": [], "duplicated": [], "unexpected": [],
                     "reordered": []},
    }
    ex = r["examples"]
    if cross_site:
        r["cross_site_duplicates"] = 0
    if not run.groups:
        r["groups"]["(none)"] = {"delivered": 0, "lost": len(confirmed)}
        r["lost"] = len(confirmed)
        ex["lost"] = sorted(confirmed)[:EXAMPLES]
    unexpected = set()
    unconfirmed_delivered = set()
    for group, consumers in sorted(run.groups.items()):
        count = {}
        sites = {}                  # id -> {site: deliveries}
        repeats_marked = {}
        deliveries = 0
        reordered = 0
        for consumer, items in consumers:
            site = consumer_site(consumer)
            top_seq = {}            # (producer, gen) -> (seq, id)
            top_gen = {}            # producer -> (gen, id)
            seen_here = set()
            for d in items:
                mid = d.get("message_id")
                deliveries += 1
                count[mid] = count.get(mid, 0) + 1
                if cross_site:
                    per = sites.setdefault(mid, {})
                    per[site] = per.get(site, 0) + 1
                if count[mid] > 1 and d.get("redelivered"):
                    repeats_marked[mid] = repeats_marked.get(mid, 0) + 1
                if mid not in confirmed:
                    if run.have_published and was_published(run, mid):
                        unconfirmed_delivered.add(mid)
                    else:
                        unexpected.add(mid)
                # Order: first delivery of each id at this consumer, not
                # redeliveries (a requeued message comes back late).
                if mid in seen_here or d.get("redelivered"):
                    seen_here.add(mid)
                    continue
                seen_here.add(mid)
                p = parse_id(mid)
                if p is None:
                    continue
                base, gen, seq = p
                bad = None
                ts = top_seq.get((base, gen))
                tg = top_gen.get(base)
                if ts and seq < ts[0]:
                    bad = ts[1]     # same generation: every message
                elif tg and tg[0] > gen and mid in confirmed:
                    bad = tg[1]     # confirmed, after a later generation
                if bad is not None:
                    reordered += 1
                    if len(ex["reordered"]) < EXAMPLES:
                        ex["reordered"].append({
                            "consumer": consumer, "id": mid, "after": bad})
                if not ts or seq > ts[0]:
                    top_seq[(base, gen)] = (seq, mid)
                if not tg or gen > tg[0]:
                    top_gen[base] = (gen, mid)
        lost = sorted(confirmed - set(count), key=_id_key)
        cross = 0
        if cross_site:
            # At least once in the group: a message at two sites is one
            # cross-site duplicate; only repeats at one site are repeats.
            cross = sum(len(per) - 1 for per in sites.values())
            dup_ids = sorted((m for m, per in sites.items()
                              if max(per.values()) > 1), key=_id_key)
            extra = sum(c - 1 for m in dup_ids for c in sites[m].values())
        else:
            dup_ids = sorted((m for m, c in count.items() if c > 1),
                             key=_id_key)
            extra = sum(count[m] - 1 for m in dup_ids)
        if allow_redelivery:
            redelivered, duplicated, dups = extra, 0, []
        else:
            # Repeats all marked redelivered are still repeats: a group
            # must get each message once (a live consumer that can lose
            # acks needs --allow-redelivery).
            redelivered, duplicated, dups = 0, extra, dup_ids
        g = {"consumers": len(consumers), "delivered": deliveries,
             "unique": len(count), "lost": len(lost),
             "duplicated": duplicated, "redelivered": redelivered,
             "redelivered_marked": sum(repeats_marked.values()),
             "reordered": reordered}
        if cross_site:
            g["cross_site_duplicates"] = cross
            r["cross_site_duplicates"] += cross
        r["groups"][group] = g
        r["lost"] += len(lost)
        r["duplicated"] += duplicated
        r["redelivered"] += redelivered
        r["reordered"] += reordered
        for m in lost[:EXAMPLES - len(ex["lost"])]:
            ex["lost"].append("%s: %s" % (group, m))
        for m in dups[:EXAMPLES - len(ex["duplicated"])]:
            ex["duplicated"].append("%s: %s x%d" % (group, m, count[m]))
    r["unexpected"] = len(unexpected)
    ex["unexpected"] = sorted(map(str, unexpected), key=_id_key)[:EXAMPLES]
    r["unconfirmed_delivered"] = len(unconfirmed_delivered)
    r["passed"] = not (r["lost"] or r["duplicated"] or r["unexpected"]
                       or r["reordered"])
    return r


def _id_key(mid):
    p = parse_id(mid) if isinstance(mid, str) else None
    return (p[0], p[1], p[2], "") if p else ("~", 0, 0, str(mid))


def summary_line(results):
    ok = sum(1 for r in results if r["passed"])
    return "chaos: %d passed, %d failed" % (ok, len(results) - ok)


def describe(r):
    """One human line per run."""
    text = ("%s: %s  confirmed=%d lost=%d duplicated=%d unexpected=%d "
            "reordered=%d redelivered=%d unconfirmed_delivered=%d"
            % (r["run"], "PASS" if r["passed"] else "FAIL", r["confirmed"],
               r["lost"], r["duplicated"], r["unexpected"], r["reordered"],
               r["redelivered"], r["unconfirmed_delivered"]))
    if r.get("cross_site_duplicates"):
        text += " cross_site_duplicates=%d" % r["cross_site_duplicates"]
    return text


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="lost / duplicated / unexpected / reordered messages")
    ap.add_argument("runs", nargs="*", help="run folders")
    ap.add_argument("--confirmed", action="append", default=[])
    ap.add_argument("--published", action="append", default=[])
    ap.add_argument("--delivered", action="append", default=[],
                    help="[GROUP=]FILE of `fedq consume --json` lines")
    ap.add_argument("--allow-redelivery", action="store_true")
    ap.add_argument("--cross-site", action="store_true",
                    help="a group's SITE.*.jsonl files are several sites "
                         "(consume: global): each message at least once")
    ap.add_argument("--json-only", action="store_true")
    ap.add_argument("--quiet", action="store_true",
                    help="only the per-run lines and the summary")
    args = ap.parse_args(argv)
    runs = []
    try:
        for d in args.runs:
            if not os.path.isdir(d):
                ap.error("%s is not a run folder" % d)
            runs.append(Run.from_dir(d))
        if args.confirmed or args.delivered or args.published:
            run = Run("files")
            for f in args.confirmed:
                run.add_confirmed(f)
            for f in args.published:
                run.add_published(f)
            for spec in args.delivered:
                group, sep, path = spec.partition("=")
                if not sep:
                    group, path = "all", spec
                run.add_delivered(group, path)
            runs.append(run)
    except (OSError, ValueError) as e:
        print("checker: %s" % e, file=sys.stderr)
        return 2
    if not runs:
        ap.error("give run folders or --confirmed/--delivered files")
    results = [check(r, args.allow_redelivery, args.cross_site)
               for r in runs]
    if not args.quiet:
        print(json.dumps(results if len(results) > 1 else results[0],
                         indent=2, sort_keys=True))
    if not args.json_only:
        for r in results:
            print(describe(r))
        print(summary_line(results))
    return 0 if all(r["passed"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
