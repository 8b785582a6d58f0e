"""SMTP smuggling: only <CRLF>.<CRLF> ends DATA; bare LF / bare CR in content is refused with 550 5.5.2, a NUL octet
(without BINARYMIME) with 550 5.6.1."""

import time

import pytest

from ferrytest import header_value

VARIANTS = {
    "LF.LF": b"\n.\n",
    "LF.CRLF": b"\n.\r\n",
    "CR.CR": b"\r.\r",
    "CRLF.CR": b"\r\n.\r",
    "CRLF.LF": b"\r\n.\n",
    "CR.CRLF": b"\r.\r\n",
}

SMUGGLED = (b"MAIL FROM:<evil@x.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"
            b"Subject: smuggled\r\n\r\nhidden\r\n.\r\n")


def start_data(c):
    c.expect("MAIL FROM:<sender@client.test>", 250, "2.1.0")
    c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
    r = c.cmd("DATA")
    assert r.code == 354, r


def assert_refused_in_sync(c, enhanced="5.5.2"):
    r = c.reply()
    assert r.is_(550, enhanced), f"expected one 550 {enhanced} for the whole thing, got {r}"
    c.send(b"NOOP\r\n")
    r = c.reply()
    assert r.is_(250, "2.0.0") and not r.queue_id, f"the reply after the 550 must be NOOP's 250, got {r}"


def control_and_check(srv, c):
    """Control message on the same connection to carol; once it is delivered, alice and bob have nothing."""
    c.send_message("sender@client.test", ["carol@example.test"],
                   b"Subject: control\r\n\r\ncontrol body\r\n")
    c.quit()
    [f] = srv.wait_mail("carol")
    assert header_value(f.read_bytes(), "Subject") == "control"
    time.sleep(1.0)
    assert srv.mail_files("alice") == [], "the refused message was delivered"
    assert srv.mail_files("bob") == [], "the smuggled message was delivered"
    assert len(srv.mail_files("carol")) == 1


@pytest.fixture
def srv(ferry):
    return ferry(users=("alice", "bob", "carol"))


@pytest.mark.parametrize("variant", list(VARIANTS), ids=list(VARIANTS))
def test_smuggling_variant(srv, variant):
    with srv.connect() as c:
        c.ehlo()
        start_data(c)
        c.send(b"Subject: one\r\n\r\nfirst" + VARIANTS[variant] + SMUGGLED)
        assert_refused_in_sync(c)
        control_and_check(srv, c)


@pytest.mark.parametrize("variant", list(VARIANTS), ids=list(VARIANTS))
def test_smuggling_variant_pipelined_with_envelope(srv, variant):
    """Same, with the envelope pipelined and the smuggled part sent in separate small writes."""
    with srv.connect() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<sender@client.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
        r = c.replies(3)
        assert r[0].code == 250 and r[1].code == 250 and r[2].code == 354, r
        payload = b"Subject: one\r\n\r\nfirst" + VARIANTS[variant] + SMUGGLED
        for i in range(0, len(payload), 7):
            c.send(payload[i:i + 7])
            time.sleep(0.002)
        assert_refused_in_sync(c)
        control_and_check(srv, c)


@pytest.mark.parametrize("content", [
    b"Subject: bare lf\r\n\r\nline one\nline two\r\n",
    b"Subject: bare cr\r\n\r\nline one\rline two\r\n",
    b"Subject: bare lf in header\nX: y\r\n\r\nbody\r\n",
    b"Subject: lf at end\r\n\r\nbody\n\r\n",
    b"Subject: cr before crlf\r\n\r\nbody\r\r\n",
], ids=["bare-LF", "bare-CR", "LF-in-header", "LF-before-end", "CR-before-CRLF"])
def test_bare_line_endings_refused(srv, content):
    with srv.connect() as c:
        c.ehlo()
        start_data(c)
        c.send(content + b".\r\n")
        assert_refused_in_sync(c)
        control_and_check(srv, c)


def test_dot_lf_is_not_end_of_data(srv):
    """`.\\n` after a CRLF never ends DATA, even when the client then waits."""
    with srv.connect() as c:
        c.ehlo()
        start_data(c)
        c.send(b"Subject: wait\r\n\r\nbody\r\n.\n")
        with pytest.raises(OSError):
            r = c.reply(timeout=1.0)
            pytest.fail(f"server replied before the real end of data: {r}")
        c.send(b"more\r\n.\r\n")
        assert_refused_in_sync(c)
        control_and_check(srv, c)


def test_nul_dot_is_content_and_refused(srv):
    """"<CRLF>NUL.<CRLF>" is content here, but a next hop that drops NULs before looking for the end of data would
    end the message there and read what follows as commands: the message is refused (RFC 5321 2.3.8, no
    BINARYMIME), never relayed."""
    with srv.connect() as c:
        c.ehlo()
        start_data(c)
        c.send(b"Subject: one\r\n\r\nfirst\r\n\x00.\r\n" + SMUGGLED)
        assert_refused_in_sync(c, "5.6.1")
        control_and_check(srv, c)


def test_nul_in_bdat_refused(srv):
    payload = b"Subject: one\r\n\r\nfirst\r\n\x00.\r\n" + SMUGGLED
    with srv.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<sender@client.test>", 250, "2.1.0")
        c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
        c.send(b"BDAT %d LAST\r\n" % len(payload) + payload)
        assert_refused_in_sync(c, "5.6.1")
        control_and_check(srv, c)
