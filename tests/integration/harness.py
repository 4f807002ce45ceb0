"""tests/integration/harness.py — start real fedq nodes and drive the fedq
command for integration and fault tests (Python standard library only).

    class T(harness.FedqTestCase):
        def test_x(self):
            a = self.node("sydney", queues=[{"name": "outbox"}])
            a.start()
            rc, out, err = a.fedq("publish", "", "outbox", "--count", "10")
            harness.wait_until(lambda: a.depth("outbox") == 10, timeout=10)

Environment:
    FEDQ_BUILD        build folder holding node/fedq-node and client/fedq
                      (default "build", relative to the repository root)
    FEDQ_KEEP_TMP=1   keep each test's temp folder (configs, data, logs)
    FEDQ_REQUIRE_BINARIES=1  fail (not skip) when the binaries are missing
    FEDQ_LOG_LEVEL    written as node.log_level in every config when set
    FEDQ_TIMEOUT_SCALE  multiply every deadline (slow sanitizer builds)

Every process a test starts is tracked, and killed at tearDown and at exit;
no test synchronises by sleeping: it polls a condition with a deadline.
"""

import atexit
import collections
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def _scale():
    try:
        return max(0.1, float(os.environ.get("FEDQ_TIMEOUT_SCALE", "1")))
    except ValueError:
        return 1.0


def build_dir():
    """Absolute path of the build folder under test (env FEDQ_BUILD)."""
    b = os.environ.get("FEDQ_BUILD", "build")
    return b if os.path.isabs(b) else os.path.join(REPO, b)


def node_bin():
    return os.path.join(build_dir(), "node", "fedq-node")


def client_bin():
    return os.path.join(build_dir(), "client", "fedq")


def sanitized_build():
    """True when FEDQ_BUILD looks like a sanitizer build (slower)."""
    b = os.path.basename(os.path.normpath(build_dir()))
    return re.search(r"(a|ub|t|m)san", b) is not None


def scaled(seconds):
    """A deadline in seconds, stretched for sanitizer builds and by
    FEDQ_TIMEOUT_SCALE."""
    return seconds * _scale() * (3 if sanitized_build() else 1)


def child_env(extra=None):
    """Environment for every process the harness starts."""
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS",
                   "detect_leaks=1:abort_on_error=0:print_summary=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    if extra:
        env.update(extra)
    return env


# -- Process tracking ---------------------------------------------------

_procs = set()
_procs_lock = threading.Lock()


def track(proc):
    """Remember proc so kill_all() (tearDown, atexit) can end it."""
    with _procs_lock:
        _procs.add(proc)
    return proc


def untrack(proc):
    with _procs_lock:
        _procs.discard(proc)


def kill_all():
    """SIGKILL every tracked process that is still running, then reap."""
    with _procs_lock:
        procs = list(_procs)
        _procs.clear()
    for p in procs:
        if p.poll() is None:
            try:
                # A stopped process gets SIGKILL too; SIGCONT is harmless.
                p.send_signal(signal.SIGCONT)
                p.kill()
            except ProcessLookupError:
                pass
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


atexit.register(kill_all)


# -- Waiting ------------------------------------------------------------

class WaitTimeout(AssertionError):
    pass


def wait_until(pred, timeout=10.0, interval=0.05, msg=None):
    """Call pred until it returns a truthy value; return that value.

    Raise WaitTimeout (an AssertionError) after `timeout` seconds (stretched
    by scaled()), naming msg and the last value or exception seen."""
    limit = scaled(timeout)
    deadline = time.monotonic() + limit
    last = None
    while True:
        try:
            v = pred()
            last = v
            if v:
                return v
        except Exception as e:  # noqa: BLE001 (report it on timeout)
            last = "%s: %s" % (type(e).__name__, e)
        if time.monotonic() >= deadline:
            raise WaitTimeout("timed out after %.1fs waiting for %s (last: %r)"
                              % (limit, msg or getattr(pred, "__name__",
                                                         "condition"), last))
        time.sleep(interval)
        interval = min(interval * 1.5, 0.5)


# -- Ports --------------------------------------------------------------

_ports_given = set()


def free_port(host="127.0.0.1"):
    """A loopback TCP port that nothing listens on now and that this
    process has not handed out before (bind port 0, read it, close)."""
    for _ in range(100):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((host, 0))
            port = s.getsockname()[1]
        finally:
            s.close()
        if port not in _ports_given:
            _ports_given.add(port)
            return port
    raise RuntimeError("no free loopback port found")


def port_open(host, port, timeout_s=0.5):
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


# -- YAML ---------------------------------------------------------------

_PLAIN = re.compile(r"^[A-Za-z_./][A-Za-z0-9_./-]*$")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "~", "y",
             "n"}


def _scalar(v):
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return repr(v)
    s = str(v)
    if _PLAIN.match(s) and s.lower() not in _RESERVED:
        return s
    # A JSON string is a valid YAML double-quoted scalar.
    return json.dumps(s, ensure_ascii=False)


def to_yaml(value, indent=0):
    """Dump dicts, lists and scalars as block-style YAML (a small emitter:
    enough for fedq configs, no anchors, tags or multi-line strings)."""
    pad = " " * indent
    lines = []
    if isinstance(value, dict):
        if not value:
            return pad + "{}\n"
        for k, v in value.items():
            key = _scalar(k)
            if isinstance(v, (dict, list)) and v:
                lines.append("%s%s:\n%s" % (pad, key, to_yaml(v, indent + 2)))
            elif isinstance(v, dict):
                lines.append("%s%s: {}\n" % (pad, key))
            elif isinstance(v, list):
                lines.append("%s%s: []\n" % (pad, key))
            else:
                lines.append("%s%s: %s\n" % (pad, key, _scalar(v)))
        return "".join(lines)
    if isinstance(value, list):
        if not value:
            return pad + "[]\n"
        for item in value:
            if isinstance(item, (dict, list)) and item:
                inner = to_yaml(item, indent + 2)
                # "- " takes the place of the first line's indentation.
                lines.append("%s- %s" % (pad, inner[indent + 2:]))
            elif isinstance(item, dict):
                lines.append("%s- {}\n" % pad)
            elif isinstance(item, list):
                lines.append("%s- []\n" % pad)
            else:
                lines.append("%s- %s\n" % (pad, _scalar(item)))
        return "".join(lines)
    return pad + _scalar(value) + "\n"


# -- Commands -----------------------------------------------------------

Result = collections.namedtuple("Result", "rc stdout stderr")


class CommandTimeout(AssertionError):
    pass


def run(argv, timeout_s=30.0, input=None, cwd=None, env=None):
    """Run argv, tracked, with a deadline; return Result(rc, stdout,
    stderr) as text. On timeout kill it and raise CommandTimeout with what
    it printed so far."""
    p = track(subprocess.Popen(
        argv, stdin=subprocess.PIPE if input is not None
        else subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, cwd=cwd, env=child_env(env)))
    try:
        out, err = p.communicate(
            input=input.encode() if isinstance(input, str) else input,
            timeout=scaled(timeout_s))
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise CommandTimeout(
            "timed out after %.0fs: %s\n--- stdout (tail)\n%s\n--- stderr "
            "(tail)\n%s" % (scaled(timeout_s), " ".join(argv),
                            _tail_text(out), _tail_text(err)))
    finally:
        untrack(p)
    return Result(p.returncode, out.decode("utf-8", "replace"),
                  err.decode("utf-8", "replace"))


def _tail_text(b, lines=30):
    t = b.decode("utf-8", "replace") if isinstance(b, bytes) else (b or "")
    return "\n".join(t.splitlines()[-lines:])


class Fedq:
    """The `fedq` command pointed at one endpoint."""

    def __init__(self, endpoint, timeout_s=30.0, extra_args=()):
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.extra_args = list(extra_args)

    def argv(self, *args):
        return [client_bin(), "-e", self.endpoint] + self.extra_args + [
            str(a) for a in args]

    def __call__(self, *args, input=None, timeout_s=None):
        """Run `fedq -e ENDPOINT ARGS...`; return Result(rc, out, err)."""
        return run(self.argv(*args), timeout_s=timeout_s or self.timeout_s,
                   input=input)

    def check(self, *args, **kw):
        """Like __call__, but fail unless it exits 0; return stdout."""
        r = self(*args, **kw)
        if r.rc != 0:
            raise AssertionError("fedq %s exited %s\n--- stdout\n%s\n--- "
                                 "stderr\n%s" % (" ".join(map(str, args)),
                                                 r.rc, _tail_text(r.stdout),
                                                 _tail_text(r.stderr)))
        return r.stdout

    def status(self, timeout_s=10.0):
        """`fedq status --json`, parsed."""
        return json.loads(self.check("status", "--json", timeout_s=timeout_s))

    def consume(self, queue, count, *args, timeout_s=60.0):
        """`fedq consume QUEUE --count N --json ARGS`: the parsed lines."""
        out = self.check("consume", queue, "--count", count, "--json",
                         *args, timeout_s=timeout_s)
        return parse_json_lines(out)

    def start(self, *args, stdout_path=None):
        """Start a long-running `fedq ...` (a publisher at --rate, a
        consumer); tracked; stdout and stderr go to stdout_path or are
        discarded. Returns the Popen; stop it with stop_process()."""
        out = open(stdout_path, "ab") if stdout_path else subprocess.DEVNULL
        try:
            return track(subprocess.Popen(
                self.argv(*args), stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, env=child_env()))
        finally:
            if stdout_path:
                out.close()


def parse_json_lines(text):
    """One JSON object per non-empty line; fail naming the bad line."""
    items = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        try:
            items.append(json.loads(line))
        except ValueError as e:
            raise AssertionError("line %d is not JSON (%s): %r"
                                 % (n, e, line[:200]))
    return items


def stop_process(proc, grace_s=10.0, sig=signal.SIGTERM):
    """Send sig, wait up to grace_s, then SIGKILL; return the exit code."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGCONT)
            proc.send_signal(sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=scaled(grace_s))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    untrack(proc)
    return proc.returncode


# -- Nodes --------------------------------------------------------------

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:", "WARNING: ThreadSanitizer")
ADDR_IN_USE = re.compile(r"address already in use|EADDRINUSE", re.I)


class NodeError(AssertionError):
    pass


class Node:
    """One fedq-node process with its own folder (config, data, log).

    Sections (queues, exchanges, bindings, shovels, federated_queues) are
    lists of dicts as in DESIGN.md §5; `node_extra` adds keys under node:.
    The port is picked at construction so that peers can be configured
    with node.endpoint before any node starts."""

    def __init__(self, node_id, root, queues=None, exchanges=None,
                 bindings=None, shovels=None, federated_queues=None,
                 fsync="batch", http=False, node_extra=None, port=None):
        self.id = node_id
        self.dir = os.path.join(root, node_id)
        os.makedirs(self.dir, exist_ok=True)
        self.data_dir = os.path.join(self.dir, "data")
        self.config_path = os.path.join(self.dir, node_id + ".yaml")
        self.log_path = os.path.join(self.dir, "node.log")
        self.port_fixed = port is not None
        self.port = port or free_port()
        self.http_port = free_port() if http else None
        self.fsync = fsync
        self.sections = {
            "exchanges": list(exchanges or []),
            "queues": list(queues or []),
            "bindings": list(bindings or []),
            "shovels": list(shovels or []),
            "federated_queues": list(federated_queues or []),
        }
        self.node_extra = dict(node_extra or {})
        self.proc = None
        self.starts = 0
        self.cli = Fedq(self.endpoint)

    # Addresses
    @property
    def endpoint(self):
        return "tcp://127.0.0.1:%d" % self.port

    @property
    def http_url(self):
        if self.http_port is None:
            return None
        return "http://127.0.0.1:%d" % self.http_port

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def config(self):
        """The config as a dict (what write_config dumps)."""
        node = collections.OrderedDict()
        node["id"] = self.id
        node["data_dir"] = self.data_dir
        node["listen"] = self.endpoint
        if self.http_port is not None:
            node["http"] = "127.0.0.1:%d" % self.http_port
        node["fsync"] = self.fsync
        if os.environ.get("FEDQ_LOG_LEVEL"):
            node["log_level"] = os.environ["FEDQ_LOG_LEVEL"]
        node.update(self.node_extra)
        cfg = collections.OrderedDict(node=node)
        for k, v in self.sections.items():
            if v:
                cfg[k] = v
        return cfg

    def write_config(self):
        self.cli.endpoint = self.endpoint
        with open(self.config_path, "w") as f:
            f.write("#  written by tests/integration/harness.py\n")
            f.write(to_yaml(self.config()))
        return self.config_path

    # Lifecycle
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, wait=True, timeout_s=30.0):
        """Write the config, start the node and (by default) wait until it
        answers `fedq status`. A port taken meanwhile by someone else is
        replaced by a new one, unless the port was fixed or the node has
        already run (peers know its port)."""
        if self.running():
            raise NodeError("node %s is already running (pid %d)"
                            % (self.id, self.pid))
        attempts = 1 if (self.port_fixed or self.starts) else 5
        for attempt in range(attempts):
            self._spawn()
            if not wait:
                return self
            try:
                self.wait_ready(timeout_s)
                return self
            except NodeError:
                if (attempt + 1 < attempts and not self.running()
                        and ADDR_IN_USE.search(self.log_tail(20))):
                    self.port = free_port()
                    if self.http_port is not None:
                        self.http_port = free_port()
                    continue
                raise
        return self

    def _spawn(self):
        if not os.access(node_bin(), os.X_OK):
            raise NodeError("no node binary at %s (build first)"
                            % node_bin())
        self.write_config()
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(("=== harness: start #%d of %s at %s: %s -c %s\n" % (
                self.starts, self.id, time.strftime("%H:%M:%S"), node_bin(),
                self.config_path)).encode())
            log.flush()
            self.proc = track(subprocess.Popen(
                [node_bin(), "-c", self.config_path], cwd=self.dir,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=child_env()))

    def wait_ready(self, timeout_s=30.0):
        """Poll until the node accepts on its port and answers `fedq status
        --json`; NodeError with the log tail if it exits or times out."""
        deadline = time.monotonic() + scaled(timeout_s)
        have_cli = os.access(client_bin(), os.X_OK)
        last = ""
        interval = 0.02
        while time.monotonic() < deadline:
            if not self.running():
                raise NodeError("node %s exited with %s before it was ready"
                                "\n%s" % (self.id, self.proc.returncode,
                                          self.log_tail()))
            if port_open("127.0.0.1", self.port):
                if not have_cli:
                    return True
                try:
                    r = self.cli("status", "--json", timeout_s=5)
                    if r.rc == 0:
                        return True
                    last = "status rc=%s: %s" % (r.rc, r.stderr.strip())
                except CommandTimeout as e:
                    last = str(e).splitlines()[0]
            time.sleep(interval)
            interval = min(interval * 2, 0.25)
        raise NodeError("node %s not ready after %.0fs (%s)\n%s"
                        % (self.id, scaled(timeout_s), last or
                           "port %d never accepted" % self.port,
                           self.log_tail()))

    def stop(self, grace_s=10.0):
        """SIGTERM, wait up to grace_s, then SIGKILL; return the exit code
        (None when it was not running)."""
        if self.proc is None:
            return None
        rc = stop_process(self.proc, grace_s)
        return rc

    def kill9(self):
        """SIGKILL the node (a crash) and reap it."""
        if self.proc is not None:
            return stop_process(self.proc, 10, sig=signal.SIGKILL)
        return None

    def restart(self, wait=True, timeout_s=30.0, kill=False):
        """Stop (or kill -9 with kill=True) and start again on the same port
        and data_dir."""
        if kill:
            self.kill9()
        else:
            self.stop()
        return self.start(wait=wait, timeout_s=timeout_s)

    def sigstop(self):
        """Freeze the node (SIGSTOP): it holds its sockets but answers
        nothing, like a hung peer."""
        os.kill(self.pid, signal.SIGSTOP)

    def sigcont(self):
        os.kill(self.pid, signal.SIGCONT)

    def reload(self):
        """Rewrite the config and send SIGHUP."""
        self.write_config()
        os.kill(self.pid, signal.SIGHUP)

    # Looking inside
    def fedq(self, *args, **kw):
        """`fedq -e THIS-NODE ARGS...` -> Result(rc, stdout, stderr)."""
        return self.cli(*args, **kw)

    def status(self):
        return self.cli.status()

    def queue(self, name):
        """This queue's entry in `status --json`, or None."""
        for q in self.status().get("queues", []):
            if q.get("name") == name:
                return q
        return None

    def depth(self, name):
        q = self.queue(name)
        return None if q is None else q.get("depth")

    def link(self, name):
        """This link's entry in `status --json`, or None."""
        for link in self.status().get("links", []):
            if link.get("name") == name:
                return link
        return None

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines=40):
        text = self.log_text()
        tail = "\n".join(text.splitlines()[-lines:])
        return "--- %s log (%s), last %d lines\n%s\n--- end of %s log" % (
            self.id, self.log_path, lines, tail, self.id)

    def sanitizer_reports(self):
        """Lines of the log where a sanitizer reported an error."""
        return [ln for ln in self.log_text().splitlines()
                if any(m in ln for m in SANITIZER_MARKS)]


# -- Test case ----------------------------------------------------------

def binaries_present():
    return os.access(node_bin(), os.X_OK) and os.access(client_bin(), os.X_OK)


class FedqTestCase(unittest.TestCase):
    """Base class: a temp folder per test, nodes made with self.node(),
    everything stopped at tearDown, logs printed when the test failed,
    sanitizer reports in any node log fail the test."""

    def setUp(self):
        if not binaries_present():
            msg = ("fedq binaries not built: %s, %s (FEDQ_BUILD=%s)"
                   % (node_bin(), client_bin(), build_dir()))
            if os.environ.get("FEDQ_REQUIRE_BINARIES") == "1":
                self.fail(msg)
            self.skipTest(msg)
        self.tmp = tempfile.mkdtemp(prefix="fedq-it-%s-" % self.id().split(
            ".")[-1][:40])
        self.nodes = []

    def node(self, node_id, **kw):
        """A new Node in this test's temp folder (not started)."""
        n = Node(node_id, self.tmp, **kw)
        self.nodes.append(n)
        return n

    def start_node(self, node_id, **kw):
        return self.node(node_id, **kw).start()

    def tearDown(self):
        nodes = getattr(self, "nodes", [])
        for n in nodes:
            try:
                n.stop()
            except Exception as e:  # noqa: BLE001 (keep stopping the rest)
                sys.stderr.write("stopping %s: %s\n" % (n.id, e))
        kill_all()
        reports = []
        for n in nodes:
            for line in n.sanitizer_reports():
                reports.append("%s: %s" % (n.id, line))
        if reports:
            self.fail("sanitizer reports in node logs:\n" + "\n".join(
                reports[:20]))

    def run(self, result=None):
        if result is None:
            result = self.defaultTestResult()
        before = len(result.failures) + len(result.errors)
        try:
            return super().run(result)
        finally:
            failed = len(result.failures) + len(result.errors) > before
            tmp = getattr(self, "tmp", None)
            if failed:
                sys.stdout.flush()
                for n in getattr(self, "nodes", []):
                    sys.stderr.write("\n" + n.log_tail() + "\n")
            if tmp and os.path.isdir(tmp):
                if os.environ.get("FEDQ_KEEP_TMP") == "1":
                    sys.stderr.write("%s: kept %s\n" % (self.id(), tmp))
                else:
                    shutil.rmtree(tmp, ignore_errors=True)
