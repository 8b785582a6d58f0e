"""PIPELINING (RFC 2920) and CHUNKING/BDAT (RFC 3030)."""

import time

from ferrytest import dot_stuff, header_value, make_message, parse_delivered


def test_pipelined_envelope(server):
    content = make_message("pipelined")
    with server.connect() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<p@client.test>\r\nRCPT TO:<alice@example.test>\r\n"
               b"RCPT TO:<bob@example.test>\r\nDATA\r\n")
        r = c.replies(4)
        assert r[0].is_(250, "2.1.0") and r[1].is_(250, "2.1.5") and r[2].is_(250, "2.1.5"), r
        assert r[3].code == 354, r
        c.send(content + b".\r\n")
        assert c.reply().is_(250, "2.0.0")
        c.quit()
    [fa] = server.wait_mail("alice")
    [fb] = server.wait_mail("bob")
    assert parse_delivered(fa.read_bytes())[4] == content
    assert parse_delivered(fb.read_bytes())[4] == content


def test_pipelined_with_rejected_recipient(server):
    with server.connect() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<p@client.test>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<nobody@example.test>\r\n"
               b"RCPT TO:<carol@elsewhere.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
        r = c.replies(6)
        assert r[0].is_(250, "2.1.0"), r
        assert r[1].is_(250, "2.1.5"), r
        assert r[2].is_(550, "5.1.1"), r
        assert r[3].is_(554, "5.7.1"), r
        assert r[4].is_(250, "2.1.5"), r
        assert r[5].code == 354, r
        c.send(make_message("mixed") + b".\r\n")
        assert c.reply().is_(250, "2.0.0")
        c.quit()
    server.wait_mail("alice")
    server.wait_mail("bob")


def test_pipelined_ehlo_group(server):
    """A client may pipeline everything up to DATA right after EHLO too (EHLO is the group's start)."""
    with server.connect() as c:
        c.send(b"EHLO client.test\r\nMAIL FROM:<p@client.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
        r = c.replies(4)
        assert r[0].code == 250 and "PIPELINING" in r[0].lines, r[0]
        assert r[1].is_(250, "2.1.0") and r[2].is_(250, "2.1.5") and r[3].code == 354, r
        c.send(make_message("ehlo group") + b".\r\n")
        assert c.reply().is_(250, "2.0.0")
        c.quit()
    server.wait_mail("alice")


def test_two_transactions_pipelined_with_rset(server):
    m1 = make_message("first of two")
    m2 = make_message("second of two")
    with server.connect() as c:
        c.ehlo()
        c.send(b"RSET\r\nMAIL FROM:<p@client.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
        r = c.replies(4)
        assert r[0].is_(250, "2.0.0") and r[1].is_(250, "2.1.0") and r[2].is_(250, "2.1.5") and r[3].code == 354, r
        # message content, end of data and the next group in one write (RFC 2920 3.1)
        c.send(dot_stuff(m1) + b".\r\nRSET\r\nMAIL FROM:<q@client.test>\r\nRCPT TO:<alice@example.test>\r\n"
               b"RCPT TO:<bob@example.test>\r\nDATA\r\n")
        r = c.replies(6)
        assert r[0].is_(250, "2.0.0") and r[0].queue_id, r
        assert r[1].is_(250, "2.0.0") and not r[1].queue_id, r
        assert r[2].is_(250, "2.1.0") and r[3].is_(250, "2.1.5") and r[4].is_(250, "2.1.5"), r
        assert r[5].code == 354, r
        c.send(dot_stuff(m2) + b".\r\nQUIT\r\n")
        r = c.replies(2)
        assert r[0].is_(250, "2.0.0") and r[0].queue_id, r
        assert r[1].is_(221, "2.0.0"), r
    files = server.wait_mail("alice", count=2)
    assert sorted(header_value(f.read_bytes(), "Subject") for f in files) == ["first of two", "second of two"]
    [fb] = server.wait_mail("bob")
    assert parse_delivered(fb.read_bytes())[4] == m2


def test_pipelined_errors_keep_order(server):
    with server.connect() as c:
        c.ehlo()
        c.send(b"NOOP\r\nFOO\r\nRCPT TO:<alice@example.test>\r\nMAIL FROM:<p@client.test>\r\n"
               b"MAIL FROM:<p@client.test>\r\nRSET\r\nNOOP\r\n")
        r = c.replies(7)
        assert [x.code for x in r] == [250, 500, 503, 250, 503, 250, 250], r
        c.quit()


# ---------------------------------------------------------------- BDAT

def bdat_session(server):
    c = server.connect()
    r = c.ehlo()
    assert "CHUNKING" in r.lines, r
    c.expect("MAIL FROM:<b@client.test>", 250, "2.1.0")
    c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
    return c


def test_bdat_single_chunk_byte_exact(server):
    content = b"Subject: bdat\r\n\r\n..x stays\r\n.\r\nmid dot line above\r\n\xc3\xa9 8bit\r\n"
    with bdat_session(server) as c:
        c.send(b"BDAT %d LAST\r\n" % len(content) + content)
        r = c.reply()
        assert r.is_(250, "2.0.0") and r.queue_id, r
        c.quit()
    [f] = server.wait_mail("alice")
    assert parse_delivered(f.read_bytes())[4] == content


def test_bdat_multiple_chunks(server):
    parts = [b"Subject: chunks\r\n", b"\r\nbody line 1\r\n..dots\r\n", b"body line 2\r\n"]
    with bdat_session(server) as c:
        for p in parts[:-1]:
            c.send(b"BDAT %d\r\n" % len(p) + p)
            r = c.reply()
            assert r.is_(250, "2.0.0") and not r.queue_id, r
        c.send(b"BDAT %d LAST\r\n" % len(parts[-1]) + parts[-1])
        r = c.reply()
        assert r.is_(250, "2.0.0") and r.queue_id, r
        c.quit()
    [f] = server.wait_mail("alice")
    assert parse_delivered(f.read_bytes())[4] == b"".join(parts)


def test_bdat_zero_last(server):
    content = b"Subject: zero last\r\n\r\nbody\r\n"
    with bdat_session(server) as c:
        c.send(b"BDAT %d\r\n" % len(content) + content)
        assert c.reply().is_(250, "2.0.0")
        r = c.cmd("BDAT 0 LAST")
        assert r.is_(250, "2.0.0") and r.queue_id, r
        c.quit()
    [f] = server.wait_mail("alice")
    assert parse_delivered(f.read_bytes())[4] == content


def test_bdat_crlf_split_across_chunks(server):
    content = b"Subject: split\r\n\r\nline one\r\nline two\r\n"
    cut = content.index(b"\r\nline two") + 1  # chunk 1 ends with CR, chunk 2 starts with LF
    with bdat_session(server) as c:
        c.send(b"BDAT %d\r\n" % cut + content[:cut])
        assert c.reply().is_(250, "2.0.0")
        c.send(b"BDAT %d LAST\r\n" % (len(content) - cut) + content[cut:])
        r = c.reply()
        assert r.is_(250, "2.0.0") and r.queue_id, r
        c.quit()
    [f] = server.wait_mail("alice")
    assert parse_delivered(f.read_bytes())[4] == content


def test_bdat_pipelined(server):
    parts = [b"Subject: bdat pipelined\r\n\r\n", b"QUIT\r\nRSET\r\n", b"end\r\n"]
    with server.connect() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<b@client.test>\r\nRCPT TO:<alice@example.test>\r\n"
               + b"".join(b"BDAT %d\r\n" % len(p) + p for p in parts) + b"BDAT 0 LAST\r\nNOOP\r\n")
        r = c.replies(7)
        assert r[0].is_(250, "2.1.0") and r[1].is_(250, "2.1.5"), r
        assert all(x.is_(250, "2.0.0") for x in r[2:5]), r
        assert r[5].is_(250, "2.0.0") and r[5].queue_id, r
        assert r[6].is_(250, "2.0.0") and not r[6].queue_id, r
        c.quit()
    [f] = server.wait_mail("alice")
    assert parse_delivered(f.read_bytes())[4] == b"".join(parts)


def test_bdat_then_second_message_same_connection(server):
    with bdat_session(server) as c:
        m = b"Subject: b1\r\n\r\nx\r\n"
        c.send(b"BDAT %d LAST\r\n" % len(m) + m)
        assert c.reply().is_(250, "2.0.0")
        c.send_message("d@client.test", ["alice@example.test"], make_message("d2"))
        c.quit()
    files = server.wait_mail("alice", count=2)
    assert sorted(header_value(f.read_bytes(), "Subject") for f in files) == ["b1", "d2"]


def test_data_after_bdat(server):
    with bdat_session(server) as c:
        c.send(b"BDAT 5\r\nabc\r\n")
        assert c.reply().is_(250, "2.0.0")
        c.expect("DATA", 503, "5.5.1")
        c.expect("NOOP", 250, "2.0.0")
        c.quit()


def test_bdat_before_rcpt_consumes_chunk(server):
    with server.connect() as c:
        c.ehlo()
        # the chunk looks like commands; they must be swallowed, not executed
        c.send(b"BDAT 6\r\nQUIT\r\n")
        r = c.reply()
        assert r.is_(503, "5.5.1"), r
        c.expect("NOOP", 250, "2.0.0")
        c.expect("MAIL FROM:<b@client.test>", 250, "2.1.0")
        chunk = b"RCPT TO:<bob@x.test>\r\n"
        c.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
        r = c.reply()
        assert r.is_(503, "5.5.1"), r
        c.expect("NOOP", 250, "2.0.0")
        c.quit()
    time.sleep(0.5)
    assert server.mail_files("alice") == [] and server.mail_files("bob") == []


def test_bdat_bad_size(server):
    with bdat_session(server) as c:
        for line in ("BDAT", "BDAT abc", "BDAT -1", "BDAT 1x LAST", "BDAT 0x10"):
            r = c.cmd(line)
            assert r.is_(501, "5.5.4"), f"{line}: {r}"
        c.expect("NOOP", 250, "2.0.0")
        c.quit()


def test_bdat_too_big_is_consumed(ferry):
    srv = ferry(limits={"message_size": "10k"})
    with bdat_session(srv) as c:
        chunk = b"Subject: big\r\n\r\n" + b"y" * 98 + b"\r\n"
        chunk += b"z" * (20000 - len(chunk) - 2) + b"\r\n"
        c.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
        r = c.reply()
        assert r.is_(552, "5.3.4"), r
        c.expect("NOOP", 250, "2.0.0")
        c.expect("RSET", 250, "2.0.0")
        c.send_message("b@client.test", ["alice@example.test"], make_message("after big"))
        c.quit()
    srv.wait_mail("alice")
    time.sleep(0.3)
    files = srv.mail_files("alice")
    assert len(files) == 1 and header_value(files[0].read_bytes(), "Subject") == "after big"
