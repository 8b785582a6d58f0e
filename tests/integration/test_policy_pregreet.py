"""Early talkers (postscreen's pregreet test) with pregreet_wait = "1s": the mx listener sends "220-" first, waits,
then the rest of the greeting; a client that sends before the greeting ends gets 554 5.5.1 and is closed (logged
as policy=pregreet). A client that waits gets the whole multi-line greeting and delivers; submission and clients in
allow_networks (127.0.33.0/24 here: the docs say they skip the test) have no wait.
"""

import socket
import time

import pytest

from dnstest import DnsServer
from ferrytest import Ferry, RawSMTP, free_port
from policytest import find_subject, listing, message, smtp_from, wait_test_points_asked, zone_test_points

WAIT = 1.0


# One listed client, refused at connect (dnsbl_reject = "connect") by a server that also does the pregreet test.
LISTED = "127.0.35.1"
ZONE = {**zone_test_points("bl.test"), **listing(LISTED, "bl.test", txt="listed for the pregreet test")}


@pytest.fixture(scope="module")
def dns():
    with DnsServer(ZONE) as server:
        yield server


@pytest.fixture(scope="module")
def srv(dns, tmp_path_factory):
    sub = free_port()
    extra = (f'[[listen]]\naddress = "127.0.0.1:{sub}"\nrole = "submission"\n\n'
             f'[dns]\nresolver = "{dns.address}"\ntimeout = "2s"\n\n'
             f'[policy]\nallow_networks = ["127.0.33.0/24"]\npregreet_wait = "{int(WAIT)}s"\n'
             'dnsbl_reject = "connect"\n\n'
             '[[dnsbl]]\nzone = "bl.test"\n')
    server = Ferry(tmp_path_factory.mktemp("pregreet"), extra_toml=extra)
    server.sub_port = sub
    server.start()
    wait_test_points_asked(dns, ["bl.test"])
    yield server
    server.stop()


def read_until_closed(sock, timeout=5.0):
    """Everything the server sends until it closes; (data, closed)."""
    deadline = time.monotonic() + timeout
    data = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return data, False
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return data, False
        except (ConnectionResetError, BrokenPipeError):
            return data, True
        if not chunk:
            return data, True
        data += chunk


def test_client_talking_before_the_greeting_gets_554_and_is_closed(srv):
    client = "127.0.30.1"
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5, source_address=(client, 0)) as s:
        s.sendall(b"EHLO bot.test\r\n")
        data, closed = read_until_closed(s)
    assert closed, f"connection not closed; got {data!r}"
    lines = [l for l in data.split(b"\r\n") if l]
    assert lines, "nothing sent"
    assert lines[-1] == b"554 5.5.1 mx.example.test Error: you talked before the greeting", lines
    # Before the verdict, at most the first line of the greeting; never an answer to the EHLO.
    assert all(l.startswith(b"220-") for l in lines[:-1]), lines
    srv.wait_log(r"policy=pregreet client=\[127\.0\.30\.1\]:\d+ action=reject")


def test_client_that_waits_gets_the_multi_line_greeting_and_delivers(srv):
    t0 = time.monotonic()
    with RawSMTP(srv.port, source="127.0.31.1") as c:
        elapsed = time.monotonic() - t0
        g = c.greeting
        assert g.code == 220, g
        assert g.raw[0].startswith(b"220-"), f"greeting is not multi-line: {g}"
        assert g.raw[-1].startswith(b"220 "), g
        assert elapsed >= WAIT * 0.8, f"the greeting ended after {elapsed:.2f}s, before pregreet_wait"
        c.ehlo()
        c.send_message("early@client.test", ["alice@example.test"], message("pregreet-raw"))
        c.quit()
    find_subject(srv, "alice", "pregreet-raw")
    # smtplib (it reads the greeting before it speaks) delivers too.
    with smtp_from("127.0.31.2", srv.port) as s:
        assert s.sendmail("early@client.test", ["alice@example.test"], message("pregreet-smtplib")) == {}
        s.quit()
    find_subject(srv, "alice", "pregreet-smtplib")
    assert not [l for l in srv.log.splitlines() if "policy=pregreet" in l and "127.0.31." in l]


def test_submission_listener_has_no_pregreet_wait(srv):
    # Control: this server's mx listener does the test (its greeting starts with "220-").
    with RawSMTP(srv.port, source="127.0.32.2") as c:
        assert c.greeting.raw[0].startswith(b"220-"), c.greeting
    t0 = time.monotonic()
    with RawSMTP(srv.sub_port, source="127.0.32.1", read_greeting=False) as c:
        c.send(b"EHLO client.test\r\n")   # at once, before any greeting
        g = c.reply()
        elapsed = time.monotonic() - t0
        assert g.code == 220 and not g.raw[0].startswith(b"220-"), g
        assert elapsed < WAIT * 0.5, f"submission greeting took {elapsed:.2f}s"
        r = c.reply()
        assert r.code == 250, f"EHLO sent early on submission: {r}"
        c.quit()
    assert not [l for l in srv.log.splitlines() if "policy=pregreet" in l and "127.0.32.1" in l]


def test_allow_listed_network_has_no_pregreet_wait(srv):
    # Control: a client outside allow_networks is tested.
    with RawSMTP(srv.port, source="127.0.34.1") as c:
        assert c.greeting.raw[0].startswith(b"220-"), c.greeting
    with RawSMTP(srv.port, source="127.0.33.1", read_greeting=False) as c:
        c.send(b"EHLO client.test\r\n")
        g = c.reply()
        assert g.code == 220 and not g.raw[0].startswith(b"220-"), g
        r = c.reply()
        assert r.code == 250, f"EHLO sent early from an allow-listed network: {r}"
        c.quit()
    assert not [l for l in srv.log.splitlines() if "policy=pregreet" in l and "127.0.33.1" in l]


def test_listed_client_refused_at_connect_after_the_pregreet_wait_gets_220_then_554_for_its_commands(srv):
    # With "220-" already sent, the greeting cannot become a 554 (one reply, one code): it ends as a 220 and every
    # command but QUIT, RSET and NOOP gets the list's 554 5.7.1 (docs/configuration.md, dnsbl_reject).
    with RawSMTP(srv.port, source=LISTED) as c:
        g = c.greeting
        assert g.code == 220 and g.raw[0].startswith(b"220-"), g
        r = c.cmd("EHLO client.test")
        assert r.is_(554, "5.7.1"), r
        assert "blocked using bl.test" in r.text and "listed for the pregreet test" in r.text, r
        assert c.cmd("MAIL FROM:<x@client.test>").is_(554, "5.7.1")
        assert c.cmd("NOOP").code == 250
        assert c.cmd("QUIT").code == 221
    srv.wait_log(r"policy=dnsbl client=\[127\.0\.35\.1\]:\d+ zone=bl\.test score=1 threshold=1 action=reject")
    # An unlisted client of the same server is not refused (control).
    with RawSMTP(srv.port, source="127.0.36.1") as c:
        assert c.cmd("EHLO client.test").code == 250
        c.quit()
