"""Both durability strategies ([queue] sync) deliver every accepted message, and a bad value is a config error."""

import pytest

from ferrytest import Ferry, make_message


@pytest.mark.parametrize("mode", ["files", "filesystem"])
def test_sync_mode_delivers_everything(tmp_path, mode):
    srv = Ferry(tmp_path / mode, queue={"sync": mode}, aliases={"team@example.test": ["alice@example.test", "bob@example.test"]})
    srv.start()
    try:
        with srv.connect() as c:
            c.ehlo()
            for i in range(5):
                c.send_message("s@client.test", ["team@example.test", "alice@example.test"], make_message(f"m{i}"))
            c.quit()
        # alice is reached twice per message (directly and through the alias) but gets one copy of each
        assert len(srv.wait_mail("alice", count=5)) == 5
        assert len(srv.wait_mail("bob", count=5)) == 5
        srv.wait_log(r"removed id=")
    finally:
        assert srv.stop() == 0
    assert len(srv.mail_files("alice")) == 5


def test_bad_sync_mode_is_a_config_error(tmp_path):
    srv = Ferry(tmp_path / "bad", queue={"sync": "sometimes"}, users=())
    r = srv.cli("check-config")
    assert r.returncode == 2
    assert "queue.sync" in r.stderr.decode()
