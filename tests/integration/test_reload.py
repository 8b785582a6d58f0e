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
