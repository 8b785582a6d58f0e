"""Local delivery into Maildir: byte-exact content, headers added, aliases, multiple recipients, logging."""

import re
import time

from ferrytest import (delivered_to_matches, dot_stuff, header_value, make_message, parse_delivered)

DATE_RE = re.compile(r";\s*(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),\s*)?\d{1,2} "
                     r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}(?::\d{2})? "
                     r"[+-]\d{4}")


def test_maildir_layout(server):
    server.send("alice@example.test")
    files = server.wait_mail("alice")
    md = server.maildir("alice")
    for sub in ("tmp", "new", "cur"):
        assert (md / sub).is_dir(), sub
    assert len(files) == 1
    assert files[0].parent == md / "new"


def test_byte_exact_delivery(server):
    body = (b"first line\r\n"
            b"\r\n"
            b"..starts with a dot\r\n"
            b".\t.tab after dot\r\n"
            b"...\r\n"
            b"8-bit: \xc3\xa9\xe2\x82\xac \xff\xfe\x80\x01\x7f end\r\n"
            + b"L" * 998 + b"\r\n"
            b"\r\n"
            b"\r\n"
            b"trailing spaces   \r\n"
            b"\ttab-led line\r\n"
            b"last line\r\n")
    content = (b"From: <sender@client.test>\r\nTo: <alice@example.test>\r\n"
               b"Subject: byte exact \xc3\xa9\r\nMIME-Version: 1.0\r\n"
               b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n") + body
    with server.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<sender@client.test> BODY=8BITMIME", 250, "2.1.0")
        c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
        assert c.cmd("DATA").code == 354
        c.send(dot_stuff(content) + b".\r\n")
        r = c.reply()
        assert r.is_(250, "2.0.0") and r.queue_id, r
        c.quit()
    [f] = server.wait_mail("alice")
    data = f.read_bytes()
    rp, dt, received, _, rest = parse_delivered(data)
    assert rp == "<sender@client.test>"
    assert delivered_to_matches(dt, "alice@example.test"), dt
    assert rest == content, "content differs from what was sent"


def test_dot_unstuffing(server):
    with server.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<sender@client.test>", 250, "2.1.0")
        c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: dots\r\n\r\n..foo\r\n...\r\n..\r\nx.y\r\n.\r\n")
        assert c.reply().is_(250, "2.0.0")
        c.quit()
    [f] = server.wait_mail("alice")
    rest = parse_delivered(f.read_bytes())[4]
    assert rest == b"Subject: dots\r\n\r\n.foo\r\n..\r\n.\r\nx.y\r\n"


def test_received_header_ehlo(server):
    with server.connect() as c:
        c.ehlo("client.test")
        qid = c.send_message("sender@client.test", ["alice@example.test"], make_message("recv"))
        c.quit()
    [f] = server.wait_mail("alice")
    _, _, received, raw, _ = parse_delivered(f.read_bytes())
    assert received.startswith("Received: from client.test ("), received
    assert "[127.0.0.1]" in received, received
    assert "by mx.example.test" in received, received
    assert re.search(r"\bwith ESMTP", received), received
    assert re.search(rf"\bid {qid}\b", received), (qid, received)
    assert DATE_RE.search(received), received
    for line in raw.split(b"\r\n")[:-1]:
        assert len(line) <= 998


def test_received_header_helo(server):
    with server.connect() as c:
        c.helo("old.client.test")
        qid = c.send_message("sender@client.test", ["alice@example.test"], make_message("recv-helo"))
        c.quit()
    [f] = server.wait_mail("alice")
    _, _, received, _, _ = parse_delivered(f.read_bytes())
    assert received.startswith("Received: from old.client.test ("), received
    assert re.search(r"\bwith SMTP\b", received), received
    assert re.search(rf"\bid {qid}\b", received), received
    assert "[127.0.0.1]" in received and "by mx.example.test" in received


def test_multiple_recipients(server):
    content = make_message("two rcpts")
    with server.connect() as c:
        c.ehlo()
        c.send_message("sender@client.test", ["alice@example.test", "bob@example.test"], content)
        c.quit()
    [fa] = server.wait_mail("alice")
    [fb] = server.wait_mail("bob")
    time.sleep(0.3)
    assert len(server.mail_files("alice")) == 1 and len(server.mail_files("bob")) == 1
    pa, pb = parse_delivered(fa.read_bytes()), parse_delivered(fb.read_bytes())
    assert delivered_to_matches(pa[1], "alice@example.test"), pa[1]
    assert delivered_to_matches(pb[1], "bob@example.test"), pb[1]
    assert pa[4] == content and pb[4] == content


def test_multiple_messages_per_connection(server):
    subjects = [f"msg {i}" for i in range(5)]
    with server.connect() as c:
        c.ehlo()
        for s in subjects:
            c.send_message("sender@client.test", ["alice@example.test"], make_message(s))
        c.quit()
    files = server.wait_mail("alice", count=5)
    assert len(files) == 5
    assert len({f.name for f in files}) == 5
    assert sorted(header_value(f.read_bytes(), "Subject") for f in files) == subjects


def test_unique_file_names_fast_succession(server):
    for i in range(10):
        server.send("alice@example.test", subject=f"u{i}")
    files = server.wait_mail("alice", count=10)
    assert len(set(f.name for f in files)) == 10


def test_alias_expansion(ferry):
    srv = ferry(aliases={"sales@example.test": ["alice@example.test", "bob@example.test"]})
    content = make_message("to sales", to="sales@example.test")
    srv.send("sales@example.test", content)
    [fa] = srv.wait_mail("alice")
    [fb] = srv.wait_mail("bob")
    assert parse_delivered(fa.read_bytes())[4] == content
    assert parse_delivered(fb.read_bytes())[4] == content
    assert not srv.maildir("sales").exists()


def test_alias_case_insensitive(ferry):
    srv = ferry(aliases={"sales@example.test": ["alice@example.test"]})
    srv.send("SALES@Example.TEST")
    srv.wait_mail("alice")


def test_postmaster_alias_delivery(ferry):
    srv = ferry(aliases={"postmaster@example.test": ["alice@example.test"]})
    srv.send("POSTMASTER@EXAMPLE.TEST", subject="pm")
    [f] = srv.wait_mail("alice")
    assert header_value(f.read_bytes(), "Subject") == "pm"


def test_postmaster_without_account_accepted(server):
    with server.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<x@client.test>", 250, "2.1.0")
        c.expect("RCPT TO:<postmaster@example.test>", 250, "2.1.5")
        c.quit()


def test_recipient_case_insensitive_delivery(server):
    server.send("ALICE@EXAMPLE.TEST", subject="upper")
    [f] = server.wait_mail("alice")
    assert header_value(f.read_bytes(), "Subject") == "upper"


def test_null_sender_delivery(server):
    content = make_message("bounce", sender="MAILER-DAEMON@client.test")
    with server.connect() as c:
        c.ehlo()
        c.send_message("", ["alice@example.test"], content)
        c.quit()
    [f] = server.wait_mail("alice")
    rp, _, _, _, rest = parse_delivered(f.read_bytes())
    assert rp == "<>"
    assert rest == content


def test_smtputf8_delivery_to_utf8_account(ferry):
    srv = ferry(users=("alice", "δοκιμή@example.test"))
    content = ("From: <δοκιμή@client.test>\r\nTo: <δοκιμή@example.test>\r\nSubject: γειά σου\r\n\r\n"
               "Καλημέρα κόσμε\r\n").encode("utf-8")
    with srv.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<αποστολέας@client.test> SMTPUTF8", 250, "2.1.0")
        c.expect("RCPT TO:<δοκιμή@example.test>", 250, "2.1.5")
        assert c.cmd("DATA").code == 354
        c.send(content + b".\r\n")
        r = c.reply()
        assert r.is_(250, "2.0.0"), r
        c.quit()
    [f] = srv.wait_mail("δοκιμή")
    rp, dt, _, _, rest = parse_delivered(f.read_bytes())
    assert rp == "<αποστολέας@client.test>"
    assert delivered_to_matches(dt, "δοκιμή@example.test"), dt
    assert rest == content


def test_message_too_big_after_data(ferry):
    srv = ferry(limits={"message_size": "10k"})
    with srv.connect() as c:
        r = c.ehlo()
        assert "SIZE 10240" in r.lines, r
        c.expect("MAIL FROM:<x@client.test>", 250, "2.1.0")
        c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
        assert c.cmd("DATA").code == 354
        c.send(make_message("big", body="y" * 70 + "\r\n") + (b"z" * 98 + b"\r\n") * 250 + b".\r\n")
        r = c.reply()
        assert r.is_(552, "5.3.4"), r
        # the session goes on; a small message is fine
        c.send_message("x@client.test", ["alice@example.test"], make_message("small control"))
        c.quit()
    files = srv.wait_mail("alice")
    time.sleep(0.5)
    files = srv.mail_files("alice")
    assert len(files) == 1
    assert header_value(files[0].read_bytes(), "Subject") == "small control"


def test_size_advertised_from_config(ferry):
    srv = ferry(limits={"message_size": 123456})
    with srv.connect() as c:
        r = c.ehlo()
        assert "SIZE 123456" in r.lines, r
        c.expect("MAIL FROM:<x@client.test> SIZE=123457", 552, "5.3.4")
        c.expect("MAIL FROM:<x@client.test> SIZE=123456", 250, "2.1.0")
        c.quit()


def test_size_suffix_k_is_kibibytes(ferry):
    srv = ferry(limits={"message_size": "64k"})
    with srv.connect() as c:
        r = c.ehlo()
        assert "SIZE 65536" in r.lines, r
        c.quit()


def test_logging(server):
    qid = server.send("alice@example.test", mail_from="logger@client.test")
    server.wait_mail("alice")
    server.wait_log(rf"{qid}.*from=<logger@client\.test>")
    server.wait_log(rf"{qid}.*alice@example\.test.*status=sent|{qid}.*status=sent.*alice@example\.test")


def test_queue_ids_distinct(server):
    ids = set()
    with server.connect() as c:
        c.ehlo()
        for i in range(20):
            ids.add(c.send_message("sender@client.test", ["alice@example.test"], make_message(f"id{i}")))
        c.quit()
    assert len(ids) == 20
    server.wait_mail("alice", count=20)


def test_client_disconnect_mid_data_nothing_delivered(server):
    c = server.connect()
    c.ehlo()
    c.expect("MAIL FROM:<sender@client.test>", 250, "2.1.0")
    c.expect("RCPT TO:<bob@example.test>", 250, "2.1.5")
    assert c.cmd("DATA").code == 354
    c.send(b"Subject: cut off\r\n\r\nsome body\r\n")
    c.close()
    server.send("alice@example.test", subject="control")
    server.wait_mail("alice")
    time.sleep(0.5)
    assert server.mail_files("bob") == []


def test_empty_line_bodies_and_no_trailing_newline_headers(server):
    """A message that is only headers (no body, no blank line) is delivered unchanged."""
    content = b"Subject: headers only\r\nX-Test: 1\r\n"
    with server.connect() as c:
        c.ehlo()
        c.send_message("sender@client.test", ["alice@example.test"], content)
        c.quit()
    [f] = server.wait_mail("alice")
    assert parse_delivered(f.read_bytes())[4] == content
