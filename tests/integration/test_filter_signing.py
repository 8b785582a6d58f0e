"""Mail of a logged-in user that a milter changes is DKIM-signed over what is delivered, not over what the user
sent: the signature of a changed message is computed again (python3-dkim verifies it), and one that a milter left
alone keeps its signature over the bytes as sent."""
import re
import smtplib
import time

import pytest

from ferrytest import DEFAULT_PASSWORD, Ferry, free_port
from mailauthtest import python_verify, strip_delivery_headers
from miltertest import PyMilter, milter_toml, test_milter_header

ALICE = "alice@example.test"


def keygen_record(stdout):
    text = stdout.decode()
    m = re.search(r'^(\S+)\. 3600 IN TXT ((?:"[^"]*" ?)+)$', text, re.M)
    assert m, text
    return m.group(1), "".join(re.findall(r'"([^"]*)"', m.group(2))), text[text.index("[[dkim.key]]"):]


@pytest.fixture(scope="module")
def signer(tmp_path_factory):
    base = tmp_path_factory.mktemp("signing")
    with PyMilter(base / "milter") as milter:
        sub = free_port()
        srv = Ferry(base / "ferry", extra_toml=(f'[[listen]]\naddress = "127.0.0.1:{sub}"\nrole = "submission"\n'
                                                f'plaintext_auth = true\n\n' + milter_toml(milter.address)))
        r = srv.cli("dkim", "keygen", "example.test", "s1", "--algorithm", "rsa")
        assert r.returncode == 0, r
        owner, txt, key_toml = keygen_record(r.stdout)
        srv.extra_toml += "\n" + key_toml
        srv.write_config()
        srv.start()
        srv.sub_port = sub
        srv.zone = {owner: txt}
        try:
            yield srv
        finally:
            srv.stop()


def submit(srv, subject, extra_header=""):
    content = (f"From: <{ALICE}>\r\nTo: <bob@example.test>\r\nSubject: {subject}\r\n"
               f"Date: Mon, 07 Dec 2026 12:00:00 +0000\r\nMessage-ID: <{subject}@example.test>\r\n{extra_header}"
               f"\r\nHello Bob.\r\n")
    with smtplib.SMTP("127.0.0.1", srv.sub_port, timeout=15) as s:
        s.ehlo("client.test")
        s.login(ALICE, DEFAULT_PASSWORD)
        assert s.sendmail(ALICE, ["bob@example.test"], content) == {}
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for f in (srv.data_dir / "mail" / "example.test" / "bob" / "new").glob("*"):
            data = f.read_bytes()
            if f"<{subject}@example.test>".encode() in data:
                return strip_delivery_headers(data)
        time.sleep(0.05)
    raise AssertionError(f"no message {subject} in bob's mailbox\n{srv.log[-3000:]}")


def test_a_message_a_milter_changed_is_signed_as_changed(signer):
    msg = submit(signer, "resign-1", test_milter_header(["chgheader", "Subject", 1, "changed by the milter"],
                                                        ["addheader", "X-Milter-Added", "yes"]))
    head = msg.split(b"\r\n\r\n", 1)[0] + b"\r\n"
    assert b"\r\nSubject: changed by the milter\r\n" in head, head
    assert b"\r\nX-Milter-Added: yes\r\n" in head, head
    assert b"DKIM-Signature:" in head, head
    # The signature covers Subject: signed over what the user sent, it would no longer verify.
    assert python_verify(msg, signer.zone) == [True], msg[:2000]


def test_a_message_left_alone_keeps_a_good_signature(signer):
    msg = submit(signer, "resign-2")
    assert python_verify(msg, signer.zone) == [True], msg[:2000]
