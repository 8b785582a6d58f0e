"""Ferry's milter client against real milters (issue 17): `ferry serve` with [[milter]] tables, smtplib as the
client, the python3-milter fixture (milter_fixture.py) for every reply and change, opendkim in verify mode,
spamass-milter with spamd. What is delivered is checked byte for byte.

The fixture is steered by the session itself (see milter_fixture.py): a STAGE-ACTION token in the HELO name, the
sender's or a recipient's local part (mail-reject@..., rcpt-tempfail@...), and an X-Test-Milter: header with a
JSON list of end-of-message changes and answers.
"""

import json
import re
import smtplib
import time

import pytest

from dnstest import DnsServer
from ferrytest import DEFAULT_PASSWORD, DOMAIN, HOSTNAME, Ferry, free_port
from mailauthtest import message as signed_message_text, rsa_key, sign
from miltertest import (OpenDkim, PyMilter, Spamd, SpamassMilter, bdat, field_name, first_refusal, header_fields,
                        milter_toml, test_milter_header, transact)

USERS = ("alice", "bob", "carol", "rcpt-reject", "rcpt-tempfail", "rcpt-reply5", "rcpt-reply4")
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
_counter = iter(range(1, 1 << 30))


def unique(prefix="m"):
    return f"{prefix}{next(_counter)}x{time.monotonic_ns() % 10**9}"


def msg(subject=None, to="alice@example.test", sender="sender@client.test", headers="", body="Hello.\r\n"):
    subject = subject or unique("subject-")
    return (f"From: <{sender}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n{headers}"
            f"Message-ID: <{unique()}@client.test>\r\n\r\n{body}").encode()


def start_ferry(base, extra_toml, users=USERS, submission=False, **kw):
    """A Ferry whose mx listener is srv.port; with submission, also a plaintext-AUTH submission listener on
    srv.sub_port (loopback only, so no TLS is needed for the test's AUTH PLAIN)."""
    sub = free_port() if submission else None
    if submission:
        extra_toml = (f'[[listen]]\naddress = "127.0.0.1:{sub}"\nrole = "submission"\nplaintext_auth = true\n\n'
                      + extra_toml)
    srv = Ferry(base, users=users, extra_toml=extra_toml, **kw)
    srv.sub_port = sub
    return srv.start()


@pytest.fixture(scope="module")
def milter(tmp_path_factory):
    with PyMilter(tmp_path_factory.mktemp("pymilter"), milter_name="first") as m:
        yield m


@pytest.fixture(scope="module")
def srv(tmp_path_factory, milter):
    s = start_ferry(tmp_path_factory.mktemp("ferry"), milter_toml(milter.address, name="first",
                                                                  command_timeout="10s", content_timeout="20s"),
                    submission=True)
    yield s
    s.stop()


def message_id(content):
    return re.search(rb"(?im)^Message-ID:[ \t]*(<[^>\r\n]+>)", content).group(1)


def copies(srv, user, content, folder=""):
    """The files in user's mailbox (or its Maildir++ folder) holding the message with content's Message-ID."""
    d = srv.maildir(user) / folder / "new"
    mid = message_id(content)
    files = [p for p in d.iterdir() if p.is_file()] if d.is_dir() else []
    return [p for p in files if mid in p.read_bytes().split(b"\r\n\r\n", 1)[0]]


def delivered_copy(srv, user, content, timeout=10.0):
    """The delivered bytes of the message with content's Message-ID (tests share a server, and a delivery may land
    after the next test has begun: a message is found by its Message-ID, never as the newest file)."""
    deadline = time.monotonic() + timeout
    while True:
        found = copies(srv, user, content)
        if found:
            assert len(found) == 1, found
            return found[0].read_bytes()
        if time.monotonic() > deadline:
            raise AssertionError(f"{message_id(content)} not delivered to {user}\n--- log ---\n{srv.log[-3000:]}")
        time.sleep(0.05)


def assert_not_delivered(srv, user, content):
    """`user` never gets content: a sentinel message sent afterwards (no filter action) is delivered, and the
    message is not there then. No fixed wait for something not to happen."""
    sentinel = msg(to=f"{user}@{DOMAIN}")
    r = transact(srv.port, "sentinel@client.test", [f"{user}@{DOMAIN}"], sentinel)
    assert r.get("end", (0,))[0] == 250, r
    delivered_copy(srv, user, sentinel)
    time.sleep(0.2)   # a delivery running behind the sentinel's would be done by now
    assert copies(srv, user, content) == [], f"{user} got {message_id(content)}"


def conn_events(milter, predicate, timeout=10.0):
    """The events of the one milter connection with an event matching predicate, once that connection is closed
    (the session's QUIT reaches the milter a moment after smtplib has its reply)."""
    deadline = time.monotonic() + timeout
    while True:
        events = milter.events()
        conns = {e["conn"] for e in events if predicate(e)}
        assert len(conns) <= 1, f"more than one milter connection matches: {conns}: {json.dumps(events)[-3000:]}"
        mine = [e for e in events if conns and e["conn"] in conns]
        if any(e["cb"] == "close" for e in mine):
            return mine
        if time.monotonic() > deadline:
            raise AssertionError(f"no closed milter connection matches; events: {json.dumps(events)[-3000:]}")
        time.sleep(0.05)


# ---------------------------------------------------------------- replies at each stage

REPLIES = [("reject", 550, "5.7.1"), ("tempfail", 451, "4.7.1"), ("reply5", 550, "5.7.9"), ("reply4", 451, "4.7.9")]


def assert_reply(reply, code, enhanced, stage, action):
    assert reply[0] == code, f"{stage}-{action}: expected {code} {enhanced}, got {reply}"
    assert reply[1].startswith(enhanced), f"{stage}-{action}: expected {code} {enhanced}, got {reply}"
    if action.startswith("reply"):
        assert f"test milter: {stage}" in reply[1], f"the milter's own text is lost: {reply}"


@pytest.mark.parametrize("action,code,enhanced", REPLIES)
def test_helo_reply(srv, milter, action, code, enhanced):
    r = transact(srv.port, "a@client.test", ["alice@example.test"], msg(), helo=f"helo-{action}.client.test")
    assert_reply(r["ehlo"], code, enhanced, "helo", action)


@pytest.mark.parametrize("action,code,enhanced", REPLIES)
def test_mail_reply(srv, milter, action, code, enhanced):
    r = transact(srv.port, f"mail-{action}@client.test", ["alice@example.test"], msg())
    assert_reply(r["mail"], code, enhanced, "mail", action)


@pytest.mark.parametrize("action,code,enhanced", REPLIES)
def test_rcpt_reply_refuses_only_that_recipient(srv, milter, action, code, enhanced):
    sent = msg()
    r = transact(srv.port, "a@client.test", ["alice@example.test", f"rcpt-{action}@example.test"], sent)
    assert r["rcpt"][0][0] == 250, r
    assert_reply(r["rcpt"][1], code, enhanced, "rcpt", action)
    assert r["end"][0] == 250, r
    delivered_copy(srv, "alice", sent)
    assert copies(srv, f"rcpt-{action}", sent) == []


@pytest.mark.parametrize("action,code,enhanced", REPLIES)
def test_data_reply(srv, milter, action, code, enhanced):
    r = transact(srv.port, f"data-{action}@client.test", ["alice@example.test"], msg())
    assert r["rcpt"][0][0] == 250, r
    assert_reply(r["data"], code, enhanced, "data", action)


@pytest.mark.parametrize("action,code,enhanced", REPLIES)
def test_end_of_message_reply_and_nothing_delivered(srv, milter, action, code, enhanced):
    sent = msg(to="bob@example.test", headers=test_milter_header(action))
    r = transact(srv.port, "a@client.test", ["bob@example.test"], sent)
    assert_reply(r["end"], code, enhanced, "eom", action)
    assert_not_delivered(srv, "bob", sent)


def test_multiline_custom_reply(srv, milter):
    with smtplib.SMTP("127.0.0.1", srv.port, local_hostname="client.test", timeout=15) as s:
        s.ehlo()
        assert s.docmd("MAIL FROM:<a@client.test>")[0] == 250
        assert s.docmd("RCPT TO:<alice@example.test>")[0] == 250
        code, text = s.data(msg(headers=test_milter_header("replyml")))
    assert code == 550, (code, text)
    lines = text.decode().split("\n")
    assert lines == ["5.7.9 test milter: eom", "5.7.9 second line", "5.7.9 third line"], lines


def test_connect_reject_and_tempfail(tmp_path):
    """The connect answer (a fixture option: the session has told nothing yet) refuses the whole session."""
    for action, first in (("reject", 5), ("tempfail", 4)):
        with PyMilter(tmp_path / f"m-{action}", always={"connect": action}) as m:
            s = start_ferry(tmp_path / f"f-{action}", milter_toml(m.address))
            try:
                r = transact(s.port, "a@client.test", ["alice@example.test"], msg())
                refusal = first_refusal(r)
                assert refusal is not None and refusal[0] // 100 == first, (action, r)
                assert "end" not in r or r["end"][0] != 250, r
                assert s.mail_files("alice") == []
                m.wait_events("connect")
            finally:
                s.stop()


def test_discard_at_end_of_message(srv, milter):
    sent = msg(to="bob@example.test", headers=test_milter_header("discard"))
    r = transact(srv.port, "a@client.test", ["bob@example.test"], sent)
    assert r["end"][0] == 250, r
    assert_not_delivered(srv, "bob", sent)


def test_discard_at_mail(srv, milter):
    sent = msg(to="bob@example.test")
    r = transact(srv.port, "mail-discard@client.test", ["bob@example.test"], sent)
    assert r["mail"][0] == 250 and r["end"][0] == 250, r
    assert_not_delivered(srv, "bob", sent)


def test_accept_at_mail_skips_the_rest_of_the_message(srv, milter):
    """SMFIS_ACCEPT at MAIL: the milter is not asked again for this message, so its eom reject never comes."""
    sender = "mail-accept@client.test"
    mark = milter.mark()
    sent = msg(headers=test_milter_header("reject"))
    r = transact(srv.port, sender, ["alice@example.test"], sent)
    assert r["end"][0] == 250, r
    delivered_copy(srv, "alice", sent)
    assert [e["args"][0] for e in milter.since(mark, "envfrom")] == [f"<{sender}>"], "the milter was not asked"
    assert milter.since(mark, "eom") == [], "the milter was asked at end of message after it accepted at MAIL"


# ---------------------------------------------------------------- macros

def test_postfix_macros_arrive(srv, milter):
    sender = f"{unique('macros')}@client.test"
    r = transact(srv.port, sender, ["alice@example.test"], msg())
    assert r["end"][0] == 250, r
    qid = r["queue_id"]
    events = conn_events(milter, lambda e: e["cb"] == "envfrom" and e["args"][0].strip("<>") == sender)
    by_cb = {}
    for e in events:
        by_cb.setdefault(e["cb"], e)
    connect = by_cb["connect"]["macros"]
    assert connect.get("j") == HOSTNAME, connect
    assert connect.get("{daemon_name}"), connect
    assert "127.0.0.1" in connect.get("_", ""), connect
    assert connect.get("{client_addr}") == "127.0.0.1", connect
    assert by_cb["connect"]["args"][2][0] == "127.0.0.1", by_cb["connect"]
    assert by_cb["hello"]["args"] == ["client.test"]
    assert by_cb["envfrom"]["macros"].get("{mail_addr}") == sender, by_cb["envfrom"]
    assert by_cb["envrcpt"]["macros"].get("{rcpt_addr}") == "alice@example.test", by_cb["envrcpt"]
    assert by_cb["data"]["macros"].get("i") == qid, (qid, by_cb["data"])
    # The whole message went to the milter: header fields, then the body.
    names = [e["args"][0] for e in events if e["cb"] == "header"]
    assert names[-4:] == ["From", "To", "Subject", "Message-ID"], names
    assert "".join(e["args"][0] for e in events if e["cb"] == "body") == "Hello.\r\n"
    order = [e["cb"] for e in events]
    for a, b in (("connect", "hello"), ("hello", "envfrom"), ("envfrom", "envrcpt"), ("envrcpt", "data"),
                 ("data", "header"), ("header", "eoh"), ("eoh", "body"), ("body", "eom"), ("eom", "close")):
        assert order.index(a) < order.index(b), order


def test_auth_macro_on_submission(srv, milter):
    r = transact(srv.sub_port, "alice@example.test", ["bob@example.test"], msg(sender="alice@example.test",
                 to="bob@example.test"), login=("alice@example.test", DEFAULT_PASSWORD))
    assert r["end"][0] == 250, r
    qid = r["queue_id"]
    events = conn_events(milter, lambda e: e["cb"] == "data" and e["macros"].get("i") == qid)
    envfrom = [e for e in events if e["cb"] == "envfrom"][0]
    assert envfrom["macros"].get("{auth_authen}") == "alice@example.test", envfrom


def test_tls_macros(srv, milter):
    sender = f"{unique('tls')}@client.test"
    r = transact(srv.port, sender, ["alice@example.test"], msg(), starttls=True)
    assert r["end"][0] == 250, r
    events = conn_events(milter, lambda e: e["cb"] == "envfrom" and e["args"][0].strip("<>") == sender)
    macros = [e for e in events if e["cb"] == "envfrom"][0]["macros"]
    assert macros.get("{tls_version}", "").startswith("TLSv1."), macros
    assert macros.get("{cipher}"), macros


# ---------------------------------------------------------------- end-of-message changes, byte for byte

def delivered_fields(data):
    """The delivered file's header fields after our Return-Path: and Delivered-To:, and the body."""
    fields, body = header_fields(data)
    assert field_name(fields[0]) == "Return-Path" and field_name(fields[1]) == "Delivered-To", fields[:3]
    return fields[2:], body


def apply_edits(fields, edits):
    """The HeaderEdit semantics of a milter's changes (Sendmail's smfi_* as Postfix applies them), in order."""
    out = list(fields)
    for op, *a in edits:
        if op == "addheader":
            out.append(f"{a[0]}: {a[1]}\r\n".encode())
        elif op == "insheader":
            out.insert(min(a[0], len(out)), f"{a[1]}: {a[2]}\r\n".encode())
        elif op == "chgheader":
            name, index, value = a
            same = [i for i, f in enumerate(out) if field_name(f).lower() == name.lower()]
            if index <= len(same):
                if value:
                    out[same[index - 1]] = f"{name}: {value}\r\n".encode()
                else:
                    del out[same[index - 1]]
            elif value:
                out.append(f"{name}: {value}\r\n".encode())
    return out


def test_header_changes_are_applied_byte_exact(srv, milter):
    edits = [["insheader", 0, "X-Top", "top"],
             ["addheader", "X-Added", "added"],
             ["chgheader", "X-Change", 1, "new value"],
             ["chgheader", "X-Dup", 2, "second changed"],
             ["chgheader", "X-Delete", 1, ""],
             ["insheader", 3, "X-Middle", "middle"],
             ["chgheader", "X-Gone-Null", 1, None]]
    header_text = test_milter_header(*edits)
    client_fields = [b"From: <sender@client.test>\r\n", b"To: <alice@example.test>\r\n",
                     f"Subject: {unique('edits-')}\r\n".encode(), b"X-Change: old value\r\n", b"X-Dup: one\r\n",
                     b"X-Delete: to be deleted\r\n", b"X-Dup: two\r\n", b"X-Gone-Null:  folded\r\n\tvalue\r\n",
                     header_text.encode(), f"Message-ID: <{unique()}@client.test>\r\n".encode()]
    body = b"Line one.\r\n.leading dot\r\n\r\nlast line\r\n"
    mark = milter.mark()
    sent = b"".join(client_fields) + b"\r\n" + body
    r = transact(srv.port, "a@client.test", ["alice@example.test"], sent)
    assert r["end"][0] == 250, r
    data = delivered_copy(srv, "alice", sent)
    fields, got_body = delivered_fields(data)
    # As with Postfix, the milter is shown the client's fields, not our Received: in front of them; an insert's
    # index still counts from the top of the stored header, Received: included (index 0 goes above it, 1 right
    # below it: what Postfix does, checked in test_milter_fixtures.py).
    conn = [e["conn"] for e in milter.since(mark, "header") if e["args"][0] == "Message-ID"
            and e["args"][1].encode() == message_id(sent)][0]
    seen = [e["args"][0] for e in milter.since(mark, "header") if e["conn"] == conn]
    assert seen == [field_name(f) for f in client_fields], seen
    received = [f for f in fields if field_name(f) == "Received"][0]
    expected = apply_edits([received] + client_fields, edits)
    assert fields == expected, "\n".join(["got:", *map(repr, fields), "expected:", *map(repr, expected)])
    assert got_body == body


def test_replace_body(srv, milter):
    line = "Replaced body line.\r\n"
    content = msg(headers=test_milter_header(["replacebody", ".dot first\r\n"], ["replacebody", line, 400]),
                  body="Original body.\r\n" * 100)
    r = transact(srv.port, "a@client.test", ["alice@example.test"], content)
    assert r["end"][0] == 250, r
    fields, body = delivered_fields(delivered_copy(srv, "alice", content))
    # Both replacements make one body, in order (smfi_replacebody may be called repeatedly).
    assert body == (".dot first\r\n" + line * 400).encode()
    # The header is the client's, after our Received:
    client_fields, _ = header_fields(content)
    assert [f for f in fields if field_name(f) != "Received"] == client_fields


def test_replaced_body_with_bare_line_feeds_is_stored_with_crlf(srv, milter):
    sent = msg(headers=test_milter_header(["replacebody", "one\ntwo\n"]))
    r = transact(srv.port, "a@client.test", ["alice@example.test"], sent)
    assert r["end"][0] == 250, r
    _, body = delivered_fields(delivered_copy(srv, "alice", sent))
    assert body == b"one\r\ntwo\r\n"


def test_change_sender(srv, milter):
    sent = msg(headers=test_milter_header(["chgfrom", "<new-sender@client.test>"]))
    r = transact(srv.port, "old@client.test", ["alice@example.test"], sent)
    assert r["end"][0] == 250, r
    data = delivered_copy(srv, "alice", sent)
    assert data.startswith(b"Return-Path: <new-sender@client.test>\r\n"), data[:200]


def test_add_recipient(srv, milter):
    sent = msg(headers=test_milter_header(["addrcpt", "<carol@example.test>"]))
    r = transact(srv.port, "a@client.test", ["alice@example.test"], sent)
    assert r["end"][0] == 250, r
    delivered_copy(srv, "alice", sent)
    data = delivered_copy(srv, "carol", sent)
    assert b"Delivered-To: carol@example.test\r\n" in data.split(b"\r\n\r\n")[0], data[:300]


def test_delete_recipient(srv, milter):
    sent = msg(headers=test_milter_header(["delrcpt", "<bob@example.test>"]))
    r = transact(srv.port, "a@client.test", ["alice@example.test", "bob@example.test"], sent)
    assert r["end"][0] == 250, r
    delivered_copy(srv, "alice", sent)
    assert_not_delivered(srv, "bob", sent)


def test_quarantine_holds_until_released(srv, milter):
    sent = msg(to="bob@example.test", headers=test_milter_header(["quarantine", "held by the test milter"]))
    r = transact(srv.port, "a@client.test", ["bob@example.test"], sent)
    assert r["end"][0] == 250, r
    qid = r["queue_id"]
    entries = srv.wait_queue(lambda es: any(e["id"] == qid and e.get("held") for e in es),
                             what=f"{qid} held in the queue")
    [entry] = [e for e in entries if e["id"] == qid]
    assert "held by the test milter" in entry["hold_reason"], entry   # the milter's reason, maybe with its name
    assert [r["status"] for r in entry["recipients"]] == ["held"], entry
    listed = srv.queue_cli("list").stdout.decode()
    assert qid in listed and re.search(r"HELD: .*held by the test milter", listed), listed
    assert copies(srv, "bob", sent) == [], "a quarantined message was delivered"
    rel = srv.queue_cli("release", qid)
    assert rel.returncode == 0, rel.stderr.decode() + rel.stdout.decode()
    delivered_copy(srv, "bob", sent)
    srv.wait_queue(lambda es: not any(e["id"] == qid for e in es), what=f"{qid} gone after release")


def test_progress_keeps_a_slow_milter_alive(tmp_path):
    """A milter that takes longer than content_timeout but calls smfi_progress in between is waited for."""
    with PyMilter(tmp_path / "m") as m:
        s = start_ferry(tmp_path / "f", milter_toml(m.address, command_timeout="1s", content_timeout="1s"))
        try:
            subject = unique("progress-")
            r = transact(s.port, "a@client.test", ["alice@example.test"],
                         msg(subject=subject, headers=test_milter_header(["progress", 4, 0.5],
                                                                         ["addheader", "X-Slow", "done"])))
            assert r["end"][0] == 250, r
            data = s.wait_mail("alice")[0].read_bytes()
            assert b"\r\nX-Slow: done\r\n" in data.split(b"\r\n\r\n")[0] + b"\r\n", data[:600]
        finally:
            s.stop()


# ---------------------------------------------------------------- chains and real milters

def test_two_milters_chain(tmp_path):
    """Milters run in the order listed, each seeing the changes of the ones before (Postfix's smtpd_milters)."""
    with PyMilter(tmp_path / "m1", milter_name="first") as m1, PyMilter(tmp_path / "m2", milter_name="second") as m2:
        s = start_ferry(tmp_path / "f", milter_toml(m1.address, name="first") + "\n"
                        + milter_toml(m2.address, name="second"))
        try:
            headers = test_milter_header(["@first", "addheader", "X-From-First", "1"],
                                         ["@second", "addheader", "X-From-Second", "2"],
                                         ["@second", "chgheader", "X-From-First", 1, "changed by second"])
            r = transact(s.port, "a@client.test", ["alice@example.test"], msg(headers=headers))
            assert r["end"][0] == 250, r
            seen_by_second = [e["args"] for e in m2.events("header")]
            assert ["X-From-First", "1"] in seen_by_second, seen_by_second
            assert all(e["args"][0] != "X-From-Second" for e in m1.events("header"))
            data = s.wait_mail("alice")[0].read_bytes()
            head = data.split(b"\r\n\r\n")[0] + b"\r\n"
            assert b"\r\nX-From-First: changed by second\r\n" in head, head
            assert head.endswith(b"X-From-First: changed by second\r\nX-From-Second: 2\r\n"), head
        finally:
            s.stop()


def test_a_reject_by_the_first_milter_stops_the_chain(tmp_path):
    with PyMilter(tmp_path / "m1", milter_name="first") as m1, PyMilter(tmp_path / "m2", milter_name="second") as m2:
        s = start_ferry(tmp_path / "f", milter_toml(m1.address) + "\n" + milter_toml(m2.address))
        try:
            r = transact(s.port, "mail-reject@client.test", ["alice@example.test"], msg())
            assert r["mail"][0] == 550, r
            assert m1.events("envfrom") and not m2.events("envfrom"), "the second milter was asked after a reject"
        finally:
            s.stop()


def test_opendkim_authentication_results_arrive(tmp_path):
    key = rsa_key()
    with DnsServer({"sel._domainkey.signer.test": [("TXT", key.txt)]}) as dns, \
            OpenDkim(tmp_path / "dkim", dns, authserv_id="opendkim.example.test") as dkim:
        s = start_ferry(tmp_path / "f", milter_toml(dkim.address, name="opendkim"))
        try:
            good = sign(signed_message_text(from_addr="a@signer.test", to="alice@example.test"), key,
                        "signer.test", "sel")
            r = transact(s.port, "a@signer.test", ["alice@example.test"], good)
            assert r["end"][0] == 250, r
            data = s.wait_mail("alice")[0].read_bytes()
            head = re.sub(rb"\r\n[ \t]+", b" ", data.split(b"\r\n\r\n")[0])
            ar = [l for l in head.split(b"\r\n") if l.lower().startswith(b"authentication-results: opendkim.")]
            assert len(ar) == 1, head
            assert b"dkim=pass" in ar[0] and b"header.d=signer.test" in ar[0], ar[0]
            assert dns.queries[("sel._domainkey.signer.test", "TXT")] >= 1
            # The signed part arrives unchanged: the signature still verifies after delivery.
            body_and_sig = data[data.index(b"DKIM-Signature:"):]
            assert body_and_sig == good
        finally:
            s.stop()


def test_spamass_milter_rejects_gtube(tmp_path):
    with Spamd(tmp_path / "spamd") as sd, SpamassMilter(tmp_path / "sam", sd) as sm:
        s = start_ferry(tmp_path / "f", milter_toml(sm.address, name="spamass", content_timeout="60s"))
        try:
            r = transact(s.port, "a@client.test", ["alice@example.test"], msg(body=f"{GTUBE}\r\n"))
            assert r["end"][0] == 550 and r["end"][1].startswith("5.7.1"), r
            assert "SpamAssassin" in r["end"][1], r
            ham = transact(s.port, "a@client.test", ["alice@example.test"], msg(body="See you at lunch.\r\n"))
            assert ham["end"][0] == 250, ham
            data = s.wait_mail("alice")[0].read_bytes()
            assert b"X-Spam-Checker-Version: SpamAssassin" in data, data[:1500]
        finally:
            s.stop()


def test_milter_on_a_unix_socket(tmp_path):
    with PyMilter(tmp_path / "m", unix=True) as m:
        s = start_ferry(tmp_path / "f", milter_toml(m.address, name="unix"))
        try:
            r = transact(s.port, "mail-reject@client.test", ["alice@example.test"], msg())
            assert r["mail"][0] == 550, r
            r = transact(s.port, "a@client.test", ["alice@example.test"],
                         msg(headers=test_milter_header(["addheader", "X-Via", "unix socket"])))
            assert r["end"][0] == 250, r
            data = s.wait_mail("alice")[0].read_bytes()
            assert b"\r\nX-Via: unix socket\r\n" in data.split(b"\r\n\r\n")[0] + b"\r\n", data[:600]
        finally:
            s.stop()


def test_bdat_goes_through_the_milter_too(srv, milter):
    r = bdat(srv.port, "a@client.test", "bob@example.test",
             msg(to="bob@example.test", headers=test_milter_header("reject")))
    assert r.is_(550, "5.7.1"), r
    sent = msg(headers=test_milter_header(["addheader", "X-Chunked", "yes"]), body="chunk\r\n" * 50)
    r = bdat(srv.port, "a@client.test", "alice@example.test", sent)
    assert r.is_(250, "2.0.0"), r
    data = delivered_copy(srv, "alice", sent)
    assert b"\r\nX-Chunked: yes\r\n" in data.split(b"\r\n\r\n")[0] + b"\r\n", data[:600]
    assert data.endswith(b"\r\n\r\n" + b"chunk\r\n" * 50)


def test_stages_negotiated_without_reply_or_away(tmp_path):
    """A milter that asks for no replies before the end of message (SMFIP_NR_*) and no body (SMFIP_NOBODY): Ferry
    still tells it every other stage, never waits for an answer that will not come (each wait would end in the
    1 s timeout and a 451), and sends no body."""
    noreply = ("connect", "hello", "envfrom", "envrcpt", "data", "header", "eoh")
    with PyMilter(tmp_path / "m", noreply=noreply, nocallback=("body",)) as m:
        s = start_ferry(tmp_path / "f", milter_toml(m.address, command_timeout="1s", content_timeout="1s"))
        try:
            r = transact(s.port, "a@client.test", ["alice@example.test", "bob@example.test"],
                         msg(headers=test_milter_header(["addheader", "X-Negotiated", "yes"])))
            assert r["end"][0] == 250, r   # a wait for a reply that does not come would end in a 451
            data = s.wait_mail("alice")[0].read_bytes()
            assert b"\r\nX-Negotiated: yes\r\n" in data.split(b"\r\n\r\n")[0] + b"\r\n", data[:600]
            cbs = [e["cb"] for e in m.events() if e["cb"] not in ("connect", "close")]
            assert cbs[:4] == ["hello", "envfrom", "envrcpt", "envrcpt"], cbs
            assert "body" not in cbs and cbs.count("eom") == 1 and "eoh" in cbs, cbs
        finally:
            s.stop()


def test_milter_changes_survive_a_crash(tmp_path):
    """A message a milter changed, waiting in the queue when the server is killed (SIGKILL right after the 250),
    goes out after the restart as changed: the header field added, the body replaced, the sender changed, the
    recipient added. The changes are in the spool file, not only in memory."""
    from smtppeer import SmtpPeer
    port = free_port()   # the next hop: nothing listens there until the restart
    zone = {"example.org": [("MX", 10, "mx.example.org")], "mx.example.org": [("A", "127.0.0.1")]}
    with DnsServer(zone) as dns, PyMilter(tmp_path / "m") as m:
        s = start_ferry(tmp_path / "f", milter_toml(m.address)
                        + f'\n[dns]\nresolver = "{dns.address}"\ntimeout = "2s"\n'
                        + f'\n[outbound]\nport = {port}\nconnect_timeout = "1s"\ncommand_timeout = "3s"\n',
                        submission=True, queue={"min_retry": "1s", "max_retry": "2s"})
        try:
            edits = test_milter_header(["addheader", "X-Kept", "across the crash"], ["replacebody", "replaced\r\n"],
                                       ["chgfrom", "<bounces@example.test>"], ["addrcpt", "<dave@example.org>"])
            r = transact(s.sub_port, "alice@example.test", ["carol@example.org"],
                         msg(sender="alice@example.test", to="carol@example.org", headers=edits),
                         login=("alice@example.test", DEFAULT_PASSWORD))
            assert r["end"][0] == 250, r
            s.kill9()
            with SmtpPeer(port=port) as peer:
                s.start()
                s.queue_flush()
                peer.wait_messages(1, timeout=20)
                deadline = time.monotonic() + 10
                while sorted(r for x in peer.messages for r in x.rcpts) != ["carol@example.org", "dave@example.org"]:
                    assert time.monotonic() < deadline, [(x.sender, x.rcpts) for x in peer.messages]
                    time.sleep(0.05)
                got = peer.messages
            for x in got:
                assert x.sender == "bounces@example.test", x
                head, _, body = x.data.partition(b"\r\n\r\n")
                assert b"\r\nX-Kept: across the crash" in b"\r\n" + head, head
                assert body == b"replaced\r\n", body
        finally:
            s.stop()


def test_local_submission_by_sendmail_is_not_filtered(tmp_path):
    """`ferry sendmail` (the pickup) is not an SMTP listener: milters are not asked, as with Postfix's
    non_smtpd_milters left empty."""
    import subprocess
    from ferrytest import ferry_bin
    with PyMilter(tmp_path / "m", always={"connect": "reject", "mail": "reject", "eom": "reject"}) as m:
        s = start_ferry(tmp_path / "f", milter_toml(m.address))
        try:
            r = subprocess.run([ferry_bin(), "sendmail", "--config", str(s.config), "-i", "alice@example.test"],
                               input=b"Subject: from cron\n\nall good\n", capture_output=True, timeout=30)
            assert r.returncode == 0, r
            data = s.wait_mail("alice")[0].read_bytes()
            assert b"Subject: from cron" in data
            # The same server refuses SMTP: the milter is in force there.
            smtp = transact(s.port, "a@client.test", ["alice@example.test"], msg())
            assert first_refusal(smtp)[0] == 550, smtp
            assert m.events("envfrom") == [] and m.events("eom") == []
        finally:
            s.stop()
