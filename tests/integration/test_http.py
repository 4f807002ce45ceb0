"""tests/integration/test_http.py — replication lag you can see (DESIGN.md
§3): the HTTP endpoint of real nodes (node.http) while a shovel's peer is
frozen, checked through /metrics, /status and `fedq status --json`; the
exposition through promtool; a real Prometheus scraping it; the dashboard
in headless Chromium (DevTools protocol over a pipe).

Tools that are not installed (promtool, prometheus, chromium: Debian's
`prometheus` and `chromium` packages, `scripts/install-deps --with
dashboard-tests`) skip their test with the reason.

FEDQ_DASHBOARD_PNG=PATH makes the Chromium test keep a 1280x800 screenshot
of the dashboard there after about a minute of history (docs/dashboard.png
is made this way).
"""

import base64
import fcntl
import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

import harness

LINK = "outbox-to-b"
N = 500


# -- HTTP and the exposition format -------------------------------------

def http_get(url, method="GET"):
    """(status, headers, body text) of one request; HTTP errors included."""
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode("utf-8")


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')


def _unescape(v):
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n"
                  else m.group(1), v)


def parse_metrics(text):
    """[(name, {label: value}, float)] of every sample; fails on a line
    that is neither a comment nor a sample."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise AssertionError("not a sample line: %r" % line)
        labels = {}
        rest = m.group(2) or ""
        pos = 0
        while pos < len(rest):
            lm = _LABEL.match(rest, pos)
            if not lm:
                raise AssertionError("bad labels in %r" % line)
            labels[lm.group(1)] = _unescape(lm.group(2))
            pos = lm.end()
        samples.append((m.group(1), labels, float(m.group(3))))
    return samples


def sample(samples, name, **labels):
    """The value of the one sample named name whose labels include these;
    None when there is none."""
    found = [v for n, ls, v in samples if n == name and all(
        ls.get(k) == want for k, want in labels.items())]
    if len(found) > 1:
        raise AssertionError("%d samples of %s%r" % (len(found), name, labels))
    return found[0] if found else None


def link_state(samples, link):
    """The state whose fedq_link_state sample is 1, or None."""
    on = [ls["state"] for n, ls, v in samples
          if n == "fedq_link_state" and ls.get("link") == link and v == 1]
    return on[0] if len(on) == 1 else None


def scrape(node):
    status, headers, body = http_get(node.http_url + "/metrics")
    if status != 200:
        raise AssertionError("GET /metrics: %d %s" % (status, body))
    return parse_metrics(body)


# -- Nodes --------------------------------------------------------------

class HttpCase(harness.FedqTestCase):

    def pair(self, link_extra=None):
        """B with queue inbox; A with queue outbox shovelled to B's inbox;
        both with node.http; started, and the link running."""
        b = self.node("b", queues=[{"name": "inbox", "durable": True}],
                      http=True)
        shovel = {"name": LINK, "source": {"queue": "outbox"},
                  "destination": {"endpoint": b.endpoint, "queue": "inbox"},
                  "lag_alert": "1s"}
        shovel.update(link_extra or {})
        a = self.node("a", queues=[{"name": "outbox", "durable": True}],
                      shovels=[shovel], http=True)
        b.start()
        a.start()
        harness.wait_until(lambda: link_state(scrape(a), LINK) == "running",
                           timeout=20, msg="link %s running" % LINK)
        return a, b

    def healthy(self, node):
        return http_get(node.http_url + "/healthz")[0] == 200


class HttpLagTest(HttpCase):

    def test_endpoints(self):
        a, b = self.pair()
        harness.wait_until(lambda: self.healthy(a) and self.healthy(b),
                           timeout=10, msg="/healthz 200 on both")
        status, headers, body = http_get(a.http_url + "/healthz")
        self.assertEqual((status, body), (200, "ok\n"))

        status, headers, body = http_get(a.http_url + "/status")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith(
            "application/json"), headers["Content-Type"])
        doc = json.loads(body)
        self.assertEqual(doc["node"]["id"], "a")
        self.assertEqual([ln["name"] for ln in doc["links"]], [LINK])
        link = doc["links"][0]
        self.assertEqual(link["kind"], "shovel")
        for field in ("backlog_messages", "backlog_bytes", "lag_seconds",
                      "forwarded_total", "confirmed_total",
                      "duplicates_dropped_total", "reconnects_total",
                      "state", "last_error", "lag_alert"):
            self.assertIn(field, link)

        status, headers, body = http_get(a.http_url + "/metrics")
        self.assertEqual(status, 200)
        self.assertIn("version=0.0.4", headers["Content-Type"])
        self.assertIn('fedq_link_backlog_messages{link="%s"' % LINK, body)
        self.assertIn('fedq_node_info{node="a",', body)
        self.assertIn("# TYPE fedq_store_fsync_seconds histogram", body)

        status, headers, body = http_get(a.http_url + "/")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/html"))
        self.assertNotIn("https://", body)
        self.assertEqual(http_get(a.http_url + "/nope")[0], 404)
        self.assertEqual(http_get(a.http_url + "/metrics", "POST")[0], 405)

    def test_lag_grows_alerts_and_clears_while_peer_frozen(self):
        a, b = self.pair()
        b.sigstop()
        try:
            a.cli.check("publish", "", "outbox", "--count", N)

            def stuck():
                s = scrape(a)
                backlog = sample(s, "fedq_link_backlog_messages", link=LINK)
                state = link_state(s, LINK)
                if backlog == N and state in ("reconnecting", "blocked"):
                    return s
                return None
            s = harness.wait_until(stuck, timeout=30,
                                   msg="backlog %d, reconnecting or blocked"
                                   % N)
            self.assertGreater(sample(s, "fedq_link_backlog_bytes",
                                      link=LINK), 0)
            lag1 = sample(s, "fedq_link_lag_seconds", link=LINK)
            self.assertGreater(lag1, 0)
            def lag_grew():
                lag = sample(scrape(a), "fedq_link_lag_seconds", link=LINK)
                return lag if lag > lag1 else None
            lag2 = harness.wait_until(lag_grew, timeout=10,
                                      msg="lag_seconds growing past %.3f"
                                      % lag1)
            self.assertGreater(lag2, lag1)

            # The terminal says the same.
            link = a.link(LINK)
            self.assertEqual(link["backlog_messages"], N)
            self.assertIn(link["state"], ("reconnecting", "blocked"))
            self.assertGreaterEqual(link["lag_seconds"], lag1)

            # lag_alert: 1s fires once the lag passes it.
            def alerting():
                s = scrape(a)
                return s if sample(s, "fedq_link_lag_alert",
                                   link=LINK) == 1 else None
            s = harness.wait_until(alerting, timeout=15,
                                   msg="fedq_link_lag_alert 1")
            self.assertGreater(sample(s, "fedq_link_lag_seconds", link=LINK),
                               1.0)
            self.assertEqual(sample(
                s, "fedq_link_lag_alert_threshold_seconds", link=LINK), 1)
            self.assertTrue(a.link(LINK)["lag_alert"])
            # The frozen peer does not make this node unhealthy.
            self.assertTrue(self.healthy(a))
        finally:
            b.sigcont()

        def caught_up():
            s = scrape(a)
            return (sample(s, "fedq_link_backlog_messages", link=LINK) == 0
                    and sample(s, "fedq_link_lag_alert", link=LINK) == 0
                    and sample(s, "fedq_link_lag_seconds", link=LINK) == 0
                    and link_state(s, LINK) == "running")
        harness.wait_until(caught_up, timeout=30,
                           msg="backlog 0, lag 0, alert 0, running")
        self.assertEqual(b.depth("inbox"), N)
        s = scrape(a)
        self.assertEqual(sample(s, "fedq_link_confirmed_total", link=LINK), N)
        self.assertEqual(a.link(LINK)["backlog_messages"], 0)
        harness.wait_until(lambda: self.healthy(b), timeout=10,
                           msg="/healthz of B back to 200")

    def test_federation_pair_lag(self):
        # Each member links to the other; A's link to B is "audit/b".
        pa, pb = harness.free_port(), harness.free_port()
        a = self.node("a", http=True, port=pa, federated_queues=[
            {"name": "audit", "durable": True, "lag_alert": "1s",
             "peers": [{"id": "b", "endpoint": "tcp://127.0.0.1:%d" % pb}]}])
        b = self.node("b", http=True, port=pb, federated_queues=[
            {"name": "audit", "durable": True,
             "peers": [{"id": "a", "endpoint": "tcp://127.0.0.1:%d" % pa}]}])
        a.start()
        b.start()
        fed = {"link": "audit/b", "kind": "federation", "peer": "b"}
        harness.wait_until(lambda: link_state(scrape(a), "audit/b")
                           == "running", timeout=20,
                           msg="federation link audit/b running")
        b.sigstop()
        try:
            a.cli.check("publish", "", "audit", "--count", 100)

            def behind():
                s = scrape(a)
                return (sample(s, "fedq_link_backlog_messages", **fed) == 100
                        and sample(s, "fedq_link_lag_alert", **fed) == 1
                        and s)
            s = harness.wait_until(behind, timeout=20,
                                   msg="audit/b backlog 100, lag alert")
            self.assertGreater(sample(s, "fedq_link_lag_seconds", **fed), 1)
            self.assertEqual(a.link("audit/b")["backlog_messages"], 100)
        finally:
            b.sigcont()

        def caught_up():
            s = scrape(a)
            return (sample(s, "fedq_link_backlog_messages", **fed) == 0
                    and sample(s, "fedq_link_lag_seconds", **fed) == 0
                    and sample(s, "fedq_link_lag_alert", **fed) == 0)
        harness.wait_until(caught_up, timeout=30, msg="audit/b caught up")
        self.assertEqual(b.depth("audit"), 100)
        promtool = shutil.which("promtool")
        if promtool:
            body = http_get(a.http_url + "/metrics")[2]
            self.assertIn('kind="federation"', body)
            r = harness.run([promtool, "check", "metrics"], input=body)
            self.assertEqual(r.rc, 0, "promtool check metrics:\n%s%s"
                             % (r.stdout, r.stderr))

    def test_promtool_accepts_exposition(self):
        promtool = shutil.which("promtool")
        if not promtool:
            self.skipTest("promtool not installed (Debian package "
                          "prometheus; scripts/install-deps --with "
                          "dashboard-tests)")
        a, b = self.pair()
        a.cli.check("publish", "", "outbox", "--count", 20)
        harness.wait_until(lambda: b.depth("inbox") == 20, timeout=20)
        body = http_get(a.http_url + "/metrics")[2]
        r = harness.run([promtool, "check", "metrics"], input=body)
        self.assertEqual(r.rc, 0, "promtool check metrics:\n%s%s"
                         % (r.stdout, r.stderr))


# -- A real Prometheus --------------------------------------------------

def grafana_queries():
    """(panel title, PromQL) of every query in docs/grafana-dashboard.json,
    with the dashboard's variables replaced by match-all values."""
    path = os.path.join(harness.REPO, "docs", "grafana-dashboard.json")
    with open(path) as f:
        dash = json.load(f)
    out = []
    for panel in dash["panels"]:
        for t in panel.get("targets", []):
            expr = (t["expr"].replace("$instance", ".*")
                    .replace("$link", ".*")
                    .replace("$__rate_interval", "1m"))
            out.append((panel["title"], expr))
    return out


class PrometheusTest(HttpCase):

    def test_prometheus_scrapes_lag(self):
        prom = shutil.which("prometheus")
        if not prom:
            self.skipTest("prometheus not installed (scripts/install-deps "
                          "--with dashboard-tests)")
        a, b = self.pair()
        b.sigstop()
        try:
            a.cli.check("publish", "", "outbox", "--count", 50)
            port = harness.free_port()
            root = os.path.join(self.tmp, "prometheus")
            os.makedirs(root)
            cfg = os.path.join(root, "prometheus.yml")
            with open(cfg, "w") as f:
                f.write("global:\n  scrape_interval: 1s\n"
                        "  evaluation_interval: 1s\n"
                        "scrape_configs:\n  - job_name: fedq\n"
                        "    static_configs:\n"
                        "      - targets: ['127.0.0.1:%d']\n" % a.http_port)
            log = open(os.path.join(root, "prometheus.log"), "wb")
            proc = harness.track(subprocess.Popen(
                [prom, "--config.file=" + cfg,
                 "--web.listen-address=127.0.0.1:%d" % port,
                 "--storage.tsdb.path=" + os.path.join(root, "data"),
                 "--log.level=warn"],
                cwd=root, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT))
            log.close()
            api = "http://127.0.0.1:%d/api/v1/query?query=" % port

            def lag_series():
                if proc.poll() is not None:
                    raise AssertionError("prometheus exited %s" % proc.returncode)
                st, _, body = http_get(api + urllib.parse.quote(
                    "fedq_link_lag_seconds"))
                if st != 200:
                    return None
                res = json.loads(body)["data"]["result"]
                for r in res:
                    if r["metric"].get("link") == LINK and float(
                            r["value"][1]) > 0:
                        return r
                return None
            try:
                r = harness.wait_until(lag_series, timeout=60,
                                       msg="fedq_link_lag_seconds in "
                                       "Prometheus")
                self.assertEqual(r["metric"]["kind"], "shovel")
                self.assertEqual(r["metric"]["job"], "fedq")
                up = json.loads(http_get(api + "up")[2])["data"]["result"]
                self.assertEqual([x["value"][1] for x in up], ["1"])
                # Every query of the Grafana dashboard is valid PromQL on
                # these names, and the per-link ones find this link.
                # (rate() needs two scrapes in its window: polled.)
                def dashboard_queries():
                    for title, expr in grafana_queries():
                        res = json.loads(http_get(api + urllib.parse.quote(
                            expr))[2])
                        if res["status"] != "success":
                            raise AssertionError("%s: %s: %s"
                                                 % (title, expr, res))
                        if "fedq_link_" in expr and "increase(" not in \
                                expr and "threshold" not in expr:
                            links = {x["metric"].get("link") for x in
                                     res["data"]["result"]}
                            if LINK not in links:
                                return None
                    return True
                harness.wait_until(dashboard_queries, timeout=30,
                                   msg="every Grafana query answered")
            finally:
                harness.stop_process(proc)
        finally:
            b.sigcont()


# -- The dashboard in headless Chromium --------------------------------

def chromium_bin():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Cdp:
    """Chromium driven through the DevTools protocol over a pipe
    (--remote-debugging-pipe: JSON messages ended by NUL on fds 3 and 4)."""

    def __init__(self, binary, profile, log_path):
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()
        # Move the child's ends above 4 so that placing them on 3 and 4
        # cannot overwrite one with the other.
        cr = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
        cw = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        argv = [binary, "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-quic", "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--disable-extensions", "--hide-scrollbars",
                "--window-size=1280,800", "--user-data-dir=" + profile,
                "--remote-debugging-pipe", "about:blank"]
        # bash, not sh: dash takes one-digit fd numbers only.
        shell = 'exec 3<&%d 4>&%d %d<&- %d>&-; exec "$@"' % (cr, cw, cr, cw)
        log = open(log_path, "wb")
        self.proc = harness.track(subprocess.Popen(
            ["bash", "-c", shell, "bash"] + argv, pass_fds=(cr, cw),
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT))
        log.close()
        os.close(cr)
        os.close(cw)
        self.w, self.r = to_chrome_w, from_chrome_r
        self.buf = b""
        self.next_id = 0
        self.events = []
        self.session = None

    def _read_message(self, deadline):
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no answer from Chromium in time")
            ready, _, _ = select.select([self.r], [], [], left)
            if ready:
                chunk = os.read(self.r, 1 << 20)
                if not chunk:
                    raise AssertionError("Chromium closed its pipe (exit "
                                         "%s)" % self.proc.poll())
                self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, timeout_s=20, session=True):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            data = data[os.write(self.w, data):]
        deadline = time.monotonic() + harness.scaled(timeout_s)
        while True:
            m = self._read_message(deadline)
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise AssertionError("%s: %s" % (method, m["error"]))
                return m.get("result", {})
            if "method" in m:
                self.events.append(m)

    def open(self, width, height):
        target = self.call("Target.createTarget", {"url": "about:blank"},
                           session=False)["targetId"]
        self.session = self.call("Target.attachToTarget", {
            "targetId": target, "flatten": True}, session=False)["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            self.call(domain + ".enable")
        self.call("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1,
            "mobile": False})

    def evaluate(self, expression):
        r = self.call("Runtime.evaluate", {"expression": expression,
                                           "returnByValue": True})
        if "exceptionDetails" in r:
            raise AssertionError("evaluate: %s" % r["exceptionDetails"])
        return r["result"].get("value")

    def errors(self):
        """Uncaught exceptions, console errors and error log entries."""
        out = []
        for e in self.events:
            p = e.get("params", {})
            if e["method"] == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                out.append("Uncaught: %s" % (d.get("exception", {}).get(
                    "description") or d.get("text")))
            elif e["method"] == "Runtime.consoleAPICalled" and p.get(
                    "type") in ("error", "assert"):
                out.append("console.%s: %s" % (p["type"], [
                    a.get("value", a.get("description")) for a in
                    p.get("args", [])]))
            elif e["method"] == "Log.entryAdded" and p.get(
                    "entry", {}).get("level") == "error":
                out.append("log: %s %s" % (p["entry"].get("text"),
                                           p["entry"].get("url", "")))
        return out

    def close(self):
        try:
            self.call("Browser.close", session=False, timeout_s=5)
        except AssertionError:
            pass
        harness.stop_process(self.proc, grace_s=5)
        os.close(self.w)
        os.close(self.r)


ROWS_JS = """JSON.stringify(Array.prototype.map.call(
  document.querySelectorAll('#links tbody tr'), function (tr) {
    function f(n) { return tr.querySelector('[data-field="' + n + '"]'); }
    var card = document.querySelector(
      '.chartcard[data-link="' + CSS.escape(tr.getAttribute('data-link')) + '"]');
    return {name: tr.getAttribute('data-link'),
            name_text: f('name').textContent,
            state: f('state').getAttribute('data-value'),
            lag_text: f('lag_seconds').textContent,
            lag: parseFloat(f('lag_seconds').getAttribute('data-value')),
            backlog: parseFloat(f('backlog_messages').getAttribute('data-value')),
            alerts: f('alerts').textContent,
            samples: card ? parseInt(card.getAttribute('data-samples'), 10) : 0};
  }))"""


class DashboardTest(HttpCase):

    def test_dashboard_shows_every_link_and_its_lag(self):
        binary = chromium_bin()
        if not binary:
            self.skipTest("chromium not installed (scripts/install-deps "
                          "--with dashboard-tests)")
        screenshot_to = os.environ.get("FEDQ_DASHBOARD_PNG")
        # Two links: one to B, running with traffic; one to a port where
        # nothing listens, its backlog aging past its lag_alert.
        nowhere = harness.free_port()
        b = self.node("b", queues=[{"name": "inbox", "durable": True}],
                      http=True)
        a = self.node("a", http=True, queues=[
            {"name": "outbox", "durable": True},
            {"name": "archive", "durable": True}], shovels=[
            {"name": LINK, "source": {"queue": "outbox"},
             "destination": {"endpoint": b.endpoint, "queue": "inbox"},
             "lag_alert": "5s"},
            {"name": "archive-to-dr", "source": {"queue": "archive"},
             "destination": {"endpoint": "tcp://127.0.0.1:%d" % nowhere,
                             "queue": "archive"},
             "lag_alert": "2s", "backlog_alert": 100}])
        b.start()
        a.start()
        a.cli.check("publish", "", "archive", "--count", 250)
        publisher = a.cli.start("publish", "", "outbox", "--count", 1000000,
                                "--rate", 150)
        names = [ln["name"] for ln in a.status()["links"]]
        self.assertEqual(sorted(names), sorted([LINK, "archive-to-dr"]))

        profile = tempfile.mkdtemp(prefix="chromium-", dir=self.tmp)
        cdp = Cdp(binary, profile, os.path.join(self.tmp, "chromium.log"))
        try:
            cdp.open(1280, 800)
            cdp.call("Page.navigate", {"url": a.http_url + "/"})
            want_samples = 60 if screenshot_to else 3

            def rows():
                r = {x["name"]: x for x in json.loads(
                    cdp.evaluate(ROWS_JS) or "[]")}
                if sorted(r) != sorted(names):
                    return None
                if any(x["samples"] < want_samples for x in r.values()):
                    return None
                dr = r["archive-to-dr"]
                if not (dr["lag"] > 2 and "LAG" in dr["alerts"]):
                    return None
                return r
            r = harness.wait_until(rows, timeout=30 + want_samples * 1.5,
                                   msg="every link in the dashboard with "
                                   "its lag and %d chart samples"
                                   % want_samples)
            doc = a.status()
            for link in doc["links"]:
                row = r[link["name"]]
                self.assertEqual(row["name_text"], link["name"])
                self.assertRegex(row["lag_text"], r"^\d")
                self.assertTrue(row["lag_text"].endswith("s"), row)
                # (the state of the dead link flips between starting and
                # reconnecting; it is checked below)
                self.assertIn(row["state"], ("starting", "running",
                                             "reconnecting", "blocked"))
            dr = r["archive-to-dr"]
            self.assertIn(dr["state"], ("starting", "reconnecting"))
            self.assertEqual(dr["backlog"], 250)
            self.assertIn("BACKLOG", dr["alerts"])
            self.assertEqual(r[LINK]["state"], "running")
            self.assertEqual(cdp.evaluate(
                "document.documentElement.getAttribute('data-errors')"), None)
            self.assertEqual(cdp.evaluate(
                "document.getElementById('node-id').textContent"), "a")
            png = base64.b64decode(cdp.call("Page.captureScreenshot", {
                "format": "png"})["data"])
            self.assertEqual(png[:8], b"\x89PNG\r\n\x1a\n")
            with open(os.path.join(self.tmp, "dashboard.png"), "wb") as f:
                f.write(png)
            if screenshot_to:
                with open(screenshot_to, "wb") as f:
                    f.write(png)
            self.assertEqual(cdp.errors(), [])
        finally:
            cdp.close()
            harness.stop_process(publisher)


if __name__ == "__main__":
    unittest.main()
