"""SIGTERM ends a server promptly even while a message's checks wait on a DNS server that does not answer: the
lookups in flight end as temporary failures, and so do the ones a check asks after the stop (DMARC after SPF),
instead of each waiting for the whole [dns] timeout."""
import socket
import time

from ferrytest import Ferry, dot_stuff, make_message


def test_sigterm_during_the_checks_of_a_message_does_not_wait_for_the_dns_timeout(tmp_path):
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)   # takes queries, never answers
    silent.bind(("127.0.0.1", 0))
    try:
        port = silent.getsockname()[1]
        srv = Ferry(tmp_path, extra_toml=f'[dns]\nresolver = "127.0.0.1:{port}"\ntimeout = "8s"\n\n'
                                         '[mailauth]\nverify = true\n')
        srv.start()
        c = srv.connect(timeout=30)
        c.ehlo()
        c.expect("MAIL FROM:<bob@elsewhere.test>", 250)
        c.expect("RCPT TO:<alice@example.test>", 250)
        c.expect("DATA", 354)
        c.send(dot_stuff(make_message(sender="bob@elsewhere.test")) + b".\r\n")
        time.sleep(1.0)   # the SPF lookups are out now, waiting for the silent server
        started = time.monotonic()
        srv.proc.send_signal(15)
        rc = srv.proc.wait(timeout=30)
        took = time.monotonic() - started
        c.close()
        assert rc == 0
        # One [dns] timeout is 8 s; without the fix the DMARC lookup asked after the stop waited for all of it.
        assert took < 4.0, f"stop took {took:.1f} s"
    finally:
        silent.close()
