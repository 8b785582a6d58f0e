"""Many sessions at once."""

import smtplib
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ferrytest import header_value, make_message

N = 200


def test_200_concurrent_sessions(ferry):
    srv = ferry(limits={"connections_per_ip": 500, "connections": 1000})
    barrier = threading.Barrier(N, timeout=30)

    def one(i):
        subject = f"concurrent-{i:03d}"
        with smtplib.SMTP("127.0.0.1", srv.port, local_hostname="client.test", timeout=60) as s:
            barrier.wait()  # all sessions open at the same time
            refused = s.sendmail(f"s{i}@client.test", ["alice@example.test"],
                                 make_message(subject, body=f"body {i}\r\n"))
            assert refused == {}
            code, _ = s.docmd("NOOP")
            assert code == 250
        return subject

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=N) as pool:
        subjects = list(pool.map(one, range(N)))
    assert len(subjects) == N
    files = srv.wait_mail("alice", count=N, timeout=60)
    elapsed = time.monotonic() - t0
    assert len(files) == N
    got = sorted(header_value(f.read_bytes(), "Subject") for f in files)
    assert got == sorted(subjects)
    assert elapsed < 60, elapsed


def test_slow_session_does_not_block_others(ferry):
    srv = ferry()
    slow = srv.connect()
    slow.ehlo()
    slow.expect("MAIL FROM:<slow@client.test>", 250, "2.1.0")
    slow.expect("RCPT TO:<bob@example.test>", 250, "2.1.5")
    assert slow.cmd("DATA").code == 354
    slow.send(b"Subject: slow\r\n\r\nstill typing")
    t0 = time.monotonic()
    for i in range(5):
        srv.send("alice@example.test", subject=f"fast {i}")
    srv.wait_mail("alice", count=5)
    assert time.monotonic() - t0 < 10
    slow.send(b"\r\n.\r\n")
    assert slow.reply().is_(250, "2.0.0")
    slow.quit()
    srv.wait_mail("bob")
