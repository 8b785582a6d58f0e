"""Filters that fail (issue 17, "bad input"): a milter that is not running, closes the connection mid-message,
answers too slowly or never, or sends malformed frames; an rspamd that is down, never answers or answers garbage.
The client gets 451 4.7.1 (default_action / on_error = "tempfail") or the message goes on unfiltered ("accept");
the server keeps serving (another session works at the same time or right after) and every message that got a
250 is delivered. Each failure is logged with the filter's name.
"""

import threading
import time

import pytest

from ferrytest import Ferry, free_port, header_value, toml_section
from httppeer import ScriptedHttp
from rspamdtest import BrokenRspamd
from miltertest import (BadMilter, PyMilter, field_name, first_refusal, header_fields, milter_toml,
                        test_milter_header, transact)

RCPT = "alice@example.test"


def content(subject, headers="", body="Hello.\r\n"):
    return (f"From: <sender@client.test>\r\nTo: <{RCPT}>\r\nSubject: {subject}\r\n{headers}"
            f"Message-ID: <{subject}.{time.monotonic_ns()}@client.test>\r\n\r\n{body}").encode()


@pytest.fixture
def make_ferry(tmp_path):
    servers = []

    def make(extra_toml, **kw):
        srv = Ferry(tmp_path / f"ferry{len(servers)}", extra_toml=extra_toml, **kw)
        servers.append(srv)
        return srv.start()

    yield make
    for s in servers:
        s.stop()


def delivered_unchanged(srv, sent, count=1):
    """The newest of `count` delivered messages is `sent` byte for byte after our trace fields (Return-Path,
    Delivered-To, Received and any field Ferry puts in front of the content)."""
    files = srv.wait_mail("alice", count=count)
    data = max(files, key=lambda p: p.stat().st_mtime_ns).read_bytes()
    fields, body = header_fields(data)
    sent_fields, sent_body = header_fields(sent)
    assert body == sent_body
    assert fields[-len(sent_fields):] == sent_fields, fields
    assert field_name(fields[-len(sent_fields) - 1]) == "Received", fields
    return data


def assert_tempfail(result, what):
    refusal = first_refusal(result)
    assert refusal is not None and refusal[0] == 451 and refusal[1].startswith("4.7.1"), \
        f"{what}: expected 451 4.7.1, got {result}"
    assert result.get("end", (0,))[0] != 250, result


# ---------------------------------------------------------------- milters

# (mode, command letter): where BadMilter breaks the protocol. O negotiation, C connect, M MAIL, R RCPT,
# L header, B body, E end of message.
MALFORMED = [("badlen", "M"), ("hugelen", "E"), ("unknown", "R"), ("garbage", "E"), ("badneg", "O"),
             ("unknown", "E"), ("badlen", "L")]
BROKEN = MALFORMED + [("close", "B"), ("close", "C"), ("hang", "R"), ("hang", "E"), ("slow1.5", "M"),
                      ("slow1.5", "E")]
TIMEOUTS = {"connect_timeout": "1s", "command_timeout": "1s", "content_timeout": "1s"}


@pytest.mark.parametrize("mode,at", BROKEN, ids=[f"{m}-{a}" for m, a in BROKEN])
def test_broken_milter_tempfails_then_the_next_session_works(make_ferry, mode, at):
    with BadMilter(mode=mode, at=at, times=0) as bad:
        srv = make_ferry(milter_toml(bad.address, name="badmilter", **TIMEOUTS))
        bad.times = 1   # not before: the start-up probe's session must not use up the misbehaviour
        started = time.monotonic()
        r = transact(srv.port, "a@client.test", [RCPT], content("broken"))
        assert_tempfail(r, f"{mode} at {at}")
        assert time.monotonic() - started < 8, "the milter's timeout was not kept"
        srv.wait_log(r"badmilter")
        # The milter behaves again: the next session is served, its message delivered as sent.
        sent = content("after")
        r2 = transact(srv.port, "a@client.test", [RCPT], sent)
        assert r2.get("end", (0,))[0] == 250, r2
        delivered_unchanged(srv, sent)
        assert len(srv.mail_files("alice")) == 1


@pytest.mark.parametrize("mode,at", BROKEN, ids=[f"{m}-{a}" for m, a in BROKEN])
def test_broken_milter_with_default_action_accept_delivers(make_ferry, mode, at):
    with BadMilter(mode=mode, at=at) as bad:
        srv = make_ferry(milter_toml(bad.address, name="badmilter", default_action="accept", **TIMEOUTS))
        sent = content("accepted")
        r = transact(srv.port, "a@client.test", [RCPT], sent)
        assert r.get("end", (0,))[0] == 250, r
        delivered_unchanged(srv, sent)
        srv.wait_log(r"badmilter")


def test_milter_not_running(make_ferry):
    port = free_port()
    srv = make_ferry(milter_toml(f"inet:127.0.0.1:{port}", name="absent", **TIMEOUTS))
    r = transact(srv.port, "a@client.test", [RCPT], content("no milter"))
    assert_tempfail(r, "milter not running")
    srv.wait_log(r"absent")
    # Once the milter is up, the next session gets it: nothing stays broken.
    with BadMilter(mode=None, port=port):
        sent = content("milter back")
        r = transact(srv.port, "a@client.test", [RCPT], sent)
        assert r.get("end", (0,))[0] == 250, r
        delivered_unchanged(srv, sent)


def test_milter_not_running_default_action_accept(make_ferry):
    srv = make_ferry(milter_toml(f"inet:127.0.0.1:{free_port()}", name="absent", default_action="accept",
                                 **TIMEOUTS))
    sent = content("unfiltered")
    r = transact(srv.port, "a@client.test", [RCPT], sent)
    assert r.get("end", (0,))[0] == 250, r
    delivered_unchanged(srv, sent)
    srv.wait_log(r"absent")


@pytest.mark.parametrize("token", ["body-close", "eom-close", "eom-sleep3", "data-sleep3", "rcpt-sleep3"])
def test_python_milter_misbehaving_mid_message(make_ferry, tmp_path, token):
    """The same through libmilter: the connection shut down mid-message, an answer after the timeout, none."""
    with PyMilter(tmp_path / "m") as m:
        srv = make_ferry(milter_toml(m.address, name="pymilter", **TIMEOUTS), users=("alice", token))
        # A token reaches the milter where the stage needs it: in the recipient, the sender or the header.
        if token.startswith("rcpt-"):
            r = transact(srv.port, "a@client.test", [f"{token}@example.test"], content("misbehave"))
        elif token.startswith(("mail-", "data-")):
            r = transact(srv.port, f"{token}@client.test", [RCPT], content("misbehave"))
        else:
            r = transact(srv.port, "a@client.test", [RCPT], content("misbehave", test_milter_header(token)))
        assert_tempfail(r, token)
        sent = content("fine")
        r2 = transact(srv.port, "a@client.test", [RCPT], sent)
        assert r2.get("end", (0,))[0] == 250, r2
        delivered_unchanged(srv, sent)


def test_slow_milter_does_not_hold_up_other_sessions(make_ferry):
    """While one session waits for a milter that never answers, another is served in full."""
    with BadMilter(mode="hang", at="E", times=0) as bad:
        srv = make_ferry(milter_toml(bad.address, name="hanging", command_timeout="1s", content_timeout="2s"))
        bad.times = 1
        results = {}
        t = threading.Thread(target=lambda: results.update(
            slow=transact(srv.port, "a@client.test", [RCPT], content("slow"))))
        t.start()
        deadline = time.monotonic() + 5
        while not any("E" in conn for conn in bad.commands):
            assert time.monotonic() < deadline, bad.commands
            time.sleep(0.02)
        sent = content("meanwhile")
        r = transact(srv.port, "a@client.test", [RCPT], sent)
        assert r.get("end", (0,))[0] == 250, r
        assert "slow" not in results, "the first session was answered before the second was served"
        t.join(timeout=15)
        assert_tempfail(results["slow"], "hanging milter")
        delivered_unchanged(srv, sent)


# ---------------------------------------------------------------- rspamd that fails

def rspamd_toml(url, **kw):
    return toml_section("rspamd", {"url": url, **kw})


def test_rspamd_down_tempfails(make_ferry):
    srv = make_ferry(rspamd_toml(f"http://127.0.0.1:{free_port()}", timeout="2s"))
    r = transact(srv.port, "a@client.test", [RCPT], content("rspamd down"))
    assert_tempfail(r, "rspamd down")
    srv.wait_log(r"rspamd error: ")
    assert srv.mail_files("alice") == []


def test_rspamd_down_on_error_accept_delivers_unscanned(make_ferry):
    srv = make_ferry(rspamd_toml(f"http://127.0.0.1:{free_port()}", timeout="2s", on_error="accept"))
    sent = content("rspamd down accept")
    r = transact(srv.port, "a@client.test", [RCPT], sent)
    assert r.get("end", (0,))[0] == 250, r
    data = srv.wait_mail("alice")[0].read_bytes()
    assert header_value(data, "X-Spam-Unscanned") is not None, data[:800]
    assert data.endswith(sent.split(b"\r\n\r\n", 1)[1])
    srv.wait_log(r"rspamd error: ")


# rspamdtest.BrokenRspamd's ways of answering badly, and two more of httppeer.ScriptedHttp's (JSON cut short inside
# a complete HTTP reply, bytes that are no HTTP at all).
BAD_ANSWERS = [("broken", m) for m in ("garbage", "http500", "close", "close_mid_reply", "unknown_action")] + \
              [("scripted", m) for m in ("truncated", "nonsense")]


def bad_peer(kind, mode):
    return BrokenRspamd(mode) if kind == "broken" else ScriptedHttp(mode)


@pytest.mark.parametrize("kind,mode", BAD_ANSWERS, ids=[m for _, m in BAD_ANSWERS])
def test_rspamd_bad_answers_tempfail(make_ferry, kind, mode):
    with bad_peer(kind, mode) as peer:
        srv = make_ferry(rspamd_toml(peer.url, timeout="2s"))
        r = transact(srv.port, "a@client.test", [RCPT], content(f"rspamd {mode}"))
        assert_tempfail(r, f"rspamd {mode}")
        assert peer.requests
        srv.wait_log(r"rspamd error: ")
        assert srv.mail_files("alice") == []


@pytest.mark.parametrize("kind,mode", [("broken", "garbage"), ("scripted", "hang")])
def test_rspamd_bad_answers_on_error_accept(make_ferry, kind, mode):
    with bad_peer(kind, mode) as peer:
        srv = make_ferry(rspamd_toml(peer.url, timeout="1s", on_error="accept"))
        sent = content(f"rspamd {mode} accept")
        r = transact(srv.port, "a@client.test", [RCPT], sent)
        assert r.get("end", (0,))[0] == 250, r
        data = srv.wait_mail("alice")[0].read_bytes()
        assert header_value(data, "X-Spam-Unscanned") is not None, data[:800]
        srv.wait_log(r"rspamd error: ")


def test_rspamd_that_never_answers_tempfails_and_others_are_served(make_ferry):
    with ScriptedHttp("hang") as peer:
        srv = make_ferry(rspamd_toml(peer.url, timeout="2s"))
        results = {}
        t = threading.Thread(target=lambda: results.update(
            slow=transact(srv.port, "a@client.test", [RCPT], content("rspamd hangs"))))
        started = time.monotonic()
        t.start()
        deadline = time.monotonic() + 5
        while not peer.requests:
            assert time.monotonic() < deadline, "rspamd was never asked"
            time.sleep(0.02)
        # Meanwhile another session goes as far as it can without rspamd (its own scan would wait too).
        with srv.connect() as c:
            c.ehlo()
            c.expect("MAIL FROM:<b@client.test>", 250, "2.1.0")
            c.expect(f"RCPT TO:<{RCPT}>", 250, "2.1.5")
            c.expect("RSET", 250)
            c.quit()
        assert "slow" not in results
        t.join(timeout=15)
        assert_tempfail(results["slow"], "rspamd never answers")
        assert 1.5 < time.monotonic() - started < 10
        assert srv.mail_files("alice") == []
