"""Durability: a 250 survives kill -9; nothing half-received is delivered; clean SIGTERM; retries."""

import time

from ferrytest import RawSMTP, files_under, header_value, make_message, parse_delivered


def block_mailbox(srv, local="alice"):
    """Make local delivery fail temporarily: a regular file where the Maildir should be."""
    md = srv.maildir(local)
    md.parent.mkdir(parents=True, exist_ok=True)
    md.write_text("not a maildir\n")
    return md


def wait_spool_empty(srv, timeout=5.0):
    """No message left in the spool. Emptied files kept in spool/free/ for reuse hold nothing."""
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in files_under(srv.data_dir / "spool")
                if p.parent.name != "free" or p.stat().st_size != 0]
        if not left:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"files left in spool: {[str(p.relative_to(srv.data_dir)) for p in left]}")
        time.sleep(0.1)


def test_kill9_after_250_message_survives(ferry):
    srv = ferry(queue={"min_retry": "1s"})
    md = block_mailbox(srv)
    content = make_message("survivor")
    with srv.connect() as c:
        c.ehlo()
        qid = c.send_message("sender@client.test", ["alice@example.test"], content)
        srv.kill9()
    assert md.is_file()
    assert files_under(srv.data_dir / "spool" / "queue"), "nothing in the spool queue after a 250"
    md.unlink()
    srv.start()
    [f] = srv.wait_mail("alice", timeout=15)
    time.sleep(1.5)
    files = srv.mail_files("alice")
    assert len(files) == 1, f"delivered {len(files)} times"
    rp, _, received, _, rest = parse_delivered(f.read_bytes())
    assert rest == content
    assert qid in received
    wait_spool_empty(srv)


def test_kill9_immediately_after_250_multiple_recipients(ferry):
    srv = ferry(queue={"min_retry": "1s"})
    block_mailbox(srv, "alice")
    block_mailbox(srv, "bob")
    with srv.connect() as c:
        c.ehlo()
        for i in range(3):
            c.send_message("sender@client.test", ["alice@example.test", "bob@example.test"],
                           make_message(f"m{i}"))
        srv.kill9()
    srv.maildir("alice").unlink()
    srv.maildir("bob").unlink()
    srv.start()
    fa = srv.wait_mail("alice", count=3, timeout=15)
    fb = srv.wait_mail("bob", count=3, timeout=15)
    time.sleep(1.5)
    assert len(srv.mail_files("alice")) == 3 and len(srv.mail_files("bob")) == 3
    for files in (fa, fb):
        assert sorted(header_value(f.read_bytes(), "Subject") for f in files) == ["m0", "m1", "m2"]
    wait_spool_empty(srv)


def test_partial_delivery_then_kill9_no_duplicates(ferry):
    """alice's copy is delivered, bob's is stuck; after kill -9 and restart bob gets his copy
    and alice does not get a second one."""
    srv = ferry(queue={"min_retry": "1s"})
    block_mailbox(srv, "bob")
    with srv.connect() as c:
        c.ehlo()
        c.send_message("sender@client.test", ["alice@example.test", "bob@example.test"], make_message("half"))
        c.quit()
    srv.wait_mail("alice")
    time.sleep(0.5)
    srv.kill9()
    srv.maildir("bob").unlink()
    srv.start()
    srv.wait_mail("bob", timeout=15)
    time.sleep(1.5)
    assert len(srv.mail_files("alice")) == 1, "alice got a duplicate"
    assert len(srv.mail_files("bob")) == 1
    wait_spool_empty(srv)


def test_kill9_mid_data_nothing_delivered(ferry):
    srv = ferry(queue={"min_retry": "1s"})
    c = srv.connect()
    c.ehlo()
    c.expect("MAIL FROM:<sender@client.test>", 250, "2.1.0")
    c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
    assert c.cmd("DATA").code == 354
    c.send(b"Subject: partial\r\n\r\n" + b"partial body line\r\n" * 2000)
    time.sleep(0.3)
    srv.kill9()
    c.close()
    srv.start()
    srv.send("alice@example.test", subject="control")
    srv.wait_mail("alice")
    time.sleep(1.0)
    files = srv.mail_files("alice")
    assert len(files) == 1
    assert header_value(files[0].read_bytes(), "Subject") == "control"
    assert (srv.data_dir / "spool").is_dir(), "no spool directory in data_dir"
    wait_spool_empty(srv)
    assert files_under(srv.maildir("alice") / "tmp") == []


def test_sigterm_with_queued_message_then_restart(ferry):
    srv = ferry(queue={"min_retry": "1s"})
    md = block_mailbox(srv)
    srv.send("alice@example.test", subject="queued over restart")
    time.sleep(0.3)
    assert srv.stop() == 0
    md.unlink()
    srv.start()
    [f] = srv.wait_mail("alice", timeout=15)
    time.sleep(1.0)
    assert len(srv.mail_files("alice")) == 1
    assert header_value(f.read_bytes(), "Subject") == "queued over restart"


def test_temporary_failure_is_retried(ferry):
    srv = ferry(queue={"min_retry": "1s"})
    md = block_mailbox(srv)
    srv.send("alice@example.test", subject="retried")
    time.sleep(1.5)  # at least one failed attempt
    assert md.is_file()
    md.unlink()
    [f] = srv.wait_mail("alice", timeout=15)
    assert header_value(f.read_bytes(), "Subject") == "retried"
    wait_spool_empty(srv)


def test_sigterm_exits_0(ferry):
    srv = ferry()
    t0 = time.monotonic()
    assert srv.stop(timeout=5) == 0
    assert time.monotonic() - t0 < 5


def test_sigterm_with_idle_client_exits_0(ferry):
    srv = ferry()
    c = RawSMTP(srv.port)
    assert c.greeting.code == 220
    c.ehlo()
    c2 = RawSMTP(srv.port)  # a second one that never said anything beyond the greeting
    t0 = time.monotonic()
    rc = srv.stop(timeout=5)
    assert rc == 0, f"exit status {rc} (None = had to SIGKILL after 5 s)"
    assert time.monotonic() - t0 < 5
    c.close()
    c2.close()


def test_sigterm_mid_data_then_restart(ferry):
    """A transaction cut by shutdown is not delivered; the server comes back and works."""
    srv = ferry()
    c = srv.connect()
    c.ehlo()
    c.expect("MAIL FROM:<sender@client.test>", 250, "2.1.0")
    c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
    assert c.cmd("DATA").code == 354
    c.send(b"Subject: cut\r\n\r\nbody\r\n")
    assert srv.stop(timeout=5) == 0
    c.close()
    srv.start()
    srv.send("alice@example.test", subject="control")
    srv.wait_mail("alice")
    time.sleep(0.5)
    files = srv.mail_files("alice")
    assert len(files) == 1 and header_value(files[0].read_bytes(), "Subject") == "control"


def test_spool_file_damaged_on_disk_is_quarantined_not_delivered(ferry):
    """A queued file whose bytes no longer match its commit trailer is moved to spool/corrupt/ at start-up
    and logged; it is neither delivered nor deleted."""
    srv = ferry(queue={"min_retry": "1s"})
    md = block_mailbox(srv)
    qid = srv.send("alice@example.test", content=make_message("damaged", body="original body\r\n"))
    assert srv.stop() == 0
    spooled = srv.data_dir / "spool" / "queue" / qid
    data = spooled.read_bytes()
    assert b"original body" in data
    spooled.write_bytes(data.replace(b"original body", b"0riginal body"))
    md.unlink()
    srv.start()
    srv.wait_log(rf"recovery: id={qid} does not match its commit trailer")
    srv.send("alice@example.test", subject="control")
    [f] = srv.wait_mail("alice")
    time.sleep(1.0)
    assert [header_value(p.read_bytes(), "Subject") for p in srv.mail_files("alice")] == ["control"]
    assert (srv.data_dir / "spool" / "corrupt" / qid).read_bytes() == data.replace(b"original body",
                                                                                    b"0riginal body")
    assert not spooled.exists()



def test_reused_spool_file_carries_nothing_of_the_previous_message(ferry):
    """Delivered spool files are emptied and reused for later messages: a small message written into the file of
    a large one is delivered byte-exact, and after a restart the reused files still work."""
    srv = ferry()
    big = make_message("big", body="B" * 998 + "\r\n" + ("b" * 78 + "\r\n") * 3000)
    srv.send("alice@example.test", content=big)
    srv.wait_mail("alice")
    wait_spool_empty(srv)
    free = list((srv.data_dir / "spool" / "free").iterdir())
    assert free and all(p.stat().st_size == 0 for p in free), "delivered spool file not kept empty for reuse"
    inode = free[0].stat().st_ino
    small = make_message("small", body="tiny\r\n")
    qid = srv.send("bob@example.test", content=small)
    [f] = srv.wait_mail("bob")
    *_, rest = parse_delivered(f.read_bytes())
    assert rest == small
    wait_spool_empty(srv)
    assert (srv.data_dir / "spool" / "free" / qid).stat().st_ino == inode, "the free file was not reused"
    srv.restart()
    srv.send("bob@example.test", subject="after restart")
    srv.wait_mail("bob", count=2)
    wait_spool_empty(srv)


def test_copy_that_landed_before_a_crash_is_not_delivered_again(ferry):
    """The crash window between a copy landing in the Maildir and the spool recording it: after the restart the
    copy is found (in new/, or in cur/ where a mail reader moved it) and not written a second time."""
    srv = ferry(queue={"min_retry": "1h"})
    blocked = block_mailbox(srv, "bob")   # keeps the message in the spool after alice's copy lands
    qid = srv.send(["alice@example.test", "bob@example.test"], subject="landed once")
    [copy] = srv.wait_mail("alice")
    srv.wait_log(rf"delivery id={qid} to=<bob@example.test> status=deferred")
    srv.kill9()
    # What a crash right after the rename leaves: the copy is there, its record is not.
    done = srv.data_dir / "spool" / "queue" / f"{qid}.done"
    assert done.exists()
    done.unlink()
    # A mail reader saw it meanwhile (Dovecot: new/<name> -> cur/<name>:2,S).
    cur = copy.parent.parent / "cur"
    cur.mkdir(exist_ok=True)
    seen = cur / (copy.name + ":2,S")
    copy.rename(seen)
    blocked.unlink()
    srv.start()
    [to_bob] = srv.wait_mail("bob")
    assert header_value(to_bob.read_bytes(), "Subject") == "landed once"
    srv.wait_log(rf"delivered id={qid} to=<alice@example.test> .*copy found in the mailbox")
    wait_spool_empty(srv)
    assert srv.mail_files("alice") == [], "a second copy was delivered into new/"
    assert sorted(cur.iterdir()) == [seen]
