"""Rate limits (GCRA) with real clients: connections per client network ("3/1m": the 4th in a row gets 421 4.7.0
and is closed), messages ("2/1m": the 3rd message's first RCPT gets 451 4.7.1) and recipients ("3/1m") per client
network on mx, and messages ("2/1m") and recipients ("5/1m") per authenticated account on submission (which the
per-network limits do not count). postmaster@ is never limited, and one client's (or account's) budget is not
another's.

Each test talks from addresses of its own (127.0.2N.x); the server's one [rate_limit] table holds every limit.
"""

import re
import smtplib

import pytest

from ferrytest import DEFAULT_PASSWORD, Ferry, RawSMTP, client_context, free_port
from policytest import find_subject, log_lines, message, smtp_from


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    sub = free_port()
    extra = (f'[[listen]]\naddress = "127.0.0.1:{sub}"\nrole = "submission"\n\n'
             '[policy]\nallow_networks = []\n\n'
             '[rate_limit]\nconnections = "3/1m"\nmessages = "2/1m"\nrecipients = "3/1m"\n'
             'user_messages = "2/1m"\nuser_recipients = "5/1m"\n')
    server = Ferry(tmp_path_factory.mktemp("rate"), extra_toml=extra, users=("alice", "bob", "carol", "dave"))
    server.sub_port = sub
    server.start()
    yield server
    server.stop()


def test_fourth_connection_in_a_row_gets_421_and_is_closed(srv):
    client = "127.0.20.1"
    for i in range(3):
        with smtp_from(client, srv.port) as s:
            code, _ = s.noop()
            assert code == 250, f"connection {i + 1} of 3"
            s.quit()
    with RawSMTP(srv.port, source=client) as c:
        g = c.greeting
        assert g.is_(421, "4.7.0"), f"4th connection: {g}"
        assert g.text == f"4.7.0 {srv.hostname} Error: too many connections from {client}", g
        closed, extra = c.wait_closed()
        assert closed, f"not closed after 421 (got {extra!r})"
    srv.wait_log(r"policy=rate client=\[127\.0\.20\.1\]:\d+ .*limit=connections action=refuse")
    # Another client address has a budget of its own.
    with smtp_from("127.0.21.1", srv.port) as s:
        assert s.noop()[0] == 250
        s.quit()


def test_third_message_is_refused_at_its_first_rcpt_but_postmaster_is_not(srv):
    client = "127.0.22.1"
    with RawSMTP(srv.port, source=client) as c:
        assert c.greeting.code == 220, c.greeting
        c.ehlo()
        for i in (1, 2):
            c.send_message("rate@client.test", ["alice@example.test"], message(f"rate-message-{i}"))
        c.expect("MAIL FROM:<rate@client.test>", 250, "2.1.0")
        r = c.cmd("RCPT TO:<alice@example.test>")
        assert r.is_(451, "4.7.1"), f"3rd message: {r}"
        assert r.text == f"4.7.1 Error: too many messages from {client}, slow down", r
        r = c.cmd("RCPT TO:<postmaster@example.test>")
        assert r.is_(250, "2.1.5"), f"postmaster@ rate limited (RFC 5321 4.5.1): {r}"
        assert c.cmd("DATA").code == 354
        c.send(message("rate-to-postmaster", to="postmaster@example.test") + b".\r\n")
        assert c.reply().is_(250, "2.0.0")
        c.quit()
    find_subject(srv, "postmaster", "rate-to-postmaster")
    srv.wait_log(r"policy=rate client=\[127\.0\.22\.1\]:\d+ .*limit=messages action=refuse")
    # Another client is not limited by this one's messages.
    with smtp_from("127.0.23.1", srv.port) as s:
        assert s.sendmail("rate@client.test", ["alice@example.test"], message("rate-other-client")) == {}
        s.quit()
    find_subject(srv, "alice", "rate-other-client")


def test_fourth_recipient_is_refused(srv):
    client = "127.0.24.1"
    with RawSMTP(srv.port, source=client) as c:
        assert c.greeting.code == 220, c.greeting
        c.ehlo()
        c.expect("MAIL FROM:<rcpts@client.test>", 250, "2.1.0")
        for rcpt in ("alice@example.test", "bob@example.test", "carol@example.test"):
            c.expect(f"RCPT TO:<{rcpt}>", 250, "2.1.5")
        r = c.cmd("RCPT TO:<dave@example.test>")
        assert r.is_(451, "4.7.1"), f"4th recipient: {r}"
        assert r.text == f"4.7.1 Error: too many recipients from {client}, slow down", r
        assert c.cmd("DATA").code == 354
        c.send(message("rate-recipients") + b".\r\n")
        assert c.reply().is_(250, "2.0.0")
        c.quit()
    find_subject(srv, "carol", "rate-recipients")
    srv.wait_log(r"policy=rate client=\[127\.0\.24\.1\]:\d+ .*limit=recipients action=refuse")


def submission(srv, source, user):
    s = smtplib.SMTP("127.0.0.1", srv.sub_port, timeout=10, source_address=(source, 0))
    s.ehlo("client.test")
    s.starttls(context=client_context())
    s.ehlo("client.test")
    s.login(user, DEFAULT_PASSWORD)
    return s


def test_authenticated_account_has_a_message_budget_and_another_account_is_unaffected(srv):
    alice = "alice@example.test"
    with submission(srv, "127.0.25.1", alice) as s:
        for i in (1, 2):
            assert s.sendmail(alice, ["bob@example.test"], message(f"user-rate-{i}", sender=alice,
                                                                    to="bob@example.test")) == {}
        s.mail(alice)
        code, text = s.rcpt("bob@example.test")
        assert (code, text[:5]) == (451, b"4.7.1"), f"3rd message of {alice}: {code} {text!r}"
        assert re.fullmatch(rb"4\.7\.1 Error: account alice(@example\.test)? sent too many messages, try again later",
                            text), text
        s.rset()
        s.quit()
    # Another address of the same account is still the same account.
    with submission(srv, "127.0.25.2", alice) as s:
        s.mail(alice)
        code, _ = s.rcpt("bob@example.test")
        assert code == 451, "the account's budget follows it to another client address"
        s.quit()
    # bob has a budget of his own.
    bob = "bob@example.test"
    with submission(srv, "127.0.25.3", bob) as s:
        assert s.sendmail(bob, ["alice@example.test"], message("user-rate-bob", sender=bob)) == {}
        s.quit()
    find_subject(srv, "alice", "user-rate-bob")
    assert log_lines(srv, "policy=rate", "limit=user_messages") or log_lines(srv, "policy=rate", alice), \
        f"no policy=rate line for {alice}:\n{srv.log[-3000:]}"


def test_authenticated_account_has_a_recipient_budget_not_the_clients_one(srv):
    carol = "carol@example.test"
    rcpts = [f"friend{i}@remote.test" for i in range(1, 6)]
    with submission(srv, "127.0.26.1", carol) as s:
        s.mail(carol)
        # Five recipients pass: the per-network limit (3/1m) is not the account's ...
        for r in rcpts:
            code, text = s.rcpt(r)
            assert code == 250, f"{r}: {code} {text!r}"
        # ... the account's (5/1m) refuses the sixth.
        code, text = s.rcpt("friend6@remote.test")
        assert (code, text[:5]) == (451, b"4.7.1"), f"6th recipient of {carol}: {code} {text!r}"
        s.rset()
        s.quit()
