"""A restart does not undo the backoff, and a destination that just failed is held as dead (queue/delivery_record,
queue/dead_destinations).

Measured before: 20,000 messages deferred for a dead relay were all retried within 4 s of a restart (3,000
connection attempts to the same dead host), because the next-attempt time lived only in memory; and each batch of
messages coming due opened its own connection to the dead host. Here the dead host is a loopback listener that
accepts each connection and closes it at once (Ferry sees the connection lost before the greeting: 4.4.2), and
counts the connections. Retries are 10 minutes apart, so nothing in these tests is due again by itself.
"""

import base64
import socket
import threading
import time

import pytest

from dnstest import DnsServer
from ferrytest import DEFAULT_PASSWORD, RawSMTP, dot_stuff, free_port, make_message, toml_section
from smtppeer import SmtpPeer

ALICE = "alice@example.test"
DEAD = "dead.example.org"
MESSAGES = 50
WAIT = 30.0

ZONE = {
    DEAD: [("MX", 10, "mx.dead.example.org")],
    "mx.dead.example.org": [("A", "127.0.0.1")],
}


class ClosingListener:
    """Accepts every connection on 127.0.0.1 and closes it at once; counts them."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.count = 0
        self.lock = threading.Lock()
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.count += 1
            conn.close()

    def connections(self):
        with self.lock:
            return self.count

    def stop(self):
        self.running = False
        self.thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def dead_host():
    listener = ClosingListener()
    yield listener
    listener.stop()


@pytest.fixture(scope="module")
def dns():
    with DnsServer(ZONE) as server:
        yield server


def sender(ferry, dns, port, outbound=None):
    """Ferry with a submission listener (plaintext AUTH on loopback), the test DNS, every MX on `port`."""
    sub = free_port()
    ob = {"port": port, "connect_timeout": "2s", "command_timeout": "3s"}
    ob.update(outbound or {})
    extra = (f'[[listen]]\naddress = "127.0.0.1:{sub}"\nrole = "submission"\nplaintext_auth = true\n\n'
             + toml_section("dns", {"resolver": dns.address, "timeout": "1s"}) + "\n"
             + toml_section("outbound", ob))
    srv = ferry(start=False, queue={"min_retry": "10m", "max_retry": "1h"}, extra_toml=extra)
    srv.sub_port = sub
    srv.start()
    return srv


def submit_many(srv, count, extra_rcpts=(), domain=lambda i: DEAD):
    """`count` messages from alice to distinct recipients at the dead domain (and `extra_rcpts`), in one session;
    returns their queue ids."""
    ids = []
    with RawSMTP(srv.sub_port, timeout=10) as c:
        assert c.greeting.code == 220, c.greeting
        c.ehlo("client.test")
        token = base64.b64encode(f"\0{ALICE}\0{DEFAULT_PASSWORD}".encode()).decode()
        c.expect(f"AUTH PLAIN {token}", 235)
        for i in range(count):
            rcpt = f"user{i}@{domain(i)}"
            c.expect(f"MAIL FROM:<{ALICE}>", 250)
            for r in (rcpt, *extra_rcpts):
                c.expect(f"RCPT TO:<{r}>", 250)
            assert c.cmd("DATA").code == 354
            c.send(dot_stuff(make_message(f"backoff {i}", sender=ALICE, to=rcpt)) + b".\r\n")
            r = c.reply()
            assert r.is_(250, "2.0.0") and r.queue_id, r
            ids.append(r.queue_id)
        c.quit()
    return ids


def all_deferred(entries, count=MESSAGES):
    """Every message is in the queue, tried at least once, and waits for a later attempt."""
    now = time.time()
    rcpts = [r for e in entries for r in e["recipients"]]
    return (len(entries) == count and len(rcpts) == count
            and all(r["attempts"] >= 1 and r["next_attempt"] is not None and r["next_attempt"] > now for r in rcpts))


def test_restart_keeps_each_messages_next_attempt(dns, dead_host, ferry):
    srv = sender(ferry, dns, dead_host.port)
    submit_many(srv, MESSAGES)
    before = srv.wait_queue(all_deferred, timeout=WAIT, what=f"{MESSAGES} deferred messages")
    assert dead_host.connections() >= 1
    assert srv.stop() == 0
    stored = {e["id"]: e["recipients"][0]["next_attempt"] for e in before}

    tried_before = dead_host.connections()
    srv.start()
    time.sleep(4)
    assert dead_host.connections() - tried_before == 0, \
        f"connections to the dead host within 4 s of the restart\n{srv.log[-3000:]}"
    after = srv.queue_list()
    assert all_deferred(after), after
    now = time.time()
    for e in after:
        [r] = e["recipients"]
        assert r["next_attempt"] > now + 60, f"next attempt of {e['id']} is not in the future: {r}"
        # The time recorded before the restart (to the second), not a new one.
        assert abs(r["next_attempt"] - stored[e["id"]]) <= 1, (r, stored[e["id"]])
        assert r["attempts"] >= 1 and r["last_error"], r

    # `ferry queue flush` still overrides the stored times.
    assert srv.queue_cli("flush").returncode == 0
    deadline = time.monotonic() + WAIT
    while dead_host.connections() == tried_before:
        assert time.monotonic() < deadline, f"flush did not retry\n{srv.log[-3000:]}"
        time.sleep(0.05)
    srv.wait_queue(lambda q: all(r["attempts"] >= 2 for e in q for r in e["recipients"]) and all_deferred(q),
                   timeout=WAIT, what="a second attempt of every message")


def test_a_dead_destination_defers_its_waiting_messages_without_connecting(dns, dead_host, ferry):
    srv = sender(ferry, dns, dead_host.port)
    submit_many(srv, MESSAGES)
    srv.wait_queue(all_deferred, timeout=WAIT, what=f"{MESSAGES} deferred messages")
    first_round = dead_host.connections()
    # The messages came one by one; after the first connection failed the rest waited without one of their own.
    assert 1 <= first_round <= 10, f"{first_round} connections for {MESSAGES} messages to one dead destination"
    srv.wait_log(rf"outbound destination={DEAD} held as dead", timeout=5)
    srv.wait_log(rf"to=<user{MESSAGES - 1}@{DEAD}> .*status=deferred .*not tried: {DEAD} failed", timeout=5)

    # A flush clears the mark: the destination is tried again (and found dead again).
    assert srv.queue_cli("flush").returncode == 0
    srv.wait_queue(lambda q: all(r["attempts"] >= 2 for e in q for r in e["recipients"]) and all_deferred(q),
                   timeout=WAIT, what="a second attempt of every message")
    # (All 50 are due at once then: the first batch's jobs may open up to max_connections_per_destination.)
    assert dead_host.connections() > first_round


def test_a_dead_relay_host_is_dead_for_every_domain(dns, dead_host, ferry):
    srv = sender(ferry, dns, dead_host.port, outbound={"relay_host": f"127.0.0.1:{dead_host.port}"})
    submit_many(srv, MESSAGES, domain=lambda i: f"d{i}.example.org")
    srv.wait_queue(all_deferred, timeout=WAIT, what=f"{MESSAGES} deferred messages")
    connections = dead_host.connections()
    assert 1 <= connections <= 10, f"{connections} connections for {MESSAGES} messages through one dead relay host"
    srv.wait_log(rf"outbound destination=\[127\.0\.0\.1:{dead_host.port}\] held as dead", timeout=5)


def test_a_record_written_before_the_upgrade_still_delivers(dns, ferry):
    """A queue/<id>.done without the next-attempt line (the format before it) is read as before: the message is due
    at once after the restart, and what it records as final is not delivered again."""
    port = free_port()   # nothing listens yet: connection refused
    srv = sender(ferry, dns, port)
    [qid] = submit_many(srv, 1, extra_rcpts=["bob@example.test"])
    srv.wait_mail("bob", timeout=WAIT)
    srv.wait_queue(lambda q: all_deferred(q, count=1), timeout=WAIT, what="the remote recipient deferred")
    assert srv.stop() == 0
    record = srv.data_dir / "spool" / "queue" / f"{qid}.done"
    lines = record.read_text().splitlines(keepends=True)
    assert any(line.startswith("\tnext\t") for line in lines), lines
    record.write_text("".join(line for line in lines if not line.startswith("\tnext\t")))

    peer = SmtpPeer(port=port).start()
    try:
        srv.start()
        peer.wait_for(lambda p: len(p.messages) >= 1, WAIT, "the deferred message")
        assert peer.messages[0].rcpts == [f"user0@{DEAD}"]
        srv.wait_queue(lambda q: q == [], timeout=WAIT, what="an empty queue")
        assert len(srv.mail_files("bob")) == 1, "the local copy recorded as final was delivered again"
    finally:
        peer.stop()
