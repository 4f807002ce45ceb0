"""tests/integration/test_security.py — authenticated, encrypted links and
hostile input (DESIGN.md §4 "Security", docs/config.md "Authorized keys",
docs/operations.md "Security").

Every node here that uses CURVE gets its own key pair and authorized-keys
directory, made with `fedq keygen` in the test's temp folder. The matrix:

    refused, each asserting 0 messages accepted and the node still up:
      no key (plain client), unknown key, wrong server key, client-role
      key doing LINK_HELLO and FED_HELLO, peer key for the wrong link, for
      the wrong federated queue, for another node's id, a key revoked by
      deleting its file and SIGHUP (new connections and the open
      session), a shovel whose server_key names the wrong node, a shovel
      whose key is revoked while it runs;
    accepted: client publish + consume, shovel end to end, federation,
      a replayed LINK_HELLO (same connection and a second one: still
      exactly once), shovel digests end to end;
    start-up: secret file mode 0644, missing secret file, authorized_keys
      not a directory, a secret file that is no key, links without
      server_key (all exit 2, or 1 for the bad key content, with a clear
      message); a public listen address without security (config error)
      and with insecure: true (starts, warns; run in a private network
      namespace so nothing listens beyond this machine);
    HTTP: TLS with a self-signed certificate, plain HTTP without one;
    --dump-config redaction; a digest mismatch sent as a raw frame.
"""

import hashlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import time
import unittest
import urllib.request

import harness
import hostile

LINK_HELLO, LINK_MSG = 40, 42
FED_HELLO = 60


def run_raw(argv, timeout_s=60):
    r = harness.run(argv, timeout_s=timeout_s)
    return hostile.RawResult(r.rc, r.stdout, r.stderr)


def text_of(reply):
    """A reply's text as the node sent it (fedq_raw escapes quotes)."""
    return reply.get("text", "").replace('\\"', '"')


def edit(path, old, new):
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text.replace(old, new))


class Keys:
    """Key pairs made by `fedq keygen` in one folder."""

    def __init__(self, root):
        self.dir = os.path.join(root, "keys")
        os.makedirs(self.dir, exist_ok=True)

    def make(self, name, role="peer", **meta):
        """NAME.key and NAME.pub, with metadata lines added (links,
        queues, node); returns (key path, pub path)."""
        r = harness.run([harness.client_bin(), "keygen",
                         os.path.join(self.dir, name)] +
                        (["--role", role] if role else []))
        if r.rc != 0:
            raise AssertionError("keygen %s: %s" % (name, r.stderr))
        key, pub = self.key(name), self.pub(name)
        if meta:
            self.add_meta(pub, **meta)
        return key, pub

    def key(self, name):
        return os.path.join(self.dir, name + ".key")

    def pub(self, name):
        return os.path.join(self.dir, name + ".pub")

    @staticmethod
    def add_meta(path, **meta):
        """Add `    k = "v"` lines under the metadata section."""
        with open(path) as f:
            text = f.read()
        lines = "".join('    %s = "%s"\n' % (k, v) for k, v in meta.items())
        text = text.replace("metadata\n", "metadata\n" + lines, 1)
        with open(path, "w") as f:
            f.write(text)


class SecurityTest(harness.FedqTestCase):

    def setUp(self):
        super().setUp()
        self.keys = Keys(self.tmp)
        self.keys.make("admin", role="client")

    # -- Helpers ----------------------------------------------------------

    def authorized(self, node_id, *names):
        """The authorized-keys folder of node_id holding NAME.pub of each
        name (copies)."""
        d = os.path.join(self.tmp, "authorized-" + node_id)
        os.makedirs(d, exist_ok=True)
        for n in names:
            shutil.copy(self.keys.pub(n), os.path.join(d, n + ".pub"))
        return d

    def secure_node(self, node_id, allow=(), **kw):
        """A node with CURVE: its own key pair, and `admin` plus `allow`
        in its authorized keys. Its fedq (node.cli) uses the admin key."""
        if not os.path.exists(self.keys.key(node_id)):
            self.keys.make(node_id, role="peer")
        extra = kw.pop("node_extra", {})
        extra["security"] = {
            "secret_key": self.keys.key(node_id),
            "authorized_keys": self.authorized(node_id, "admin", *allow)}
        n = self.node(node_id, node_extra=extra, **kw)
        n.cli.extra_args = ["--key", self.keys.key("admin"),
                            "--server-key", self.keys.pub(node_id)]
        return n

    def client(self, node, key_name=None, server=None, timeout_ms=1500):
        """fedq pointed at node with key_name's key (None: no key) and
        server's public key (default: the node's own)."""
        args = ["--timeout", str(timeout_ms)]
        if key_name:
            args = ["--key", self.keys.key(key_name), "--server-key",
                    self.keys.pub(server or node.id)] + args
        return harness.Fedq(node.endpoint, timeout_s=30, extra_args=args)

    def raw(self, node, key_name, server=None):
        """fedq_raw argv prefix over CURVE as key_name."""
        return hostile.Raw(node.endpoint, self.tmp), [
            "--key", self.keys.key(key_name), "--server-key",
            self.keys.pub(server or node.id)]

    def raw_send(self, node, key_name, messages, **kw):
        raw, keyargs = self.raw(node, key_name)
        argv = raw.argv(messages, **kw)
        argv[1:1] = keyargs
        return run_raw(argv)

    def stats(self, node):
        return node.status()["node"]["stats"]

    def refused(self, node):
        return self.stats(node)["auth_refused_total"]

    def assert_up_and_empty(self, node, queue, published=0):
        """The node answers, queue holds nothing, nothing was published."""
        self.assertTrue(node.running(), node.log_tail())
        self.assertEqual(node.depth(queue), 0)
        self.assertEqual(self.stats(node)["published_total"], published)

    def start_expect_exit(self, node, code, timeout_s=20):
        """Start node and expect it to exit with code; its log text."""
        node.start(wait=False)
        try:
            node.proc.wait(timeout=harness.scaled(timeout_s))
        except subprocess.TimeoutExpired:
            self.fail("node %s did not exit\n%s" % (node.id,
                                                    node.log_tail()))
        harness.untrack(node.proc)
        self.assertEqual(node.proc.returncode, code, node.log_tail())
        return node.log_text()

    def shovel_pair(self, a_id, b_id, verify_digest=False, a_allow=(),
                    b_allow=None, server_key=None, **shovel_extra):
        """b (destination, queue inbox) and a (source outbox, shovel
        a_id-to-b_id into b's inbox over CURVE). Not started."""
        self.keys.make(a_id, role="peer")
        self.keys.make(b_id, role="peer")
        b = self.secure_node(b_id, allow=(a_id,) if b_allow is None
                             else b_allow, queues=[{"name": "inbox"}])
        sh = {"name": a_id + "-to-" + b_id,
              "source": {"queue": "outbox"},
              "destination": {"endpoint": b.endpoint, "queue": "inbox",
                              "server_key": server_key or
                              self.keys.pub(b_id)},
              "reconnect_delay": "100ms", "max_reconnect_delay": "1s"}
        if verify_digest:
            sh["verify_digest"] = True
        sh.update(shovel_extra)
        a = self.secure_node(a_id, allow=a_allow,
                             queues=[{"name": "outbox"}], shovels=[sh])
        return a, b, sh["name"]

    @staticmethod
    def link_hello(link, node, epoch=1, rid=1):
        return hostile.frame(LINK_HELLO, rid=rid, link=link, epoch=epoch,
                             node=node)

    @staticmethod
    def link_msg(link, seq, body, epoch=1, queue="inbox", sha256=None):
        f = {"link": link, "epoch": epoch, "seq": seq, "ex": "",
             "key": queue}
        if sha256 is not None:
            f["sha256"] = sha256
        return [hostile.frame(LINK_MSG, **f), hostile.mp({}), body]

    # -- Refused: nothing accepted, node up ----------------------------------

    def test_no_key_plain_client_times_out(self):
        a = self.secure_node("plain", queues=[{"name": "q"}]).start()
        r = self.client(a)("publish", "", "q", "hello")
        self.assertEqual(r.rc, 1, r)
        self.assertIn("ETIMEOUT", r.stderr, r)
        self.assert_up_and_empty(a, "q")

    def test_unknown_key_refused_at_handshake(self):
        a = self.secure_node("unk", queues=[{"name": "q"}]).start()
        self.keys.make("mallory", role="client")     # not authorized
        r = self.client(a, "mallory")("publish", "", "q", "hello")
        self.assertEqual(r.rc, 1, r)
        self.assert_up_and_empty(a, "q")
        harness.wait_until(lambda: self.refused(a) >= 1,
                           msg="handshake refusal counted")
        self.assertEqual(self.stats(a)["published_total"], 0)
        self.assertIn("key not authorized", a.log_text())
        self.assertEqual(a.status()["node"]["security"]["curve"], True)

    def test_wrong_server_key(self):
        a = self.secure_node("srv", queues=[{"name": "q"}]).start()
        self.keys.make("alice", role="client")
        self.keys.make("impostor", role="peer")
        shutil.copy(self.keys.pub("alice"),
                    os.path.join(self.tmp, "authorized-srv", "alice.pub"))
        os.kill(a.pid, signal.SIGHUP)
        harness.wait_until(
            lambda: a.status()["node"]["security"]["authorized_keys"] == 2)
        r = self.client(a, "alice", server="impostor")("publish", "", "q",
                                                       "hello")
        self.assertEqual(r.rc, 1, r)
        self.assertIn("ETIMEOUT", r.stderr, r)
        self.assert_up_and_empty(a, "q")
        # The same key with the right server key gets in.
        self.client(a, "alice").check("publish", "", "q", "hello")
        harness.wait_until(lambda: a.depth("q") == 1)

    def test_client_role_cannot_link_hello(self):
        self.keys.make("alice", role="client")
        b = self.secure_node("dst", allow=("alice",),
                             queues=[{"name": "inbox"}]).start()
        before = self.refused(b)
        r = self.raw_send(b, "alice", [
            [self.link_hello("l1", "alice")],
            self.link_msg("l1", 1, b"forged"),
            self.link_msg("l1", 2, b"forged")], idle_ms=1500)
        errs = [x for x in r.replies if x.get("cmd_name") == "ERROR"]
        self.assertTrue(errs, r)
        self.assertEqual(errs[0]["code_name"], "EDENIED", r)
        self.assertIn("role client", text_of(errs[0]), r)
        self.assertFalse([x for x in r.replies
                          if x.get("cmd_name", "").startswith("LINK_")], r)
        self.assert_up_and_empty(b, "inbox")
        self.assertGreaterEqual(self.refused(b), before + 1)

    def test_client_role_cannot_fed_hello(self):
        self.keys.make("alice", role="client")
        b = self.secure_node("fdst", allow=("alice",), federated_queues=[
            {"name": "audit", "peers": []}]).start()
        r = self.raw_send(b, "alice", [[hostile.frame(
            FED_HELLO, q="audit", epoch=1, node="alice",
            json="{}")]], idle_ms=1000)
        errs = [x for x in r.replies if x.get("cmd_name") == "ERROR"]
        self.assertTrue(errs and errs[0]["code_name"] == "EDENIED", r)
        self.assertNotIn("FED_HELLO",
                         [x.get("cmd_name") for x in r.replies], r)
        self.assert_up_and_empty(b, "audit")
        self.assertGreaterEqual(self.refused(b), 1)

    def test_peer_key_wrong_link(self):
        self.keys.make("syd", role="peer", links="outbox-to-dst")
        b = self.secure_node("dst", allow=("syd",),
                             queues=[{"name": "inbox"}]).start()
        r = self.raw_send(b, "syd", [
            [self.link_hello("other-link", "syd")],
            self.link_msg("other-link", 1, b"x")], idle_ms=1000)
        errs = [x for x in r.replies if x.get("cmd_name") == "ERROR"]
        self.assertTrue(errs and errs[0]["code_name"] == "EDENIED", r)
        self.assertIn('may not open link "other-link"', text_of(errs[0]))
        self.assertIn("outbox-to-dst", text_of(errs[0]))
        self.assert_up_and_empty(b, "inbox")
        # The link it is bound to is welcome.
        r = self.raw_send(b, "syd", [
            [self.link_hello("outbox-to-dst", "syd")],
            self.link_msg("outbox-to-dst", 1, b"ok")], idle_ms=1000)
        names = [x.get("cmd_name") for x in r.replies]
        self.assertIn("LINK_WELCOME", names, r)
        harness.wait_until(lambda: b.depth("inbox") == 1)

    def test_peer_key_wrong_queue(self):
        self.keys.make("syd", role="peer", queues="audit")
        b = self.secure_node("fq", allow=("syd",), federated_queues=[
            {"name": "audit", "peers": []},
            {"name": "secret", "peers": []}]).start()
        r = self.raw_send(b, "syd", [[hostile.frame(
            FED_HELLO, q="secret", epoch=1, node="syd", json="{}")]],
            idle_ms=1000)
        errs = [x for x in r.replies if x.get("cmd_name") == "ERROR"]
        self.assertTrue(errs and errs[0]["code_name"] == "EDENIED", r)
        self.assertIn('may not federate queue "secret"', text_of(errs[0]))
        self.assert_up_and_empty(b, "secret")
        # Its own queue is fine.
        r = self.raw_send(b, "syd", [[hostile.frame(
            FED_HELLO, q="audit", epoch=1, node="syd", json="{}")]],
            idle_ms=1000)
        self.assertIn("FED_HELLO", [x.get("cmd_name") for x in r.replies],
                      r)

    def test_peer_key_cannot_speak_for_another_node(self):
        self.keys.make("syd", role="peer")
        b = self.secure_node("dst", allow=("syd",),
                             queues=[{"name": "inbox"}]).start()
        r = self.raw_send(b, "syd", [
            [self.link_hello("l", "perth")],
            self.link_msg("l", 1, b"x")], idle_ms=1000)
        errs = [x for x in r.replies if x.get("cmd_name") == "ERROR"]
        self.assertTrue(errs and errs[0]["code_name"] == "EDENIED", r)
        self.assertIn('speaks for node "syd", not "perth"', text_of(errs[0]))
        self.assert_up_and_empty(b, "inbox")

    def test_revoked_key_refused_after_sighup(self):
        self.keys.make("alice", role="client")
        a = self.secure_node("rev", allow=("alice",),
                             queues=[{"name": "q"}]).start()
        alice = self.client(a, "alice")
        alice.check("publish", "", "q", "--count", 3)
        harness.wait_until(lambda: a.depth("q") == 3)
        # Alice holds one delivery unacked on an open session.
        raw, keyargs = self.raw(a, "alice")
        argv = raw.argv([[hostile.hello()], [hostile.consume(
            "q", prefetch=1)]], hold=True, ping_ms=200)
        argv[1:1] = keyargs
        out = os.path.join(self.tmp, "held.out")
        with open(out, "wb") as f:
            held = harness.track(subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=f,
                stderr=subprocess.STDOUT, env=harness.child_env()))
        harness.wait_until(lambda: a.queue("q")["unacked"] == 1,
                           msg="alice holds one")
        os.unlink(os.path.join(self.tmp, "authorized-rev", "alice.pub"))
        os.kill(a.pid, signal.SIGHUP)
        # Her session ends: what she held is back, ready.
        harness.wait_until(lambda: a.queue("q")["unacked"] == 0,
                           msg="revoked session ended")
        self.assertEqual(a.depth("q"), 3)
        self.assertIn("key=alice ended: the key was removed", a.log_text())
        # New connections are refused at the handshake.
        r = alice("publish", "", "q", "more")
        self.assertEqual(r.rc, 1, r)
        self.assertEqual(a.depth("q"), 3)
        self.assertEqual(self.stats(a)["published_total"], 3)
        hostile.stop_hold(held)
        self.assertTrue(a.running())

    def test_revoked_peer_stops_a_running_shovel(self):
        a, b, name = self.shovel_pair("ra", "rb")
        b.start()
        a.start()
        a.cli.check("publish", "", "outbox", "--count", 5)
        harness.wait_until(lambda: b.depth("inbox") == 5)
        os.unlink(os.path.join(self.tmp, "authorized-rb", "ra.pub"))
        os.kill(b.pid, signal.SIGHUP)
        harness.wait_until(lambda: "key=ra ended" in b.log_text(),
                           msg="the link session ended")
        a.cli.check("publish", "", "outbox", "--count", 5)
        harness.wait_until(
            lambda: a.link(name)["state"] in ("reconnecting", "starting"),
            timeout=20, msg="link down")
        self.assertEqual(b.depth("inbox"), 5)
        self.assertEqual(a.depth("outbox"), 5)
        # Put the key back: the backlog crosses, exactly once.
        shutil.copy(self.keys.pub("ra"),
                    os.path.join(self.tmp, "authorized-rb", "ra.pub"))
        os.kill(b.pid, signal.SIGHUP)
        harness.wait_until(lambda: b.depth("inbox") == 10, timeout=30)
        harness.wait_until(lambda: a.depth("outbox") == 0)
        self.assertEqual(b.depth("inbox"), 10)

    def test_shovel_with_wrong_server_key_forwards_nothing(self):
        self.keys.make("other", role="peer")
        a, b, name = self.shovel_pair("wa", "wb",
                                      server_key=self.keys.pub("other"))
        b.start()
        a.start()
        a.cli.check("publish", "", "outbox", "--count", 4)
        self.assertRaises(harness.WaitTimeout, harness.wait_until,
                          lambda: a.link(name)["state"] == "running",
                          timeout=3)
        self.assertEqual(a.depth("outbox"), 4)
        self.assert_up_and_empty(b, "inbox")

    # -- Accepted -----------------------------------------------------------

    def test_valid_client_publishes_and_consumes(self):
        self.keys.make("alice", role="client")
        a = self.secure_node("ok", allow=("alice",),
                             queues=[{"name": "q"}]).start()
        alice = self.client(a, "alice", timeout_ms=5000)
        alice.check("publish", "", "q", "--count", 10, "--id", "m")
        got = alice.consume("q", 10)
        self.assertEqual(len(got), 10)
        self.assertEqual(a.depth("q"), 0)
        self.assertEqual(self.refused(a), 0)

    def test_shovel_over_curve_end_to_end(self):
        a, b, name = self.shovel_pair("sa", "sb")
        b.start()
        a.start()
        a.cli.check("publish", "", "outbox", "--count", 200, "--id", "m")
        got = b.cli.consume("inbox", 200)
        self.assertEqual(len(got), 200)
        self.assertEqual(len({m["id"] for m in got}), 200)
        harness.wait_until(lambda: a.link(name)["confirmed_total"] == 200)
        ln = a.link(name)
        self.assertEqual(ln["state"], "running", ln)
        self.assertEqual(ln["peer"], "sb", ln)
        self.assertEqual(self.refused(b), 0)

    def test_federation_over_curve(self):
        self.keys.make("fa", role="peer", queues="audit")
        self.keys.make("fb", role="peer", queues="audit")
        b_port, a_port = harness.free_port(), harness.free_port()

        def fed(peer, port):
            return [{"name": "audit", "peers": [{
                "id": peer, "endpoint": "tcp://127.0.0.1:%d" % port,
                "server_key": self.keys.pub(peer)}]}]
        a = self.secure_node("fa", allow=("fb",), port=a_port,
                             federated_queues=fed("fb", b_port))
        b = self.secure_node("fb", allow=("fa",), port=b_port,
                             federated_queues=fed("fa", a_port))
        a.start()
        b.start()
        a.cli.check("publish", "", "audit", "--count", 20, "--id", "a")
        b.cli.check("publish", "", "audit", "--count", 30, "--id", "b")
        harness.wait_until(lambda: a.depth("audit") == 50
                           and b.depth("audit") == 50, timeout=30)
        for n in (a, b):
            def running(n=n):
                links = [ln for ln in n.status()["links"]
                         if ln["kind"] == "federation"]
                return links and all(ln["state"] == "running"
                                     for ln in links)
            harness.wait_until(running, msg="%s's link running" % n.id)
            self.assertEqual(self.refused(n), 0)

    def test_replayed_link_hello_stays_exactly_once(self):
        self.keys.make("rp", role="peer")
        b = self.secure_node("rdst", allow=("rp",),
                             queues=[{"name": "inbox"}]).start()
        # Same connection: HELLO twice, message 1 twice.
        r = self.raw_send(b, "rp", [
            [self.link_hello("l", "rp", epoch=7)],
            [self.link_hello("l", "rp", epoch=7, rid=2)],
            self.link_msg("l", 1, b"one", epoch=7),
            self.link_msg("l", 1, b"one", epoch=7)], idle_ms=1000)
        welcomes = [x for x in r.replies if x.get("cmd_name") ==
                    "LINK_WELCOME"]
        self.assertEqual(len(welcomes), 2, r)
        harness.wait_until(lambda: b.depth("inbox") == 1)
        # A second connection replays the hello and message 1, then 2.
        r = self.raw_send(b, "rp", [
            [self.link_hello("l", "rp", epoch=7)],
            self.link_msg("l", 1, b"one", epoch=7),
            self.link_msg("l", 2, b"two", epoch=7)], idle_ms=1000)
        welcome = [x for x in r.replies
                   if x.get("cmd_name") == "LINK_WELCOME"][0]
        self.assertEqual(welcome["upto"], 1, r)
        confirms = [x["upto"] for x in r.replies
                    if x.get("cmd_name") == "LINK_CONFIRM"]
        self.assertEqual(max(confirms), 2, r)
        harness.wait_until(lambda: b.depth("inbox") == 2)
        got = b.cli.consume("inbox", 2)
        self.assertEqual([m["body"] for m in got], ["one", "two"])
        self.assertGreaterEqual(
            b.queue("inbox")["published_total"], 2)
        self.assertEqual(self.stats(b)["published_total"], 2)

    def test_digest_verified_end_to_end(self):
        a, b, name = self.shovel_pair("da", "db", verify_digest=True)
        b.start()
        a.start()
        bodies = ["digest body %d" % i for i in range(5)]
        for body in bodies:
            a.cli.check("publish", "", "outbox", body)
        got = b.cli.consume("inbox", 5)
        self.assertEqual([m["body"] for m in got], bodies)
        for m in got:
            self.assertEqual(
                m["headers"].get("x-fedq-sha256"),
                hashlib.sha256(m["body"].encode()).hexdigest(), m)
        self.assertEqual(self.stats(b)["digest_mismatch_total"], 0)

    def test_digest_mismatch_dead_lettered_at_source(self):
        # A body cannot be changed on a CURVE wire; a publisher's wrong
        # x-fedq-sha256 header makes the same refusal end to end.
        a, b, name = self.shovel_pair("xa", "xb", verify_digest=True,
                                      max_attempts=2)
        b.start()
        a.start()
        a.cli.check("publish", "", "outbox", "payload", "--header",
                    "x-fedq-sha256=" + "0" * 64)
        harness.wait_until(lambda: a.depth(name + ".dlq") == 1, timeout=30,
                           msg="dead-lettered at the source")
        self.assertEqual(b.depth("inbox"), 0)
        self.assertEqual(self.stats(b)["published_total"], 0)
        self.assertGreaterEqual(self.stats(b)["digest_mismatch_total"], 2)
        self.assertEqual(a.link(name)["dead_lettered_total"], 1)
        # The link goes on: a good message crosses.
        a.cli.check("publish", "", "outbox", "fine")
        got = b.cli.consume("inbox", 1)
        self.assertEqual(got[0]["body"], "fine")

    def test_digest_mismatch_refused(self):
        self.keys.make("dm", role="peer")
        b = self.secure_node("dmd", allow=("dm",),
                             queues=[{"name": "inbox"}]).start()
        good = hashlib.sha256(b"good").hexdigest()
        r = self.raw_send(b, "dm", [
            [self.link_hello("l", "dm")],
            self.link_msg("l", 1, b"tampered", sha256=good)], idle_ms=1000)
        rejects = [x for x in r.replies if x.get("cmd_name") ==
                   "LINK_REJECT"]
        self.assertTrue(rejects, r)
        self.assertEqual(rejects[0]["code_name"], "EPROTO", r)
        self.assertIn("digest mismatch", text_of(rejects[0]), r)
        self.assert_up_and_empty(b, "inbox")
        self.assertEqual(self.stats(b)["digest_mismatch_total"], 1)
        # The right digest for the same body is stored.
        r = self.raw_send(b, "dm", [
            [self.link_hello("l", "dm", epoch=2)],
            self.link_msg("l", 1, b"good", epoch=2, sha256=good)],
            idle_ms=1000)
        harness.wait_until(lambda: b.depth("inbox") == 1)

    # -- Start-up checks ------------------------------------------------------

    def test_secret_key_mode_0644_refused(self):
        a = self.secure_node("m644", queues=[{"name": "q"}])
        os.chmod(self.keys.key("m644"), 0o644)
        log = self.start_expect_exit(a, 2)
        self.assertIn("can be read by group or others (mode 0644)", log)
        self.assertIn("chmod 600", log)

    def test_missing_secret_file(self):
        a = self.secure_node("miss", queues=[{"name": "q"}])
        os.unlink(self.keys.key("miss"))
        log = self.start_expect_exit(a, 2)
        self.assertIn("node.security.secret_key: cannot open", log)
        self.assertIn("No such file or directory", log)

    def test_authorized_keys_not_a_directory(self):
        a = self.secure_node("nodir", queues=[{"name": "q"}])
        a.node_extra["security"]["authorized_keys"] = self.keys.pub("admin")
        log = self.start_expect_exit(a, 2)
        self.assertIn("is not a directory; expected a directory of NAME.pub",
                      log)

    def test_secret_file_that_is_no_key(self):
        a = self.secure_node("junk", queues=[{"name": "q"}])
        # The public half where the secret belongs.
        path = self.keys.key("junk")
        shutil.copy(self.keys.pub("junk"), path)
        os.chmod(path, 0o600)
        log = self.start_expect_exit(a, 1)
        self.assertIn("holds no secret key", log)
        self.assertNotIn("secret-key", log)

    def test_links_need_server_key_with_curve(self):
        a, b, name = self.shovel_pair("na", "nb")
        del a.sections["shovels"][0]["destination"]["server_key"]
        log = self.start_expect_exit(a, 2)
        self.assertIn("shovels[0].destination: server_key is required", log)

    def test_public_listen_without_security_is_a_config_error(self):
        a = self.node("pub", queues=[{"name": "q"}])
        a.port = harness.free_port()
        path = a.write_config()
        edit(path, "tcp://127.0.0.1:", "tcp://0.0.0.0:")
        r = harness.run([harness.node_bin(), "--check", "-c", path])
        self.assertEqual(r.rc, 2, r)
        self.assertIn("is reachable beyond this machine without CURVE",
                      r.stderr)
        self.assertIn("insecure: true", r.stderr)

    def test_public_listen_insecure_starts_with_warning(self):
        if not shutil.which("unshare") or not shutil.which("ip"):
            self.skipTest("needs unshare and ip (a private network "
                          "namespace, so nothing listens beyond this host)")
        probe = subprocess.run(["unshare", "--net", "true"],
                               capture_output=True)
        if probe.returncode != 0:
            self.skipTest("cannot make a network namespace: %s"
                          % probe.stderr.decode().strip())
        a = self.node("insec", queues=[{"name": "q"}],
                      node_extra={"security": {"insecure": True}})
        path = a.write_config()
        edit(path, "tcp://127.0.0.1:", "tcp://0.0.0.0:")
        with open(a.log_path, "ab") as log:
            p = harness.track(subprocess.Popen(
                ["unshare", "--net", "sh", "-c",
                 'ip link set lo up && exec "$0" -c "$1"',
                 harness.node_bin(), path], cwd=a.dir,
                stdout=log, stderr=subprocess.STDOUT,
                env=harness.child_env()))
        harness.wait_until(lambda: "listening on tcp://0.0.0.0" in
                           a.log_text() or p.poll() is not None,
                           msg="node started")
        self.assertIsNone(p.poll(), a.log_tail())
        self.assertIn("WITHOUT CURVE (node.security.insecure: true)",
                      a.log_text())
        self.assertEqual(harness.stop_process(p), 0, a.log_tail())

    # -- HTTP, dump ---------------------------------------------------------

    def make_cert(self):
        cert = os.path.join(self.tmp, "http.crt")
        key = os.path.join(self.tmp, "http.pem")
        r = harness.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                         "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                         "-keyout", key, "-out", cert])
        if r.rc != 0:
            self.skipTest("openssl req failed: %s" % r.stderr)
        os.chmod(key, 0o600)
        return cert, key

    def test_http_tls_with_certificate(self):
        if not shutil.which("openssl"):
            self.skipTest("needs the openssl command")
        cert, key = self.make_cert()
        a = self.node("tls", http=True, queues=[{"name": "q"}],
                      node_extra={"http_tls": {"cert": cert, "key": key}})
        a.start()
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        url = "https://127.0.0.1:%d/status" % a.http_port

        def get():
            with urllib.request.urlopen(url, context=ctx, timeout=5) as r:
                return r.status, json.loads(r.read())
        status, doc = harness.wait_until(get, msg="HTTPS /status")
        self.assertEqual(status, 200)
        self.assertEqual(doc["node"]["id"], "tls")
        # The certificate served is ours.
        pem = ssl.get_server_certificate(("127.0.0.1", a.http_port))
        with open(cert) as f:
            self.assertEqual(ssl.PEM_cert_to_DER_cert(pem),
                             ssl.PEM_cert_to_DER_cert(f.read()))
        # Plain HTTP on that port gets no page.
        with self.assertRaises(Exception):
            urllib.request.urlopen("http://127.0.0.1:%d/status"
                                   % a.http_port, timeout=5).read()
        self.assertIn("https: dashboard", a.log_text())

    def test_http_plain_without_tls(self):
        a = self.node("plainhttp", http=True, queues=[{"name": "q"}]).start()
        with urllib.request.urlopen(a.http_url + "/status", timeout=5) as r:
            self.assertEqual(r.status, 200)
            self.assertEqual(json.loads(r.read())["node"]["id"],
                             "plainhttp")

    def test_dump_config_redacts_secrets(self):
        cert, key = (os.path.join(self.tmp, "c.crt"),
                     os.path.join(self.tmp, "c.pem"))
        for p in (cert, key):
            with open(p, "w") as f:
                f.write("x")
            os.chmod(p, 0o600)
        a = self.secure_node("dump", queues=[{"name": "q"}], http=True,
                             node_extra={"http_tls": {"cert": cert,
                                                      "key": key}})
        path = a.write_config()
        r = harness.run([harness.node_bin(), "--dump-config", "-c", path])
        self.assertEqual(r.rc, 0, r)
        self.assertNotIn(self.keys.key("dump"), r.stdout)
        self.assertNotIn(key, r.stdout)
        self.assertIn('secret_key: "<redacted>"', r.stdout)
        self.assertIn('key: "<redacted>"', r.stdout)
        self.assertIn(cert, r.stdout)
        r = harness.run([harness.node_bin(), "--dump-config",
                         "--show-secrets", "-c", path])
        self.assertIn(self.keys.key("dump"), r.stdout)
        self.assertIn(key, r.stdout)
        # Nothing secret in the log of a node that ran.
        a.node_extra.pop("http_tls")
        a.http_port = None
        a.start()
        with open(self.keys.key("dump")) as f:
            secret = f.read()
        sk = [ln.split('"')[1] for ln in secret.splitlines()
              if "secret-key" in ln][0]
        self.assertNotIn(sk, a.log_text())


if __name__ == "__main__":
    unittest.main()
