"""Real Postfix as Ferry's peer (tests/integration/postfixpeer.py: a private instance on 127.0.0.1):
as a source relaying into Ferry over STARTTLS, as a destination Ferry relays to by MX (STARTTLS), and as a
destination refusing a recipient, which Ferry bounces (RFC 3464 DSN) to its local sender.

Postfix needs root to start; not root, or Postfix not installed (scripts/setup installs it): skipped."""

import email
import email.policy
import re
import shutil
import smtplib
import subprocess
import time

import pytest

from dnstest import DnsServer
from ferrytest import (DEFAULT_PASSWORD, client_context, delivered_to_matches, free_port, make_message,
                       parse_delivered)
from postfixpeer import PostfixPeer, make_base_dir, skip_reason

pytestmark = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")

# What Ferry logs for a remote recipient while it has no outbound delivery (the queue defers it).
NO_OUTBOUND = "remote delivery is not available"


# ---------------------------------------------------------------- fixtures

@pytest.fixture
def postfix(tmp_path):
    """Factory: postfix(role=..., relay_port=..., users=...) -> a started PostfixPeer. Every instance is stopped
    at teardown (postfix stop, then by PID); its log and main.cf are copied into tmp_path, its folder removed."""
    peers = []

    def make(**kw):
        base = make_base_dir()
        try:
            peer = PostfixPeer(base, **kw)
        except Exception:
            shutil.rmtree(base, ignore_errors=True)
            raise
        peers.append(peer)
        return peer.start()

    yield make
    problems = []
    for i, peer in enumerate(peers):
        try:
            problems += peer.stop()
        except Exception as e:   # never leave the others running
            problems.append(f"stopping the Postfix in {peer.base}: {e!r}")
        keep = tmp_path / f"postfix{i}"
        keep.mkdir(exist_ok=True)
        for f in (peer.log_path, peer.config_dir / "main.cf", peer.config_dir / "master.cf"):
            if f.exists():
                shutil.copy(f, keep / f.name)
        peer.remove()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture(scope="module")
def ferry_tls(tmp_path_factory):
    """A [tls] section with a self-signed certificate for Ferry's hostname."""
    d = tmp_path_factory.mktemp("ferry-tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=mx.example.test",
                    "-addext", "subjectAltName=DNS:mx.example.test"], check=True, capture_output=True)
    return f'[tls]\ncertificate = "{cert}"\nprivate_key = "{key}"\n'


@pytest.fixture
def dns():
    """example.org MX 10 mx.example.org, mx.example.org A 127.0.0.1 (no AAAA)."""
    with DnsServer({"example.org": [("MX", 10, "mx.example.org")],
                    "mx.example.org": [("A", "127.0.0.1")]}) as server:
        yield server


def outbound_ferry(ferry, dns, peer, ferry_tls, **kw):
    """A Ferry that resolves with the test DNS server and delivers remote mail to the peer's port, retrying
    quickly; a submission listener (STARTTLS) at srv.sub_port."""
    sub = free_port()
    srv = ferry(start=False, queue={"min_retry": "1s", "max_retry": "2s"},
                extra_toml=(f'[dns]\nresolver = "{dns.address}"\ntimeout = "2s"\n\n'
                            f'[outbound]\nport = {peer.port}\n\n{ferry_tls}\n'
                            f'[[listen]]\naddress = "127.0.0.1:{sub}"\nrole = "submission"\n'), **kw)
    srv.sub_port = sub
    return srv.start()


def both_logs(srv, peer):
    return (f"\n--- ferry log (tail) ---\n{srv.log[-3000:]}"
            f"\n--- postfix log (tail) ---\n{peer.log[-3000:]}")


def wait_outbound(srv, peer, what, check, timeout=20.0):
    """Poll check() until it returns something true; fail at once when Ferry says it has no outbound delivery."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        no_outbound = [l for l in srv.log.splitlines() if NO_OUTBOUND in l]
        if no_outbound:
            raise AssertionError(f"{what}: Ferry does not relay yet (no outbound delivery), its log says:\n"
                                 f"{no_outbound[0]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s" + both_logs(srv, peer))
        time.sleep(0.05)


def received_headers(data):
    """Every Received: field of a message's header, unfolded, top first."""
    head = data.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
    head = re.sub(rb"\n[ \t]+", b" ", head).decode("utf-8", "replace")
    return [l for l in head.splitlines() if l.lower().startswith("received:")]


# ---------------------------------------------------------------- Postfix as a source

def test_postfix_relays_into_ferry_with_starttls(ferry, postfix, ferry_tls):
    srv = ferry(extra_toml=ferry_tls)
    pf = postfix(role="source", relay_port=srv.port)
    content = make_message("from postfix", body="relayed by Postfix\r\n", sender="carol@example.org",
                           to="alice@example.test")
    pf_id = pf.send("carol@example.org", ["alice@example.test"], content)
    try:
        [f] = srv.wait_mail("alice", timeout=15)
    except AssertionError as e:
        raise AssertionError(f"{e}\n--- postfix log (tail) ---\n{pf.log[-3000:]}") from None
    data = f.read_bytes()
    rp, dt, ferry_received, _, rest = parse_delivered(data)
    assert rp == "<carol@example.org>"
    assert delivered_to_matches(dt, "alice@example.test"), dt

    # Received: chain, top first: Ferry's (from Postfix, over STARTTLS), then Postfix's (from the test client)
    chain = received_headers(data)
    assert len(chain) == 2, chain
    assert chain[0] == ferry_received
    assert re.match(r"Received: from postfix\.example\.org \(.*\[127\.0\.0\.1\]\)", ferry_received), ferry_received
    assert "by mx.example.test" in ferry_received, ferry_received
    assert " with ESMTPS id " in ferry_received, f"Postfix did not use STARTTLS to Ferry: {ferry_received}"
    assert "(using TLSv1." in ferry_received, ferry_received
    ferry_id = re.search(r" with ESMTPS id ([0-9A-Z]+)", ferry_received).group(1)
    assert re.match(r"Received: from client\.test \(.*\[127\.0\.0\.1\]\) by postfix\.example\.org \(Postfix\) "
                    rf"with ESMTP id {pf_id} for <alice@example\.test>;", chain[1]), chain[1]
    assert rest.endswith(b"\r\n\r\nrelayed by Postfix\r\n"), rest[-200:]
    assert b"Subject: from postfix\r\n" in rest

    # Postfix's side: TLS to Ferry, and Ferry's 250 (with its queue id) for the recipient
    sent = pf.wait_log(rf"{pf_id}: to=<alice@example\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:{srv.port}, "
                       r".*status=sent \((.*)\)$")
    assert f"queued as {ferry_id}" in sent.group(1), sent.group(0)
    pf.wait_log(rf"TLS connection established to 127\.0\.0\.1\[127\.0\.0\.1\]:{srv.port}: TLSv1\.[23] ")


# ---------------------------------------------------------------- Postfix as a destination

def test_ferry_relays_to_postfix_by_mx_with_starttls(ferry, postfix, dns, ferry_tls):
    pf = postfix(role="destination", users=("bob",))
    srv = outbound_ferry(ferry, dns, pf, ferry_tls, aliases={"fwd@example.test": ["bob@example.org"]})
    qid = srv.send("fwd@example.test", content=make_message("to postfix", body="forwarded\r\n",
                                                            to="fwd@example.test"))
    [f] = wait_outbound(srv, pf, "message in bob@example.org's Maildir at Postfix", lambda: pf.mail_files("bob"))
    data = f.read_bytes().replace(b"\n", b"\r\n")   # virtual(8) stores LF line ends
    assert data.startswith(b"Return-Path: <sender@client.test>\r\n"), data[:200]
    assert b"\r\nDelivered-To: bob@example.org\r\n" in data.split(b"\r\n\r\n", 1)[0]
    chain = received_headers(data)
    assert len(chain) == 2, chain
    m = re.match(r"Received: from mx\.example\.test \(.*\[127\.0\.0\.1\]\) .*by postfix\.example\.org \(Postfix\) "
                 r"with ESMTPS id ([0-9A-F]+) for <bob@example\.org>;", chain[0])
    assert m, f"Postfix's Received: (Ferry used STARTTLS?): {chain[0]}"
    pf_id = m.group(1)
    assert "(using TLSv1." in chain[0], chain[0]
    assert "by mx.example.test" in chain[1] and f" id {qid}" in chain[1], chain[1]
    assert data.endswith(b"\r\n\r\nforwarded\r\n"), data[-200:]

    pf.wait_log(r"TLS connection established from \S+\[127\.0\.0\.1\]: TLSv1\.[23] ")
    pf.wait_log(rf"{pf_id}: to=<bob@example\.org>, relay=virtual, .*status=sent \(delivered to maildir\)")
    # to= may name the alias target or the alias itself (Postfix says to=<target>, orig_to=<alias>)
    line = srv.wait_log(rf"delivered id={qid} to=<(bob@example\.org|fwd@example\.test)> .*status=sent", timeout=5)
    assert f"relay=mx.example.org[127.0.0.1]:{pf.port}" in line, line
    assert re.search(r"\btls=TLSv1\.[23]\b", line), line
    assert f"queued as {pf_id}" in line, line


def test_recipient_refused_by_postfix_bounces_to_local_sender(ferry, postfix, dns, ferry_tls):
    pf = postfix(role="destination", users=("bob",))
    srv = outbound_ferry(ferry, dns, pf, ferry_tls)
    content = make_message("half refused", body="for bob and bob2\r\n", sender="alice@example.test",
                           to="bob@example.org")
    with smtplib.SMTP("127.0.0.1", srv.sub_port, timeout=10) as s:
        s.ehlo("client.test")
        s.starttls(context=client_context())
        s.ehlo("client.test")
        s.login("alice@example.test", DEFAULT_PASSWORD)
        assert s.sendmail("alice@example.test", ["bob@example.org", "bob2@example.org"], content) == {}

    # Postfix refuses bob2 at RCPT (unknown in its virtual mailbox table) and takes bob in the same transaction
    [dsn_file] = wait_outbound(srv, pf, "DSN in alice's Maildir", lambda: srv.mail_files("alice"))
    # "NOQUEUE: reject", or "<queue id>: reject" once bob's RCPT opened a queue file
    pf.wait_log(r"\b(NOQUEUE|[0-9A-F]+): reject: RCPT from \S+\[127\.0\.0\.1\]: 550 5\.1\.1 <bob2@example\.org>: "
                r"Recipient address rejected: User unknown in virtual mailbox table")
    [bob_copy] = pf.wait_mail("bob")
    assert b"Subject: half refused\n" in bob_copy.read_bytes()

    data = dsn_file.read_bytes()
    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    assert data.startswith(b"Return-Path: <>\r\n"), f"a DSN has the null envelope sender: {data[:200]!r}"
    assert delivered_to_matches(msg["Delivered-To"], "alice@example.test"), msg["Delivered-To"]
    assert "mailer-daemon@mx.example.test" in msg["From"].lower(), msg["From"]
    assert msg.get_content_type() == "multipart/report", msg.get_content_type()
    assert msg.get_param("report-type") == "delivery-status", msg["Content-Type"]
    parts = msg.get_payload()
    assert [p.get_content_type() for p in parts[:2]] == ["text/plain", "message/delivery-status"], \
        [p.get_content_type() for p in parts]
    assert len(parts) == 3 and parts[2].get_content_type() in ("message/rfc822", "text/rfc822-headers"), \
        [p.get_content_type() for p in parts]

    per_message, *per_recipient = parts[1].get_payload()
    assert re.fullmatch(r"dns; ?mx\.example\.test", per_message["Reporting-MTA"].strip(), re.I), \
        per_message["Reporting-MTA"]
    assert len(per_recipient) == 1, f"only bob2 failed: {[str(r) for r in per_recipient]}"
    [rcpt] = per_recipient
    assert re.fullmatch(r"rfc822; ?bob2@example\.org", rcpt["Final-Recipient"].strip(), re.I), rcpt["Final-Recipient"]
    assert rcpt["Action"].strip().lower() == "failed", rcpt["Action"]
    assert rcpt["Status"].strip() == "5.1.1", rcpt["Status"]
    diag = " ".join(rcpt["Diagnostic-Code"].split())
    assert re.match(r"smtp; ?550[ -]5\.1\.1 <bob2@example\.org>", diag, re.I), diag
    assert re.fullmatch(r"dns; ?mx\.example\.org", (rcpt["Remote-MTA"] or "").strip(), re.I), rcpt["Remote-MTA"]
    original = parts[2].get_payload()[0] if parts[2].is_multipart() else email.message_from_string(
        parts[2].get_payload())
    assert original["Subject"] == "half refused", original["Subject"]

    srv.wait_log(r"delivery id=\S+ to=<bob2@example\.org> .*status=bounced", timeout=5)
    srv.wait_log(r"bounce id=\S+ dsn=\S+ to=<alice@example\.test>", timeout=5)
    srv.wait_log(r"delivered id=\S+ to=<bob@example\.org> .*status=sent", timeout=5)
