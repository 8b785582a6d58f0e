"""TLS: STARTTLS on mx (RFC 3207), implicit TLS on submissions (RFC 8314), the generated self-signed
certificate, a configured certificate and its reload on SIGHUP, and the STARTTLS plaintext injection."""

import re
import smtplib
import socket
import ssl
import subprocess

import pytest

from ferrytest import DEFAULT_PASSWORD, client_context, free_port, header_value, make_message


def tls_server(ferry, extra=""):
    """A server with its mx port (STARTTLS) and a submissions port (implicit TLS) at srv.tls_port."""
    port = free_port()
    srv = ferry(start=False, extra_toml=f'[[listen]]\naddress = "127.0.0.1:{port}"\nrole = "submissions"\n' + extra)
    srv.tls_port = port
    srv.start()
    return srv


def plaintext_starttls(port, command=b"STARTTLS\r\n"):
    """A raw socket that said EHLO and sent `command`; returns it with the reply line to STARTTLS."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    f = raw.makefile("rb")
    assert f.readline().startswith(b"220")
    raw.sendall(b"EHLO c.test\r\n")
    while f.readline()[3:4] == b"-":
        pass
    raw.sendall(command)
    return raw, f.readline()


def served_certificate(port, starttls):
    """DER of the certificate the server presents."""
    if starttls:
        raw, reply = plaintext_starttls(port)
        assert reply.startswith(b"220 2.0.0")
    else:
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    s = client_context().wrap_socket(raw)
    der = s.getpeercert(binary_form=True)
    s.close()
    return der


def make_certificate(directory, cn):
    key, cert = directory / f"{cn}.key", directory / f"{cn}.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", f"/CN={cn}", "-addext", f"subjectAltName=DNS:{cn}"],
                   check=True, capture_output=True)
    return cert, key


def test_starttls_with_smtplib_then_delivered_with_esmtps(ferry):
    srv = tls_server(ferry)
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.ehlo("client.test")
        assert s.has_extn("starttls")
        code, _ = s.starttls(context=client_context())
        assert code == 220
        s.ehlo("client.test")
        assert not s.has_extn("starttls"), "STARTTLS offered again inside TLS"
        assert s.docmd("STARTTLS")[0] == 503
        s.sendmail("sender@client.test", ["alice@example.test"], make_message("over tls"))
    [f] = srv.wait_mail("alice")
    received = header_value(f.read_bytes(), "Received")
    assert " with ESMTPS id " in received
    assert "(using TLSv1." in received and "with cipher " in received


def test_session_starts_over_after_starttls(ferry):
    """RFC 3207 4.2: the EHLO and any transaction from before TLS are forgotten."""
    srv = tls_server(ferry)
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.ehlo("client.test")
        s.starttls(context=client_context())
        code, msg = s.docmd("MAIL", "FROM:<sender@client.test>")
        assert (code, msg[:5]) == (503, b"5.5.1")


def test_starttls_plaintext_injection_is_not_executed(ferry):
    """CVE-2011-0411: 'STARTTLS\\r\\nNOOP\\r\\n' in one packet; the NOOP must never be answered."""
    srv = tls_server(ferry)
    raw, reply = plaintext_starttls(srv.port, b"STARTTLS\r\nNOOP\r\n")
    assert reply == b"220 2.0.0 Ready to start TLS\r\n"
    s = client_context().wrap_socket(raw)
    s.settimeout(1.0)
    with pytest.raises(socket.timeout):
        data = s.recv(4096)
        raise AssertionError(f"the injected NOOP was answered inside TLS: {data!r}")
    s.settimeout(10)
    s.sendall(b"NOOP\r\n")
    assert s.recv(4096).startswith(b"250 2.0.0")
    s.close()


def test_implicit_tls_port_with_smtplib(ferry):
    srv = tls_server(ferry)
    with smtplib.SMTP_SSL("127.0.0.1", srv.tls_port, context=client_context(), timeout=10) as s:
        s.ehlo("client.test")
        assert not s.has_extn("starttls")
        assert s.docmd("STARTTLS")[0] == 503
        s.login("alice@example.test", DEFAULT_PASSWORD)
        s.sendmail("alice@example.test", ["bob@example.test"], make_message("implicit", sender="alice@example.test"))
    [f] = srv.wait_mail("bob")
    assert " with ESMTPSA id " in header_value(f.read_bytes(), "Received")


def test_plaintext_client_on_implicit_tls_port_gets_no_smtp(ferry):
    srv = tls_server(ferry)
    raw = socket.create_connection(("127.0.0.1", srv.tls_port), timeout=10)
    raw.settimeout(1.0)
    with pytest.raises(socket.timeout):
        data = raw.recv(4096)
        raise AssertionError(f"plaintext greeting on the implicit-TLS port: {data!r}")
    raw.sendall(b"EHLO c.test\r\n")   # not a ClientHello: the handshake fails and the server closes
    raw.settimeout(5.0)
    data = b""
    while True:
        chunk = raw.recv(4096)
        if not chunk:
            break
        data += chunk
    assert b"220" not in data and b"250" not in data
    srv.wait_log(r"tls handshake failed client=")


def test_tls_1_2_with_forward_secret_aead_cipher(ferry):
    srv = tls_server(ferry)
    ctx = client_context(maximum_version=ssl.TLSVersion.TLSv1_2)
    with socket.create_connection(("127.0.0.1", srv.tls_port), timeout=10) as raw:
        with ctx.wrap_socket(raw) as s:
            assert s.version() == "TLSv1.2"
            name = s.cipher()[0]
            assert name.startswith(("ECDHE-", "DHE-")) and ("GCM" in name or "CHACHA20" in name), name


def test_generated_certificate_names_the_host_and_is_kept(ferry):
    srv = tls_server(ferry)
    cert = srv.data_dir / "tls" / "cert.pem"
    key = srv.data_dir / "tls" / "key.pem"
    assert cert.is_file() and key.is_file()
    assert key.stat().st_mode & 0o077 == 0, "private key readable by others"
    text = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-ext", "subjectAltName"],
                          check=True, capture_output=True, text=True).stdout
    assert f"DNS:{srv.hostname}" in text
    first = served_certificate(srv.port, starttls=True)
    assert first == served_certificate(srv.tls_port, starttls=False)
    srv.restart()
    assert served_certificate(srv.port, starttls=True) == first, "certificate regenerated on restart"


def test_configured_certificate_is_served_and_reloaded_on_sighup(ferry, tmp_path):
    one_cert, one_key = make_certificate(tmp_path, "one.example.test")
    two_cert, two_key = make_certificate(tmp_path, "two.example.test")
    live_cert, live_key = tmp_path / "live.pem", tmp_path / "live.key"
    live_cert.write_bytes(one_cert.read_bytes())
    live_key.write_bytes(one_key.read_bytes())
    srv = tls_server(ferry, extra=f'\n[tls]\ncertificate = "{live_cert}"\nprivate_key = "{live_key}"\n')
    der_one = ssl.PEM_cert_to_DER_cert(one_cert.read_text())
    der_two = ssl.PEM_cert_to_DER_cert(two_cert.read_text())
    assert served_certificate(srv.tls_port, starttls=False) == der_one
    assert not (srv.data_dir / "tls").exists(), "self-signed certificate generated although [tls] is set"

    # A session open across the reload keeps working.
    s = smtplib.SMTP_SSL("127.0.0.1", srv.tls_port, context=client_context(), timeout=10)
    s.ehlo("client.test")
    s.login("alice@example.test", DEFAULT_PASSWORD)
    live_cert.write_bytes(two_cert.read_bytes())
    live_key.write_bytes(two_key.read_bytes())
    srv.hup()
    srv.wait_log(r"reload: configuration .* applied")
    assert served_certificate(srv.tls_port, starttls=False) == der_two
    assert served_certificate(srv.port, starttls=True) == der_two
    s.sendmail("alice@example.test", ["alice@example.test"], make_message("across reload", sender="alice@example.test"))
    s.quit()
    srv.wait_mail("alice")

    # A key that does not match its certificate is refused; the running certificate stays.
    live_key.write_bytes(one_key.read_bytes())
    srv.hup()
    srv.wait_log(r"reload failed, keeping the running configuration: .*key")
    assert served_certificate(srv.tls_port, starttls=False) == der_two


def test_swaks_starttls_and_implicit_tls(ferry):
    srv = tls_server(ferry)
    auth = ["--auth", "PLAIN", "--auth-user", "bob@example.test", "--auth-password", DEFAULT_PASSWORD]
    for args, who, sender in ((["--server", f"127.0.0.1:{srv.port}", "--tls"], "alice", "sender@client.test"),
                              (["--server", f"127.0.0.1:{srv.tls_port}", "--tlsc", *auth], "bob",
                               "bob@example.test")):
        r = subprocess.run(["swaks", "--to", f"{who}@example.test", "--from", sender,
                            "--helo", "client.test", *args], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "TLS started" in r.stdout
        srv.wait_mail(who)


def test_curl_smtp_ssl_reqd_and_smtps(ferry, tmp_path):
    srv = tls_server(ferry)
    body = tmp_path / "mail.txt"
    body.write_bytes(make_message("via curl", sender="alice@example.test"))
    for url, login, sender in ((f"smtp://127.0.0.1:{srv.port}", [], "sender@client.test"),
                               (f"smtps://127.0.0.1:{srv.tls_port}",
                                ["--user", f"alice@example.test:{DEFAULT_PASSWORD}"], "alice@example.test")):
        r = subprocess.run(["curl", "-sS", "--ssl-reqd", "-k", url, *login, "--mail-from", sender,
                            "--mail-rcpt", "alice@example.test", "-T", str(body)],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
    srv.wait_mail("alice", count=2)


def test_openssl_s_client_starttls(ferry):
    srv = tls_server(ferry)
    r = subprocess.run(["openssl", "s_client", "-starttls", "smtp", "-connect", f"127.0.0.1:{srv.port}",
                        "-servername", srv.hostname, "-quiet"],
                       input="EHLO client.test\r\nQUIT\r\n", capture_output=True, text=True, timeout=30)
    assert "250-" + srv.hostname in r.stdout, r.stdout + r.stderr
    assert "221 2.0.0" in r.stdout


def test_min_version_1_3_refuses_tls_1_2_clients(ferry):
    srv = tls_server(ferry, extra='\n[tls]\nmin_version = "1.3"\n')
    with socket.create_connection(("127.0.0.1", srv.tls_port), timeout=10) as raw:
        with pytest.raises(ssl.SSLError):
            client_context(maximum_version=ssl.TLSVersion.TLSv1_2).wrap_socket(raw)
    with socket.create_connection(("127.0.0.1", srv.tls_port), timeout=10) as raw:
        with client_context().wrap_socket(raw) as s:
            assert s.version() == "TLSv1.3"
    assert (srv.data_dir / "tls" / "cert.pem").is_file(), "[tls] without certificate: self-signed expected"


def starttls_session(port, ctx, session=None):
    """One STARTTLS session (EHLO inside TLS, so TLS 1.3 tickets arrive, then QUIT); returns the TLS socket's
    (session, session_reused, cipher name)."""
    raw, reply = plaintext_starttls(port)
    assert reply.startswith(b"220 2.0.0"), reply
    s = ctx.wrap_socket(raw, session=session)
    s.sendall(b"EHLO client.test\r\n")
    data = b""
    while not re.search(rb"(^|\r\n)250 [^\r\n]*\r\n$", data):
        chunk = s.recv(4096)
        assert chunk, data
        data += chunk
    s.sendall(b"QUIT\r\n")
    s.recv(4096)
    result = (s.session, s.session_reused, s.cipher()[0])
    s.close()
    return result


def resumption_server(ferry):
    """A server with its mx port (srv.port) and a submission port (srv.submission_port), both STARTTLS."""
    port = free_port()
    srv = ferry(start=False, extra_toml=f'[[listen]]\naddress = "127.0.0.1:{port}"\nrole = "submission"\n')
    srv.submission_port = port
    srv.start()
    return srv


@pytest.mark.parametrize("version", ["TLSv1_2 session id", "TLSv1_2", "TLSv1_3"])
@pytest.mark.parametrize("listener", ["mx", "submission"])
def test_starttls_session_resumes(ferry, listener, version):
    """A second STARTTLS connection presenting the first one's session resumes it (no new key exchange and
    certificate check), as on the implicit-TLS port: by ticket (RFC 5077, RFC 8446 4.6.1), and in TLS 1.2 by
    session id from the server's cache (RFC 5246 7.4.1.2), which needs the first session closed cleanly."""
    srv = resumption_server(ferry)
    port = srv.port if listener == "mx" else srv.submission_port
    tls = getattr(ssl.TLSVersion, version.split()[0])
    ctx = client_context(minimum_version=tls, maximum_version=tls)
    if version.endswith("session id"):
        ctx.options |= ssl.OP_NO_TICKET
    session, reused, _ = starttls_session(port, ctx)
    assert not reused
    assert session is not None
    _, reused, _ = starttls_session(port, ctx, session)
    assert reused, f"{listener} listener did not resume the {version.name} session"


def test_implicit_tls_session_resumes(ferry):
    srv = tls_server(ferry)
    ctx = client_context()
    sessions = []
    for _ in range(2):
        with socket.create_connection(("127.0.0.1", srv.tls_port), timeout=10) as raw:
            with ctx.wrap_socket(raw, session=sessions[-1] if sessions else None) as s:
                assert s.recv(4096).startswith(b"220 ")
                sessions.append(s.session)
                reused = s.session_reused
    assert reused


def test_server_cipher_order_wins(ferry):
    """SSL_OP_CIPHER_SERVER_PREFERENCE: a TLS 1.2 client listing the server's suites in the opposite order gets
    the server's first choice, not its own."""
    srv = tls_server(ferry)
    server_order = ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                    "ECDHE-ECDSA-CHACHA20-POLY1305"]   # the generated certificate is an ECDSA one
    ctx = client_context(maximum_version=ssl.TLSVersion.TLSv1_2)
    ctx.set_ciphers(":".join(reversed(server_order)))
    tls12 = [c["name"] for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert tls12 == list(reversed(server_order))   # the client prefers CHACHA20
    _, _, cipher = starttls_session(srv.port, ctx)
    assert cipher == server_order[0]
    with socket.create_connection(("127.0.0.1", srv.tls_port), timeout=10) as raw:
        with ctx.wrap_socket(raw) as s:
            assert s.cipher()[0] == server_order[0]
