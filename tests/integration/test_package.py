"""tests/integration/test_package.py — the Debian package (scripts/package,
packaging/): install it with dpkg, run a node from the installed binary and
the installed /etc/fedq/fedq.yaml (adapted to a temp data dir and free
ports) as the packaged `fedq` user, check it with the installed `fedq`,
verify the systemd unit, then purge the package and check the machine is
left as it was.

It changes the machine (/usr/bin, /etc/fedq, /var/lib/fedq, a system
user), so it runs only when FEDQ_PACKAGE_TEST=1 and as root: scripts/test
sets that when it runs as root in CI (CI=true), on a disposable machine.
A machine that already has a fedq package installed is left alone
(skipped). The node is started directly, not through systemd, which does
not run in CI containers. Sanitizer builds are skipped: the package is
made from the release build.

    FEDQ_PACKAGE_TEST=1 FEDQ_BUILD=build python3 tests/integration/run.py test_package
"""

import glob
import json
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import unittest
import urllib.request

import harness

PKG = "fedq"
NODE = "/usr/bin/fedq-node"
CLIENT = "/usr/bin/fedq"
CONFIG = "/etc/fedq/fedq.yaml"
UNIT = "/lib/systemd/system/fedq.service"
STATE_DIR = "/var/lib/fedq"
LOG_LINE = re.compile(r"^level=(debug|info|warn|error) node=\S+ "
                      r"src=[A-Za-z0-9_.-]+:\d+ \S")


def sh(argv, timeout_s=120, env=None):
    """Run argv (tracked, with a deadline): Result(rc, stdout, stderr)."""
    return harness.run([str(a) for a in argv], timeout_s=timeout_s, env=env)


def pkg_status():
    """dpkg's status of the fedq package ("install ok installed"), or ""."""
    r = sh(["dpkg-query", "-W", "-f=${Status}", PKG], timeout_s=30)
    return r.stdout.strip() if r.rc == 0 else ""


def why_not():
    """Why this machine must not run the test, or None."""
    if os.environ.get("FEDQ_PACKAGE_TEST") != "1":
        return ("installs a package system-wide: set FEDQ_PACKAGE_TEST=1 on "
                "a disposable machine (scripts/test does as root in CI)")
    if os.geteuid() != 0:
        return "FEDQ_PACKAGE_TEST=1 but not root: dpkg -i needs root"
    for tool in ("dpkg", "dpkg-deb", "dpkg-query", "cmake"):
        if shutil.which(tool) is None:
            return "%s not found: the package is built and tested on Debian" \
                % tool
    if harness.sanitized_build():
        return ("FEDQ_BUILD=%s is a sanitizer build; the package is tested "
                "from the release build" % harness.build_dir())
    if not harness.binaries_present():
        return "fedq binaries not built in %s" % harness.build_dir()
    status = pkg_status()
    if status and "not-installed" not in status \
            and "config-files" not in status:
        return ("a fedq package is already on this machine (%s); not "
                "touching it" % status)
    return None


def find_deb():
    """The build folder's fedq_*.deb, built (again) when it is missing or
    older than the binaries it would package."""
    build = harness.build_dir()
    newest_bin = max(os.path.getmtime(harness.node_bin()),
                     os.path.getmtime(harness.client_bin()))
    debs = sorted(glob.glob(os.path.join(build, "fedq_*.deb")),
                  key=os.path.getmtime)
    if not debs or os.path.getmtime(debs[-1]) < newest_bin:
        for old in debs:
            os.unlink(old)
        r = sh(["cmake", "--build", build, "--target", "package"],
               timeout_s=600)
        if r.rc != 0:
            raise AssertionError("cmake --build %s --target package exited "
                                 "%d\n%s\n%s" % (build, r.rc, r.stdout[-3000:],
                                                 r.stderr[-3000:]))
        debs = glob.glob(os.path.join(build, "fedq_*.deb"))
    if len(debs) != 1:
        raise AssertionError("expected one fedq_*.deb in %s, found %r"
                             % (build, debs))
    return debs[0]


def apt_env():
    return {"DEBIAN_FRONTEND": "noninteractive"}


def install(deb):
    """dpkg -i DEB; on missing dependencies apt-get install -f. Fail unless
    the package ends up installed."""
    r = sh(["dpkg", "-i", deb], timeout_s=300, env=apt_env())
    if r.rc != 0:
        fix = sh(["apt-get", "install", "-f", "-y", "-q",
                  "--no-install-recommends"], timeout_s=600, env=apt_env())
        if fix.rc != 0:
            raise AssertionError(
                "dpkg -i %s exited %d and apt-get install -f %d\n%s\n%s\n%s"
                % (deb, r.rc, fix.rc, r.stderr[-2000:], fix.stdout[-2000:],
                   fix.stderr[-2000:]))
    status = pkg_status()
    if status != "install ok installed":
        raise AssertionError("after dpkg -i %s: status %r\n%s\n%s"
                             % (deb, status, r.stdout[-2000:],
                                r.stderr[-2000:]))


def adapt_config(text, data_dir, port, http_port):
    """The installed config with its data_dir, listen port and http port
    replaced; each must be there exactly once."""
    subs = [
        (r"(?m)^(\s+data_dir:\s*)\S+", r"\g<1>" + data_dir),
        (r"(?m)^(\s+listen:\s*tcp://127\.0\.0\.1:)\d+", r"\g<1>%d" % port),
        (r"(?m)^(\s+http:\s*127\.0\.0\.1:)\d+", r"\g<1>%d" % http_port),
    ]
    for pattern, repl in subs:
        text, n = re.subn(pattern, repl, text)
        if n != 1:
            raise AssertionError("%s: expected one line matching %r, found %d"
                                 % (CONFIG, pattern, n))
    return text


def http_get(url, timeout_s=5):
    with urllib.request.urlopen(url, timeout=timeout_s) as resp:
        return resp.status, resp.read().decode("utf-8", "replace")


class PackageTest(unittest.TestCase):

    installed = False

    @classmethod
    def setUpClass(cls):
        reason = why_not()
        if reason:
            if reason.startswith("fedq binaries not built") and \
                    os.environ.get("FEDQ_REQUIRE_BINARIES") == "1":
                raise AssertionError(reason)
            raise unittest.SkipTest(reason)
        cls.had_user = _user_exists("fedq")
        cls.had_state_dir = os.path.exists(STATE_DIR)
        cls.deb = find_deb()
        cls.version = sh(["dpkg-deb", "--field", cls.deb, "Version"]
                         ).stdout.strip()
        install(cls.deb)
        cls.installed = True

    @classmethod
    def tearDownClass(cls):
        if not cls.installed:
            return
        harness.kill_all()
        r = sh(["dpkg", "--purge", PKG], timeout_s=300, env=apt_env())
        left = []
        if r.rc != 0:
            left.append("dpkg --purge exited %d: %s" % (r.rc, r.stderr))
        for path in (NODE, CLIENT, UNIT, CONFIG):
            if os.path.exists(path):
                left.append(path)
        if not cls.had_state_dir and os.path.exists(STATE_DIR):
            left.append(STATE_DIR)
        if not cls.had_user and _user_exists("fedq"):
            left.append("user fedq")
        if pkg_status() not in ("", "unknown ok not-installed"):
            left.append("dpkg status %r" % pkg_status())
        if left:
            raise AssertionError("purging the package left: %s"
                                 % ", ".join(left))

    # -- What the package put where -----------------------------------

    def test_files_user_and_state_dir(self):
        for path in (NODE, CLIENT):
            self.assertTrue(os.access(path, os.X_OK), path)
        r = sh([NODE, "--version"])
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertIn(self.version, r.stdout)
        r = sh([CLIENT, "--version"])
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertTrue(os.path.isfile(UNIT))
        self.assertTrue(os.path.isfile("/usr/share/doc/fedq/operations.md"))
        conffiles = sh(["dpkg-query", "-W", "-f=${Conffiles}", PKG]).stdout
        self.assertIn(CONFIG, conffiles, "the config is not a conffile")

        user = pwd.getpwnam("fedq")
        self.assertLess(user.pw_uid, 1000, "fedq is not a system user")
        self.assertIn("nologin", user.pw_shell)
        st = os.stat(STATE_DIR)
        self.assertEqual((st.st_uid, st.st_gid), (user.pw_uid, user.pw_gid))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o750)

    def test_reinstall_is_idempotent(self):
        uid = pwd.getpwnam("fedq").pw_uid
        install(self.deb)           # configure again, as an upgrade does
        self.assertEqual(pwd.getpwnam("fedq").pw_uid, uid)
        self.assertTrue(os.path.isdir(STATE_DIR))

    def test_installed_config_loads(self):
        # --dump-config loads and checks everything but the ports (a node
        # on this machine may hold 5680).
        r = sh([NODE, "--dump-config", "-c", CONFIG])
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertRegex(r.stdout, r'(?m)^\s+id: "?site1"?$')
        self.assertRegex(r.stdout, r'(?m)^\s+data_dir: "?%s"?$' % STATE_DIR)

    def test_systemd_unit(self):
        with open(UNIT) as f:
            unit = f.read()
        for line in ("User=fedq", "ExecStart=%s -c %s" % (NODE, CONFIG),
                     "ExecReload=/bin/kill -HUP $MAINPID",
                     "ReadWritePaths=%s" % STATE_DIR):
            self.assertIn(line + "\n", unit)
        if shutil.which("systemd-analyze") is None:
            self.skipTest("systemd-analyze not installed")
        r = sh(["systemd-analyze", "verify", UNIT], timeout_s=60)
        self.assertEqual(r.rc, 0, "systemd-analyze verify %s:\n%s%s"
                         % (UNIT, r.stdout, r.stderr))
        about_us = [ln for ln in (r.stdout + r.stderr).splitlines()
                    if "fedq" in ln]
        self.assertEqual(about_us, [], "systemd-analyze verify complains")

    def test_service_under_systemd(self):
        # Only where systemd runs (a CI VM, not a container): the postinst
        # has started the service on the installed config.
        if not os.path.isdir("/run/systemd/system"):
            self.skipTest("systemd is not running here (a container)")
        with open(CONFIG) as f:
            port = re.search(r"(?m)^\s+listen:\s*tcp://127\.0\.0\.1:(\d+)",
                             f.read()).group(1)
        endpoint = "tcp://127.0.0.1:%s" % port

        def status():
            r = sh([CLIENT, "-e", endpoint, "status", "--json"], timeout_s=10)
            return json.loads(r.stdout) if r.rc == 0 else None

        def journal():
            return sh(["journalctl", "--no-pager", "-u", "fedq", "-n", "50"]
                      ).stdout

        st = harness.wait_until(status, timeout=30,
                                msg="the fedq service answers on %s"
                                % endpoint)
        self.assertEqual(st["node"]["id"], "site1", journal())
        r = sh(["systemctl", "show", "-p", "MainPID", "--value", "fedq"])
        pid = int(r.stdout.strip() or 0)
        self.assertGreater(pid, 0)
        self.assertEqual(os.stat("/proc/%d" % pid).st_uid,
                         pwd.getpwnam("fedq").pw_uid)
        generation = st["node"]["config_generation"]
        self.assertEqual(sh(["systemctl", "reload", "fedq"]).rc, 0)
        harness.wait_until(
            lambda: status()["node"]["config_generation"] == generation + 1,
            timeout=20, msg="systemctl reload took")
        self.assertEqual(sh(["systemctl", "stop", "fedq"], timeout_s=60).rc, 0)
        self.assertIn("stopped cleanly", journal())

    # -- A node from the package ----------------------------------------

    def test_node_runs_as_fedq_from_installed_config(self):
        user = pwd.getpwnam("fedq")
        tmp = tempfile.mkdtemp(prefix="fedq-it-package-")
        self.addCleanup(shutil.rmtree, tmp, True)
        os.chown(tmp, user.pw_uid, user.pw_gid)
        data_dir = os.path.join(tmp, "data")
        port, http_port = harness.free_port(), harness.free_port()
        with open(CONFIG) as f:
            base = f.read()
        config = os.path.join(tmp, "fedq.yaml")
        with open(config, "w") as f:
            f.write(adapt_config(base, data_dir, port, http_port))
        as_fedq = {"user": user.pw_uid, "group": user.pw_gid,
                   "extra_groups": [], "cwd": tmp}

        # What ExecStartPre runs: the full check, ports included.
        r = subprocess.run([NODE, "--check", "-c", config],
                           capture_output=True, text=True,
                           timeout=harness.scaled(30), **as_fedq)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

        log_path = os.path.join(tmp, "node.log")
        with open(log_path, "wb") as log:
            proc = harness.track(subprocess.Popen(
                [NODE, "-c", config], stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, env=harness.child_env(),
                **as_fedq))
        self.addCleanup(harness.stop_process, proc)

        def log_text():
            with open(log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")

        endpoint = "tcp://127.0.0.1:%d" % port

        def fedq(*args, timeout_s=30):
            return sh([CLIENT, "-e", endpoint] + list(args),
                      timeout_s=timeout_s)

        def status():
            if proc.poll() is not None:
                raise AssertionError("node exited %s\n%s"
                                     % (proc.returncode, log_text()))
            r = fedq("status", "--json", timeout_s=10)
            return json.loads(r.stdout) if r.rc == 0 else None

        st = harness.wait_until(status, timeout=30, msg="fedq status answers")
        self.assertEqual(st["node"]["id"], "site1")
        self.assertEqual(st["node"]["config_generation"], 1)

        # It takes traffic, and writes its log as user fedq.
        r = fedq("declare", "queue", "work", "--durable")
        self.assertEqual(r.rc, 0, r.stderr)
        r = fedq("publish", "", "work", "--count", "10", timeout_s=60)
        self.assertEqual(r.rc, 0, r.stderr)
        depth = [q["depth"] for q in status()["queues"]
                 if q["name"] == "work"]
        self.assertEqual(depth, [10])
        owners = {os.stat(os.path.join(d, n)).st_uid
                  for d, _, names in os.walk(data_dir) for n in names}
        self.assertEqual(owners, {user.pw_uid})

        code, body = http_get("http://127.0.0.1:%d/status" % http_port)
        self.assertEqual(code, 200)
        self.assertEqual(json.loads(body)["node"]["id"], "site1")

        # systemctl reload fedq: SIGHUP, a new declaration, generation 2.
        with open(config, "a") as f:
            f.write("\nqueues:\n  - { name: added-live, durable: true }\n")
        os.kill(proc.pid, signal.SIGHUP)
        harness.wait_until(
            lambda: status()["node"]["config_generation"] == 2
            and any(q["name"] == "added-live" for q in status()["queues"]),
            timeout=20, msg="reload to generation 2 with queue added-live")

        # systemctl stop fedq: SIGTERM, exit 0, messages kept.
        self.assertEqual(harness.stop_process(proc, grace_s=30), 0,
                         log_text())
        text = log_text()
        self.assertIn("stopped cleanly", text)
        # journald gets one line per event, key=value, no continuation.
        bad = [ln for ln in text.splitlines() if not LOG_LINE.match(ln)]
        self.assertEqual(bad, [], "log lines not in the documented format")


def _user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


if __name__ == "__main__":
    unittest.main()
