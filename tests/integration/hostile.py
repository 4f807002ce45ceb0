"""tests/integration/hostile.py — raw protocol frames for the node tests:
a small msgpack encoder (the standard library has none), the frames of
docs/protocol.md, hostile inputs, and a wrapper around the test tool
fedq_raw (tests/tools/fedq_raw.c, built as FEDQ_BUILD/tests/fedq_raw),
which sends files as ZeroMQ message parts from a DEALER socket and prints
the replies.

    raw = hostile.Raw(node.endpoint, workdir)
    r = raw.send([[hostile.hello()], [hostile.frame(99)]])
    r.replies[1]["cmd_name"] == "ERROR"

Each reply is a dict: parts, cmd, cmd_name, code, code_name, rid, dtag,
text, rd, body, mid (what the line printed), or {"undecodable": True}.
"""

import os
import random
import re
import struct
import subprocess

import harness

# -- msgpack (the subset fedq uses, plus raw escapes for hostile input) --


class Verbatim(bytes):
    """Bytes inserted as they are into an encoding (a hand-made header)."""


def mp(v):
    """msgpack-encode v: dict (str keys), list, str, bytes (bin), int,
    bool, None, or Verbatim (inserted as is)."""
    if isinstance(v, Verbatim):
        return bytes(v)
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack("b", v)
        if 0 <= v < 1 << 8:
            return b"\xcc" + struct.pack(">B", v)
        if 0 <= v < 1 << 16:
            return b"\xcd" + struct.pack(">H", v)
        if 0 <= v < 1 << 32:
            return b"\xce" + struct.pack(">I", v)
        if 0 <= v < 1 << 64:
            return b"\xcf" + struct.pack(">Q", v)
        if -(1 << 7) <= v:
            return b"\xd0" + struct.pack(">b", v)
        if -(1 << 15) <= v:
            return b"\xd1" + struct.pack(">h", v)
        if -(1 << 31) <= v:
            return b"\xd2" + struct.pack(">i", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, str):
        b = v.encode("utf-8")
        n = len(b)
        if n < 32:
            return bytes([0xa0 | n]) + b
        if n < 1 << 8:
            return b"\xd9" + struct.pack(">B", n) + b
        if n < 1 << 16:
            return b"\xda" + struct.pack(">H", n) + b
        return b"\xdb" + struct.pack(">I", n) + b
    if isinstance(v, (bytes, bytearray)):
        n = len(v)
        if n < 1 << 8:
            return b"\xc4" + struct.pack(">B", n) + bytes(v)
        if n < 1 << 16:
            return b"\xc5" + struct.pack(">H", n) + bytes(v)
        return b"\xc6" + struct.pack(">I", n) + bytes(v)
    if isinstance(v, (list, tuple)):
        n = len(v)
        if n < 16:
            head = bytes([0x90 | n])
        elif n < 1 << 16:
            head = b"\xdc" + struct.pack(">H", n)
        else:
            head = b"\xdd" + struct.pack(">I", n)
        return head + b"".join(mp(x) for x in v)
    if isinstance(v, dict):
        n = len(v)
        if n < 16:
            head = bytes([0x80 | n])
        elif n < 1 << 16:
            head = b"\xde" + struct.pack(">H", n)
        else:
            head = b"\xdf" + struct.pack(">I", n)
        return head + b"".join(mp(k) + mp(x) for k, x in v.items())
    raise TypeError("cannot encode %r" % type(v))


# -- Frames (docs/protocol.md §4, §5) -----------------------------------

CMD = {
    "HELLO": 1, "HELLO_OK": 2, "OK": 3, "ERROR": 4, "DECLARE_QUEUE": 5,
    "DELETE_QUEUE": 6, "PURGE_QUEUE": 7, "DECLARE_EXCHANGE": 8,
    "DELETE_EXCHANGE": 9, "BIND": 10, "UNBIND": 11, "PUBLISH": 12,
    "CONFIRM": 13, "RETURN": 14, "CONSUME": 15, "CANCEL": 16, "DELIVER": 17,
    "GET": 18, "GET_EMPTY": 19, "ACK": 20, "NACK": 21, "REJECT": 22,
    "STATUS": 23, "STATUS_OK": 24, "PING": 25, "PONG": 26, "BYE": 27,
}


def frame(cmd, version=1, **fields):
    """A command header: {v, cmd, fields...} (cmd a number or a name)."""
    h = {"v": version, "cmd": CMD.get(cmd, cmd)}
    h.update(fields)
    return mp(h)


def hello(rid=1, hb=60000):
    """HELLO with a long heartbeat, so a held session does not expire."""
    return frame("HELLO", rid=rid, hb=hb)


def publish(seq, queue, body=b"x", exchange="", **env):
    """A 3-part PUBLISH through `exchange` with routing key `queue`."""
    return [frame("PUBLISH", seq=seq, ex=exchange, key=queue), mp(env),
            body if isinstance(body, bytes) else body.encode()]


def consume(queue, rid=2, prefetch=0, tag="raw", no_ack=False):
    f = {"rid": rid, "q": queue, "tag": tag, "prefetch": prefetch}
    if no_ack:
        f["no_ack"] = True
    return frame("CONSUME", **f)


# -- Hostile inputs -------------------------------------------------------

def nesting_bomb(depth=100000, kind="array"):
    """A header whose value nests `depth` containers deep."""
    head = b"\x83\xa1v\x01\xa3cmd\x19\xa1x"
    if kind == "array":
        return head + b"\x91" * depth + b"\x00"
    return head + b"\x81\xa1k" * depth + b"\x00"


def map32_bomb():
    """A map header claiming 4 294 967 295 entries, then almost nothing."""
    return b"\xdf\xff\xff\xff\xff\xa1v\x01"


def array32_bomb():
    return b"\x83\xa1v\x01\xa3cmd\x19\xa1x\xdd\xff\xff\xff\xff\x00"


def truncated_strings():
    """Strings whose declared length runs past the end of the input."""
    return [
        b"\x82\xa1v\x01\xa3cm",                          # fixstr cut
        b"\x83\xa1v\x01\xa3cmd\x05\xa4name\xd9\xff" + b"n" * 10,  # str8
        b"\x83\xa1v\x01\xa3cmd\x05\xa4name\xda\xff\xff" + b"n",   # str16
        b"\x83\xa1v\x01\xa3cmd\x05\xa4name\xdb\xff\xff\xff\xffq",  # str32
        b"\x83\xa1v\x01\xa3cmd\x05\xa4name\xc6\x7f\xff\xff\xff",  # bin32
        b"\x81\xdb\x00\x00\x10\x00",                     # a key cut short
    ]


def random_frames(seed, count, max_len=200):
    """count random byte strings (seeded), some starting like a map."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        n = rng.randint(1, max_len)
        b = bytes(rng.getrandbits(8) for _ in range(n))
        if i % 3 == 0:
            b = b"\x83\xa1v\x01\xa3cmd" + b
        out.append(b)
    return out


def corpus_files():
    """The committed fuzz corpus of the wire decoders."""
    d = os.path.join(harness.REPO, "tests", "fuzz", "corpus", "proto")
    return sorted(os.path.join(d, f) for f in os.listdir(d))


# -- The fedq_raw tool ------------------------------------------------------

def raw_bin():
    return os.path.join(harness.build_dir(), "tests", "fedq_raw")


_REPLY = re.compile(r"^reply (\d+): parts=(\d+) (.*)$")
_FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


def parse_reply(line):
    m = _REPLY.match(line)
    if not m:
        return None
    rest = m.group(3)
    r = {"n": int(m.group(1)), "parts": int(m.group(2)), "line": line}
    if rest.startswith("undecodable"):
        r["undecodable"] = True
        return r
    cm = re.match(r"cmd=(\d+) (\S+)", rest)
    if cm:
        r["cmd"] = int(cm.group(1))
        r["cmd_name"] = cm.group(2)
        rest = rest[cm.end():]
    cm = re.search(r"code=(-?\d+) (\S+)", rest)
    if cm:
        r["code"] = int(cm.group(1))
        r["code_name"] = cm.group(2)
        rest = rest[:cm.start()] + rest[cm.end():]
    for k, v in _FIELD.findall(rest):
        if v.startswith('"'):
            r[k] = v[1:-1]
        else:
            try:
                r[k] = int(v)
            except ValueError:
                r[k] = v
    return r


class RawResult:
    def __init__(self, rc, out, err):
        self.rc = rc
        self.out = out
        self.err = err
        self.replies = [r for r in map(parse_reply, out.splitlines()) if r]
        m = re.search(r"^summary: (.*)$", out, re.M)
        self.summary = {}
        if m:
            for k, v in _FIELD.findall(m.group(1)):
                self.summary[k] = int(v)

    def __repr__(self):
        return "RawResult(rc=%s, summary=%r, out=%r, err=%r)" % (
            self.rc, self.summary, self.out[-2000:], self.err[-2000:])


class Raw:
    """fedq_raw pointed at one endpoint; frames are written as files under
    workdir."""

    def __init__(self, endpoint, workdir):
        self.endpoint = endpoint
        self.dir = os.path.join(workdir, "raw")
        os.makedirs(self.dir, exist_ok=True)
        self.n = 0

    def _file(self, data):
        self.n += 1
        path = os.path.join(self.dir, "part-%06d.bin" % self.n)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def argv(self, messages, count=1, idle_ms=1000, expect=None,
             fresh=False, settle=None, hold=False, ping_ms=None,
             quiet=False):
        """messages: a list of messages, each a list of parts (bytes, or
        a path to an existing file)."""
        argv = [raw_bin(), "-n", str(count), "-t", str(idle_ms)]
        if expect is not None:
            argv += ["-x", str(expect)]
        if fresh:
            argv.append("--fresh")
        if settle:
            argv += ["--settle", settle]
        if hold:
            argv.append("--hold")
        if ping_ms:
            argv += ["--ping", str(ping_ms)]
        if quiet:
            argv.append("-q")
        argv.append(self.endpoint)
        for i, parts in enumerate(messages):
            if i:
                argv.append("+")
            for p in parts:
                argv.append(p if isinstance(p, str) else self._file(p))
        return argv

    def send(self, messages, timeout_s=60, **kw):
        """Send, collect replies, return a RawResult."""
        r = harness.run(self.argv(messages, **kw), timeout_s=timeout_s)
        return RawResult(r.rc, r.stdout, r.stderr)

    def start_hold(self, messages, out_path, **kw):
        """Start fedq_raw --hold in the background: it sends, then keeps
        the connection (printing replies to out_path) until stop_hold."""
        kw.setdefault("ping_ms", 500)
        argv = self.argv(messages, hold=True, **kw)
        out = open(out_path, "wb")
        try:
            p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=out,
                                 stderr=subprocess.STDOUT,
                                 env=harness.child_env())
        finally:
            out.close()
        return harness.track(p)


def stop_hold(proc, timeout_s=10):
    """Close stdin of a held fedq_raw: it closes its connection and exits."""
    try:
        proc.stdin.close()
    except OSError:
        pass
    try:
        proc.wait(timeout=harness.scaled(timeout_s))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    harness.untrack(proc)
    return proc.returncode


def read_replies(path):
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return []
    return [r for r in map(parse_reply, text.splitlines()) if r]


def rss_kib(pid, field="VmRSS"):
    """A field of /proc/PID/status in KiB (VmRSS, VmHWM, RssAnon,
    RssFile)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None
