"""Ferry with Debian's rspamd (issue 17): over rspamd's HTTP protocol ([rspamd] url) and through rspamd's milter
proxy ([[milter]]), one private rspamd per module (rspamdtest.py: GTUBE test patterns and the fixture's subject
markers give every action deterministically). Each action is checked through SMTP with smtplib and in the bytes
delivered.
"""

import re
import time

import pytest

from dnstest import DnsServer
from ferrytest import DEFAULT_PASSWORD, Ferry, free_port, header_value, toml_section
from miltertest import bdat, field_name, header_fields, milter_toml, transact
from rspamdtest import (GREYLIST_MARK, GTUBE_ADD_HEADER, GTUBE_REJECT, GTUBE_REWRITE_SUBJECT, MILTER_ADD_HEADER,
                        MILTER_ADD_VALUE, MILTER_MARK, MILTER_REMOVE_HEADER, REJECT_MESSAGE, SOFT_REJECT_MARK,
                        SOFT_REJECT_MESSAGE, Rspamd)
from httppeer import ScriptedHttp
from smtppeer import SmtpPeer

ALICE = "alice@example.test"
BOB = "bob@example.test"
LOGIN = (ALICE, DEFAULT_PASSWORD)
ZONE = {"example.org": [("MX", 10, "mx.example.org")], "mx.example.org": [("A", "127.0.0.1")]}
_n = iter(range(1, 1 << 30))


def content(subject=None, body="Hello, see you at lunch.\r\n", sender="someone@sender.example", to=ALICE,
            headers=""):
    subject = subject or f"plain {next(_n)}"
    return (f"From: <{sender}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nDate: Mon, 07 Dec 2026 12:00:00 +0000\r\n"
            f"{headers}Message-ID: <rspamd.{next(_n)}.{time.monotonic_ns()}@sender.example>\r\n\r\n{body}").encode()


@pytest.fixture(scope="module")
def dns():
    with DnsServer(ZONE) as d:
        yield d


@pytest.fixture(scope="module")
def rspamd(dns):
    with Rspamd(dns=dns.address, proxy=True) as r:
        yield r


def make_server(base, extra_toml, start=True, **kw):
    """mx on srv.port, a plaintext-AUTH loopback submission listener on srv.sub_port."""
    sub = free_port()
    srv = Ferry(base, extra_toml=(f'[[listen]]\naddress = "127.0.0.1:{sub}"\nrole = "submission"\n'
                                  f'plaintext_auth = true\n\n{extra_toml}'), **kw)
    srv.sub_port = sub
    return srv.start() if start else srv


def rspamd_toml(url, **kw):
    return toml_section("rspamd", {"url": url, **kw})


@pytest.fixture(scope="module")
def srv(tmp_path_factory, rspamd):
    s = make_server(tmp_path_factory.mktemp("ferry-http"), rspamd_toml(rspamd.url, timeout="10s"))
    yield s
    s.stop()


@pytest.fixture(scope="module")
def via_milter(tmp_path_factory, rspamd):
    """A Ferry that reaches rspamd through its milter proxy, as Postfix does (smtpd_milters)."""
    s = make_server(tmp_path_factory.mktemp("ferry-milter"), milter_toml(rspamd.milter_address, name="rspamd"))
    yield s
    s.stop()


def copies(srv, user, sent, folder=""):
    """The files of user's mailbox (or Maildir++ folder) holding the message with sent's Message-ID."""
    d = srv.maildir(user) / folder / "new"
    mid = re.search(rb"(?im)^Message-ID:[ \t]*(<[^>\r\n]+>)", sent).group(1)
    files = [p for p in d.iterdir() if p.is_file()] if d.is_dir() else []
    return [p for p in files if mid in p.read_bytes().split(b"\r\n\r\n", 1)[0]]


def wait_new(srv, user, sent, folder="", timeout=10.0):
    """The delivered bytes of the message with sent's Message-ID in user's folder (a module's tests share a server,
    and a delivery may land after the next test has begun: never "the newest file")."""
    deadline = time.monotonic() + timeout
    while True:
        found = copies(srv, user, sent, folder)
        if found:
            assert len(found) == 1, found
            return found[0].read_bytes()
        if time.monotonic() > deadline:
            raise AssertionError(f"not delivered to {user} {folder}\n--- log ---\n{srv.log[-3000:]}")
        time.sleep(0.05)


def ours(field):
    """A trace field Ferry itself puts in front of the client's content."""
    return field_name(field) in ("Return-Path", "Delivered-To", "Received", "Authentication-Results")


def fields_of(data, name):
    fields, _ = header_fields(data)
    return [f for f in fields if field_name(f).lower() == name.lower()]


# ---------------------------------------------------------------- over HTTP (/checkv2)

def test_gtube_reject(srv):
    r = transact(srv.port, "someone@sender.example", [ALICE], content(body=GTUBE_REJECT + "\r\n"))
    assert r["end"][0] == 550 and r["end"][1].startswith("5.7.1"), r
    assert REJECT_MESSAGE in r["end"][1], r


def test_gtube_reject_with_bdat(srv):
    r = bdat(srv.port, "someone@sender.example", ALICE, content(body=GTUBE_REJECT + "\r\n"))
    assert r.is_(550, "5.7.1") and REJECT_MESSAGE in r.text, r


def test_add_header_goes_to_junk_with_spam_headers(srv):
    subject = f"add header {next(_n)}"
    sent = content(subject, body=GTUBE_ADD_HEADER + "\r\n")
    r = transact(srv.port, "someone@sender.example", [ALICE], sent)
    assert r["end"][0] == 250, r
    data = wait_new(srv, "alice", sent, ".Junk")
    assert header_value(data, "Subject") == subject
    assert header_value(data, "X-Spam-Flag") == "YES", data[:1500]
    score = header_value(data, "X-Spam-Score")
    assert score is not None and float(score) >= 6, data[:1500]
    status = header_value(data, "X-Spam-Status")
    assert status is not None and status.lower().startswith("yes"), data[:1500]
    assert copies(srv, "alice", sent) == [], "a copy in the inbox too"


def test_spam_header_names_are_configurable(tmp_path, rspamd):
    s = make_server(tmp_path / "f", rspamd_toml(rspamd.url, spam_flag_header="X-Our-Flag", score_header="X-Our-Score",
                                                status_header="X-Our-Status"))
    try:
        sent = content(body=GTUBE_ADD_HEADER + "\r\n")
        r = transact(s.port, "someone@sender.example", [ALICE], sent)
        assert r["end"][0] == 250, r
        data = wait_new(s, "alice", sent, ".Junk")
        assert header_value(data, "X-Our-Flag") == "YES", data[:1500]
        assert header_value(data, "X-Our-Score") is not None and header_value(data, "X-Our-Status") is not None
        assert header_value(data, "X-Spam-Flag") is None and header_value(data, "X-Spam-Score") is None
    finally:
        s.stop()


def test_rewrite_subject(srv):
    sent = content("orig subj", body=GTUBE_REWRITE_SUBJECT + "\r\n")
    r = transact(srv.port, "someone@sender.example", [ALICE], sent)
    assert r["end"][0] == 250, r
    data = wait_new(srv, "alice", sent)
    assert fields_of(data, "Subject") == [b"Subject: ***SPAM*** orig subj\r\n"], data[:1500]
    # Only the subject changed: every other field of the client and the body are as sent.
    got, body = header_fields(data)
    sent_fields, sent_body = header_fields(sent)
    assert body == sent_body
    strip = [f for f in got if not ours(f) and not field_name(f).startswith("X-Spam")]
    assert strip == [b"Subject: ***SPAM*** orig subj\r\n" if field_name(f) == "Subject" else f
                     for f in sent_fields], strip


@pytest.mark.parametrize("mark", [SOFT_REJECT_MARK, GREYLIST_MARK])
def test_soft_reject_and_greylist_tempfail(srv, mark):
    r = transact(srv.port, "someone@sender.example", [ALICE], content(f"{mark} {next(_n)}"))
    assert r["end"][0] == 451 and r["end"][1].startswith("4.7.1"), r
    if mark == SOFT_REJECT_MARK:
        assert SOFT_REJECT_MESSAGE in r["end"][1], r


def test_milter_block_adds_and_removes_headers(srv):
    sent = content(f"{MILTER_MARK} {next(_n)}", headers=f"{MILTER_REMOVE_HEADER}: remove me\r\n")
    r = transact(srv.port, "someone@sender.example", [ALICE], sent)
    assert r["end"][0] == 250, r
    data = wait_new(srv, "alice", sent)
    assert header_value(data, MILTER_ADD_HEADER) == MILTER_ADD_VALUE, data[:1500]
    assert fields_of(data, MILTER_REMOVE_HEADER) == [], data[:1500]


def scanned(rspamd, sent, timeout=5.0):
    """rspamd logged its verdict on the message with sent's Message-ID (so it was asked)."""
    mid = re.search(rb"Message-ID: (<[^>]+>)", sent).group(1).decode()
    deadline = time.monotonic() + timeout
    while f"rspamd_task_write_log: id: {mid}" not in rspamd.log_text():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_clean_mail_is_delivered_byte_exact(srv, rspamd):
    sent = content()
    r = transact(srv.port, "someone@sender.example", [ALICE], sent)
    assert r["end"][0] == 250, r
    assert scanned(rspamd, sent), "rspamd was not asked"
    data = wait_new(srv, "alice", sent)
    got, body = header_fields(data)
    sent_fields, sent_body = header_fields(sent)
    assert body == sent_body
    assert got[-len(sent_fields):] == sent_fields
    extra = got[:-len(sent_fields)]
    assert all(ours(f) for f in extra), f"fields added to clean mail: {extra}"


def test_submission_is_not_scanned_by_default(srv):
    sent = content(sender=ALICE, to=BOB, body=GTUBE_REJECT + "\r\n")
    r = transact(srv.sub_port, ALICE, [BOB], sent, login=LOGIN)
    assert r["end"][0] == 250, r
    data = wait_new(srv, "bob", sent)
    assert GTUBE_REJECT.encode() in data and header_value(data, "X-Spam-Flag") is None


def test_scan_submission(tmp_path, rspamd):
    s = make_server(tmp_path / "f", rspamd_toml(rspamd.url, scan_submission=True))
    try:
        r = transact(s.sub_port, ALICE, [BOB], content(sender=ALICE, to=BOB, body=GTUBE_REJECT + "\r\n"),
                     login=LOGIN)
        assert r["end"][0] == 550 and r["end"][1].startswith("5.7.1"), r
    finally:
        s.stop()


def spool_files_with(srv, needle):
    return [p for p in srv.data_dir.rglob("*") if p.is_file() and "mail" not in p.relative_to(srv.data_dir).parts[:1]
            and needle in p.read_bytes()]


def test_filter_headers_survive_a_restart(tmp_path, rspamd, dns):
    """A message waiting in the queue keeps the headers rspamd's verdict added (they are stored with it), across a
    stop and start of the server, and takes them to the next hop."""
    port = free_port()   # nothing listens there yet: the message waits in the queue
    extra = (rspamd_toml(rspamd.url, scan_submission=True)
             + f'\n[dns]\nresolver = "{dns.address}"\ntimeout = "2s"\n'
             + f'\n[outbound]\nport = {port}\nconnect_timeout = "1s"\ncommand_timeout = "3s"\n')
    s = make_server(tmp_path / "f", extra, queue={"min_retry": "1s", "max_retry": "2s"})
    subject = f"to the queue {next(_n)}"
    try:
        r = transact(s.sub_port, ALICE, ["carol@example.org"],
                     content(subject, sender=ALICE, to="carol@example.org", body=GTUBE_ADD_HEADER + "\r\n"),
                     login=LOGIN)
        assert r["end"][0] == 250, r
        assert s.stop() == 0
        stored = spool_files_with(s, subject.encode())
        assert stored, "the message is not in the spool"
        assert any(b"X-Spam-Flag: YES" in p.read_bytes() for p in stored), \
            f"the filter's headers are not stored with the message: {stored}"
        with SmtpPeer(port=port) as peer:
            s.start()
            s.queue_flush()
            [m] = peer.wait_messages(1, timeout=20)
            assert m.rcpts == ["carol@example.org"]
            assert re.search(rb"(?m)^X-Spam-Flag: YES\r$", m.data.split(b"\r\n\r\n")[0] + b"\r\n"), m.data[:1500]
            assert header_value(m.data, "Subject") == subject
    finally:
        s.stop()


# ---------------------------------------------------------------- through rspamd's milter proxy
# What Postfix (smtpd_milters = the proxy) gives for the same messages: reject 554 5.7.1 with rspamd's message,
# soft reject 451 4.7.1 with it, add header X-Spam: Yes, rewrite subject in place, the milter block applied.

def test_milter_proxy_reject(via_milter):
    r = transact(via_milter.port, "someone@sender.example", [ALICE], content(body=GTUBE_REJECT + "\r\n"))
    assert r["end"][0] == 554 and r["end"][1] == f"5.7.1 {REJECT_MESSAGE}", r


def test_milter_proxy_soft_reject(via_milter):
    r = transact(via_milter.port, "someone@sender.example", [ALICE], content(f"{SOFT_REJECT_MARK} {next(_n)}"))
    assert r["end"][0] == 451 and r["end"][1] == f"4.7.1 {SOFT_REJECT_MESSAGE}", r


def test_milter_proxy_add_header(via_milter):
    sent = content(body=GTUBE_ADD_HEADER + "\r\n")
    r = transact(via_milter.port, "someone@sender.example", [ALICE], sent)
    assert r["end"][0] == 250, r
    data = wait_new(via_milter, "alice", sent)
    assert fields_of(data, "X-Spam") == [b"X-Spam: Yes\r\n"], data[:1500]


def test_milter_proxy_rewrite_subject(via_milter):
    sent = content("orig subj", body=GTUBE_REWRITE_SUBJECT + "\r\n")
    r = transact(via_milter.port, "someone@sender.example", [ALICE], sent)
    assert r["end"][0] == 250, r
    data = wait_new(via_milter, "alice", sent)
    assert fields_of(data, "Subject") == [b"Subject: ***SPAM*** orig subj\r\n"], data[:1500]


def test_milter_proxy_milter_block(via_milter):
    sent = content(f"{MILTER_MARK} {next(_n)}", headers=f"{MILTER_REMOVE_HEADER}: remove me\r\n")
    r = transact(via_milter.port, "someone@sender.example", [ALICE], sent)
    assert r["end"][0] == 250, r
    data = wait_new(via_milter, "alice", sent)
    assert fields_of(data, MILTER_ADD_HEADER) == [f"{MILTER_ADD_HEADER}: {MILTER_ADD_VALUE}\r\n".encode()], \
        data[:1500]
    assert fields_of(data, MILTER_REMOVE_HEADER) == [], data[:1500]


def test_milter_proxy_clean_mail(via_milter, rspamd):
    """Clean mail arrives as sent, except the client's own X-Spam: field, which rspamd always removes."""
    sent = content(headers="X-Spam: yes\r\n")
    r = transact(via_milter.port, "someone@sender.example", [ALICE], sent)
    assert r["end"][0] == 250, r
    assert scanned(rspamd, sent), "rspamd was not asked"
    data = wait_new(via_milter, "alice", sent)
    got, body = header_fields(data)
    sent_fields, sent_body = header_fields(sent)
    assert body == sent_body
    assert [f for f in got if not ours(f)] == [f for f in sent_fields if field_name(f) != "X-Spam"], got


# ---------------------------------------------------------------- what rspamd is told, and the shapes of its answer
# (a scripted HTTP peer in rspamd's place: a real rspamd neither reports its request nor answers a chosen JSON)

def test_request_carries_the_facts_and_the_stored_bytes(tmp_path):
    with ScriptedHttp("json") as peer:
        s = make_server(tmp_path / "f", rspamd_toml(peer.url, scan_submission=True))
        try:
            sent = content(headers="X-Odd:  two  spaces \r\n", body="Line.\r\n.dot\r\n\r\n")
            r = transact(s.port, "someone@sender.example", [ALICE, BOB], sent, helo="helo.sender.example")
            assert r["end"][0] == 250, r
            [req] = peer.requests
            assert req.path.startswith("/checkv2"), req.path
            h = req.headers
            assert h.get("IP") == "127.0.0.1", dict(h)
            assert h.get("Helo") == "helo.sender.example", dict(h)
            assert h.get("From", "").strip("<>") == "someone@sender.example", dict(h)
            assert [x.strip("<>") for x in h.get_all("Rcpt")] == [ALICE, BOB], dict(h)
            assert h.get("Queue-Id") == r["queue_id"], dict(h)
            assert h.get("MTA-Name") == s.hostname, dict(h)
            assert h.get("User") is None, dict(h)
            # The stored message, as it is: our Received: first, then the client's bytes.
            assert req.body.startswith(b"Received: "), req.body[:300]
            assert req.body.endswith(sent), req.body[-600:]
            data = s.wait_mail("alice")[0].read_bytes()
            assert data.endswith(req.body), data[:600]
            assert re.fullmatch(rb"Return-Path: [^\r\n]*\r\nDelivered-To: [^\r\n]*\r\n", data[:-len(req.body)]), data[:600]
            assert h.get("TLS-Version") is None and h.get("TLS-Cipher") is None, dict(h)
            # With STARTTLS, the protocol and cipher are told.
            r = transact(s.port, "someone@sender.example", [ALICE], content(), starttls=True)
            assert r["end"][0] == 250, r
            h = peer.requests[-1].headers
            assert (h.get("TLS-Version") or "").startswith("TLSv1."), dict(h)
            assert h.get("TLS-Cipher"), dict(h)
            # Submission (scan_submission): the SASL login is told as User.
            r = transact(s.sub_port, ALICE, [BOB], content(sender=ALICE, to=BOB), login=LOGIN)
            assert r["end"][0] == 250, r
            assert peer.requests[-1].headers.get("User") == ALICE, dict(peer.requests[-1].headers)
        finally:
            s.stop()


def test_milter_block_in_both_shapes(tmp_path):
    """rspamd's milter.add_headers as a string, an object {value, order} and (rspamd >= 3.3) a list of them;
    remove_headers with 0 (every one), 1 (the first) and -1 (the last)."""
    reply = {"action": "no action", "score": 1.0, "required_score": 15.0,
             "milter": {"add_headers": {"X-Str": "plain", "X-Obj": {"value": "obj", "order": 0},
                                        "X-List": [{"value": "one", "order": 0}, {"value": "two", "order": 1}]},
                        "remove_headers": {"X-Rm-All": 0, "X-Rm-First": 1, "X-Rm-Last": -1}}}
    with ScriptedHttp("json", reply=reply) as peer:
        s = make_server(tmp_path / "f", rspamd_toml(peer.url))
        try:
            sent = content(headers="X-Rm-All: a\r\nX-Rm-First: 1\r\nX-Rm-Last: 1\r\nX-Rm-All: b\r\n"
                                   "X-Rm-First: 2\r\nX-Rm-Last: 2\r\n")
            r = transact(s.port, "someone@sender.example", [ALICE], sent)
            assert r["end"][0] == 250, r
            data = s.wait_mail("alice")[0].read_bytes()
            assert fields_of(data, "X-Rm-All") == []
            assert fields_of(data, "X-Rm-First") == [b"X-Rm-First: 2\r\n"]
            assert fields_of(data, "X-Rm-Last") == [b"X-Rm-Last: 1\r\n"]
            assert fields_of(data, "X-Str") == [b"X-Str: plain\r\n"]
            assert fields_of(data, "X-Obj") == [b"X-Obj: obj\r\n"]
            assert fields_of(data, "X-List") == [b"X-List: one\r\n", b"X-List: two\r\n"]
            assert peer.requests
        finally:
            s.stop()
