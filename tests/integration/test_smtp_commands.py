"""SMTP command handling: greeting, EHLO/HELO, sequencing, syntax errors, exact reply codes."""

import re

import pytest

from ferrytest import make_message

ENH_RE = re.compile(r"^([245])\.\d{1,3}\.\d{1,3}( |$)")


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    from ferrytest import Ferry
    s = Ferry(tmp_path_factory.mktemp("smtp"), users=("alice", "bob"),
              aliases={"sales@example.test": ["alice@example.test", "bob@example.test"]})
    s.start()
    yield s
    s.stop()


def session(srv):
    c = srv.connect()
    c.ehlo()
    return c


def test_greeting(srv):
    c = srv.connect()
    assert c.greeting.raw == [b"220 mx.example.test ESMTP Ferry"], c.greeting
    c.quit()


def test_ehlo_extensions(srv):
    c = srv.connect()
    r = c.cmd("EHLO client.test")
    assert r.code == 250
    assert r.raw[0].startswith(b"250-mx.example.test"), r
    keywords = {}
    for line in r.lines[1:]:
        parts = line.split()
        keywords[parts[0].upper()] = parts[1:]
    for kw in ("PIPELINING", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "CHUNKING"):
        assert kw in keywords, f"{kw} missing in {r}"
        assert keywords[kw] == [], f"{kw} has parameters: {keywords[kw]}"
    assert keywords.get("SIZE") == [str(50 * 1024 * 1024)], r
    c.quit()


def test_helo(srv):
    c = srv.connect()
    r = c.cmd("HELO client.test")
    assert r.code == 250 and len(r.raw) == 1 and r.raw[0].startswith(b"250 mx.example.test"), r
    c.quit()


@pytest.mark.parametrize("verb", ["EHLO", "HELO"])
def test_ehlo_helo_without_argument(srv, verb):
    c = srv.connect()
    r = c.cmd(verb)
    assert r.is_(501, "5.5.4"), r
    r = c.cmd(verb + " ")
    assert r.is_(501, "5.5.4"), r
    c.ehlo()
    c.quit()


def test_mail_before_helo(srv):
    c = srv.connect()
    r = c.cmd("MAIL FROM:<x@client.test>")
    assert r.is_(503, "5.5.1"), r
    c.quit()


def test_second_mail(srv):
    c = session(srv)
    c.expect("MAIL FROM:<x@client.test>", 250, "2.1.0")
    c.expect("MAIL FROM:<y@client.test>", 503, "5.5.1")
    c.quit()


def test_rcpt_before_mail(srv):
    c = session(srv)
    c.expect("RCPT TO:<alice@example.test>", 503, "5.5.1")
    c.quit()


def test_data_before_rcpt(srv):
    c = session(srv)
    c.expect("DATA", 503, "5.5.1")
    c.expect("MAIL FROM:<x@client.test>", 250, "2.1.0")
    c.expect("DATA", 503, "5.5.1")
    c.expect("NOOP", 250, "2.0.0")
    c.quit()


def test_data_when_all_rcpts_rejected(srv):
    c = session(srv)
    c.expect("MAIL FROM:<x@client.test>", 250, "2.1.0")
    c.expect("RCPT TO:<nobody@example.test>", 550, "5.1.1")
    r = c.cmd("DATA")
    assert r.code in (503, 554) and r.enhanced == "5.5.1", r
    c.expect("NOOP", 250, "2.0.0")
    c.quit()


def test_unknown_command(srv):
    c = session(srv)
    c.expect("FROBNICATE now", 500, "5.5.2")
    c.expect("NOOP", 250, "2.0.0")
    c.quit()


@pytest.mark.parametrize("line", ["MAIL FROM:alice@example.test", "MAIL FROM:<a@b", "MAIL FROM:a@b>",
                                  "MAIL TO:<a@b.test>", "MAIL FROM:<a@@b.test>"])
def test_mail_bad_syntax(srv, line):
    c = session(srv)
    r = c.cmd(line)
    assert r.code == 501 and r.enhanced in ("5.5.4", "5.1.7"), r
    c.expect("MAIL FROM:<x@client.test>", 250, "2.1.0")
    c.quit()


@pytest.mark.parametrize("addr", ["<bad address>", "<alice@@example.test>", "<alice@exa mple.test>"])
def test_rcpt_bad_address(srv, addr):
    c = session(srv)
    c.expect("MAIL FROM:<x@client.test>", 250, "2.1.0")
    c.expect(f"RCPT TO:{addr}", 501, "5.1.3")
    c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
    c.quit()


def test_rcpt_without_brackets(srv):
    c = session(srv)
    c.expect("MAIL FROM:<x@client.test>", 250, "2.1.0")
    r = c.cmd("RCPT TO:alice@example.test")
    assert r.code == 501, r
    c.quit()


def test_unknown_mail_parameter(srv):
    c = session(srv)
    c.expect("MAIL FROM:<x@client.test> FOO=BAR", 555, "5.5.4")
    c.expect("MAIL FROM:<x@client.test>", 250, "2.1.0")
    c.quit()


def test_unknown_rcpt_parameter(srv):
    c = session(srv)
    c.expect("MAIL FROM:<x@client.test>", 250, "2.1.0")
    c.expect("RCPT TO:<alice@example.test> FOO=BAR", 555, "5.5.4")
    c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
    c.quit()


def test_full_transaction_codes(srv):
    c = session(srv)
    c.expect("MAIL FROM:<x@client.test>", 250, "2.1.0")
    c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
    r = c.cmd("DATA")
    assert r.code == 354, r
    c.send(make_message("codes") + b".\r\n")
    r = c.reply()
    assert r.code == 250 and re.fullmatch(r"2\.0\.0 Ok: queued as [0-9A-Z]+", r.text), r
    c.quit()


def test_rset_noop_quit(srv):
    c = session(srv)
    c.expect("NOOP", 250, "2.0.0")
    c.expect("MAIL FROM:<x@client.test>", 250, "2.1.0")
    c.expect("RSET", 250, "2.0.0")
    # after RSET a new MAIL is allowed, RCPT without MAIL is not
    c.expect("RCPT TO:<alice@example.test>", 503, "5.5.1")
    c.expect("MAIL FROM:<x@client.test>", 250, "2.1.0")
    c.expect("QUIT", 221, "2.0.0")
    closed, extra = c.wait_closed(3)
    assert closed and extra == b"", extra


def test_vrfy_does_not_reveal_users(srv):
    c = session(srv)
    replies = {}
    for addr in ("alice@example.test", "nobody@example.test", "alice", "nobody"):
        r = c.cmd(f"VRFY {addr}")
        assert r.is_(252, "2.0.0"), r
        replies[addr] = [l.replace(addr, "ADDR") for l in r.lines]
    assert replies["alice@example.test"] == replies["nobody@example.test"]
    assert replies["alice"] == replies["nobody"]
    c.quit()


def test_help(srv):
    c = session(srv)
    r = c.cmd("HELP")
    assert r.is_(214, "2.0.0"), r
    c.quit()


def test_unknown_local_user(srv):
    c = session(srv)
    c.expect("MAIL FROM:<x@client.test>", 250, "2.1.0")
    c.expect("RCPT TO:<nobody@example.test>", 550, "5.1.1")
    c.quit()


@pytest.mark.parametrize("sender", ["x@client.test", "alice@example.test", ""])
def test_no_relay(srv, sender):
    c = session(srv)
    c.expect(f"MAIL FROM:<{sender}>", 250, "2.1.0")
    c.expect("RCPT TO:<bob@elsewhere.test>", 554, "5.7.1")
    c.expect("RCPT TO:<bob@example.test.elsewhere.test>", 554, "5.7.1")
    c.expect("RCPT TO:<bob@sub.example.test>", 554, "5.7.1")
    c.quit()


def test_no_relay_percent_hack_and_source_route(srv):
    c = session(srv)
    c.expect("MAIL FROM:<x@client.test>", 250, "2.1.0")
    for addr in ("<bob%elsewhere.test@example.test>", "<@example.test:bob@elsewhere.test>"):
        r = c.cmd(f"RCPT TO:{addr}")
        assert r.code >= 500, f"{addr}: {r}"
    c.quit()


@pytest.mark.parametrize("addr", ["postmaster@example.test", "POSTMASTER@EXAMPLE.TEST", "PostMaster@example.test"])
def test_postmaster_always_accepted(srv, addr):
    c = session(srv)
    c.expect("MAIL FROM:<x@client.test>", 250, "2.1.0")
    c.expect(f"RCPT TO:<{addr}>", 250, "2.1.5")
    c.quit()


def test_null_sender(srv):
    c = session(srv)
    c.expect("MAIL FROM:<>", 250, "2.1.0")
    c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
    c.quit()


@pytest.mark.parametrize("addr", ["ALICE@EXAMPLE.TEST", "Alice@Example.Test", "alice@EXAMPLE.test"])
def test_recipient_case_insensitive(srv, addr):
    c = session(srv)
    c.expect("MAIL FROM:<x@client.test>", 250, "2.1.0")
    c.expect(f"RCPT TO:<{addr}>", 250, "2.1.5")
    c.quit()


def test_lowercase_commands(srv):
    c = srv.connect()
    assert c.cmd("ehlo client.test").code == 250
    c.expect("mail from:<x@client.test>", 250, "2.1.0")
    c.expect("rcpt to:<alice@example.test>", 250, "2.1.5")
    c.expect("rset", 250, "2.0.0")
    c.quit()


@pytest.mark.parametrize("body", ["8BITMIME", "7BIT", "8bitmime"])
def test_body_parameter(srv, body):
    c = session(srv)
    c.expect(f"MAIL FROM:<x@client.test> BODY={body}", 250, "2.1.0")
    c.quit()


def test_body_parameter_bad_value(srv):
    c = session(srv)
    r = c.cmd("MAIL FROM:<x@client.test> BODY=9BIT")
    assert r.code in (501, 555) and r.enhanced == "5.5.4", r
    c.quit()


def test_smtputf8_sender(srv):
    c = session(srv)
    c.expect("MAIL FROM:<δοκιμή@example.test> SMTPUTF8", 250, "2.1.0")
    c.quit()


def test_utf8_sender_without_smtputf8(srv):
    c = session(srv)
    c.expect("MAIL FROM:<δοκιμή@example.test>", 553, "5.6.7")
    c.quit()


def test_utf8_recipient_without_smtputf8(srv):
    c = session(srv)
    c.expect("MAIL FROM:<x@client.test>", 250, "2.1.0")
    c.expect("RCPT TO:<δοκιμή@example.test>", 553, "5.6.7")
    c.quit()


def test_size_parameter(srv):
    c = session(srv)
    n = 50 * 1024 * 1024
    c.expect(f"MAIL FROM:<x@client.test> SIZE={n + 1}", 552, "5.3.4")
    c.expect(f"MAIL FROM:<x@client.test> SIZE={n}", 250, "2.1.0")
    c.quit()


def test_size_parameter_bad_value(srv):
    c = session(srv)
    r = c.cmd("MAIL FROM:<x@client.test> SIZE=lots")
    assert r.code in (501, 555) and r.enhanced == "5.5.4", r
    c.quit()


def test_command_line_length_boundary(srv):
    c = session(srv)
    line = b"NOOP " + b"x" * (512 - len(b"NOOP ") - 2)
    assert len(line) + 2 == 512
    r = c.cmd(line)
    assert r.is_(250, "2.0.0"), r
    r = c.cmd(line + b"x")
    assert r.is_(500, "5.5.2"), r
    c.expect("NOOP", 250, "2.0.0")
    c.quit()


def test_very_long_command_line(srv):
    c = session(srv)
    r = c.cmd(b"MAIL FROM:<" + b"a" * 20000 + b"@client.test>")
    assert r.is_(500, "5.5.2"), r
    c.expect("NOOP", 250, "2.0.0")
    c.expect("MAIL FROM:<x@client.test>", 250, "2.1.0")
    c.quit()


def test_every_reply_has_enhanced_code(srv):
    """RFC 2034: all 2xx/4xx/5xx replies other than the greeting and the EHLO/HELO reply, each line,
    with a class agreeing with the reply code."""
    c = session(srv)
    seen = []
    for line in ["NOOP", "HELP", "VRFY alice", "RSET", "FOO", "MAIL FROM:<x@client.test>", "MAIL FROM:<y@client.test>",
                 "RCPT TO:<nobody@example.test>", "RCPT TO:<bob@elsewhere.test>", "RCPT TO:<bad address>",
                 "RCPT TO:<alice@example.test> FOO=1", "RCPT TO:<alice@example.test>", "DATA"]:
        seen.append((line, c.cmd(line)))
    c.send(make_message("enh") + b".\r\n")
    seen.append(("<end of data>", c.reply()))
    seen.append(("QUIT", c.cmd("QUIT")))
    for line, r in seen:
        if r.code == 354:
            continue
        for text in r.lines:
            m = ENH_RE.match(text)
            assert m, f"{line!r}: reply line without enhanced status code: {r}"
            assert m.group(1) == str(r.code)[0], f"{line!r}: class mismatch {r}"


def test_bare_postmaster_accepted(srv):
    """RFC 5321 4.5.1: <Postmaster> without a domain must be accepted."""
    c = session(srv)
    c.expect("MAIL FROM:<x@client.test>", 250, "2.1.0")
    c.expect("RCPT TO:<Postmaster>", 250, "2.1.5")
    c.quit()


def test_ehlo_resets_transaction(srv):
    """RFC 5321 4.1.4: EHLO in the middle of a transaction clears it."""
    c = session(srv)
    c.expect("MAIL FROM:<x@client.test>", 250, "2.1.0")
    c.ehlo("again.client.test")
    c.expect("RCPT TO:<alice@example.test>", 503, "5.5.1")
    c.expect("MAIL FROM:<x@client.test>", 250, "2.1.0")
    c.quit()


@pytest.mark.parametrize("line", [b"NO\x00OP", b"\xff\xfe\x00\x01garbage", b"\x1b[2J", b""])
def test_garbage_command(srv, line):
    c = session(srv)
    r = c.cmd(line)
    assert r.code in (500, 501) and r.enhanced in ("5.5.2", "5.5.4"), r
    c.expect("NOOP", 250, "2.0.0")
    c.quit()


def test_random_garbage_does_not_kill_server(srv):
    import random
    rnd = random.Random(20240601)
    for _ in range(5):
        c = srv.connect()
        try:
            for _ in range(8):
                junk = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 300)))
                c.send(junk.replace(b"\r\n", b"") + b"\r\n")
        except OSError:
            pass  # the error limit may close the session first
        c.close()
    c = session(srv)
    c.expect("NOOP", 250, "2.0.0")
    c.quit()
