"""Abuse and faults (Hardening): slowloris on commands and in DATA/BDAT, connection floods, NUL and 8-bit
octets, invalid UTF-8 under SMTPUTF8, megabyte lines, 10,000 pipelined recipients, pipelined garbage.

Every test bounds its own run time, and ends by checking that the server is still running and still
delivers mail. Memory is read from /proc/<pid>/status: VmHWM (peak resident set) after the attack against
VmRSS before it, so a spike that is freed again still counts.
"""

import random
import re
import resource
import selectors
import socket
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from ferrytest import RawSMTP, SMTPClosed, header_value, make_message, parse_delivered

MB = 1 << 20
MEMORY_GROWTH_LIMIT = 64 * MB
SLACK = 3.0   # seconds allowed beyond a nominal timeout on a loaded 2-core box


# ---------------------------------------------------------------- helpers

def proc_status(pid, key):
    """A memory figure from /proc/<pid>/status (VmRSS, VmHWM) in bytes."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no {key} in /proc/{pid}/status")


def assert_memory_bounded(srv, rss_before, what):
    peak = proc_status(srv.proc.pid, "VmHWM")
    growth = peak - rss_before
    assert growth < MEMORY_GROWTH_LIMIT, (
        f"{what}: peak RSS {peak / MB:.1f} MB, {growth / MB:.1f} MB above the {rss_before / MB:.1f} MB before "
        f"(limit {MEMORY_GROWTH_LIMIT / MB:.0f} MB)")


def ensure_nofile(n):
    """This test process needs n descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (n if hard == resource.RLIM_INFINITY else min(n, hard), hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert soft >= n, f"RLIMIT_NOFILE {soft} < {n} needed by this test"


def assert_alive(srv):
    assert srv.proc.poll() is None, f"ferry exited with status {srv.proc.returncode}\n--- log ---\n{srv.log[-4000:]}"


def assert_serving(srv, local="alice", subject="control"):
    """The server is running and delivers a new message to `local`, byte for byte."""
    assert_alive(srv)
    before = len(srv.mail_files(local))
    content = make_message(subject, to=f"{local}@example.test", body=f"{subject} body\r\n")
    qid = srv.send(f"{local}@example.test", content=content)
    files = srv.wait_mail(local, count=before + 1)
    found = [f for f in files if header_value(f.read_bytes(), "Subject") == subject]
    assert len(found) == 1, f"{len(found)} copies of {subject!r} in {local}'s mailbox"
    _, _, received, _, rest = parse_delivered(found[0].read_bytes())
    assert rest == content and qid in received
    return found[0]


def connect_from(port, source_ip, timeout=5.0):
    """A RawSMTP session from a chosen loopback address (all of 127/8 is local on Linux), so that the per-IP
    and the total connection limits can be told apart."""
    c = RawSMTP.__new__(RawSMTP)
    c.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source_ip, 0))
    c.sock.settimeout(timeout)
    c.buf = b""
    c.greeting = c.reply()
    return c


def read_until_closed(c, timeout):
    """Everything the server sends until it closes (None if still open after timeout)."""
    closed, data = c.wait_closed(timeout)
    return data if closed else None


def parse_reply_lines(data):
    lines = data.split(b"\r\n")
    assert lines[-1] == b"", f"reply stream does not end in CRLF: {data[-200:]!r}"
    return lines[:-1]


def body_lines(n, width=76, tag="line"):
    return b"".join((f"{tag} {i:06d} ".encode() + b"x" * width)[:width] + b"\r\n" for i in range(n))


class Slow:
    """One connection fed `chunk` octets of `payload` every `interval` seconds by run_slow(). Records what the
    server sends back and when it answers or closes; t0 is when the server started waiting."""

    def __init__(self, c, payload, chunk, interval, kind="", repeat=False):
        self.c = c
        self.sock = c.sock
        self.payload = payload
        self.pos = 0
        self.chunk = chunk
        self.interval = interval
        self.kind = kind
        self.repeat = repeat
        self.t0 = time.monotonic()
        self.next_send = self.t0
        self.data = c.buf
        c.buf = b""
        self.replied = time.monotonic() if b"\r\n" in self.data else None
        self.closed = None
        self.sent = 0

    @property
    def cut(self):
        times = [t for t in (self.replied, self.closed) if t is not None]
        return min(times) if times else None

    def describe(self):
        now = time.monotonic()
        if self.cut is None:
            return f"{self.kind} still open after {now - self.t0:.1f}s ({self.sent} octets sent, got {self.data[:80]!r})"
        return (f"{self.kind} cut after {self.cut - self.t0:.1f}s ({self.sent} octets sent, "
                f"closed={'yes' if self.closed else 'no'}, got {self.data[:120]!r})")


def run_slow(slows, until):
    """Feeds every Slow on its schedule from one thread (epoll) until each one has been closed by the server,
    or until the monotonic time `until`. After a reply arrives nothing more is sent on that connection."""
    sel = selectors.DefaultSelector()
    open_ = set()
    for s in slows:
        s.sock.setblocking(False)
        sel.register(s.sock, selectors.EVENT_READ, s)
        open_.add(s)

    def closed(s, t):
        s.closed = t
        open_.discard(s)
        sel.unregister(s.sock)

    try:
        while open_ and time.monotonic() < until:
            now = time.monotonic()
            for s in list(open_):
                if s.replied is not None or now < s.next_send:
                    continue
                piece = s.payload[:s.chunk] if s.repeat else s.payload[s.pos:s.pos + s.chunk]
                try:
                    n = s.sock.send(piece) if piece else 0
                except BlockingIOError:
                    n = 0
                except OSError:   # reset by the server
                    closed(s, now)
                    continue
                s.sent += n
                s.pos += n
                s.next_send = max(s.next_send + s.interval, now)
            for key, _ in sel.select(timeout=0.02):
                s = key.data
                try:
                    got = s.sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    got = b""
                t = time.monotonic()
                if not got:
                    closed(s, t)
                    continue
                s.data += got
                if s.replied is None and b"\r\n" in s.data:
                    s.replied = t
    finally:
        sel.close()
        for s in slows:
            try:
                s.sock.setblocking(True)
            except OSError:
                pass


def check_timeout_cut(slows, earliest, latest):
    """Each connection was answered `421 4.4.2` (or just closed) and closed, between earliest and latest
    seconds after the server started waiting."""
    problems = []
    for i, s in enumerate(slows):
        cut = s.cut
        if cut is None or s.closed is None:
            problems.append(f"#{i} {s.describe()}")
        elif not earliest <= cut - s.t0 <= latest:
            problems.append(f"#{i} {s.describe()}: expected between {earliest}s and {latest}s")
        elif s.data and not re.fullmatch(rb"421 4\.4\.2 [^\r\n]*\r\n", s.data):
            problems.append(f"#{i} {s.describe()}: expected 421 4.4.2 or a plain close")
    assert not problems, f"{len(problems)} of {len(slows)} slow connections not cut as required: " + \
        "; ".join(problems[:6])


def in_thread(fn):
    """Runs fn() in a thread; returns a join() that re-raises fn's exception and returns its result."""
    result = {}

    def run():
        try:
            result["value"] = fn()
        except BaseException as e:   # noqa: BLE001 - handed to the test thread
            result["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()

    def join(timeout=30):
        t.join(timeout)
        assert not t.is_alive(), f"{fn.__name__} still running after {timeout}s"
        if "error" in result:
            raise result["error"]
        return result.get("value")
    return join


def timed_transaction(srv, local, subject, body):
    """A whole session (connect to QUIT) delivering one message; returns (content, queue id, seconds)."""
    content = make_message(subject, to=f"{local}@example.test", body=body)
    t = time.monotonic()
    with RawSMTP(srv.port, timeout=10) as c:
        assert c.greeting.code == 220, c.greeting
        c.ehlo()
        qid = c.send_message("sender@client.test", [f"{local}@example.test"], content)
        c.quit()
    return content, qid, time.monotonic() - t


def assert_delivered_once(srv, local, subject, content):
    files = srv.wait_mail(local)
    found = [f for f in files if header_value(f.read_bytes(), "Subject") == subject]
    if not found:
        files = srv.wait_mail(local, count=len(files) + 1)
        found = [f for f in files if header_value(f.read_bytes(), "Subject") == subject]
    assert len(found) == 1, f"{len(found)} copies of {subject!r}"
    assert parse_delivered(found[0].read_bytes())[4] == content, "delivered content differs from what was sent"


# ---------------------------------------------------------------- 1. slowloris on commands

SLOWLORIS_CONNECTIONS = 250


def test_slowloris_commands_cut_at_command_timeout(ferry):
    """NEW behaviour (Hardening): command_timeout is a deadline for a complete command line, counted from when
    the server starts waiting for it; octets dripping in do not extend it. 250 connections each send one
    octet of `MAIL FROM:<...>` per second with command_timeout = 3s: each must get 421 4.4.2 (or a close)
    within 3 s + slack, while a normal client gets its message through promptly.
    (With a timer re-armed on every read, as before Hardening, no dripping connection is ever cut.)"""
    ensure_nofile(SLOWLORIS_CONNECTIONS + 200)
    srv = ferry(limits={"command_timeout": "3s", "connections": 2000, "connections_per_ip": 2000})
    rss_before = proc_status(srv.proc.pid, "VmRSS")
    slows = []
    try:
        for i in range(SLOWLORIS_CONNECTIONS):
            c = srv.connect()
            c.ehlo()
            slows.append(Slow(c, b"MAIL FROM:<slowloris-%d@client.test>\r\n" % i, chunk=1, interval=1.0,
                              kind="command drip"))

        def normal():
            time.sleep(0.5)   # the drip is under way
            return timed_transaction(srv, "alice", "during slowloris", "sent while 250 clients drip\r\n")

        join = in_thread(normal)
        run_slow(slows, until=slows[-1].t0 + 3 + SLACK + 1)
        content, _, elapsed = join()
        assert elapsed < 2.0, f"a normal transaction took {elapsed:.2f}s during the slowloris"
        check_timeout_cut(slows, earliest=2.5, latest=3 + SLACK)
        assert_delivered_once(srv, "alice", "during slowloris", content)
        assert_alive(srv)
        assert_memory_bounded(srv, rss_before, "250 slowloris sessions")
    finally:
        for s in slows:
            s.c.close()
    assert_serving(srv, "bob", "after slowloris")


def test_endless_command_line_cut_at_command_timeout(ferry):
    """NEW behaviour: a client streaming octets without ever ending the line (3 MB/s of junk, no LF) is cut
    at command_timeout like a slow one; the octets are discarded, not buffered."""
    srv = ferry(limits={"command_timeout": "3s"})
    rss_before = proc_status(srv.proc.pid, "VmRSS")
    c = srv.connect()
    try:
        c.ehlo()
        junk = bytes(b for b in random.Random(7).randbytes(128 * 1024) if b not in (10, 13))[:65536]
        s = Slow(c, junk, chunk=65536, interval=0.02, kind="endless line", repeat=True)
        run_slow([s], until=s.t0 + 3 + SLACK + 1)
        check_timeout_cut([s], earliest=2.5, latest=3 + SLACK)
        assert_memory_bounded(srv, rss_before, f"an endless command line ({s.sent / MB:.0f} MB sent)")
    finally:
        c.close()
    assert_serving(srv)


# ---------------------------------------------------------------- 2. slowloris in DATA / BDAT

DRIP_BODY = b"Subject: drip\r\n\r\n" + body_lines(2000, width=48, tag="drip")


def open_for_data(srv, i, bdat):
    c = srv.connect()
    c.ehlo()
    c.expect(f"MAIL FROM:<drip-{i}@client.test>", 250, "2.1.0")
    c.expect("RCPT TO:<bob@example.test>", 250, "2.1.5")
    if bdat:
        c.send(b"BDAT 1000000 LAST\r\n")
    else:
        r = c.cmd("DATA")
        assert r.code == 354, r
    return c


def test_slowloris_data_cut_by_min_data_rate(ferry):
    """NEW behaviour: the DATA/BDAT deadline starts at data_timeout; a read of N octets moves it N/min_data_rate
    seconds later (min_data_rate defaults to 500 octets/s), never past now + data_timeout. With
    data_timeout = 3s a drip of 1 octet per 0.5 s is cut after about 3 s, a trickle of 100 octets/s after
    about 3/(1 - 100/500) = 3.75 s; nothing of theirs is delivered. A 200 kB message sent meanwhile goes
    straight through, and the server stays alive."""
    srv = ferry(limits={"data_timeout": "3s", "command_timeout": "30s", "connections_per_ip": 200})
    rss_before = proc_status(srv.proc.pid, "VmRSS")
    plan = [("DATA 1 octet/0.5s", False, 1, 3.0)] * 8 + [("DATA 50 octets/0.5s", False, 50, 3.75)] * 8 + \
           [("BDAT 1 octet/0.5s", True, 1, 3.0)] * 4
    slows = []
    nominal = {}
    try:
        for i, (kind, bdat, chunk, expected) in enumerate(plan):
            slows.append(Slow(open_for_data(srv, i, bdat), DRIP_BODY, chunk=chunk, interval=0.5, kind=kind))
            nominal[kind] = expected

        body = body_lines(2700).decode()   # ~200 kB

        def normal():
            time.sleep(0.5)
            return timed_transaction(srv, "alice", "200k during drip", body)

        join = in_thread(normal)
        run_slow(slows, until=slows[-1].t0 + max(nominal.values()) + SLACK + 1)
        content, _, elapsed = join()
        assert len(content) > 200000
        assert elapsed < 2.0, f"a 200 kB transaction took {elapsed:.2f}s with data_timeout 3s"
        for kind, expected in nominal.items():
            check_timeout_cut([s for s in slows if s.kind == kind], earliest=2.5, latest=expected + SLACK)
        assert_delivered_once(srv, "alice", "200k during drip", content)
        assert_memory_bounded(srv, rss_before, "20 dripping DATA/BDAT sessions")
    finally:
        for s in slows:
            s.c.close()
    # the dripped transactions (all to bob) left nothing behind
    assert_serving(srv, "bob", "after drip")
    time.sleep(0.5)
    assert [header_value(f.read_bytes(), "Subject") for f in srv.mail_files("bob")] == ["after drip"]


def test_steady_sender_longer_than_data_timeout_is_not_cut(ferry):
    """The data deadline limits the rate, not the total time: 10 kB/s (20 times min_data_rate) for 3.5 s, with
    one 1.5 s pause, under data_timeout = 2s, is accepted and delivered intact."""
    srv = ferry(limits={"data_timeout": "2s"})
    content = make_message("steady", body=body_lines(400).decode())   # ~31 kB
    payload = content + b".\r\n"
    with srv.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<steady@client.test>", 250, "2.1.0")
        c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
        assert c.cmd("DATA").code == 354
        t0 = time.monotonic()
        for i in range(0, len(payload), 1000):
            c.send(payload[i:i + 1000])
            time.sleep(1.5 if i == 10000 else 0.1)
        elapsed = time.monotonic() - t0
        r = c.reply(timeout=10)
        assert r.is_(250, "2.0.0") and r.queue_id, f"after {elapsed:.1f}s of steady DATA: {r}"
        assert elapsed > 3.0
        c.quit()
    assert_delivered_once(srv, "alice", "steady", content)


def test_min_data_rate_configured(ferry):
    """NEW key [limits] min_data_rate (octets per second, positive integer). With min_data_rate = 100000 and
    data_timeout = 2s, a 10 kB/s sender earns 0.01 s per 0.1 s and is cut after about 2/(1 - 0.1) = 2.2 s;
    zero is refused by check-config."""
    bad = ferry(start=False, users=(), limits={"min_data_rate": 0})
    r = bad.cli("check-config")
    assert r.returncode == 2 and b"limits.min_data_rate:" in r.stderr, (r.returncode, r.stderr)
    assert b"unknown key" not in r.stderr, r.stderr

    srv = ferry(limits={"data_timeout": "2s", "min_data_rate": 100000})
    c = open_for_data(srv, 0, bdat=False)
    try:
        s = Slow(c, b"Subject: trickle\r\n\r\n" + body_lines(1500, width=98), chunk=1000, interval=0.1,
                 kind="10 kB/s")
        run_slow([s], until=s.t0 + 2.2 + SLACK + 1)
        check_timeout_cut([s], earliest=1.8, latest=2.2 + SLACK)
    finally:
        c.close()
    assert_serving(srv, "bob", "after trickle")
    time.sleep(0.5)
    assert len(srv.mail_files("bob")) == 1


# ---------------------------------------------------------------- 3. connection flood

def expect_refused_from(port, source_ip):
    c = connect_from(port, source_ip)
    try:
        assert c.greeting.is_(421, "4.7.0"), f"from {source_ip}: {c.greeting}"
        assert c.wait_closed(3)[0], f"refused connection from {source_ip} not closed"
    finally:
        c.close()


def test_connection_flood_beyond_limits(ferry):
    """connections = 20, connections_per_ip = 8: 20 sessions from three loopback addresses fill the server; a
    flood of 300 more from nine addresses all get 421 4.7.0 and are closed; the held sessions keep working
    (a transaction begun before the flood completes after it), and once released the server accepts again."""
    srv = ferry(limits={"connections": 20, "connections_per_ip": 8})
    time.sleep(0.3)   # the start-up probe session is over
    held = []
    try:
        held += [connect_from(srv.port, "127.0.0.1") for _ in range(8)]
        assert all(c.greeting.is_(220) for c in held), [str(c.greeting) for c in held]
        expect_refused_from(srv.port, "127.0.0.1")          # per-IP limit
        held += [connect_from(srv.port, "127.0.0.2") for _ in range(8)]
        held += [connect_from(srv.port, "127.0.0.3") for _ in range(4)]
        assert all(c.greeting.is_(220) for c in held), [str(c.greeting) for c in held]
        expect_refused_from(srv.port, "127.0.0.3")          # total limit (127.0.0.3 has only 4)
        expect_refused_from(srv.port, "127.0.0.4")          # total limit, a fresh address

        busy = held[0]
        busy.ehlo()
        busy.expect("MAIL FROM:<busy@client.test>", 250, "2.1.0")
        busy.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")

        def attempt(i):
            try:
                c = connect_from(srv.port, f"127.0.0.{1 + i % 9}")
            except (OSError, SMTPClosed) as e:
                return ("error", type(e).__name__)
            try:
                return (c.greeting.code, c.greeting.enhanced, c.wait_closed(3)[0])
            finally:
                c.close()

        t0 = time.monotonic()
        with ThreadPoolExecutor(max_workers=40) as pool:
            outcomes = Counter(pool.map(attempt, range(300)))
        assert outcomes == Counter({(421, "4.7.0", True): 300}), outcomes
        assert time.monotonic() - t0 < 15

        assert busy.cmd("DATA").code == 354
        content = make_message("held through flood")
        busy.send(content + b".\r\n")
        r = busy.reply()
        assert r.is_(250, "2.0.0"), r
        for c in held:
            c.expect("NOOP", 250, "2.0.0")
        assert_alive(srv)
    finally:
        for c in held:
            c.close()
    assert_delivered_once(srv, "alice", "held through flood", content)

    # released: the slots come back (closing is asynchronous, so allow a moment)
    deadline = time.monotonic() + 3
    again = []
    try:
        while len(again) < 8:
            c = connect_from(srv.port, "127.0.0.1")
            if c.greeting.code == 220:
                again.append(c)
                continue
            c.close()
            assert time.monotonic() < deadline, f"still refused after the flood was released: {c.greeting}"
            time.sleep(0.1)
        expect_refused_from(srv.port, "127.0.0.1")
    finally:
        for c in again:
            c.close()
    time.sleep(0.3)
    assert_serving(srv, "bob", "after flood")


# ---------------------------------------------------------------- 4. NUL octets

def test_nul_in_command_lines(ferry):
    """A NUL anywhere in a command line is refused with 500 5.5.2 and changes nothing: the session and the
    transaction carry on, and the NUL never reaches a header."""
    srv = ferry(limits={"errors": 50})
    with srv.connect() as c:
        for line in (b"\x00", b"\x00" * 100, b"NO\x00OP", b"EHLO evil\x00.test", b"HELO evil\x00"):
            r = c.cmd(line)
            assert r.is_(500, "5.5.2"), f"{line!r}: {r}"
        c.expect("MAIL FROM:<x@client.test>", 503, "5.5.1")   # the EHLO with a NUL did not count
        c.ehlo("client.test")
        r = c.cmd(b"MAIL FROM:<x\x00y@client.test>")
        assert r.is_(500, "5.5.2"), r
        c.expect("MAIL FROM:<nul@client.test>", 250, "2.1.0")
        for line in (b"RCPT TO:<bob\x00@example.test>", b"RCPT TO:<bob@example.test>\x00",
                     b"RCPT TO:<bob@example.test> \x00NOTIFY=NEVER", b"DATA\x00"):
            r = c.cmd(line)
            assert r.is_(500, "5.5.2"), f"{line!r}: {r}"
        c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
        assert c.cmd("DATA").code == 354
        content = make_message("after nul commands")
        c.send(content + b".\r\n")
        assert c.reply().is_(250, "2.0.0")
        c.quit()
    f = srv.wait_mail("alice")[0]
    data = f.read_bytes()
    assert b"\x00" not in data
    _, _, received, _, rest = parse_delivered(data)
    assert rest == content and "from client.test" in received, received
    time.sleep(0.3)
    assert srv.mail_files("bob") == []


@pytest.mark.parametrize("bdat", [False, True], ids=["DATA", "BDAT"])
def test_nul_in_message_content(ferry, bdat):
    """NUL octets in message content get one clear final reply. Ferry today accepts them (250) and delivers the
    content byte for byte (RFC 5321 leaves it to the server; Postfix also passes them). A refusal would have to
    be a 5xx with a 5.6.x code and deliver nothing. Either way the session carries on."""
    srv = ferry()
    content = b"Subject: nul\r\nMessage-ID: <nul@client.test>\r\n\r\nbefore\x00after\r\n\x00\r\n\x00\x00\x00 end\r\n"
    with srv.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<x@client.test>", 250, "2.1.0")
        c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
        if bdat:
            c.send(b"BDAT %d LAST\r\n" % len(content) + content)
        else:
            assert c.cmd("DATA").code == 354
            c.send(content + b".\r\n")
        r = c.reply()
        c.expect("NOOP", 250, "2.0.0")
        c.quit()
    if r.code == 250:
        assert r.is_(250, "2.0.0") and r.queue_id, r
        [f] = srv.wait_mail("alice")
        assert parse_delivered(f.read_bytes())[4] == content
    else:
        assert r.code // 100 == 5 and (r.enhanced or "").startswith("5.6."), r
        time.sleep(0.5)
        assert srv.mail_files("alice") == []
    assert_serving(srv, "bob")


# ---------------------------------------------------------------- 5. 8-bit octets, invalid UTF-8

@pytest.mark.parametrize("body_param", ["", " BODY=7BIT", " BODY=8BITMIME"])
def test_8bit_body(ferry, body_param):
    """8-bit octets in the body are accepted and delivered unchanged, whether or not BODY=8BITMIME was declared
    (RFC 6152 puts the obligation on the client; servers, Postfix included, pass the octets through)."""
    srv = ferry()
    content = (b"Subject: caf\xc3\xa9 8bit\r\nMessage-ID: <8bit@client.test>\r\n\r\n"
               b"latin-1 caf\xe9, utf-8 caf\xc3\xa9, junk \xff\xfe\x80\r\n")
    with srv.connect() as c:
        c.ehlo()
        c.expect(f"MAIL FROM:<x@client.test>{body_param}", 250, "2.1.0")
        c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
        assert c.cmd("DATA").code == 354
        c.send(content + b".\r\n")
        r = c.reply()
        assert r.is_(250, "2.0.0") and r.queue_id, r
        c.quit()
    [f] = srv.wait_mail("alice")
    assert parse_delivered(f.read_bytes())[4] == content


BAD_UTF8 = {
    "invalid lead octets": b"\xff\xfe",
    "truncated 2-octet": b"a\xc3",
    "lone continuation": b"\x80abc",
    "surrogate": b"\xed\xa0\x80",
    "overlong slash": b"\xc0\xaf",
    "above U+10FFFF": b"\xf4\x90\x80\x80",
}


def test_invalid_utf8_in_mail_from_under_smtputf8(ferry):
    """Malformed UTF-8 in MAIL FROM, local part or domain, is a syntax error: 501 5.1.7 (RFC 6531 3.3 allows
    only well-formed UTF-8, RFC 3629). Without SMTPUTF8 it is 501 5.1.7 or 553 5.6.7. Then well-formed UTF-8
    is accepted in the same session and the message is delivered with the UTF-8 Return-Path."""
    srv = ferry(limits={"errors": 50})
    with srv.connect() as c:
        c.ehlo()
        for name, bad in BAD_UTF8.items():
            for addr in (bad + b"@client.test", b"user@cl" + bad + b".test"):
                r = c.cmd(b"MAIL FROM:<" + addr + b"> SMTPUTF8")
                assert r.is_(501, "5.1.7"), f"{name} {addr!r}: {r}"
        r = c.cmd(b"MAIL FROM:<\xff\xfe@client.test>")
        assert r.is_(501, "5.1.7") or r.is_(553, "5.6.7"), r
        c.expect(b"MAIL FROM:<jos\xc3\xa9@cli\xc3\xa9nt.test> SMTPUTF8", 250, "2.1.0")
        c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
        assert c.cmd("DATA").code == 354
        content = make_message("utf8 sender")
        c.send(content + b".\r\n")
        assert c.reply().is_(250, "2.0.0")
        c.quit()
    [f] = srv.wait_mail("alice")
    rp, _, received, _, rest = parse_delivered(f.read_bytes())
    assert rest == content
    assert rp == "<jos\u00e9@cli\u00e9nt.test>", rp
    # RFC 6531 3.7.3 registers the "with" types UTF8SMTP, UTF8SMTPA, UTF8SMTPS and UTF8SMTPSA (IANA "WITH
    # protocol types"); Ferry wrote the unregistered "UTF8ESMTP" until this test caught it.
    assert re.search(r" with UTF8SMTP ", received), received


def test_invalid_utf8_in_rcpt_to_under_smtputf8(ferry):
    """Malformed UTF-8 in RCPT TO is 501 5.1.3 and adds no recipient; the transaction goes on with the valid
    ones and is delivered to them only."""
    srv = ferry(limits={"errors": 50})
    with srv.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<x@client.test> SMTPUTF8", 250, "2.1.0")
        for name, bad in BAD_UTF8.items():
            for addr in (b"bob" + bad + b"@example.test", b"bob@exa" + bad + b"mple.test"):
                r = c.cmd(b"RCPT TO:<" + addr + b">")
                assert r.is_(501, "5.1.3"), f"{name} {addr!r}: {r}"
        c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
        assert c.cmd("DATA").code == 354
        content = make_message("utf8 rcpt")
        c.send(content + b".\r\n")
        assert c.reply().is_(250, "2.0.0")
        c.quit()
    [f] = srv.wait_mail("alice")
    assert parse_delivered(f.read_bytes())[4] == content
    time.sleep(0.3)
    assert srv.mail_files("bob") == []


# ---------------------------------------------------------------- 6. megabyte lines

def test_megabyte_command_line(ferry):
    """A 1 MB command line gets one 500 5.5.2 once its CRLF arrives; its tail is never read as a command (it
    ends in QUIT here), and the command pipelined after it is answered normally."""
    srv = ferry()
    with srv.connect() as c:
        c.ehlo()
        c.send(b"NOOP " + b"x" * MB + b"\r\n")
        r = c.reply()
        assert r.is_(500, "5.5.2"), r
        c.send(b"MAIL FROM:<" + b"a" * MB + b"QUIT\r\nNOOP\r\n")
        r = c.reply()
        assert r.is_(500, "5.5.2"), r
        r = c.reply()   # the pipelined NOOP
        assert r.is_(250, "2.0.0"), r
        c.expect("NOOP", 250, "2.0.0")   # and nothing else was queued up behind it (no reply to a QUIT)
        c.send_message("x@client.test", ["alice@example.test"], make_message("after long command"))
        c.quit()
    [f] = srv.wait_mail("alice")
    assert header_value(f.read_bytes(), "Subject") == "after long command"


def test_megabyte_line_in_data(ferry):
    """A 1 MB line inside DATA is answered 550 5.6.0 after the final dot (RFC 5321 4.5.3.1.6), nothing is
    delivered, and the next transaction in the same session works."""
    srv = ferry()
    with srv.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<x@client.test>", 250, "2.1.0")
        c.expect("RCPT TO:<bob@example.test>", 250, "2.1.5")
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: megaline\r\n\r\n" + b"m" * MB + b"\r\nafter\r\n.\r\n")
        r = c.reply()
        assert r.is_(550, "5.6.0"), r
        c.expect("NOOP", 250, "2.0.0")
        c.send_message("x@client.test", ["alice@example.test"], make_message("after megaline"))
        c.quit()
    srv.wait_mail("alice")
    time.sleep(0.5)
    assert srv.mail_files("bob") == []


def test_long_lines_from_many_sessions_memory_bounded(ferry):
    """8 sessions at once each send a 16 MB command line and a 16 MB line inside DATA (below the 50 MB message
    size): every one gets its 500 5.5.2 and 550 5.6.0, and the server's peak RSS grows by less than 64 MB,
    where buffering the lines would take 8 x 16 MB."""
    srv = ferry()
    rss_before = proc_status(srv.proc.pid, "VmRSS")
    line = b"L" * (16 * MB)

    def one(i):
        with srv.connect(timeout=30) as c:
            c.ehlo()
            c.send(b"NOOP " + line + b"\r\n")
            r1 = c.reply()
            c.expect(f"MAIL FROM:<long{i}@client.test>", 250, "2.1.0")
            c.expect("RCPT TO:<bob@example.test>", 250, "2.1.5")
            assert c.cmd("DATA").code == 354
            c.send(b"Subject: long\r\n\r\n" + line + b"\r\n.\r\n")
            r2 = c.reply()
            c.expect("NOOP", 250, "2.0.0")
            c.quit()
            return (r1.code, r1.enhanced, r2.code, r2.enhanced)

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, range(8)))
    assert results == [(500, "5.5.2", 550, "5.6.0")] * 8, results
    assert time.monotonic() - t0 < 20
    assert_memory_bounded(srv, rss_before, "8 sessions x (16 MB command line + 16 MB text line)")
    assert_serving(srv)
    assert srv.mail_files("bob") == []


# ---------------------------------------------------------------- 7. 10,000 recipients

def test_ten_thousand_pipelined_recipients(ferry):
    """MAIL, 10,000 RCPT and DATA in one write (recipient limit 100): every line is answered in order, the
    first 100 with 250 2.1.5 and the rest with 452 4.5.3 (which do not count toward the error limit); the
    message goes to the 100 accepted recipients only; memory stays bounded."""
    n = 10000
    # r0..r99 lead to alice, everything after them to bob: bob must get nothing.
    aliases = {f"r{i}@example.test": ["alice@example.test" if i < 100 else "bob@example.test"] for i in range(n)}
    srv = ferry(aliases=aliases)
    rss_before = proc_status(srv.proc.pid, "VmRSS")
    content = make_message("ten thousand")
    with srv.connect(timeout=30) as c:
        c.ehlo()
        burst = (b"MAIL FROM:<many@client.test>\r\n" +
                 b"".join(b"RCPT TO:<r%d@example.test>\r\n" % i for i in range(n)) + b"DATA\r\n")
        join = in_thread(lambda: c.send(burst))   # replies are read while the burst is written
        replies = c.replies(n + 2, timeout=30)
        join()
        assert replies[0].is_(250, "2.1.0"), replies[0]
        rcpt = replies[1:n + 1]
        codes = Counter((r.code, r.enhanced) for r in rcpt)
        assert codes == Counter({(250, "2.1.5"): 100, (452, "4.5.3"): n - 100}), codes
        assert all(r.is_(250, "2.1.5") for r in rcpt[:100])
        assert replies[-1].code == 354, replies[-1]
        c.send(content + b".\r\n")
        r = c.reply(timeout=30)
        assert r.is_(250, "2.0.0") and r.queue_id, r
        c.expect("NOOP", 250, "2.0.0")
        c.quit()
    srv.wait_log(rf"queued id={r.queue_id} .* nrcpt=100\b")
    files = srv.wait_mail("alice")
    time.sleep(0.5)
    files = srv.mail_files("alice")
    assert len(files) == 1, f"alice got {len(files)} copies (100 aliases of one mailbox)"
    assert parse_delivered(files[0].read_bytes())[4] == content
    assert srv.mail_files("bob") == []
    assert_memory_bounded(srv, rss_before, "10,000 pipelined RCPT")
    assert_serving(srv)


# ---------------------------------------------------------------- 8. pipelined garbage

GARBAGE = {
    "random octets": random.Random(5321).randbytes(MB),
    "bad commands": b"FOO BAR\r\n" * 5000,
    "binary with CRLF": b"\x00\xff\x1b[2J\x80\x7f\r\n" * 20000,
    "HTTP": b"GET / HTTP/1.1\r\nHost: mx.example.test\r\nUser-Agent: x\r\n\r\n" * 2000,
    "TLS hello": bytes.fromhex("16030100f4010000f00303") + random.Random(1).randbytes(600) + b"\r\n" * 50,
    "long lines": (b"Z" * 5000 + b"\r\n") * 200,
}


def send_garbage(c, junk):
    """Writes junk in a thread (the server may close before taking all of it); returns what it sent back
    before closing, or None if it did not close within 10 s."""
    def write():
        try:
            c.sock.sendall(junk)
        except OSError:
            pass
    join = in_thread(write)
    data = read_until_closed(c, 10)
    join(15)
    return data


def check_error_limit_replies(data, errors, what):
    assert data is not None, f"{what}: connection still open 10 s after the junk"
    lines = parse_reply_lines(data)
    assert lines and re.fullmatch(rb"421 4\.7\.0 .*too many errors.*", lines[-1]), f"{what}: ends {lines[-3:]}"
    assert len(lines) == errors + 1, f"{what}: {len(lines)} replies, expected {errors} errors and the 421"
    bad = [l for l in lines[:-1] if not re.fullmatch(rb"5\d\d 5\.\d{1,3}\.\d{1,3} [^\r\n]*", l)]
    assert not bad, f"{what}: replies other than 5xx with an enhanced code: {bad[:5]}"


@pytest.mark.parametrize("kind", list(GARBAGE))
def test_pipelined_garbage_hits_error_limit(ferry, kind):
    """Junk in one write gets 5xx replies with enhanced codes up to the error limit, then 421 4.7.0 and a close;
    the server keeps serving."""
    srv = ferry(limits={"errors": 10})
    c = srv.connect()
    try:
        data = send_garbage(c, GARBAGE[kind])
    finally:
        c.close()
    check_error_limit_replies(data, 10, kind)
    assert_serving(srv)


def test_garbage_from_many_sessions_at_once(ferry):
    """Every kind of junk from 4 sessions each at the same time (24 sessions): each ends in 421 4.7.0, the
    server stays up, and a normal session delivers right after."""
    srv = ferry(limits={"errors": 10})
    rss_before = proc_status(srv.proc.pid, "VmRSS")

    def one(kind):
        c = srv.connect()
        try:
            return kind, send_garbage(c, GARBAGE[kind])
        finally:
            c.close()

    with ThreadPoolExecutor(max_workers=24) as pool:
        results = list(pool.map(one, [k for k in GARBAGE for _ in range(4)]))
    for kind, data in results:
        check_error_limit_replies(data, 10, kind)
    assert_memory_bounded(srv, rss_before, "24 garbage sessions")
    assert_serving(srv)


def test_garbage_inside_data(ferry):
    """1 MB of random octets as message content, then <CRLF>.<CRLF>: one clear 550 (bare CR/LF 5.5.2, or
    over-long line 5.6.0), nothing delivered, and the session goes on."""
    srv = ferry()
    junk = random.Random(25).randbytes(MB).replace(b"\r\n.\r\n", b"\r\n..\r\n")
    with srv.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<x@client.test>", 250, "2.1.0")
        c.expect("RCPT TO:<bob@example.test>", 250, "2.1.5")
        assert c.cmd("DATA").code == 354
        c.send(junk + b"\r\n.\r\n")
        r = c.reply()
        assert r.code == 550 and r.enhanced in ("5.5.2", "5.6.0"), r
        c.expect("NOOP", 250, "2.0.0")
        c.quit()
    assert_serving(srv)
    assert srv.mail_files("bob") == []
