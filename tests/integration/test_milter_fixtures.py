"""The milter fixtures of miltertest.py checked against Postfix, the MTA Ferry's milter client is measured against
(a private instance, postfixpeer.py; needs root). If one of these fails, the filter tests' fixtures are wrong, not
Ferry. They also record what Postfix does with the same milters: the replies and bytes Ferry's tests expect.
"""

import pytest

import postfixpeer
from dnstest import DnsServer
from mailauthtest import message as signed_message_text, rsa_key, sign
from miltertest import (BadMilter, OpenDkim, PyMilter, Spamd, SpamassMilter, field_name, header_fields,
                        test_milter_header, transact)
from postfixpeer import PostfixPeer, make_base_dir

pytestmark = pytest.mark.skipif(postfixpeer.skip_reason() is not None, reason=str(postfixpeer.skip_reason()))

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


@pytest.fixture
def base():
    d = make_base_dir("ferry-milter-fixtures-")
    yield d
    import shutil
    shutil.rmtree(d, ignore_errors=True)


def delivered(path):
    """A message Postfix's virtual(8) delivered (with LF line ends), with CRLF as everywhere else in the tests."""
    return path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def postfix_with(base, milter_address, users=("bob", "carol", "rcpt-reject")):
    port = milter_address.rsplit(":", 1)[1]
    return PostfixPeer(base / "postfix", users=users,
                       extra_main=f"smtpd_milters = inet:127.0.0.1:{port}\nmilter_default_action = tempfail\n"
                                  "milter_command_timeout = 3s\nmilter_content_timeout = 5s\n")


def test_python_milter_under_postfix(base):
    with PyMilter(base / "m") as m:
        p = postfix_with(base, m.address).start()
        try:
            # A stage reply: the RCPT token refuses that recipient only; a custom reply keeps its text.
            r = transact(p.port, "a@client.test", ["bob@example.org", "rcpt-reject@example.org"],
                         b"Subject: x\r\n\r\nx\r\n")
            assert r["rcpt"][0][0] == 250 and r["rcpt"][1] == (550, "5.7.1 Command rejected"), r
            r = transact(p.port, "data-reply5@client.test", ["bob@example.org"], b"Subject: x\r\n\r\nx\r\n")
            assert r["data"] == (550, "5.7.9 test milter: data"), r
            # Every end-of-message change, applied by Postfix.
            edits = test_milter_header(["insheader", 0, "X-Top", "top"], ["addheader", "X-Added", "added"],
                                       ["chgheader", "X-Change", 1, "new"], ["chgheader", "X-Delete", 1, ""],
                                       ["chgfrom", "<new@client.test>"], ["addrcpt", "<carol@example.org>"],
                                       ["delrcpt", "<bob@example.org>"], ["replacebody", "new body\r\n"])
            sent = f"From: a@client.test\r\nX-Change: old\r\nX-Delete: x\r\n{edits}\r\nold body\r\n".encode()
            r = transact(p.port, "old@client.test", ["bob@example.org"], sent)
            assert r["end"][0] == 250, r
            data = delivered(p.wait_mail("carol")[0])
            fields, body = header_fields(data)
            names = [field_name(f) for f in fields]
            assert data.startswith(b"Return-Path: <new@client.test>\r\n")
            assert b"X-Change: new\r\n" in fields and "X-Delete" not in names, fields
            assert names[-1] == "X-Added" and names.index("X-Top") < names.index("Received"), names
            assert body == b"new body\r\n"
            assert all(b"X-Added" not in delivered(f) for f in p.mail_files("bob")), "delrcpt was not applied"
            # The macros Postfix sends, as the fixture records them.
            env = [e for e in m.events("envfrom") if e["args"][0] == "<old@client.test>"][0]
            assert env["macros"]["{mail_addr}"] == "old@client.test" and env["macros"]["j"] == p.hostname
            assert [e for e in m.events("data") if e["macros"].get("i") == r["queue_id"]]
        finally:
            p.stop()


@pytest.mark.parametrize("edits,expected", [
    ([["insheader", 0, "X-Top", "top"], ["insheader", 3, "X-Middle", "m"]],
     ["X-Top", "Received", "From", "X-Middle", "To", "Subject"]),
    ([["insheader", 1, "X-One", "1"]], ["Received", "X-One", "From", "To", "Subject"]),
    ([["insheader", 2, "X-Two", "2"]], ["Received", "From", "X-Two", "To", "Subject"])])
def test_insert_indexes_under_postfix(base, edits, expected):
    """Postfix shows a milter the client's fields only, but counts an insert's index from the top of the stored
    header, its own Received: included: the reference test_filter_milter.py holds Ferry to."""
    with PyMilter(base / "m") as m:
        p = postfix_with(base, m.address).start()
        try:
            sent = f"From: a@client.test\r\nTo: b@client.test\r\nSubject: s\r\n{test_milter_header(*edits)}\r\nx\r\n"
            r = transact(p.port, "a@client.test", ["bob@example.org"], sent.encode())
            assert r["end"][0] == 250, r
            fields, _ = header_fields(delivered(p.wait_mail("bob")[0]))
            names = [field_name(f) for f in fields if field_name(f) not in
                     ("Return-Path", "X-Original-To", "Delivered-To", "X-Test-Milter", "Message-Id", "Date")]
            assert names == expected, names
            assert "Received" not in [e["args"][0] for e in m.events("header")]
        finally:
            p.stop()


@pytest.mark.parametrize("mode,at", [("garbage", "E"), ("badlen", "R"), ("close", "B")])
def test_bad_milter_under_postfix(base, mode, at):
    with BadMilter(mode=mode, at=at) as b:
        p = postfix_with(base, b.address).start()
        try:
            r = transact(p.port, "a@client.test", ["bob@example.org"], b"Subject: x\r\n\r\nx\r\n")
            refusals = [x for x in [*r["rcpt"], r.get("end")] if x and x[0] != 250]
            assert refusals and refusals[0] == (451, "4.7.1 Service unavailable - try again later"), r
            assert any(at in conn for conn in b.commands), b.commands
        finally:
            p.stop()


def test_opendkim_under_postfix(base):
    key = rsa_key()
    with DnsServer({"sel._domainkey.signer.test": [("TXT", key.txt)]}) as dns, \
            OpenDkim(base / "dkim", dns, authserv_id="opendkim.example.test") as o:
        p = postfix_with(base, o.address).start()
        try:
            msg = sign(signed_message_text(from_addr="a@signer.test", to="bob@example.org"), key, "signer.test",
                       "sel")
            p.send("a@signer.test", ["bob@example.org"], msg)
            data = delivered(p.wait_mail("bob")[0])
            assert b"Authentication-Results: opendkim.example.test;\r\n\tdkim=pass" in data, data[:800]
        finally:
            p.stop()


def test_spamass_milter_under_postfix(base):
    with Spamd(base / "spamd") as sd, SpamassMilter(base / "sam", sd) as sm:
        p = postfix_with(base, sm.address).start()
        try:
            r = transact(p.port, "a@client.test", ["bob@example.org"], f"Subject: x\r\n\r\n{GTUBE}\r\n".encode())
            assert r["end"] == (550, "5.7.1 Blocked by SpamAssassin"), r
        finally:
            p.stop()


def test_negotiated_stages_under_postfix(base):
    """The fixture's --noreply/--nocallback negotiation works with Postfix: no waits, no body callback."""
    noreply = ("connect", "hello", "envfrom", "envrcpt", "data", "header", "eoh")
    with PyMilter(base / "m", noreply=noreply, nocallback=("body",)) as m:
        p = postfix_with(base, m.address).start()
        try:
            sent = f"Subject: x\r\n{test_milter_header(['addheader', 'X-NR', 'yes'])}\r\nbody\r\n".encode()
            r = transact(p.port, "a@client.test", ["bob@example.org"], sent)
            assert r["end"][0] == 250, r
            assert b"\r\nX-NR: yes\r\n" in delivered(p.wait_mail("bob")[0])
            cbs = [e["cb"] for e in m.events()]
            assert "body" not in cbs and "envfrom" in cbs and "eom" in cbs, cbs
        finally:
            p.stop()
