#!/usr/bin/env python3
"""tests/fault/test_fault_proxy.py — the fault proxy does what each control
command says: plain forwarding (byte for byte, many connections, half
close), delay, blackhole (connections held, not closed), reset (RST),
reject, bandwidth, heal; it does not spin while idle or stalled; and it
forwards fast on loopback (the rate is printed).

    FAULT_PROXY=build/tests/fault/fault_proxy \
    PROXY_BENCH=build/tests/fault/proxy_bench python3 tests/fault/test_fault_proxy.py

Without FAULT_PROXY the binaries are looked for in $FEDQ_BUILD/tests/fault
(default build/). Python standard library only.
"""

import os
import select
import socket
import socketserver
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def _bin(env, name):
    if os.environ.get(env):
        return os.environ[env]
    build = os.environ.get("FEDQ_BUILD", "build")
    if not os.path.isabs(build):
        build = os.path.join(REPO, build)
    return os.path.join(build, "tests", "fault", name)


PROXY = _bin("FAULT_PROXY", "fault_proxy")
BENCH = _bin("PROXY_BENCH", "proxy_bench")
SLOW = 3.0 if "asan" in PROXY else 1.0


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_until(pred, timeout, what):
    deadline = time.monotonic() + timeout * SLOW
    delay = 0.01
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s"
                                 % (timeout * SLOW, what))
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


class EchoServer(socketserver.ThreadingTCPServer):
    """Echo every byte back; count connections; close after the client's
    FIN (half close)."""
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self):
        self.accepted = 0
        self.lock = threading.Lock()

        class Handler(socketserver.BaseRequestHandler):
            def handle(h):
                with self.lock:
                    self.accepted += 1
                try:
                    while True:
                        data = h.request.recv(65536)
                        if not data:
                            break
                        h.request.sendall(data)
                except OSError:
                    pass
        super().__init__(("127.0.0.1", 0), Handler)
        self.port = self.server_address[1]
        self.thread = threading.Thread(target=self.serve_forever,
                                       kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def stop(self):
        self.shutdown()
        self.server_close()


class Proxy:
    def __init__(self, target_port, *extra):
        self.proc = subprocess.Popen(
            [PROXY, "--listen", "127.0.0.1:0", "--target",
             "127.0.0.1:%d" % target_port] + list(extra),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()   # printed once listening
        if not line.startswith("fault_proxy: listen"):
            self.proc.kill()
            raise AssertionError("fault_proxy did not start: %r %s"
                                 % (line, self.proc.stderr.read()))
        words = line.split()
        self.port = int(words[2].rsplit(":", 1)[1])
        self.control = int(words[6].rsplit(":", 1)[1])
        self.ctl_sock = socket.create_connection(("127.0.0.1", self.control),
                                                 timeout=10)
        self.ctl_file = self.ctl_sock.makefile("r")

    def ctl(self, line):
        self.ctl_sock.sendall((line + "\n").encode())
        reply = self.ctl_file.readline().strip()
        return reply

    def ok(self, line):
        reply = self.ctl(line)
        if not reply.startswith("ok"):
            raise AssertionError("%r -> %r" % (line, reply))
        return reply

    def status(self):
        words = self.ok("status").split()[1:]
        return dict(w.split("=", 1) for w in words)

    def cpu_seconds(self):
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf(
            "SC_CLK_TCK")

    def stop(self):
        try:
            self.ctl_sock.close()
        except OSError:
            pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


def recv_exactly(sock, n, timeout):
    sock.settimeout(timeout * SLOW)
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(1 << 20, n - len(buf)))
        if not chunk:
            raise AssertionError("EOF after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return bytes(buf)


def readable(sock, timeout):
    r, _, _ = select.select([sock], [], [], timeout)
    return bool(r)


@unittest.skipUnless(os.access(PROXY, os.X_OK), "no fault_proxy at " + PROXY)
class FaultProxyTest(unittest.TestCase):
    def setUp(self):
        self.echo = EchoServer()
        self.proxy = Proxy(self.echo.port)

    def tearDown(self):
        self.proxy.stop()
        self.echo.stop()

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.proxy.port),
                                     timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def rtt(self, sock, payload=b"ping"):
        t0 = time.monotonic()
        sock.sendall(payload)
        self.assertEqual(recv_exactly(sock, len(payload), 10), payload)
        return time.monotonic() - t0

    def test_forwards_bytes_exactly_both_ways(self):
        data = os.urandom(8 << 20)
        with self.connect() as s:
            got = bytearray()

            def reader():
                got.extend(recv_exactly(s, len(data), 60))
            t = threading.Thread(target=reader)
            t.start()
            s.sendall(data)
            t.join(60 * SLOW)
            self.assertEqual(bytes(got), data)
        st = self.proxy.status()
        self.assertGreaterEqual(int(st["up_bytes"]), len(data))

    def test_half_close_is_passed_on(self):
        with self.connect() as s:
            s.sendall(b"last words")
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(recv_exactly(s, 10, 10), b"last words")
            s.settimeout(10 * SLOW)
            self.assertEqual(s.recv(10), b"", "no EOF after the echo")
        wait_until(lambda: self.proxy.status()["conns"] == "0", 10,
                   "the proxy to drop the finished connection")

    def test_many_connections(self):
        socks = [self.connect() for _ in range(300)]
        try:
            for i, s in enumerate(socks):
                s.sendall(b"conn %05d" % i)
            for i, s in enumerate(socks):
                self.assertEqual(recv_exactly(s, 10, 20), b"conn %05d" % i)
            self.assertEqual(self.proxy.status()["conns"], "300")
        finally:
            for s in socks:
                s.close()
        wait_until(lambda: self.proxy.status()["conns"] == "0", 20,
                   "every connection closed")

    def test_delay_each_direction(self):
        with self.connect() as s:
            base = self.rtt(s)
            self.proxy.ok("delay up 150")
            up = self.rtt(s)
            self.proxy.ok("delay both 150")
            both = self.rtt(s)
            self.proxy.ok("heal")
            healed = self.rtt(s)
        self.assertGreaterEqual(up, 0.150)
        self.assertLess(up, 0.150 + 0.5 * SLOW)
        self.assertGreaterEqual(both, 0.300)
        self.assertLess(both, 0.300 + 0.5 * SLOW)
        self.assertLess(healed, 0.1 * SLOW + base)

    def test_delay_with_jitter_keeps_byte_order(self):
        self.proxy.ok("delay both 20 30")
        with self.connect() as s:
            chunks = [os.urandom(1000) for _ in range(200)]
            for c in chunks:
                s.sendall(c)
            self.assertEqual(recv_exactly(s, 200 * 1000, 30),
                             b"".join(chunks))

    def test_heal_releases_delayed_bytes_at_once(self):
        self.proxy.ok("delay up 60000")
        with self.connect() as s:
            s.sendall(b"held")
            self.assertFalse(readable(s, 0.2))
            self.proxy.ok("heal")
            self.assertEqual(recv_exactly(s, 4, 5), b"held")

    def test_blackhole_stalls_without_closing(self):
        with self.connect() as s:
            self.rtt(s)
            self.proxy.ok("blackhole both")
            s.sendall(b"into the void")
            self.assertFalse(readable(s, 0.5), "bytes crossed a blackhole")
            # A new connection is accepted but not passed on.
            before = self.echo.accepted
            s2 = self.connect()
            self.assertFalse(readable(s2, 0.3))
            self.assertEqual(self.echo.accepted, before)
            self.assertEqual(self.proxy.status()["up_blackhole"], "on")
            self.proxy.ok("heal")
            self.assertEqual(recv_exactly(s, 13, 10), b"into the void")
            self.rtt(s2)
            s2.close()

    def test_blackhole_one_direction(self):
        with self.connect() as s:
            self.rtt(s)
            self.proxy.ok("blackhole down")
            s.sendall(b"one way")
            # The server got it (up flows), the answer is held (down).
            self.assertFalse(readable(s, 0.3))
            self.proxy.ok("blackhole off")
            self.assertEqual(recv_exactly(s, 7, 10), b"one way")

    def test_reset_sends_rst(self):
        with self.connect() as s:
            self.rtt(s)
            self.proxy.ok("reset")
            s.settimeout(10 * SLOW)
            with self.assertRaises(ConnectionResetError):
                s.recv(10)
                s.sendall(b"x")     # in case recv saw EOF first
                s.recv(10)
        st = self.proxy.status()
        self.assertEqual(st["conns"], "0")
        self.assertEqual(st["resets"], "1")
        # New connections work after a reset.
        with self.connect() as s:
            self.rtt(s)

    def test_reject_refuses_new_connections(self):
        self.proxy.ok("reject on")
        # The RST may come during the handshake or at the first read.
        with self.assertRaises((ConnectionResetError, BrokenPipeError)):
            with self.connect() as s:
                s.settimeout(10 * SLOW)
                s.sendall(b"x")
                if s.recv(1) == b"":
                    raise ConnectionResetError("EOF")
        self.assertGreaterEqual(int(self.proxy.status()["refused"]), 1)
        self.proxy.ok("heal")
        with self.connect() as s:
            self.rtt(s)

    def test_bandwidth_limit(self):
        rate = 2_000_000
        self.proxy.ok("bandwidth up %d" % rate)
        data = os.urandom(3 * rate)
        with self.connect() as s:
            got = bytearray()
            t0 = time.monotonic()

            def reader():
                got.extend(recv_exactly(s, len(data), 30))
            t = threading.Thread(target=reader)
            t.start()
            s.sendall(data)
            t.join(30 * SLOW)
            took = time.monotonic() - t0
        self.assertEqual(bytes(got), data)
        self.assertGreater(took, 2.7, "3 s of data at the limit took %.2fs"
                           % took)
        self.assertLess(took, 3.0 + 2.0 * SLOW)

    def test_target_down_resets_client(self):
        port = free_port()      # nothing listens there
        p = Proxy(port)
        try:
            s = socket.create_connection(("127.0.0.1", p.port), timeout=10)
            s.settimeout(10 * SLOW)
            with self.assertRaises(ConnectionResetError):
                if s.recv(1) == b"":
                    raise ConnectionResetError("EOF")
            s.close()
        finally:
            p.stop()

    def test_no_busy_loop_when_idle_or_stalled(self):
        with self.connect() as s:
            self.rtt(s)
            t0 = self.proxy.cpu_seconds()
            end = time.monotonic() + 1.0
            while time.monotonic() < end:
                readable(s, end - time.monotonic())
            idle = self.proxy.cpu_seconds() - t0
            self.proxy.ok("blackhole both")
            s.sendall(b"x" * 100000)
            self.proxy.ok("delay down 100000")
            t0 = self.proxy.cpu_seconds()
            end = time.monotonic() + 1.0
            while time.monotonic() < end:
                readable(s, end - time.monotonic())
            stalled = self.proxy.cpu_seconds() - t0
        self.assertLess(idle, 0.05, "CPU while idle")
        self.assertLess(stalled, 0.05, "CPU while stalled")

    def test_backpressure_without_spinning(self):
        # A target that never reads: the proxy fills its buffers (the
        # pipe of the no-fault path, then the socket) and waits, idle.
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(1)
        p = Proxy(lsock.getsockname()[1])
        try:
            s = socket.create_connection(("127.0.0.1", p.port), timeout=10)
            peer, _ = lsock.accept()
            s.setblocking(False)
            sent = 0
            chunk = b"z" * 65536
            deadline = time.monotonic() + 10 * SLOW
            stalled_since = None
            while time.monotonic() < deadline:
                try:
                    sent += s.send(chunk)
                    stalled_since = None
                except BlockingIOError:
                    stalled_since = stalled_since or time.monotonic()
                    if time.monotonic() - stalled_since > 0.5:
                        break
                    select.select([], [s], [], 0.1)
            self.assertIsNotNone(stalled_since, "the sender never blocked")
            t0 = p.cpu_seconds()
            end = time.monotonic() + 1.0
            while time.monotonic() < end:
                time.sleep(end - time.monotonic())
            self.assertLess(p.cpu_seconds() - t0, 0.05, "CPU while stalled")
            # And it all arrives once the target reads.
            peer.settimeout(10 * SLOW)
            got = 0
            s.close()
            while True:
                b = peer.recv(1 << 20)
                if not b:
                    break
                got += len(b)
            self.assertEqual(got, sent)
            peer.close()
        finally:
            lsock.close()
            p.stop()

    def test_bad_commands_get_errors(self):
        for line in ("delay sideways 10", "bandwidth up -5", "blackhole",
                     "frobnicate", "delay up"):
            self.assertTrue(self.proxy.ctl(line).startswith("err"), line)
        self.assertTrue(self.proxy.ctl("status").startswith("ok"))

    def test_send_client(self):
        r = subprocess.run([PROXY, "--send", "127.0.0.1:%d"
                            % self.proxy.control, "delay", "both", "5"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0, r)
        self.assertEqual(self.proxy.status()["down_delay_ms"], "5")
        r = subprocess.run([PROXY, "--send", "127.0.0.1:%d"
                            % self.proxy.control, "nonsense"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 1, r)


@unittest.skipUnless(os.access(PROXY, os.X_OK) and os.access(BENCH, os.X_OK),
                     "no fault_proxy / proxy_bench")
class ThroughputTest(unittest.TestCase):
    def bench(self, connect_port, sink_port, nbytes, conns=1):
        r = subprocess.run([BENCH, "--sink", "127.0.0.1:%d" % sink_port,
                            "--connect", "127.0.0.1:%d" % connect_port,
                            "--bytes", str(nbytes), "--conns", str(conns)],
                           capture_output=True, text=True,
                           timeout=120 * SLOW)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return float(r.stdout.split("gbytes_per_s=")[1].split()[0])

    def test_throughput(self):
        nbytes = int(os.environ.get("PROXY_BENCH_BYTES", 2 << 30))
        sink = free_port()
        direct = self.bench(sink, sink, nbytes)
        p = Proxy(sink)
        try:
            proxied = self.bench(p.port, sink, nbytes)
            proxied4 = self.bench(p.port, sink, nbytes, conns=4)
        finally:
            p.stop()
        sys.stderr.write("\nfault_proxy throughput: loopback %.2f GB/s, "
                         "through the proxy %.2f GB/s (1 connection), "
                         "%.2f GB/s (4)\n" % (direct, proxied, proxied4))
        # A floor for any build (sanitizers included); the release build
        # on the CI machine does >1 GB/s (docs/operations.md).
        self.assertGreater(proxied, 0.1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
