"""Real SMTP clients against the server: swaks, curl, msmtp, Python's smtplib."""

import smtplib
import subprocess

from ferrytest import header_value, make_message, parse_delivered


def run(cmd, input=None, timeout=30):
    r = subprocess.run(cmd, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    assert r.returncode == 0, (f"{cmd[0]} exited {r.returncode}\nstdout: {r.stdout.decode(errors='replace')}\n"
                               f"stderr: {r.stderr.decode(errors='replace')}")
    return r


def test_swaks(server):
    run(["swaks", "--server", f"127.0.0.1:{server.port}", "--helo", "swaks.client.test",
         "--to", "alice@example.test", "--from", "x@y.test",
         "--header", "Subject: via swaks", "--body", "Hello from swaks", "--silent", "2"])
    [f] = server.wait_mail("alice")
    data = f.read_bytes()
    rp, _, received, _, rest = parse_delivered(data)
    assert rp == "<x@y.test>"
    assert received.startswith("Received: from swaks.client.test (")
    assert header_value(data, "Subject") == "via swaks"
    assert b"Hello from swaks" in rest


def test_swaks_pipelining_multiple_recipients(server):
    r = run(["swaks", "--server", f"127.0.0.1:{server.port}", "--pipeline",
             "--to", "alice@example.test,bob@example.test", "--from", "x@y.test",
             "--header", "Subject: swaks pipelined", "--body", "pipelined body"])
    out = r.stdout.decode(errors="replace")
    assert "PIPELINING" in out
    for u in ("alice", "bob"):
        [f] = server.wait_mail(u)
        assert header_value(f.read_bytes(), "Subject") == "swaks pipelined"


def test_swaks_relay_denied(server):
    r = subprocess.run(["swaks", "--server", f"127.0.0.1:{server.port}", "--to", "someone@elsewhere.test",
                        "--from", "x@y.test", "--body", "relay?"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert r.returncode != 0
    assert "554 5.7.1" in (r.stdout + r.stderr).decode(errors="replace")


def test_curl(server, tmp_path):
    msg = tmp_path / "mail.eml"
    content = (b"From: <x@y.test>\r\nTo: <alice@example.test>\r\nSubject: via curl\r\n\r\n"
               b"Hello from curl\r\n.leading dot\r\n")
    msg.write_bytes(content)
    run(["curl", "-sS", "--url", f"smtp://127.0.0.1:{server.port}/client.test",
         "--mail-from", "x@y.test", "--mail-rcpt", "alice@example.test", "--upload-file", str(msg)])
    [f] = server.wait_mail("alice")
    rp, _, received, _, rest = parse_delivered(f.read_bytes())
    assert rp == "<x@y.test>"
    assert rest == content


def test_msmtp(server, tmp_path):
    content = b"From: <x@y.test>\nTo: <alice@example.test>\nSubject: via msmtp\n\nHello from msmtp\n"
    run(["msmtp", "--host=127.0.0.1", f"--port={server.port}", "--auth=off", "--tls=off",
         "--domain=msmtp.client.test", "--from=x@y.test", "alice@example.test"], input=content)
    [f] = server.wait_mail("alice")
    data = f.read_bytes()
    assert header_value(data, "Subject") == "via msmtp"
    assert b"Hello from msmtp\r\n" in data


def test_smtplib(server):
    with smtplib.SMTP("127.0.0.1", server.port, local_hostname="py.client.test", timeout=10) as s:
        code, _ = s.ehlo()
        assert code == 250
        for ext in ("pipelining", "8bitmime", "smtputf8", "enhancedstatuscodes", "chunking", "size"):
            assert s.has_extn(ext), ext
        refused = s.sendmail("x@y.test", ["alice@example.test", "nobody@example.test", "bob@example.test"],
                             make_message("via smtplib"))
        assert set(refused) == {"nobody@example.test"}
        assert refused["nobody@example.test"][0] == 550
    for u in ("alice", "bob"):
        [f] = server.wait_mail(u)
        assert header_value(f.read_bytes(), "Subject") == "via smtplib"


def test_smtplib_smtputf8(ferry):
    srv = ferry(users=("alice", "δοκιμή@example.test"))
    msg = "From: <x@y.test>\r\nTo: <δοκιμή@example.test>\r\nSubject: ünïcödé\r\n\r\nΚαλημέρα\r\n".encode("utf-8")
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.sendmail("x@y.test", ["δοκιμή@example.test"], msg, mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    [f] = srv.wait_mail("δοκιμή")
    assert parse_delivered(f.read_bytes())[4] == msg
