"""Self-test of smtppeer.SmtpPeer (the scripted remote server of test_outbound.py) with Python's smtplib and
raw sockets: plain and STARTTLS transactions, pipelined commands, per-recipient replies, AUTH, HELO fallback,
drops, stalls, broken TLS, concurrency counting and a clean stop. No ferry process is involved."""

import base64
import smtplib
import socket
import ssl
import threading
import time

import pytest

from ferrytest import RawSMTP, client_context, dot_stuff, free_port
from smtppeer import SmtpPeer, parse_path_params

MESSAGE = (b"From: <a@client.test>\r\nTo: <b@example.org>\r\nSubject: peer self-test\r\n\r\n"
           b"line one\r\n.starts with a dot\r\n..two dots\r\n.\r\nlast\r\n")


@pytest.fixture
def peer():
    with SmtpPeer() as p:
        yield p


def test_plain_transaction_is_recorded(peer):
    with smtplib.SMTP("127.0.0.1", peer.port, timeout=5) as s:
        code, _ = s.ehlo("client.test")
        assert code == 250
        assert s.has_extn("pipelining") and s.has_extn("starttls") and s.has_extn("dsn")
        assert s.esmtp_features["size"] == "10240000"
        s.sendmail("a@client.test", ["b@example.org", "c@example.org"], MESSAGE)
    [m] = peer.wait_messages(1, timeout=5)
    assert m.sender == "a@client.test" and m.rcpts == ["b@example.org", "c@example.org"]
    assert m.data == MESSAGE, "the peer must dot-unstuff exactly"
    assert not m.tls
    peer.wait_for(lambda p: p.active == 0, 5, "the connection to end")
    [t] = peer.transcripts
    assert t.ehlo_name == "client.test"
    assert t.verbs[:4] == ["EHLO", "MAIL", "RCPT", "RCPT"] and "DATA" in t.verbs and t.verbs[-1] == "QUIT"
    assert t.mail_from.upper().startswith("MAIL FROM:<A@CLIENT.TEST> SIZE=")   # smtplib writes "mail"
    assert [l.upper() for l in t.rcpt_lines] == ["RCPT TO:<B@EXAMPLE.ORG>", "RCPT TO:<C@EXAMPLE.ORG>"]
    assert t.messages == [MESSAGE]
    assert peer.connections == 1 and peer.max_concurrent == 1


def test_starttls_and_auth(peer):
    peer.auth = {"user": "secret"}
    with smtplib.SMTP("127.0.0.1", peer.port, timeout=5) as s:
        s.ehlo("client.test")
        assert not s.has_extn("auth"), "AUTH offered before TLS"
        s.starttls(context=client_context())
        s.ehlo("client.test")
        assert not s.has_extn("starttls")
        assert s.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"]
        with pytest.raises(smtplib.SMTPAuthenticationError):
            s.login("user", "wrong")
        s.login("user", "secret")
        s.sendmail("a@client.test", ["b@example.org"], MESSAGE)
    [m] = peer.wait_messages(1, timeout=5)
    assert m.tls and m.session.tls_version.startswith("TLSv1")
    t = m.session
    # smtplib tries each offered mechanism before giving up on the wrong password
    assert [(a["mechanism"], a["ok"]) for a in t.auth] == [("PLAIN", False), ("LOGIN", False), ("PLAIN", True)]
    assert t.auth[-1]["user"] == "user" and t.auth[-1]["password"] == "secret" and t.auth[-1]["tls"]
    assert t.verbs[:3] == ["EHLO", "STARTTLS", "EHLO"]


def test_auth_login_challenge_form_and_refusal(peer):
    peer.auth, peer.auth_tls_only = {"u": "p"}, False
    with RawSMTP(peer.port, timeout=5) as c:
        c.ehlo()
        assert c.cmd("AUTH LOGIN").code == 334
        assert c.cmd(base64.b64encode(b"u").decode()).code == 334
        assert c.cmd(base64.b64encode(b"p").decode()).is_(235, "2.7.0")
        assert c.cmd("AUTH PLAIN").code == 503   # already authenticated
    peer.auth_reply = "454 4.7.0 try later"
    with RawSMTP(peer.port, timeout=5) as c:
        c.ehlo()
        assert c.cmd("AUTH PLAIN").code == 334
        assert c.cmd(base64.b64encode(b"\0u\0p").decode()).is_(454, "4.7.0")
    assert [(a["mechanism"], a["user"], a["password"], a["ok"]) for t in peer.transcripts for a in t.auth] == \
        [("LOGIN", "u", "p", True), ("PLAIN", "u", "p", False)]


def test_pipelined_commands_are_answered_in_order_and_batched(peer):
    peer.rcpt_replies = {"Bad@Example.org": "550 5.1.1 no such user", "later@example.org": "451 4.3.0 try later"}
    with RawSMTP(peer.port, timeout=5) as c:
        c.ehlo()
        c.send("MAIL FROM:<a@client.test> SIZE=100\r\nRCPT TO:<bad@example.org>\r\nRCPT TO:<later@example.org>\r\n"
               "RCPT TO:<ok@example.org> NOTIFY=NEVER\r\nDATA\r\n")
        replies = c.replies(5)
        assert [r.code for r in replies] == [250, 550, 451, 250, 354]
        assert replies[1].enhanced == "5.1.1"
        c.send(dot_stuff(MESSAGE) + b".\r\nQUIT\r\n")
        assert c.reply().code == 250
        assert c.reply().code == 221
    [m] = peer.wait_messages(1, timeout=5)
    assert m.rcpts == ["ok@example.org"] and m.data == MESSAGE
    assert m.rcpt_params["ok@example.org"] == {"NOTIFY": "NEVER"}
    t = m.session
    assert ["MAIL FROM:<a@client.test> SIZE=100", "RCPT TO:<bad@example.org>", "RCPT TO:<later@example.org>",
            "RCPT TO:<ok@example.org> NOTIFY=NEVER", "DATA"] in t.batches
    assert t.transactions[0].refused == {"bad@example.org": "550 5.1.1 no such user",
                                         "later@example.org": "451 4.3.0 try later"}


def test_no_valid_recipient_means_no_data_and_size_limit(peer):
    peer.ehlo_caps = ["SIZE 1000", "ENHANCEDSTATUSCODES"]
    peer.rcpt_reply = "550 5.1.1 nobody here"
    with RawSMTP(peer.port, timeout=5) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@client.test> SIZE=5000").is_(552, "5.3.4")
        assert c.cmd("MAIL FROM:<a@client.test> BODY=8BITMIME").code == 555   # 8BITMIME not offered
        c.expect("MAIL FROM:<a@client.test> SIZE=10", 250)
        assert c.cmd("RCPT TO:<x@example.org>").code == 550
        assert c.cmd("DATA").is_(554)
    assert peer.messages == []


def test_ehlo_refused_then_helo(peer):
    peer.ehlo_reply = "500 5.5.1 command unrecognized"
    with smtplib.SMTP("127.0.0.1", peer.port, timeout=5) as s:
        s.sendmail("a@client.test", ["b@example.org"], MESSAGE)   # smtplib falls back to HELO
    [m] = peer.wait_messages(1, timeout=5)
    assert m.session.ehlo_names[-1][0] == "HELO" and m.session.verbs[:2] == ["EHLO", "HELO"]
    with RawSMTP(peer.port, timeout=5) as c:
        c.helo()
        assert c.cmd("STARTTLS").code == 502                           # no extension after HELO
        assert c.cmd("MAIL FROM:<a@client.test> SIZE=10").code == 555
        c.expect("MAIL FROM:<a@client.test>", 250)


def test_greetings_drop_and_stall(peer):
    peer.greeting = "421 4.3.2 go away"
    with RawSMTP(peer.port, timeout=5, read_greeting=False) as c:
        assert c.reply().code == 421
        assert c.wait_closed()[0]
    peer.greeting = "554 5.7.1 no"
    with RawSMTP(peer.port, timeout=5) as c:
        assert c.greeting.code == 554
        assert c.cmd("EHLO x").code == 503
        assert c.cmd("QUIT").code == 221
    peer.greeting = "220 peer.test ESMTP"
    peer.drop_at = "RCPT"
    with RawSMTP(peer.port, timeout=5) as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@client.test>", 250)
        c.send("RCPT TO:<b@example.org>\r\n")
        assert c.wait_closed()[0]
    peer.drop_at = None
    peer.stall_at = "MAIL"
    t0 = time.monotonic()
    with smtplib.SMTP("127.0.0.1", peer.port, timeout=1) as s:
        s.ehlo("client.test")
        with pytest.raises((socket.timeout, smtplib.SMTPServerDisconnected)):
            s.mail("a@client.test")
    assert time.monotonic() - t0 < 4
    assert peer.commands("MAIL")[-1].upper() == "MAIL FROM:<A@CLIENT.TEST>"
    assert peer.messages == []


def test_delay_and_max_concurrent(peer):
    peer.delay = {".": 0.5}

    def send(i):
        with smtplib.SMTP("127.0.0.1", peer.port, timeout=5) as s:
            s.sendmail("a@client.test", [f"r{i}@example.org"], MESSAGE)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(peer.wait_messages(3, timeout=5)) == 3
    assert peer.connections == 3 and peer.max_concurrent == 3
    peer.wait_for(lambda p: p.active == 0, 5, "every connection to end")


@pytest.mark.parametrize("mode", ["close", "garbage"])
def test_broken_tls_handshake(peer, mode):
    peer.tls_break = mode
    with smtplib.SMTP("127.0.0.1", peer.port, timeout=5) as s:
        s.ehlo("client.test")
        with pytest.raises((ssl.SSLError, OSError, smtplib.SMTPServerDisconnected)):
            s.starttls(context=client_context())
    peer.wait_for(lambda p: p.active == 0, 5, "the connection to end")
    assert peer.transcripts[0].closed_by == f"peer: tls_break {mode}"


def test_stop_closes_everything_and_port_can_be_reused():
    port = free_port()
    p = SmtpPeer(port=port, stall_at="GREETING").start()
    c = socket.create_connection(("127.0.0.1", port), timeout=5)
    p.wait_connections(1, timeout=5)
    t0 = time.monotonic()
    p.stop()
    assert time.monotonic() - t0 < 3
    assert c.recv(100) == b""   # closed, no banner
    c.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    with SmtpPeer(port=port) as again:
        with RawSMTP(port, timeout=5) as c:
            assert c.greeting.code == 220
            c.quit()
        assert again.connections == 1


def test_parse_path_params():
    assert parse_path_params("FROM:<> RET=HDRS ENVID=a+2Bb") == ("", {"RET": "HDRS", "ENVID": "a+2Bb"})
    assert parse_path_params("TO:<x@y> notify=never smtputf8") == ("x@y", {"NOTIFY": "never", "SMTPUTF8": None})
