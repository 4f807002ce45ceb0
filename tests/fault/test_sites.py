#!/usr/bin/env python3
"""tests/fault/test_sites.py — scripts/sites end to end: three sites (in
network namespaces as root, on loopback ports otherwise), shovels in a
chain, and each of its faults (partition of a site and of a pair, heal,
SIGSTOP/SIGCONT, kill -9 and restart, a full disk, EIO on fdatasync);
every confirmed message arrives at the last site once (the checker), and
`down` leaves nothing behind.

    FEDQ_BUILD=build python3 tests/fault/test_sites.py -v
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import checker  # noqa: E402
import harness  # noqa: E402

SITES = os.path.join(REPO, "scripts", "sites")


def gone(pid):
    """True once pid has exited (or is a zombie waiting for init)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def have_binaries():
    return harness.binaries_present() and os.access(os.path.join(
        harness.build_dir(), "tests", "fault", "fault_proxy"), os.X_OK)


@unittest.skipUnless(have_binaries(), "fedq binaries or fault_proxy not "
                     "built in %s" % harness.build_dir())
class SitesTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="fedq-sites-")
        self.prefix = "fqt%d-" % os.getpid()
        self.env = dict(os.environ, FEDQ_SITES_DIR=self.dir,
                        FEDQ_SITES_PREFIX=self.prefix,
                        FEDQ_BUILD=harness.build_dir(),
                        FEDQ_SITES_PORT=str(harness.free_port() // 2))
        self.confirmed = os.path.join(self.dir, "confirmed")
        self.up = False

    def tearDown(self):
        if self.up:
            self.sites("down", check=False)
        if os.environ.get("FEDQ_KEEP_TMP") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)

    def sites(self, *args, check=True, timeout=120):
        p = subprocess.run([SITES] + [str(a) for a in args], env=self.env,
                           capture_output=True, text=True,
                           timeout=harness.scaled(timeout))
        if check and p.returncode != 0:
            self.fail("scripts/sites %s: exit %d\n%s%s\n%s" % (
                " ".join(map(str, args)), p.returncode, p.stdout, p.stderr,
                self.logs()))
        return p

    def logs(self):
        out = []
        for i in (1, 2, 3):
            path = os.path.join(self.dir, "s%d" % i, "node.log")
            if os.path.exists(path):
                with open(path) as f:
                    tail = f.read().splitlines()[-15:]
                out.append("--- s%d\n%s" % (i, "\n".join(tail)))
        return "\n".join(out)

    def status(self, site):
        return json.loads(self.sites("fedq", site, "status", "--json").stdout)

    def depth(self, site, queue="relay"):
        for q in self.status(site).get("queues", []):
            if q["name"] == queue:
                return q["depth"]
        return None

    def link(self, site):
        links = self.status(site).get("links", [])
        return links[0] if links else {}

    def publish(self, prefix, count, site="s1"):
        self.sites("fedq", site, "publish", "", "relay", "--count", count,
                   "--id", prefix, "--confirmed", self.confirmed)

    def wait_depth(self, n, site="s3"):
        harness.wait_until(lambda: self.depth(site) == n, timeout=60,
                           msg="%d messages at %s" % (n, site))

    def start(self, *extra):
        p = self.sites("up", 3, "--proxies", *extra)
        self.up = True
        with open(os.path.join(self.dir, "mode")) as f:
            self.mode = f.read().strip()
        if (os.geteuid() == 0 and shutil.which("ip")
                and os.environ.get("FEDQ_SITES_MODE") != "loopback"):
            self.assertEqual(self.mode, "netns", p.stdout + p.stderr)
        else:
            self.assertIn("falling back to loopback", p.stderr)
        harness.wait_until(lambda: self.link("s1").get("state") == "running"
                           and self.link("s2").get("state") == "running",
                           timeout=30, msg="both links running")

    def drain_and_check(self, n):
        out = self.sites("fedq", "s3", "consume", "relay", "--count", n,
                         "--json").stdout
        path = os.path.join(self.dir, "drain.jsonl")
        with open(path, "w") as f:
            f.write(out)
        run = checker.Run("sites")
        run.add_confirmed(self.confirmed)
        run.add_delivered("s3", path)
        res = checker.check(run)
        self.assertTrue(res["passed"], json.dumps(res, indent=1))
        self.assertEqual(res["confirmed"], n)

    def test_network_and_process_faults(self):
        self.start()
        self.publish("P1", 200)
        self.wait_depth(200)

        # A site cut off: s1's link cannot reach s2 until healed.
        self.sites("partition", "s2")
        self.publish("P2", 100)
        harness.wait_until(lambda: self.link("s1").get("state")
                           in ("reconnecting", "blocked"), timeout=30,
                           msg="s1's link notices the partition")
        self.assertEqual(self.link("s1").get("backlog_messages"), 100)
        self.sites("heal")
        self.wait_depth(300)

        # A pair: s1 and s2 cannot talk, everything else can.
        self.sites("partition", "s1", "s2")
        self.publish("P3", 50)
        harness.wait_until(lambda: self.link("s1").get("state")
                           in ("reconnecting", "blocked"), timeout=30,
                           msg="s1's link notices the pair partition")
        self.assertEqual(self.link("s2").get("state"), "running")
        self.sites("heal", "s1")
        self.wait_depth(350)

        # Frozen, then killed: nothing lost, nothing twice.
        self.sites("stop", "s2")
        self.publish("P4", 50)
        self.sites("cont", "s2")
        self.sites("restart", "s3")
        self.sites("kill", "s2")
        self.publish("P5", 50)
        self.sites("start", "s2")
        self.sites("proxy", "s1", "delay", "both", "50")
        self.publish("P6", 50)
        self.sites("proxy", "s1", "heal")
        self.wait_depth(500)
        self.drain_and_check(500)

        pids = []
        for i in (1, 2, 3):
            with open(os.path.join(self.dir, "s%d" % i, "node.pid")) as f:
                pids.append(int(f.read()))
        self.sites("down")
        self.up = False
        for pid in pids:
            harness.wait_until(lambda: gone(pid), timeout=15,
                               msg="node %d gone" % pid)
        if self.mode == "netns":
            names = subprocess.run(["ip", "netns", "list"],
                                   capture_output=True, text=True).stdout
            self.assertNotIn(self.prefix, names)

    @unittest.skipUnless(os.geteuid() == 0, "needs root (tmpfs, strace)")
    def test_disk_faults(self):
        self.start("--tmpfs", "16m")
        self.publish("P1", 100)
        self.wait_depth(100)

        self.sites("fill", "s3")
        self.publish("P2", 100)
        harness.wait_until(lambda: self.link("s2").get("state") == "blocked",
                           timeout=30, msg="s2's link blocked by s3's disk")
        self.assertIn("ENOSPC", self.link("s2").get("last_error", ""))
        self.sites("unfill", "s3")
        self.wait_depth(200)

        if shutil.which("strace"):
            self.sites("eio", "s3", "2+")
            self.publish("P3", 100)
            harness.wait_until(lambda: self.link("s2").get(
                "rejected_total", 0) > 0, timeout=30,
                msg="s3 refuses what it cannot sync")
            self.sites("restart", "s3")
            self.wait_depth(300)
            self.drain_and_check(300)
        else:
            self.drain_and_check(200)


if __name__ == "__main__":
    unittest.main(verbosity=2)
