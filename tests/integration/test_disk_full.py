"""A full spool disk: the message that does not fit gets 452 4.3.1 and leaves nothing behind, the server
stays up, and accepts mail again once space returns. The spool is a small tmpfs mounted by the test (root)."""

import os
import subprocess
import time

import pytest

from ferrytest import DOMAIN, make_message

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small filesystem needs root")

SPOOL_SIZE = 2 * 1024 * 1024


@pytest.fixture
def small_spool(ferry):
    """A server whose data_dir/spool is a 2 MiB tmpfs, with no reserve: MAIL is refused for space only on a full
    disk, so the checks at the end of data are what this meets."""
    yield from mounted(ferry, "0")


@pytest.fixture
def reserved_spool(ferry):
    """The same with a 64 KiB reserve ([queue] min_free)."""
    yield from mounted(ferry, "64k")


def mounted(ferry, min_free):
    srv = ferry(start=False, queue={"min_free": min_free})
    spool = srv.data_dir / "spool"
    spool.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SPOOL_SIZE},mode=0700", "tmpfs", str(spool)], check=True)
    try:
        srv.start()
        yield srv, spool
    finally:
        srv.stop()
        subprocess.run(["umount", "-l", str(spool)], check=False)


def fill(spool, leave):
    """Writes spool/filler until at most `leave` octets are free; returns the file."""
    filler = spool / "filler"
    with open(filler, "ab") as f:
        block = b"\0" * 65536
        while True:
            st = os.statvfs(spool)
            free = st.f_bavail * st.f_frsize
            if free <= leave:
                break
            try:
                f.write(block[: min(len(block), free - leave)] or b"\0")
                f.flush()
            except OSError:
                break
    return filler


def message_files(spool):
    """Message files in the queue (committed or being received), not the free/ pool."""
    queue = spool / "queue"
    return sorted(p.name for p in queue.iterdir()) if queue.exists() else []


def body_of(size):
    line = b"x" * 76 + b"\r\n"
    return line * (size // len(line))


def send(srv, subject, size):
    c = srv.connect()
    c.ehlo()
    c.expect("MAIL FROM:<sender@client.test>", 250, "2.1.0")
    c.expect(f"RCPT TO:<alice@{DOMAIN}>", 250, "2.1.5")
    r = c.cmd("DATA")
    if r.code != 354:
        c.close()
        return r
    c.send(make_message(subject=subject, body=body_of(size).decode()) + b".\r\n")
    r = c.reply(timeout=15)
    c.expect("NOOP", 250, "2.0.0")   # the session goes on after the refusal
    c.quit()
    return r


def test_disk_full_gets_452_and_no_partial_message_then_recovers(small_spool):
    srv, spool = small_spool

    # Room for a small message but not for a 600 KiB one.
    filler = fill(spool, leave=256 * 1024)
    r = send(srv, "too big for the disk", 600 * 1024)
    assert r.is_(452, "4.3.1"), r
    srv.wait_log(r"spool client=.* write failed: No space left on device")
    assert message_files(spool) == [], "a partial message was left in the spool"

    r = send(srv, "small fits", 2 * 1024)
    assert r.code == 250, r
    srv.wait_mail("alice", 1)

    # Completely full: even the envelope has nowhere to go.
    fill(spool, leave=0)
    r = send(srv, "nothing fits", 2 * 1024)
    assert r.is_(452, "4.3.1"), r
    assert srv.running()
    time.sleep(0.3)
    assert message_files(spool) == []

    # Space returns: mail flows again, and only what got a 250 was ever delivered.
    filler.unlink()
    r = send(srv, "after space returned", 600 * 1024)
    assert r.code == 250, r
    files = srv.wait_mail("alice", 2)
    subjects = sorted(f.read_bytes().split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0] for f in files)
    assert subjects == [b"after space returned", b"small fits"], subjects
    assert srv.proc.poll() is None


def test_mail_with_a_size_the_disk_cannot_take_gets_452_before_the_data(reserved_spool):
    """RFC 1870 6.1: a SIZE= the spool cannot take (with the reserve) is refused at MAIL, not after the client has
    sent the whole message; so is MAIL without SIZE once the disk is below the reserve."""
    srv, spool = reserved_spool
    filler = fill(spool, leave=512 * 1024)
    with srv.connect() as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<sender@client.test> SIZE=1000000")
        assert r.is_(452, "4.3.1"), r
        srv.wait_log(r"refused client=.*: spool has \d+ octets free, MAIL needs 1065536")
        c.expect("MAIL FROM:<sender@client.test> SIZE=2048", 250, "2.1.0")   # fits, with the reserve
        c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
        r = c.cmd("DATA")
        assert r.code == 354, r
        c.send(make_message(subject="declared small", body=body_of(1024).decode()) + b".\r\n")
        assert c.reply(timeout=15).code == 250
        # Under the reserve: even a message without SIZE is refused at MAIL.
        fill(spool, leave=32 * 1024)
        r = c.cmd("MAIL FROM:<sender@client.test>")
        assert r.is_(452, "4.3.1"), r
        c.expect("NOOP", 250, "2.0.0")   # the session goes on
        filler.unlink()
        c.expect("MAIL FROM:<sender@client.test> SIZE=1000000", 250, "2.1.0")   # space returned
        c.quit()
    srv.wait_mail("alice", 1)
    assert srv.proc.poll() is None
