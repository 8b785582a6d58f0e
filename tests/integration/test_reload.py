"""SIGHUP re-reads the configuration: new aliases and domains apply to new sessions; a broken file is refused
and the running configuration stays."""

from ferrytest import Ferry, make_message


def rcpt_reply(srv, rcpt):
    return srv.rcpt_reply(rcpt)


def test_sighup_applies_new_alias_and_domain(tmp_path):
    srv = Ferry(tmp_path / "f")
    srv.start()
    try:
        assert rcpt_reply(srv, "team@example.test").is_(550, "5.1.1")
        assert rcpt_reply(srv, "alice@second.test").is_(554, "5.7.1")

        srv.aliases = {"team@example.test": ["alice@example.test", "bob@example.test"]}
        srv.domains = ["example.test", "second.test"]
        srv.write_config()
        srv.hup()
        srv.wait_log(r"reload: configuration .* applied")

        assert rcpt_reply(srv, "team@example.test").is_(250, "2.1.5")
        # second.test is local now: unknown users are 550, no longer relay-denied
        assert rcpt_reply(srv, "nobody@second.test").is_(550, "5.1.1")

        with srv.connect() as c:
            c.ehlo()
            c.send_message("s@client.test", ["team@example.test"], make_message("to the team"))
            c.quit()
        srv.wait_mail("alice")
        srv.wait_mail("bob")
    finally:
        srv.stop()


def test_sighup_with_broken_config_keeps_running_configuration(tmp_path):
    srv = Ferry(tmp_path / "f", aliases={"team@example.test": ["alice@example.test"]})
    srv.start()
    try:
        srv.config.write_text(srv.config_text() + "\nbogus_key = 1\n")
        srv.hup()
        srv.wait_log(r"reload failed, keeping the running configuration: .*bogus_key")
        assert srv.running()
        assert rcpt_reply(srv, "team@example.test").is_(250, "2.1.5")
    finally:
        assert srv.stop() == 0


def test_sighup_loads_new_dkim_keys_and_refuses_a_broken_one(tmp_path):
    """[[dkim.key]] tables are read again on SIGHUP: a new key signs mail from the next session on; a key file
    that cannot be used refuses the whole reload, and the keys already loaded go on signing."""
    import smtplib
    from ferrytest import DEFAULT_PASSWORD, free_port, header_value

    sub = free_port()
    listen = f'[[listen]]\naddress = "127.0.0.1:{sub}"\nrole = "submission"\nplaintext_auth = true\n'
    srv = Ferry(tmp_path / "f", extra_toml=listen)
    assert srv.cli("dkim", "keygen", "example.test", "s1", "--algorithm", "ed25519").returncode == 0

    def submit(subject):
        with smtplib.SMTP("127.0.0.1", sub, timeout=10) as s:
            s.login("alice@example.test", DEFAULT_PASSWORD)
            s.sendmail("alice@example.test", ["bob@example.test"],
                       make_message(subject, sender="alice@example.test", to="bob@example.test"))
        for f in srv.wait_mail("bob", count=len(sent) + 1):
            if header_value(f.read_bytes(), "Subject") == subject:
                return f.read_bytes()
        raise AssertionError(f"no message {subject!r}")

    sent = []
    srv.start()
    try:
        sent.append(submit("before the key"))
        assert header_value(sent[-1], "DKIM-Signature") is None
        srv.extra_toml = listen + '[[dkim.key]]\ndomain = "example.test"\nselector = "s1"\n'
        srv.write_config()
        srv.hup()
        srv.wait_log(r"reload: configuration .* applied")
        sent.append(submit("after the key"))
        assert "d=example.test;" in header_value(sent[-1], "DKIM-Signature") and "s=s1;" in header_value(sent[-1], "DKIM-Signature")

        (srv.data_dir / "dkim" / "broken.pem").write_text("not a key\n")
        srv.extra_toml += '[[dkim.key]]\ndomain = "example.test"\nselector = "s2"\nprivate_key = "data/dkim/broken.pem"\n'
        srv.write_config()
        srv.hup()
        srv.wait_log(r"reload failed, keeping the running configuration: dkim\.key\[1\] \(s2\._domainkey\.example\.test\)")
        sent.append(submit("after the broken key"))
        assert "s=s1;" in header_value(sent[-1], "DKIM-Signature")
    finally:
        assert srv.stop() == 0
