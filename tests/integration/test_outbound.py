"""Outbound delivery (issue 6): Ferry as an SMTP client. MX lookups against a test DNS server
(dnstest.DnsServer), remote servers played by a scripted peer (smtppeer.SmtpPeer) or a second `ferry serve`,
retries and the queue CLI, DSN bounces (RFC 3464, RFC 6533 for SMTPUTF8 mail) and the DSN extension (RFC 3461).

Ferry relays for an authenticated user: every test's sender server has a loopback submission listener with
plaintext_auth, and alice@example.test submits there (so a bounce comes back to alice's Maildir). [outbound] port
points every MX at the test's peer; the zone below maps the MX names to 127.0.0.x. Settings are short
(retries 1-2 s, DNS timeout 1 s, connect 2 s, commands 3 s) so a test takes seconds.
"""

import base64
import email
import email.parser
import email.policy
import os
import re
import socket
import subprocess
import time

import pytest

from dnstest import DnsServer
from ferrytest import (DEFAULT_PASSWORD, RawSMTP, dot_stuff, ferry_bin, free_port, header_value, make_message,
                       parse_delivered, toml_section)
from smtppeer import DEFAULT_CAPS, SmtpPeer

HOSTNAME = "mx.example.test"
ALICE = "alice@example.test"
WAIT = 15.0          # the longest any single wait may take (a pass is much faster)

ZONE = {
    "example.org": [("MX", 10, "mx.example.org")],
    "mx.example.org": [("A", "127.0.0.1")],
    "implicit.example.org": [("A", "127.0.0.1")],                 # no MX: the domain itself
    "null.example.org": [("MX", 0, ".")],                          # RFC 7505
    # nowhere.example.org is not in the zone: NXDOMAIN
    "fallback.example.org": [("MX", 10, "down.example.org"), ("MX", 20, "mx.example.org")],
    "down.example.org": [("A", "127.0.0.2")],                      # nothing listens there: refused
    "pref.example.org": [("MX", 20, "backup.example.org"), ("MX", 10, "mx.example.org")],
    "backup.example.org": [("A", "127.0.0.3")],
    "greet.example.org": [("MX", 10, "grumpy.example.org"), ("MX", 20, "mx.example.org")],
    "grumpy.example.org": [("A", "127.0.0.4")],
    # smart.example.org (the smarthost test's recipients) is deliberately absent: a lookup would bounce it
    "slow.example.net": [("MX", 10, "mx.slow.example.net")],
    "mx.slow.example.net": [("A", "127.0.0.5")],
    "v6.example.org": [("MX", 10, "mx6.example.org")],
    "mx6.example.org": [("AAAA", "::1")],                          # IPv6 only
}

NO_TLS_CAPS = [c for c in DEFAULT_CAPS if c != "STARTTLS"]


# ---------------------------------------------------------------- fixtures and helpers

@pytest.fixture(scope="module")
def dns():
    with DnsServer(ZONE) as server:
        yield server


@pytest.fixture
def make_peer():
    """Factory: make_peer(port=..., host=..., **knobs) -> a started SmtpPeer; all are stopped at teardown."""
    peers = []

    def make(**kw):
        p = SmtpPeer(**kw)
        peers.append(p)
        return p.start()

    yield make
    for p in peers:
        p.stop()


@pytest.fixture
def peer(make_peer):
    """The remote MX: 127.0.0.1, a free port, STARTTLS, DSN, PIPELINING, ... (smtppeer.DEFAULT_CAPS)."""
    return make_peer()


def sender_server(ferry, dns, port, *, outbound=None, queue=None, start=True, dns_timeout="1s", **kw):
    """The Ferry under test: mx on srv.port, a loopback submission listener with plaintext AUTH on
    srv.sub_port, the test DNS server, every remote SMTP server on `port`."""
    sub = free_port()
    ob = {"port": port, "connect_timeout": "2s", "command_timeout": "3s"}
    ob.update(outbound or {})
    q = {"min_retry": "1s", "max_retry": "2s"}
    q.update(queue or {})
    extra = (f'[[listen]]\naddress = "127.0.0.1:{sub}"\nrole = "submission"\nplaintext_auth = true\n\n'
             + toml_section("dns", {"resolver": dns.address, "timeout": dns_timeout}) + "\n"
             + toml_section("outbound", ob))
    srv = ferry(start=False, queue=q, extra_toml=extra, **kw)
    srv.sub_port = sub
    if start:
        srv.start()
    return srv


def submit(srv, rcpts, content=None, *, mail_from=ALICE, mail_params="", rcpt_params=None, subject="outbound"):
    """One message as alice (AUTH PLAIN on the submission listener) -> queue id. rcpt_params: a string for every
    RCPT, or {address: string}."""
    if isinstance(rcpts, str):
        rcpts = [rcpts]
    if content is None:   # the submission listener wants alice's address in From: too
        content = make_message(subject, sender=ALICE, to=rcpts[0])
    with RawSMTP(srv.sub_port, timeout=10) as c:
        assert c.greeting.code == 220, c.greeting
        c.ehlo("client.test")
        token = base64.b64encode(f"\0{ALICE}\0{DEFAULT_PASSWORD}".encode()).decode()
        c.expect(f"AUTH PLAIN {token}", 235)
        c.expect(f"MAIL FROM:<{mail_from}>" + (f" {mail_params}" if mail_params else ""), 250)
        for r in rcpts:
            params = rcpt_params.get(r, "") if isinstance(rcpt_params, dict) else (rcpt_params or "")
            c.expect(f"RCPT TO:<{r}>" + (f" {params}" if params else ""), 250)
        assert c.cmd("DATA").code == 354
        c.send(dot_stuff(content) + b".\r\n")
        r = c.reply()
        assert r.is_(250, "2.0.0") and r.queue_id, f"end of data: {r}"
        c.quit()
    return r.queue_id


def log_rx(qid, rcpt, status):
    """`delivery id=ID to=<rcpt> ... status=STATUS` (other fields, e.g. orig_to=, may come between)."""
    return rf"\bid={qid} to=<{re.escape(rcpt)}> (?:.* )?status={status}\b"


def delivered_rx(qid, rcpt, relay=r"\S+"):
    """`delivered id=ID to=<rcpt> ... relay=HOST[IP]:PORT ...`; relay is a regex."""
    return rf"\bdelivered id={qid} to=<{re.escape(rcpt)}> (?:.* )?relay={relay}"


def field_address(value):
    """'rfc822; Bob@Example.org' -> 'bob@example.org'."""
    assert value is not None and ";" in value, f"not an address-type; address field: {value!r}"
    kind, _, addr = str(value).partition(";")
    assert kind.strip().lower() == "rfc822", value
    return addr.strip().lower()


class Dsn:
    """A delivery status notification as delivered to a Maildir, checked for the RFC 3464 shape."""

    def __init__(self, path):
        self.path = path
        self.raw = path.read_bytes()
        self.text = self.raw.decode("utf-8", "replace")
        assert self.raw.startswith(b"Return-Path: <>\r\n"), f"a DSN has the null sender: {self.raw[:300]!r}"
        self.delivered_to = header_value(self.raw, "Delivered-To")
        msg = email.message_from_bytes(self.raw, policy=email.policy.default)
        self.msg = msg
        assert msg.is_multipart(), self.text[:3000]
        assert msg.get_content_type() == "multipart/report", msg.get_content_type()
        frm = msg["From"].addresses
        assert len(frm) == 1 and frm[0].addr_spec.lower() == f"mailer-daemon@{HOSTNAME}", msg["From"]
        assert frm[0].display_name == "Mail Delivery System", msg["From"]
        self.parts = list(msg.iter_parts())
        assert len(self.parts) >= 2, [p.get_content_type() for p in self.parts]
        assert self.parts[0].get_content_type() == "text/plain", [p.get_content_type() for p in self.parts]
        # RFC 6533: a DSN about an SMTPUTF8 message may use the message/global-* types.
        kind = self.parts[1].get_content_type()
        assert kind in ("message/delivery-status", "message/global-delivery-status"), \
            [p.get_content_type() for p in self.parts]
        # RFC 6522 3: report-type is the subtype of that second part.
        assert msg.get_param("report-type") == kind.split("/")[1], msg["Content-Type"]
        if kind == "message/delivery-status":
            blocks = self.parts[1].get_payload()   # the email package splits it into header blocks
        else:
            # The email package reads it as one nested message (headers: the first block); write it back out.
            payload = self.parts[1].get_payload()
            body = payload if isinstance(payload, str) else "".join(m.as_string() for m in payload)
            parser = email.parser.HeaderParser(policy=email.policy.default)
            blocks = [parser.parsestr(b + "\n") for b in re.split(r"\r?\n[ \t]*\r?\n", body.strip()) if b.strip()]
        assert isinstance(blocks, list) and len(blocks) >= 2, f"delivery-status blocks: {blocks!r}"
        self.per_message = blocks[0]
        self.recipients = blocks[1:]
        self.original = self.parts[2] if len(self.parts) > 2 else None
        reporting = self.per_message["Reporting-MTA"]
        assert reporting is not None and reporting.replace(" ", "").lower() == f"dns;{HOSTNAME}", reporting

    def recipient(self, address):
        for r in self.recipients:
            if field_address(r["Final-Recipient"]) == address.lower():
                return r
        raise AssertionError(f"no per-recipient block for {address} in\n{self.text[:4000]}")

    def final_recipients(self):
        return sorted(field_address(r["Final-Recipient"]) for r in self.recipients)

    def __repr__(self):
        return self.text[:4000]


def check_alive(srv):
    """Fail at once (not after a whole wait) when the server under test has died."""
    if not srv.running():
        code = srv.proc.returncode if srv.proc is not None else None
        raise AssertionError(f"ferry serve on port {srv.port} is not running (exit status {code})\n"
                             f"--- log (tail) ---\n{srv.log[-4000:]}")


def wait_peer(peer, srv, n=1, timeout=WAIT):
    """The first n messages the peer accepted, once there are n; fails early if srv dies."""
    def done(p):
        check_alive(srv)
        return len(p.messages) >= n
    peer.wait_for(done, timeout, f"{n} message(s)")
    return list(peer.messages[:n])


def status_of(block):
    return str(block["Status"]).split()[0]


def wait_dsn(srv, count=1, timeout=WAIT):
    """The DSNs in alice's Maildir, once there are `count`; fails early if srv dies."""
    deadline = time.monotonic() + timeout
    while len(srv.mail_files("alice")) < count:
        check_alive(srv)
        if time.monotonic() > deadline:
            srv.wait_mail("alice", count=count, timeout=0)   # raises, with the log
        time.sleep(0.05)
    return [Dsn(f) for f in srv.mail_files("alice")]


def assert_failed(block, status, *, diagnostic=None):
    assert str(block["Action"]).strip().lower() == "failed", str(block)
    assert status_of(block) == status, str(block)
    if diagnostic is not None:
        code = block["Diagnostic-Code"]
        assert code is not None and str(code).replace(" ", "").lower().startswith("smtp;"), str(block)
        assert diagnostic in " ".join(str(code).split()), str(block)


def assert_no_dsn(srv, qid, settle=1.0):
    """No bounce was made for qid: nothing in alice's Maildir, no `bounce id=` log line (after `settle` s)."""
    time.sleep(settle)
    assert srv.mail_files("alice") == [], "a DSN arrived"
    assert not re.search(rf"\bbounce id={qid} dsn=", srv.log), srv.log[-3000:]


def has_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def big_body(n):
    line = "0123456789" * 7 + "\r\n"
    return line * (n // len(line) + 1)


# ---------------------------------------------------------------- delivery by MX

def test_delivery_by_mx_with_starttls(dns, peer, ferry):
    srv = sender_server(ferry, dns, peer.port)
    content = make_message("outbound one", sender=ALICE, to="bob@example.org",
                           body="hello\r\n.a line with a leading dot\r\n..two\r\n.\r\nend\r\n")
    qid = submit(srv, "bob@example.org", content)
    [m] = wait_peer(peer, srv, 1)
    t = m.session
    assert m.tls, t.describe()
    assert t.verbs[:3] == ["EHLO", "STARTTLS", "EHLO"], t.describe()
    assert t.ehlo_names == [("EHLO", HOSTNAME), ("EHLO", HOSTNAME)], t.describe()
    assert t.injected == b"", "the client sent commands behind STARTTLS"
    assert m.sender == ALICE and m.mail_line.startswith(f"MAIL FROM:<{ALICE}>"), m.mail_line
    assert m.rcpt_lines and m.rcpt_lines[0].startswith("RCPT TO:<bob@example.org>"), m.rcpt_lines
    assert m.rcpts == ["bob@example.org"]
    # Ferry's own Received: field first, then the message exactly as submitted (dot-stuffing undone).
    assert m.data.startswith(b"Received: "), m.data[:300]
    assert m.data.endswith(content), m.data
    assert f"by {HOSTNAME}" in header_value(m.data, "Received")
    assert header_value(m.data, "Subject") == "outbound one"
    assert header_value(m.data, "Return-Path") is None and header_value(m.data, "Delivered-To") is None
    # RFC 1870: SIZE= with the message size when the server offers SIZE.
    assert "SIZE" in m.mail_params and int(m.mail_params["SIZE"]) >= len(content), m.mail_line
    srv.wait_log(delivered_rx(qid, "bob@example.org", rf"mx\.example\.org\[127\.0\.0\.1\]:{peer.port}\b")
                 + r".* tls=TLSv1\.[23]\b.* status=sent \(250 ", timeout=5)
    srv.wait_queue(lambda q: q == [], timeout=5, what="an empty queue")
    assert srv.mail_files("alice") == []


def test_body_8bitmime_is_passed_on_byte_exact(dns, peer, ferry):
    srv = sender_server(ferry, dns, peer.port)
    content = (b"From: <alice@example.test>\r\nTo: <bob@example.org>\r\nSubject: eight bit\r\nMIME-Version: 1.0\r\n"
               b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
               b"caf\xc3\xa9 \xe2\x82\xac\r\n.dot\r\n" + b"L" * 998 + b"\r\n\r\n\tlast\r\n")
    submit(srv, "bob@example.org", content, mail_params="BODY=8BITMIME")
    [m] = wait_peer(peer, srv, 1)
    assert m.mail_params.get("BODY", "").upper() == "8BITMIME", m.mail_line
    assert m.data.endswith(content)


def test_delivery_to_a_second_ferry(dns, ferry):
    b = ferry(domains=["example.org"], users=("bob@example.org",), hostname="mx.example.org")
    a = sender_server(ferry, dns, b.port)
    content = make_message("ferry to ferry", sender=ALICE, to="bob@example.org")
    qid = submit(a, "bob@example.org", content)
    [f] = b.wait_mail("bob", domain="example.org", timeout=WAIT)
    rp, dt, received, _, rest = parse_delivered(f.read_bytes())
    assert rp == f"<{ALICE}>"
    assert dt.strip("<>").lower() == "bob@example.org"
    # B's trace field: from A (its EHLO name), over TLS; then A's own, from the submission.
    assert received.startswith(f"Received: from {HOSTNAME} ("), received
    assert "by mx.example.org" in received and " with ESMTPS id " in received, received
    a_received = header_value(rest, "Received")
    assert a_received is not None and f"by {HOSTNAME}" in a_received and f"id {qid}" in a_received, a_received
    assert rest.endswith(content)
    a.wait_log(delivered_rx(qid, "bob@example.org", rf"mx\.example\.org\[127\.0\.0\.1\]:{b.port}\b"), timeout=5)


def test_alias_to_a_remote_address_is_relayed(dns, peer, ferry):
    """The mx listener accepts a local alias; its remote target is delivered by MX."""
    srv = sender_server(ferry, dns, peer.port, aliases={"fwd@example.test": ["bob@example.org"]})
    srv.send("fwd@example.test", subject="forwarded")
    [m] = wait_peer(peer, srv, 1)
    assert m.rcpts == ["bob@example.org"]
    assert header_value(m.data, "Subject") == "forwarded"


def test_implicit_mx_is_the_domain_itself(dns, peer, ferry):
    srv = sender_server(ferry, dns, peer.port)
    qid = submit(srv, "carol@implicit.example.org")
    [m] = wait_peer(peer, srv, 1)
    assert m.rcpts == ["carol@implicit.example.org"]
    srv.wait_log(delivered_rx(qid, "carol@implicit.example.org",
                              rf"implicit\.example\.org\[127\.0\.0\.1\]:{peer.port}\b"), timeout=5)


def test_null_mx_bounces_5_1_10(dns, peer, ferry):
    srv = sender_server(ferry, dns, peer.port)
    qid = submit(srv, "carol@null.example.org", subject="to null mx")
    [dsn] = wait_dsn(srv)
    assert dsn.final_recipients() == ["carol@null.example.org"]
    assert_failed(dsn.recipient("carol@null.example.org"), "5.1.10")
    srv.wait_log(log_rx(qid, "carol@null.example.org", "bounced"), timeout=5)
    srv.wait_log(rf"\bbounce id={qid} dsn=[0-9A-Z]+ to=<{ALICE}>", timeout=5)
    assert peer.connections == 0


def test_nxdomain_bounces_5_1_2(dns, peer, ferry):
    srv = sender_server(ferry, dns, peer.port)
    qid = submit(srv, "carol@nowhere.example.org", subject="to nowhere")
    [dsn] = wait_dsn(srv)
    assert_failed(dsn.recipient("carol@nowhere.example.org"), "5.1.2")
    assert dsn.original is not None and dsn.original.get_content_type() == "message/rfc822"
    assert b"Subject: to nowhere" in dsn.raw
    srv.wait_log(log_rx(qid, "carol@nowhere.example.org", "bounced"), timeout=5)
    assert peer.connections == 0


def test_mx_preference_order(dns, make_peer, ferry):
    primary = make_peer()                                   # mx.example.org, preference 10
    backup = make_peer(host="127.0.0.3", port=primary.port)  # backup.example.org, preference 20
    srv = sender_server(ferry, dns, primary.port)
    submit(srv, "carol@pref.example.org")
    [m] = wait_peer(primary, srv, 1)
    assert m.rcpts == ["carol@pref.example.org"]
    assert backup.connections == 0


def test_refused_first_mx_falls_back_to_the_second_in_the_same_attempt(dns, peer, ferry):
    """down.example.org (preference 10) is 127.0.0.2, where nothing listens on the port: refused at once."""
    srv = sender_server(ferry, dns, peer.port)
    qid = submit(srv, "carol@fallback.example.org")
    [m] = wait_peer(peer, srv, 1)
    assert m.rcpts == ["carol@fallback.example.org"]
    srv.wait_log(delivered_rx(qid, "carol@fallback.example.org", r"mx\.example\.org\[127\.0\.0\.1\]"), timeout=5)
    assert not re.search(log_rx(qid, "carol@fallback.example.org", "deferred"), srv.log), srv.log[-3000:]


def test_4xx_greeting_moves_on_to_the_next_mx(dns, make_peer, ferry):
    main = make_peer()
    grumpy = make_peer(host="127.0.0.4", port=main.port, greeting="421 4.3.2 too busy, come back later")
    srv = sender_server(ferry, dns, main.port)
    qid = submit(srv, "carol@greet.example.org")
    [m] = wait_peer(main, srv, 1)
    assert m.rcpts == ["carol@greet.example.org"]
    assert grumpy.connections >= 1
    assert grumpy.commands("MAIL") == []
    assert not re.search(log_rx(qid, "carol@greet.example.org", "deferred"), srv.log), srv.log[-3000:]


# ---------------------------------------------------------------- per-recipient results, retries, the queue

def test_4xx_at_rcpt_is_retried_by_queue_flush(dns, peer, ferry):
    peer.rcpt_reply = "451 4.3.0 try later"
    srv = sender_server(ferry, dns, peer.port, queue={"min_retry": "1h", "max_retry": "2h"})
    before = time.time()
    qid = submit(srv, "later@example.org", subject="flush me")
    entries = srv.wait_queue(lambda q: any(e["id"] == qid and e["recipients"]
                                           and "451" in (e["recipients"][0].get("last_error") or "") for e in q),
                             timeout=WAIT, what=f"{qid} deferred with a 451")
    [e] = entries
    assert e["sender"] == ALICE
    assert isinstance(e["size"], int) and e["size"] > 0
    assert before - 2 <= e["arrival"] <= time.time() + 1 and e["age"] >= 0
    [r] = e["recipients"]
    assert r["address"] == "later@example.org" and r["status"] == "pending" and r["attempts"] >= 1, r
    assert r["next_attempt"] is not None and r["next_attempt"] > time.time() + 1800, r   # min_retry is 1h
    srv.wait_log(log_rx(qid, "later@example.org", "deferred"), timeout=5)
    assert peer.messages == []
    rcpts_so_far = len(peer.commands("RCPT"))
    peer.rcpt_reply = None
    srv.queue_flush()
    [m] = wait_peer(peer, srv, 1)
    assert m.rcpts == ["later@example.org"]
    assert len(peer.commands("RCPT")) == rcpts_so_far + 1
    srv.wait_queue(lambda q: q == [], timeout=5, what="an empty queue")
    assert srv.mail_files("alice") == []


def test_5xx_for_one_recipient_bounces_only_that_one(dns, peer, ferry):
    peer.rcpt_replies = {"bad@example.org": "550 5.1.1 no such user"}
    srv = sender_server(ferry, dns, peer.port)
    qid = submit(srv, ["bad@example.org", "good@example.org"], subject="one bad one good")
    [m] = wait_peer(peer, srv, 1)
    assert m.rcpts == ["good@example.org"]
    # Both recipients of the domain went in one transaction.
    assert len(peer.commands("MAIL")) == 1, peer.describe()
    assert sorted(l.split()[1] for l in m.rcpt_lines) == ["TO:<bad@example.org>", "TO:<good@example.org>"]
    [dsn] = wait_dsn(srv)
    assert dsn.final_recipients() == ["bad@example.org"]
    block = dsn.recipient("bad@example.org")
    assert_failed(block, "5.1.1", diagnostic="550 5.1.1 no such user")
    remote = str(block["Remote-MTA"] or "").lower()
    assert "mx.example.org" in remote or "127.0.0.1" in remote, str(block)
    assert dsn.original is not None and dsn.original.get_content_type() == "message/rfc822"
    assert dsn.original.get_content()["Subject"] == "one bad one good"
    assert dsn.delivered_to.strip("<>").lower() == ALICE
    srv.wait_log(log_rx(qid, "bad@example.org", "bounced"), timeout=5)
    srv.wait_log(delivered_rx(qid, "good@example.org"), timeout=5)
    srv.wait_log(rf"\bbounce id={qid} dsn=[0-9A-Z]+ to=<{ALICE}>", timeout=5)
    time.sleep(0.5)
    assert len(srv.mail_files("alice")) == 1, "one DSN only"


def test_5xx_after_data_bounces_every_recipient_of_the_transaction(dns, peer, ferry):
    peer.data_reply = "554 5.6.0 content refused"
    srv = sender_server(ferry, dns, peer.port)
    submit(srv, ["r1@example.org", "r2@example.org"], subject="refused content")
    [dsn] = wait_dsn(srv)
    assert dsn.final_recipients() == ["r1@example.org", "r2@example.org"]
    for r in ("r1@example.org", "r2@example.org"):
        assert_failed(dsn.recipient(r), "5.6.0", diagnostic="554 5.6.0 content refused")
    assert len(peer.commands("DATA")) == 1


def test_lifetime_expiry_bounces_a_deferred_recipient(dns, peer, ferry):
    peer.rcpt_reply = "451 4.3.0 try later"
    srv = sender_server(ferry, dns, peer.port, queue={"lifetime": "3s"})
    qid = submit(srv, "later@example.org", subject="expires")
    [dsn] = wait_dsn(srv)
    block = dsn.recipient("later@example.org")
    # Action: failed; the status may be the last temporary one (Postfix) or a permanent one.
    assert str(block["Action"]).strip().lower() == "failed", str(block)
    assert re.fullmatch(r"[45]\.\d{1,3}\.\d{1,3}", status_of(block)), str(block)
    assert "451" in dsn.text, "the last remote reply is reported"
    assert len(peer.commands("RCPT")) >= 2, "retried before expiring"
    assert peer.messages == []
    line = srv.wait_log(log_rx(qid, "later@example.org", "bounced"), timeout=5)
    assert "expired" in line.lower(), line
    srv.wait_queue(lambda q: q == [], timeout=5, what="an empty queue")


def test_restart_resumes_pending_recipients(dns, peer, ferry):
    peer.rcpt_reply = "451 4.3.0 try later"
    srv = sender_server(ferry, dns, peer.port)
    qid = submit(srv, ["bob@example.test", "later@example.org"], subject="over a restart")
    srv.wait_mail("bob", timeout=WAIT)
    srv.wait_log(log_rx(qid, "later@example.org", "deferred"), timeout=WAIT)
    assert srv.stop() == 0
    peer.rcpt_reply = None
    srv.start()
    [m] = wait_peer(peer, srv, 1)
    assert m.rcpts == ["later@example.org"]
    assert header_value(m.data, "Subject") == "over a restart"
    srv.wait_queue(lambda q: q == [], timeout=5, what="an empty queue")
    assert len(srv.mail_files("bob")) == 1, "the local copy was delivered again after the restart"
    assert srv.mail_files("alice") == []


@pytest.mark.parametrize("waiting", ["connection_slot", "greeting", "route_lookup"])
def test_a_leg_sent_before_sigterm_is_not_sent_again_after_the_restart(dns, make_peer, ferry, waiting):
    """One message to two domains: example.org's peer takes its copy at once, slow.example.net's job is still
    waiting at SIGTERM (for the one connection slot, held by the first connection while its QUIT stalls; for
    the greeting of a server that stalls; or for its MX lookup, which the DNS server never answers). The waiting
    job comes back as a temporary failure, so the attempt settles and records the sent leg: after the restart
    only slow.example.net gets the message."""
    fast = make_peer()                                        # mx.example.org
    slow = make_peer(host="127.0.0.5", port=fast.port)        # mx.slow.example.net
    outbound = {"command_timeout": "30s"}                     # nothing times out before the SIGTERM
    if waiting == "connection_slot":
        fast.stall_at = "QUIT"
        outbound["max_connections"] = 1
    elif waiting == "greeting":
        slow.stall_at = "GREETING"
    else:
        dns.set("slow.example.net", "DROP")
    try:
        srv = sender_server(ferry, dns, fast.port, outbound=outbound, dns_timeout="30s")
        qid = submit(srv, ["bob@example.org", "carol@slow.example.net"], subject="two legs")
        [m] = wait_peer(fast, srv, 1)
        assert m.rcpts == ["bob@example.org"]
        if waiting == "connection_slot":
            fast.wait_command("QUIT", timeout=WAIT)
            time.sleep(0.3)
            assert slow.connections == 0, slow.describe()
        elif waiting == "greeting":
            slow.wait_connections(1, timeout=WAIT)
            time.sleep(0.3)
        else:
            time.sleep(0.3)
            assert dns.queries[("slow.example.net", "MX")] >= 1
            assert slow.connections == 0, slow.describe()
        assert slow.messages == []
        assert srv.stop() == 0
        srv.wait_log(log_rx(qid, "carol@slow.example.net", "deferred") + r".*dsn=4\.3\.2", timeout=1)
    finally:
        dns.set("slow.example.net", ZONE["slow.example.net"])
    fast.stall_at = slow.stall_at = None
    srv.start()
    [s] = wait_peer(slow, srv, 1)
    assert s.rcpts == ["carol@slow.example.net"] and header_value(s.data, "Subject") == "two legs"
    srv.wait_queue(lambda q: q == [], timeout=WAIT, what="an empty queue")
    assert len(fast.messages) == 1, "the leg sent before the restart was sent again:\n" + fast.describe()
    assert srv.mail_files("alice") == []


def test_destination_down_then_up(dns, make_peer, ferry):
    port = free_port()   # nothing listens yet: connection refused
    srv = sender_server(ferry, dns, port)
    qid = submit(srv, "bob@example.org", subject="patience")
    srv.wait_log(log_rx(qid, "bob@example.org", "deferred"), timeout=WAIT)
    peer = make_peer(port=port)
    [m] = wait_peer(peer, srv, 1)
    assert m.rcpts == ["bob@example.org"] and header_value(m.data, "Subject") == "patience"
    srv.wait_log(delivered_rx(qid, "bob@example.org"), timeout=5)


def test_stalled_server_times_out_and_is_retried(dns, peer, ferry):
    peer.stall_at = "MAIL"
    srv = sender_server(ferry, dns, peer.port)
    qid = submit(srv, "bob@example.org", subject="stalled")
    peer.wait_command("MAIL", timeout=WAIT)
    peer.stall_at = None
    srv.wait_log(log_rx(qid, "bob@example.org", "deferred"), timeout=WAIT)   # command_timeout is 3 s
    [m] = wait_peer(peer, srv, 1)
    assert m.session is not peer.transcripts[0]
    peer.wait_for(lambda p: not p.transcripts[0].open, 5, "the stalled connection to be closed by Ferry")


# ---------------------------------------------------------------- source addresses

def test_source_address_is_the_address_remote_servers_see(dns, peer, ferry):
    """[outbound] source_address: the connection is bound before connect (all of 127.0.0.0/8 is on lo; unbound,
    the kernel would pick 127.0.0.1 for a connection to 127.0.0.1)."""
    srv = sender_server(ferry, dns, peer.port, outbound={"source_address": "127.0.0.2"})
    qid = submit(srv, "bob@example.org", subject="from .2")
    [m] = wait_peer(peer, srv, 1)
    assert m.session.client[0] == "127.0.0.2", m.session.client
    srv.wait_log(delivered_rx(qid, "bob@example.org"), timeout=5)


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback (::1) on this machine")
@pytest.mark.parametrize("keys", [{"source_address": "127.0.0.2"}, {"source_address6": "::1"},
                                  {"source_address": "127.0.0.2", "source_address6": "::1"}],
                         ids=["v4_only", "v6_only", "both"])
def test_source_address_per_family(dns, make_peer, ferry, keys):
    """Each family binds to its own key; a family without one connects unbound (127.0.0.1 to 127.0.0.1)."""
    v4 = make_peer()                             # mx.example.org
    v6 = make_peer(host="::1", port=v4.port)     # mx6.example.org, AAAA only
    srv = sender_server(ferry, dns, v4.port, outbound=keys)
    submit(srv, ["bob@example.org", "carol@v6.example.org"], subject="two families")
    [m4] = wait_peer(v4, srv, 1)
    [m6] = wait_peer(v6, srv, 1)
    assert m4.rcpts == ["bob@example.org"] and m6.rcpts == ["carol@v6.example.org"]
    assert m4.session.client[0] == keys.get("source_address", "127.0.0.1"), m4.session.client
    assert m6.session.client[0] == "::1", m6.session.client


def test_source_address_this_host_does_not_have_stops_the_start(dns, peer, ferry):
    """Checked at start: an address that cannot be bound would otherwise defer every message."""
    srv = sender_server(ferry, dns, peer.port, outbound={"source_address": "192.0.2.25"}, start=False)
    r = subprocess.run([ferry_bin(), "serve", "--config", str(srv.config)], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=20, cwd=srv.cwd)
    out = (r.stdout + r.stderr).decode(errors="replace")
    assert r.returncode != 0, out
    assert "outbound.source_address 192.0.2.25: cannot bind to it" in out, out


# ---------------------------------------------------------------- what the remote server offers

def test_ehlo_refused_falls_back_to_helo(dns, peer, ferry):
    peer.ehlo_reply = "500 5.5.1 command unrecognized"
    srv = sender_server(ferry, dns, peer.port)
    submit(srv, "bob@example.org", subject="helo only")
    [m] = wait_peer(peer, srv, 1)
    t = m.session
    assert t.ehlo_names == [("HELO", HOSTNAME)] and t.verbs[:2] == ["EHLO", "HELO"], t.describe()
    assert not m.tls and "STARTTLS" not in t.verbs
    assert m.mail_params == {}, "ESMTP parameters after HELO"
    assert header_value(m.data, "Subject") == "helo only"


@pytest.mark.parametrize("mode", ["close", "garbage"])
def test_failed_tls_handshake_retries_without_tls(dns, peer, ferry, mode):
    peer.tls_break = mode
    srv = sender_server(ferry, dns, peer.port)
    qid = submit(srv, "bob@example.org", subject="no tls then")
    [m] = wait_peer(peer, srv, 1)
    assert not m.tls and "STARTTLS" not in m.session.verbs, m.session.describe()
    first = peer.transcripts[0]
    assert first is not m.session and "STARTTLS" in first.verbs and "MAIL" not in first.verbs, first.describe()
    srv.wait_log(log_rx(qid, "bob@example.org", "deferred"), timeout=5)
    srv.wait_log(delivered_rx(qid, "bob@example.org"), timeout=5)


def test_message_over_the_servers_size_limit_bounces_5_3_4_unsent(dns, peer, ferry):
    peer.ehlo_caps = ["PIPELINING", "SIZE 1000", "8BITMIME", "ENHANCEDSTATUSCODES"]
    srv = sender_server(ferry, dns, peer.port)
    content = make_message("too big", sender=ALICE, to="bob@example.org", body=big_body(5000))
    qid = submit(srv, "bob@example.org", content)
    [dsn] = wait_dsn(srv)
    assert_failed(dsn.recipient("bob@example.org"), "5.3.4")
    assert peer.connections >= 1, "the limit is only known from the server's EHLO"
    assert peer.commands("DATA") == [], peer.describe()
    assert peer.commands("MAIL") == [], "SIZE is checked before MAIL"
    srv.wait_log(log_rx(qid, "bob@example.org", "bounced"), timeout=5)


def test_smtputf8_message_to_a_server_without_smtputf8_bounces_5_6_7(dns, peer, ferry):
    peer.ehlo_caps = [c for c in DEFAULT_CAPS if c != "SMTPUTF8"]
    srv = sender_server(ferry, dns, peer.port)
    content = make_message("Grüße aus Köln", sender=ALICE, to="bob@example.org")
    qid = submit(srv, "bob@example.org", content, mail_params="SMTPUTF8")
    [dsn] = wait_dsn(srv)
    assert_failed(dsn.recipient("bob@example.org"), "5.6.7")
    assert peer.commands("DATA") == [], peer.describe()
    assert peer.messages == []
    srv.wait_log(log_rx(qid, "bob@example.org", "bounced"), timeout=5)


def test_local_mail_to_a_utf8_address_goes_out_with_smtputf8(dns, peer, ferry):
    """ferry sendmail (the pickup directory) to a UTF-8 address: MAIL FROM says SMTPUTF8 (RFC 6531 3.4), as it
    would had the message come over SMTP with that parameter."""
    srv = sender_server(ferry, dns, peer.port)
    r = subprocess.run([ferry_bin(), "sendmail", "--config", str(srv.config), "-f", ALICE, "jürgen@example.org"],
                       input="Subject: hallo\n\nGrüße\n".encode(), capture_output=True, timeout=30)
    assert r.returncode == 0, r
    [m] = wait_peer(peer, srv, 1)
    assert m.rcpts == ["jürgen@example.org"], m
    assert "SMTPUTF8" in m.mail_params, m.mail_line


def test_pipelining_sends_mail_rcpts_and_data_together(dns, peer, ferry):
    peer.ehlo_caps = NO_TLS_CAPS          # plaintext, so each client write is one read here
    srv = sender_server(ferry, dns, peer.port)
    submit(srv, ["r1@example.org", "r2@example.org"], subject="pipelined")
    [m] = wait_peer(peer, srv, 1)
    assert sorted(m.rcpts) == ["r1@example.org", "r2@example.org"]
    verbs = [[c.split()[0].upper() for c in b] for b in m.session.batches]
    assert any("MAIL" in v and v.count("RCPT") == 2 and v[-1] == "DATA" for v in verbs), verbs


def test_without_pipelining_each_command_waits_for_its_reply(dns, peer, ferry):
    peer.ehlo_caps = ["SIZE 10240000", "8BITMIME", "ENHANCEDSTATUSCODES"]
    srv = sender_server(ferry, dns, peer.port)
    submit(srv, ["r1@example.org", "r2@example.org"], subject="lockstep")
    [m] = wait_peer(peer, srv, 1)
    assert sorted(m.rcpts) == ["r1@example.org", "r2@example.org"]
    assert all(len(b) == 1 for b in m.session.batches), m.session.batches


def test_dsn_parameters_are_passed_on_when_offered(dns, peer, ferry):
    srv = sender_server(ferry, dns, peer.port)
    submit(srv, "bob@example.org", mail_params="RET=HDRS ENVID=env-7.test",
           rcpt_params="NOTIFY=FAILURE,DELAY ORCPT=rfc822;orig@example.test")
    [m] = wait_peer(peer, srv, 1)
    assert m.mail_params.get("RET", "").upper() == "HDRS", m.mail_line
    assert m.mail_params.get("ENVID") == "env-7.test", m.mail_line
    p = m.rcpt_params["bob@example.org"]
    assert set((p.get("NOTIFY") or "").upper().split(",")) == {"FAILURE", "DELAY"}, m.rcpt_lines
    kind, _, addr = (p.get("ORCPT") or "").partition(";")
    assert (kind.lower(), addr) == ("rfc822", "orig@example.test"), m.rcpt_lines


def test_dsn_parameters_are_dropped_when_not_offered(dns, peer, ferry):
    peer.ehlo_caps = [c for c in DEFAULT_CAPS if c != "DSN"]   # the peer answers 555 to RET/ENVID/NOTIFY/ORCPT
    srv = sender_server(ferry, dns, peer.port)
    submit(srv, "bob@example.org", mail_params="RET=HDRS ENVID=env-8.test",
           rcpt_params="NOTIFY=FAILURE ORCPT=rfc822;orig@example.test")
    [m] = wait_peer(peer, srv, 1)
    assert not {"RET", "ENVID"} & set(m.mail_params), m.mail_line
    assert not {"NOTIFY", "ORCPT"} & set(m.rcpt_params["bob@example.org"]), m.rcpt_lines


# ---------------------------------------------------------------- connections

def test_queued_messages_share_one_connection(dns, make_peer, ferry):
    port = free_port()   # down while the messages queue up
    srv = sender_server(ferry, dns, port, outbound={"max_connections_per_destination": 1},
                        queue={"min_retry": "1h", "max_retry": "2h"})
    qids = [submit(srv, f"r{i}@example.org", subject=f"reuse {i}") for i in range(3)]
    for i, qid in enumerate(qids):
        srv.wait_log(log_rx(qid, f"r{i}@example.org", "deferred"), timeout=WAIT)
    peer = make_peer(port=port)
    srv.queue_flush()
    msgs = wait_peer(peer, srv, 3)
    assert sorted(r for m in msgs for r in m.rcpts) == ["r0@example.org", "r1@example.org", "r2@example.org"]
    assert peer.connections == 1, peer.describe()
    assert len(peer.transcripts[0].transactions) == 3


def test_connections_per_destination_are_limited(dns, peer, ferry):
    peer.delay = {".": 0.5}   # a slow server: each message takes half a second
    srv = sender_server(ferry, dns, peer.port, outbound={"max_connections_per_destination": 2},
                        queue={"delivery_workers": 8})
    for i in range(6):
        submit(srv, f"r{i}@example.org", subject=f"limit {i}")
    msgs = wait_peer(peer, srv, 6)
    assert sorted(r for m in msgs for r in m.rcpts) == [f"r{i}@example.org" for i in range(6)]
    assert 1 <= peer.max_concurrent <= 2, peer.describe()


# ---------------------------------------------------------------- bounces and the DSN extension

def test_no_bounce_for_the_null_sender(dns, peer, ferry):
    peer.rcpt_replies = {"bad@example.org": "550 5.1.1 no such user"}
    srv = sender_server(ferry, dns, peer.port)
    qid = submit(srv, "bad@example.org", mail_from="", subject="a bounce itself")
    srv.wait_log(log_rx(qid, "bad@example.org", "bounced"), timeout=WAIT)
    assert_no_dsn(srv, qid)
    assert len(peer.commands("MAIL")) == 1 and peer.messages == [], peer.describe()
    assert peer.commands("MAIL")[0].startswith("MAIL FROM:<>")
    srv.wait_queue(lambda q: q == [], timeout=5, what="an empty queue")


def test_notify_never_means_no_bounce(dns, peer, ferry):
    peer.rcpt_replies = {"bad@example.org": "550 5.1.1 no such user"}
    srv = sender_server(ferry, dns, peer.port)
    qid = submit(srv, "bad@example.org", rcpt_params="NOTIFY=NEVER", subject="never tell")
    srv.wait_log(log_rx(qid, "bad@example.org", "bounced"), timeout=WAIT)
    assert_no_dsn(srv, qid)


def test_orcpt_and_envid_show_in_the_dsn_and_ret_hdrs_sends_headers_only(dns, peer, ferry):
    peer.rcpt_replies = {"bad@example.org": "550 5.1.1 no such user"}
    srv = sender_server(ferry, dns, peer.port)
    content = make_message("orcpt and envid", sender=ALICE, to="bad@example.org",
                           body="the body is not returned with RET=HDRS: marker-7f3a\r\n")
    submit(srv, "bad@example.org", content, mail_params="RET=HDRS ENVID=env-42.test",
           rcpt_params="NOTIFY=FAILURE ORCPT=rfc822;original@example.test")
    [dsn] = wait_dsn(srv)
    envid = dsn.per_message["Original-Envelope-Id"]
    assert envid is not None and str(envid).strip() == "env-42.test", str(dsn.per_message)
    block = dsn.recipient("bad@example.org")
    assert_failed(block, "5.1.1")
    assert field_address(block["Original-Recipient"]) == "original@example.test", str(block)
    assert dsn.original is not None and dsn.original.get_content_type() == "text/rfc822-headers", \
        [p.get_content_type() for p in dsn.parts]
    assert b"Subject: orcpt and envid" in dsn.raw
    assert b"marker-7f3a" not in dsn.raw


# ---------------------------------------------------------------- queue CLI

def test_queue_show_and_delete(dns, peer, ferry):
    peer.rcpt_reply = "451 4.3.0 try later"
    srv = sender_server(ferry, dns, peer.port, queue={"min_retry": "1h", "max_retry": "2h"})
    qid = submit(srv, "later@example.org", subject="delete me")
    srv.wait_log(log_rx(qid, "later@example.org", "deferred"), timeout=WAIT)
    r = srv.queue_cli("show", qid)
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, r.stderr
    assert ALICE in out and "later@example.org" in out and "Subject: delete me" in out, out
    assert [e["id"] for e in srv.queue_list()] == [qid]
    r = srv.queue_cli("delete", qid)
    assert r.returncode == 0, r.stderr
    assert srv.queue_list() == []
    assert srv.queue_cli("show", qid).returncode == 1
    assert srv.queue_cli("delete", qid).returncode == 1
    assert_no_dsn(srv, qid)
    srv.queue_flush()
    time.sleep(0.5)
    assert len(peer.commands("RCPT")) == 1, "a deleted message was tried again"


def test_queue_cli_without_a_server_is_tempfail(dns, ferry):
    srv = sender_server(ferry, dns, free_port(), start=False)
    r = srv.queue_cli("list")
    assert r.returncode == 75, (r.returncode, r.stdout, r.stderr)
    assert r.stderr.strip(), "no message"


# ---------------------------------------------------------------- smarthost

def smarthost_server(ferry, dns, peer, tmp_path):
    secret = tmp_path / "relay-password"
    secret.write_text("s3cret\n")
    os.chmod(secret, 0o600)
    return sender_server(ferry, dns, peer.port, outbound={"relay_host": f"127.0.0.1:{peer.port}",
                                                          "relay_user": "relayuser",
                                                          "relay_password_file": str(secret)})


def test_smarthost_with_starttls_and_auth(dns, make_peer, ferry, tmp_path):
    peer = make_peer(auth={"relayuser": "s3cret"}, auth_required=True)
    srv = smarthost_server(ferry, dns, peer, tmp_path)
    qid = submit(srv, "carol@smart.example.org", subject="via the smarthost")
    [m] = wait_peer(peer, srv, 1)
    t = m.session
    assert t.verbs[:4] == ["EHLO", "STARTTLS", "EHLO", "AUTH"], t.describe()
    assert [(a["user"], a["password"], a["tls"], a["ok"]) for a in t.auth] == [("relayuser", "s3cret", True, True)]
    assert m.tls and m.rcpts == ["carol@smart.example.org"]
    assert header_value(m.data, "Subject") == "via the smarthost"
    assert not [q for q in dns.queries if q[0].endswith("smart.example.org")], dict(dns.queries)
    srv.wait_log(delivered_rx(qid, "carol@smart.example.org", rf"\S*\[127\.0\.0\.1\]:{peer.port}\b"), timeout=5)


def test_smarthost_credentials_never_go_in_plaintext(dns, make_peer, ferry, tmp_path):
    peer = make_peer(ehlo_caps=NO_TLS_CAPS, auth={"relayuser": "s3cret"}, auth_tls_only=False)
    srv = smarthost_server(ferry, dns, peer, tmp_path)
    qid = submit(srv, "carol@smart.example.org", subject="no tls no auth")
    srv.wait_log(log_rx(qid, "carol@smart.example.org", "(deferred|bounced)"), timeout=WAIT)
    assert peer.connections >= 1
    assert peer.commands("AUTH") == [] and peer.commands("MAIL") == [], peer.describe()


# ---------------------------------------------------------------- success reports (NOTIFY=SUCCESS)

def test_notify_success_reports_delivered_locally_and_relayed_to_a_server_without_dsn(dns, peer, ferry):
    peer.ehlo_caps = [c for c in DEFAULT_CAPS if c != "DSN"]
    srv = sender_server(ferry, dns, peer.port)
    qid = submit(srv, ["bob@example.test", "carol@example.org"], rcpt_params="NOTIFY=SUCCESS",
                 subject="tell me it arrived")
    wait_peer(peer, srv, 1)
    srv.wait_mail("bob")
    srv.wait_log(rf"notify id={qid} dsn=\S+ to=<{ALICE}> recipients=2 \(success\)", timeout=WAIT)
    [dsn] = wait_dsn(srv)
    assert dsn.final_recipients() == ["bob@example.test", "carol@example.org"]
    assert str(dsn.recipient("bob@example.test")["Action"]).strip().lower() == "delivered"
    assert str(dsn.recipient("carol@example.org")["Action"]).strip().lower() == "relayed"
    for block in dsn.recipients:
        assert status_of(block).startswith("2."), str(block)


def test_notify_success_to_a_server_with_dsn_is_left_to_that_server(dns, peer, ferry):
    srv = sender_server(ferry, dns, peer.port)   # the peer offers DSN
    qid = submit(srv, "carol@example.org", rcpt_params="NOTIFY=SUCCESS", subject="it reports")
    [m] = wait_peer(peer, srv, 1)
    assert "NOTIFY=SUCCESS" in m.session.rcpt_lines[0], m.session.rcpt_lines
    srv.wait_log(delivered_rx(qid, "carol@example.org"), timeout=5)
    assert_no_dsn(srv, qid)


def test_messages_arriving_while_connections_close_all_go_in_the_first_attempt(dns, peer, ferry):
    """Jobs that reach a destination while its connections are finishing get a connection of their own; they
    are not deferred (with min_retry at 1h a deferral would show as a missing message)."""
    import concurrent.futures
    peer.delay = {"QUIT": 0.4}   # a connection out of jobs lingers in QUIT while new ones arrive
    srv = sender_server(ferry, dns, peer.port, queue={"min_retry": "1h", "max_retry": "2h"},
                        outbound={"max_connections_per_destination": 3})
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        qids = list(pool.map(lambda i: submit(srv, f"c{i}@example.org", subject=f"burst {i}"), range(36)))
    msgs = wait_peer(peer, srv, len(qids), timeout=WAIT)
    assert sorted(header_value(m.data, "Subject") for m in msgs) == sorted(f"burst {i}" for i in range(36))
    assert "status=deferred" not in srv.log, [l for l in srv.log.splitlines() if "deferred" in l][:3]
