"""`ferry sendmail` and `sendmail` (a symlink to ferry): the interface cron, PHP's mail() and git send-email use.
Messages go through the pickup directory, so they are taken while the server runs and also when it was down."""

import email
import email.policy
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from ferrytest import Ferry, ferry_bin, header_value


@pytest.fixture
def srv(tmp_path):
    s = Ferry(tmp_path / "f", users=("alice", "bob", "carol"))
    s.start()
    yield s
    s.stop()


def sendmail(srv, args, data, program=None, user=None):
    cmd = [program or ferry_bin()] + ([] if program else ["sendmail"]) + ["--config", str(srv.config), *args]
    if user:
        cmd = ["su", user, "-s", "/bin/sh", "-c", " ".join(f"'{c}'" for c in cmd)]
    return subprocess.run(cmd, input=data, capture_output=True, timeout=30)


def parsed(path):
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)


def test_recipients_from_headers_bcc_delivered_and_removed(srv):
    msg = (b"From: Cron Daemon <cron@example.test>\nTo: alice@example.test\nCc: Bob <bob@example.test>\n"
           b"Bcc: carol@example.test\nSubject: nightly\n\nall good\n.\nstill the body\n")
    r = sendmail(srv, ["-t", "-i"], msg)
    assert (r.returncode, r.stderr) == (0, b""), r
    for user in ("alice", "bob", "carol"):
        [f] = srv.wait_mail(user)
        m = parsed(f)
        assert m["Subject"] == "nightly"
        assert m["Bcc"] is None and b"carol" not in f.read_bytes().split(b"\r\n\r\n", 1)[0].replace(
            b"Delivered-To: carol@example.test", b""), f"Bcc visible to {user}"
        assert m.get_content() == "all good\r\n.\r\nstill the body\r\n"   # -i: a lone dot is content
        assert m["Date"] and m["Message-ID"], "Date and Message-ID are added when missing"
    srv.wait_log(r"queued id=\S+ client=local uid=0 user=root from=<root@mx\.example\.test> .*nrcpt=3 proto=pickup")


def test_without_i_a_lone_dot_ends_the_message_and_from_is_added(srv):
    r = sendmail(srv, ["-F", "Nightly Job", "-f", "jobs@example.test", "alice@example.test"],
                 b"Subject: dots\n\nfirst\n.\nnot sent\n")
    assert r.returncode == 0, r
    [f] = srv.wait_mail("alice")
    m = parsed(f)
    assert m.get_content() == "first\r\n"
    assert m["From"].addresses[0].display_name == "Nightly Job"
    assert m["From"].addresses[0].addr_spec == "jobs@example.test"
    assert header_value(f.read_bytes(), "Return-Path") == "<jobs@example.test>"


def test_run_as_sendmail_through_a_symlink_like_git_send_email(srv, tmp_path):
    link = tmp_path / "sendmail"
    os.symlink(ferry_bin(), link)
    r = sendmail(srv, ["-i", "-f", "dev@example.test", "--", "bob@example.test"],
                 b"From: dev@example.test\nTo: bob@example.test\nSubject: [PATCH] x\n\ndiff\n", program=str(link))
    assert r.returncode == 0, r
    [f] = srv.wait_mail("bob")
    assert parsed(f)["Subject"] == "[PATCH] x"


def test_message_left_while_the_server_is_down_is_delivered_when_it_starts(srv):
    srv.stop()
    r = sendmail(srv, ["alice@example.test"], b"Subject: while down\n\nqueued for later\n")
    assert r.returncode == 0, r
    assert not list((srv.data_dir / "mail").rglob("new/*")), "delivered without a server?"
    srv.start()
    [f] = srv.wait_mail("alice")
    assert parsed(f)["Subject"] == "while down"
    assert [p.name for p in (srv.data_dir / "pickup").iterdir()] == ["failed"], "the pickup file stayed"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_any_local_user_may_submit_and_is_named_in_received():
    # Everything the other user needs must be reachable: pytest's own folders are closed (0700).
    base = Path(tempfile.mkdtemp(prefix="ferry-sendmail-"))
    try:
        base.chmod(0o755)
        copy = base / "sendmail"   # the binary under the name sendmail, as a symlink would give it
        shutil.copy(ferry_bin(), copy)
        srv = Ferry(base / "f", users=("bob",))
        srv.base.chmod(0o755)
        srv.config.chmod(0o644)
        srv.start()
        try:
            r = sendmail(srv, ["bob@example.test"], b"Subject: from nobody\n\nhi\n", program=str(copy), user="nobody")
            assert r.returncode == 0, r
            [f] = srv.wait_mail("bob")
            data = f.read_bytes()
            uid = pwd.getpwnam("nobody").pw_uid
            assert f"(Ferry, from userid {uid} (nobody))".encode() in data
            assert header_value(data, "Return-Path") == "<nobody@mx.example.test>"
            # nobody may add files to the pickup folder, but not see what is there, nor the rest of data_dir
            for folder in ("pickup", "spool", "mail"):
                r = subprocess.run(["su", "nobody", "-s", "/bin/sh", "-c", f"ls {srv.data_dir / folder}"],
                                   capture_output=True)
                assert r.returncode != 0, f"nobody can list {folder}/"
        finally:
            srv.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_bad_input_and_options_exit_with_sysexits(srv):
    assert sendmail(srv, [], b"Subject: x\n\nno recipient\n").returncode == 65          # EX_DATAERR
    assert sendmail(srv, ["-t"], b"Subject: x\n\nno To\n").returncode == 65
    assert sendmail(srv, ["not an address"], b"x\n").returncode == 65
    r = sendmail(srv, ["-bp"], b"")
    assert r.returncode == 64 and b"not supported" in r.stderr                        # EX_USAGE
    assert sendmail(srv, ["-q"], b"").returncode == 64


def test_a_malformed_pickup_file_is_set_aside(srv):
    bad = srv.data_dir / "pickup" / "1800000000.1.abcd"
    bad.write_bytes(b"this is not a pickup file\n")
    os.utime(srv.data_dir / "pickup")
    r = sendmail(srv, ["alice@example.test"], b"Subject: after the bad one\n\nx\n")   # wakes the server up
    assert r.returncode == 0
    srv.wait_mail("alice")
    srv.wait_log(r"pickup file=1800000000\.1\.abcd refused: not a pickup file")
    assert (srv.data_dir / "pickup" / "failed" / "1800000000.1.abcd").exists()


def test_sendmail_refuses_what_data_refuses(srv):
    """A bare CR (smuggling material: "\\r.\\r\\n" would end the message early at a lenient next hop, and the
    outbound client dot-stuffs only after LF) and a line over [limits] text_line_length exit 65, nothing queued."""
    r = sendmail(srv, ["alice@example.test"], b"Subject: smuggle\n\nfirst\r.\r\nMAIL FROM:<x@evil.test>\n")
    assert r.returncode == 65 and b"bare <LF> or <CR>" in r.stderr, r
    r = sendmail(srv, ["alice@example.test"], b"Subject: long\n\n" + b"x" * 1200 + b"\n")
    assert r.returncode == 65 and b"longer than 1000 octets" in r.stderr, r
    r = sendmail(srv, ["alice@example.test"], b"Subject: nul\n\nfirst\n\x00.\nMAIL FROM:<x@evil.test>\n")
    assert r.returncode == 65 and b"NUL octet" in r.stderr, r
    assert list((srv.data_dir / "pickup").glob("1*")) == []


@pytest.mark.parametrize("content, why", [
    (b"Subject: smuggle\r\n\r\nfirst\r.\r\nMAIL FROM:<x@evil.test>\r\n", r"bare <LF> or <CR>"),
    (b"Subject: lf\r\n\r\nfirst\n.\r\n", r"bare <LF> or <CR>"),
    (b"Subject: long\r\n\r\n" + b"x" * 1200 + b"\r\n", r"message line longer than 1000 octets"),
    (b"Subject: nul\r\n\r\nfirst\r\n\x00.\r\nMAIL FROM:<x@evil.test>\r\n", r"NUL octet in message content"),
    (b"From: root@mx.example.test\r\nFrom: bob@example.test\r\nSubject: two\r\n\r\nx\r\n", r"2 From: header fields"),
], ids=["bare CR", "bare LF", "long line", "NUL", "two From"])
def test_a_pickup_file_with_content_data_refuses_is_set_aside(srv, content, why):
    """Files written into pickup/ by hand (not by ferry sendmail) meet the same rules as SMTP DATA."""
    name = "1800000001.1.abcd"
    (srv.data_dir / "pickup" / name).write_bytes(
        b"Ferry-Pickup: 1\nSender: root@mx.example.test\nRecipient: alice@example.test\n\n" + content)
    r = sendmail(srv, ["bob@example.test"], b"Subject: after the bad one\n\nx\n")   # wakes the server up
    assert r.returncode == 0
    srv.wait_mail("bob")
    srv.wait_log(r"pickup file=1800000001\.1\.abcd refused: " + why)
    assert (srv.data_dir / "pickup" / "failed" / name).exists()
    assert srv.mail_files("alice") == []


def test_local_mail_is_dkim_signed_and_forged_results_removed(tmp_path):
    """Local users are trusted senders, as on a submission port: mail from a domain with keys is signed."""
    import dkim
    srv = Ferry(tmp_path / "f", extra_toml='[[dkim.key]]\ndomain = "example.test"\nselector = "s1"\n')
    out = srv.cli("dkim", "keygen", "example.test", "s1", "--algorithm", "ed25519").stdout.decode()
    record = "".join(__import__("re").findall(r'"([^"]*)"', [l for l in out.splitlines() if " IN TXT " in l][0]))
    srv.start()
    try:
        r = sendmail(srv, ["-t"], b"From: alice@example.test\nTo: bob@example.test\nSubject: signed\n"
                                  b"Authentication-Results: mx.example.test; dkim=pass\n\nhello\n")
        assert r.returncode == 0, r
        [f] = srv.wait_mail("bob")
        data = f.read_bytes().split(b"\r\n", 2)[2]   # without Return-Path and Delivered-To
        assert header_value(data, "DKIM-Signature") is not None
        assert b"Authentication-Results" not in data
        assert dkim.verify(data, dnsfunc=lambda name, timeout=5: record.encode())
    finally:
        srv.stop()
