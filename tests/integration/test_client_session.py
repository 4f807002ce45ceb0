"""tests/integration/test_client_session.py — a libfedq consumer whose node
restarts under it (kill -9): the client opens a new session by itself,
consumes again, gets every unacked message again under new delivery tags,
refuses to settle the ended session's tags (the node has those messages
back), and nothing is lost or left behind."""

import os
import queue
import subprocess
import threading
import unittest

import harness


def resume_bin():
    return os.path.join(harness.build_dir(), "tests", "fedq_resume")


class Driver:
    """fedq_resume (tests/tools/fedq_resume.c) driven line by line."""

    def __init__(self, endpoint, queue_name, prefetch):
        self.proc = harness.track(subprocess.Popen(
            [resume_bin(), endpoint, queue_name, str(prefetch)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, env=harness.child_env(), text=True))
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def line(self, timeout=60):
        try:
            line = self.lines.get(timeout=harness.scaled(timeout))
        except queue.Empty:
            raise AssertionError("fedq_resume said nothing for %ss" % timeout)
        if line is None:
            raise AssertionError("fedq_resume exited (%s)" % self.proc.poll())
        return line

    def send(self, command):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def recv(self, n):
        """[(id, dtag, redelivered)] of n deliveries."""
        self.send("recv %d" % n)
        got = []
        for _ in range(n):
            line = self.line()
            if not line.startswith("got "):
                raise AssertionError("expected a delivery, got %r" % line)
            ident, dtag, red = line[4:].split(" ")
            got.append((ident, int(dtag.split("=")[1]),
                        red.split("=")[1] == "1"))
        return got

    def ack(self, n):
        """{dtag: result name} for the n held deliveries."""
        self.send("ack")
        out = {}
        for _ in range(n):
            _, dtag, name = self.line().split(" ")
            out[int(dtag)] = name
        return out

    def stats(self):
        self.send("stats")
        words = self.line().split(" ")[1:]
        return {k: int(v) for k, v in (w.split("=") for w in words)}

    def quit(self):
        """Ask it to close its session; its exit code."""
        self.send("quit")
        self.proc.stdin.close()
        try:
            return self.proc.wait(timeout=harness.scaled(30))
        finally:
            harness.stop_process(self.proc)


class ClientSessionTest(harness.FedqTestCase):

    def test_consumer_survives_node_restart(self):
        if not os.path.exists(resume_bin()):
            self.skipTest("tests/fedq_resume not built")
        node = self.start_node("resume")
        node.cli.check("declare", "queue", "work", "--durable")
        node.cli.check("publish", "", "work", "--count", 6, "--size", 32)
        drv = Driver(node.endpoint, "work", 10)
        self.assertEqual(drv.line(), "ready")

        first = drv.recv(3)
        self.assertEqual(set(drv.ack(3).values()), {"OK"})
        held = drv.recv(3)          # delivered, never acked
        old_ids = [i for i, _, _ in held]
        old_tags = [t for _, t, _ in held]
        self.assertEqual(len(set(old_ids + [i for i, _, _ in first])), 6)
        harness.wait_until(lambda: node.depth("work") == 3, timeout=10,
                           msg="the first three acked")

        node.kill9()
        node.start()
        node.cli.check("publish", "", "work", "--count", 2, "--size", 32)

        # The client notices by itself (heartbeat answered ESESSION),
        # consumes again and gets the three unacked ones back, then the
        # two new ones, under tags above every tag of the old session.
        again = drv.recv(5)
        ids = [i for i, _, _ in again]
        self.assertEqual(ids[:3], old_ids, "unacked messages not given again "
                         "in order after the restart")
        self.assertEqual(len(set(ids)), 5)
        self.assertGreater(min(t for _, t, _ in again), max(old_tags),
                           "a new session's tag collides with an old one")

        # Old tags are refused locally (the node has those back), the new
        # ones settle, and the queue ends empty.
        results = drv.ack(8)
        for t in old_tags:
            self.assertEqual(results[t], "ESESSION", results)
        for _, t, _ in again:
            self.assertEqual(results[t], "OK", results)
        harness.wait_until(lambda: node.depth("work") == 0, timeout=10,
                           msg="every message acked on the new session")
        st = drv.stats()
        self.assertEqual(st["reopens"], 1, st)
        self.assertEqual(st["stale"], 3, st)
        self.assertEqual(drv.quit(), 0)
        self.assertEqual(node.depth("work"), 0)


if __name__ == "__main__":
    unittest.main()
