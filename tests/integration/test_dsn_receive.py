"""The DSN extension on receive (RFC 3461): EHLO advertises DSN; MAIL takes RET and ENVID, RCPT takes NOTIFY and
ORCPT, each at most once and validated (501 5.5.4), other RCPT parameters still get 555; a message with every
DSN parameter is delivered to the local mailbox as before. Outbound use of the parameters is tested elsewhere."""

import pytest

from ferrytest import make_message


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    from ferrytest import Ferry
    s = Ferry(tmp_path_factory.mktemp("dsn"), users=("alice", "bob"))
    s.start()
    yield s
    s.stop()


def transaction(srv):
    """A session in the RCPT state: EHLO, MAIL with no parameters."""
    c = srv.connect()
    c.ehlo()
    c.expect("MAIL FROM:<sender@client.test>", 250, "2.1.0")
    return c


def test_ehlo_advertises_dsn(srv):
    with srv.connect() as c:
        r = c.ehlo()
        keywords = [line.split()[0].upper() for line in r.lines[1:]]
        assert "DSN" in keywords, r
        assert keywords.index("DSN") > keywords.index("CHUNKING"), r
        assert "DSN" in r.lines[1:], f"DSN takes no parameters: {r}"
        c.quit()


def test_dsn_parameters_accepted_and_message_delivered(srv):
    before = len(srv.mail_files("alice"))
    with srv.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<sender@client.test> RET=HDRS ENVID=abc+2Bdef", 250, "2.1.0")
        c.expect("RCPT TO:<alice@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;alice@example.test", 250, "2.1.5")
        c.expect("RCPT TO:<bob@example.test> notify=never orcpt=RFC822;bob+2Bold@example.test", 250, "2.1.5")
        r = c.data(make_message(subject="dsn parameters", to="alice@example.test"))
        assert r.is_(250, "2.0.0") and r.queue_id, r
        c.quit()
    files = srv.wait_mail("alice", count=before + 1)
    assert any(b"Subject: dsn parameters" in f.read_bytes() for f in files)
    srv.wait_mail("bob")


def test_parameters_in_any_case_and_order(srv):
    with srv.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<sender@client.test> envid=QQ314159 SIZE=100 ret=full BODY=8BITMIME", 250, "2.1.0")
        c.expect("RCPT TO:<alice@example.test> ORCPT=rfc822;x+40y@example.test NOTIFY=delay,Failure", 250, "2.1.5")
        c.quit()


@pytest.mark.parametrize("params", [
    "RET=BOGUS", "RET=", "RET", "ENVID=a+2", "ENVID=a+2b", "ENVID=a+0Ab", "ENVID=" + "e" * 101,
    "RET=FULL RET=HDRS", "ENVID=a ENVID=a",
])
def test_bad_mail_parameters(srv, params):
    with srv.connect() as c:
        c.ehlo()
        c.expect(f"MAIL FROM:<sender@client.test> {params}", 501, "5.5.4")
        c.expect("MAIL FROM:<sender@client.test>", 250, "2.1.0")   # still no transaction: MAIL works
        c.quit()


@pytest.mark.parametrize("params", [
    "NOTIFY=NEVER,SUCCESS", "NOTIFY=SUCCESS,NEVER", "NOTIFY=SUCCESS,SUCCESS", "NOTIFY=SUCCESS,", "NOTIFY=",
    "NOTIFY", "NOTIFY=SOMETIMES", "NOTIFY=DELAY NOTIFY=DELAY",
    "ORCPT=alice@example.test", "ORCPT=rfc822;", "ORCPT=rfc822;a+2", "ORCPT=;alice@example.test", "ORCPT",
    "ORCPT=rfc822;a@example.test ORCPT=rfc822;a@example.test",
])
def test_bad_rcpt_parameters(srv, params):
    c = transaction(srv)
    c.expect(f"RCPT TO:<alice@example.test> {params}", 501, "5.5.4")
    c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
    c.quit()


def test_unknown_rcpt_parameter_still_unsupported(srv):
    c = transaction(srv)
    r = c.expect("RCPT TO:<alice@example.test> XFOO=bar", 555, "5.5.4")
    assert "XFOO" in r.text, r
    c.expect("RCPT TO:<alice@example.test> NOTIFY=FAILURE BODY=8BITMIME", 555, "5.5.4")
    c.quit()


def test_dsn_parameters_need_ehlo(srv):
    with srv.connect() as c:
        c.helo()
        c.expect("MAIL FROM:<sender@client.test> RET=FULL", 555, "5.5.4")
        c.expect("MAIL FROM:<sender@client.test>", 250, "2.1.0")
        c.expect("RCPT TO:<alice@example.test> NOTIFY=FAILURE", 555, "5.5.4")
        c.quit()


def test_utf8_orcpt_needs_smtputf8(srv):
    c = transaction(srv)
    c.expect("RCPT TO:<alice@example.test> ORCPT=utf-8;j\u00f6rg@example.test", 501, "5.5.4")
    c.expect("RCPT TO:<alice@example.test> ORCPT=utf-8;j\\x{F6}rg@example.test", 250, "2.1.5")   # RFC 6533 xtext
    c.quit()
    with srv.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<sender@client.test> SMTPUTF8", 250, "2.1.0")
        c.expect("RCPT TO:<alice@example.test> ORCPT=utf-8;j\u00f6rg@example.test", 250, "2.1.5")
        c.quit()
