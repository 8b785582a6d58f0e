"""`ferry user add|list|passwd|del` and the running server picking up account changes."""

import re
import shutil
import time

from ferrytest import Ferry

PW = "s3cret-Pa55word"


def accounts_text(srv):
    return (srv.data_dir / "accounts").read_text(encoding="utf-8")


def account_lines(srv):
    """Account lines, ignoring blank lines and # comments."""
    return [l for l in accounts_text(srv).splitlines() if l.strip() and not l.lstrip().startswith("#")]


def listed(srv):
    r = srv.cli("user", "list")
    assert r.returncode == 0, r.stderr
    return [l.strip() for l in r.stdout.decode("utf-8").splitlines() if l.strip()]


def test_add_and_list(tmp_path):
    srv = Ferry(tmp_path / "f", users=())
    r = srv.add_user("alice@example.test", PW)
    assert r.returncode == 0
    srv.add_user("bob@example.test", PW)
    assert sorted(listed(srv)) == ["alice@example.test", "bob@example.test"]


def test_accounts_file_holds_yescrypt_hash_not_password(tmp_path):
    srv = Ferry(tmp_path / "f", users=())
    srv.add_user("alice@example.test", PW)
    text = accounts_text(srv)
    assert PW not in text
    lines = account_lines(srv)
    assert len(lines) == 1, lines
    assert re.match(r"^alice@example\.test:\{CRYPT\}\$y\$\S+$", lines[0]), lines[0]


def test_add_works_without_existing_data_dir(tmp_path):
    srv = Ferry(tmp_path / "f", users=())
    shutil.rmtree(srv.data_dir)
    srv.add_user("alice@example.test", PW)
    assert listed(srv) == ["alice@example.test"]
    assert (srv.data_dir / "accounts").is_file()


def test_add_existing_exits_1(tmp_path):
    srv = Ferry(tmp_path / "f", users=("alice",))
    before = accounts_text(srv)
    r = srv.add_user("alice@example.test", "other", check=False)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert accounts_text(srv) == before


def test_del(tmp_path):
    srv = Ferry(tmp_path / "f", users=("alice", "bob"))
    r = srv.cli("user", "del", "alice@example.test")
    assert r.returncode == 0, r.stderr
    assert listed(srv) == ["bob@example.test"]
    assert "alice@" not in accounts_text(srv)


def test_del_unknown_exits_1(tmp_path):
    srv = Ferry(tmp_path / "f", users=("alice",))
    r = srv.cli("user", "del", "nobody@example.test")
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert listed(srv) == ["alice@example.test"]


def test_passwd_changes_hash(tmp_path):
    srv = Ferry(tmp_path / "f", users=("alice", "bob"))
    before = dict(l.split(":", 1) for l in account_lines(srv))
    r = srv.cli("user", "passwd", "alice@example.test", input="n3w-passw0rd\n")
    assert r.returncode == 0, r.stderr
    text = accounts_text(srv)
    assert "n3w-passw0rd" not in text
    after = dict(l.split(":", 1) for l in account_lines(srv))
    assert set(after) == {"alice@example.test", "bob@example.test"}
    assert after["alice@example.test"] != before["alice@example.test"]
    assert after["alice@example.test"].startswith("{CRYPT}$y$")
    assert after["bob@example.test"] == before["bob@example.test"]


def test_utf8_user(tmp_path):
    srv = Ferry(tmp_path / "f", users=())
    srv.add_user("δοκιμή@example.test", PW)
    assert listed(srv) == ["δοκιμή@example.test"]


def rcpt_code(srv, addr):
    return srv.rcpt_reply(addr)


def poll_rcpt(srv, addr, code, timeout):
    deadline = time.monotonic() + timeout
    while True:
        r = rcpt_code(srv, addr)
        if r.code == code:
            return r
        if time.monotonic() > deadline:
            raise AssertionError(f"RCPT {addr}: still {r} after {timeout}s, expected {code}")
        time.sleep(0.2)


def test_running_server_sees_added_and_deleted_accounts(ferry):
    srv = ferry()
    r = rcpt_code(srv, "carol@example.test")
    assert r.is_(550, "5.1.1"), r
    srv.add_user("carol@example.test")
    poll_rcpt(srv, "carol@example.test", 250, timeout=4)
    srv.send("carol@example.test")
    srv.wait_mail("carol")
    assert srv.cli("user", "del", "carol@example.test").returncode == 0
    r = poll_rcpt(srv, "carol@example.test", 550, timeout=4)
    assert r.is_(550, "5.1.1"), r


def test_sighup_reload_keeps_serving(ferry):
    srv = ferry()
    srv.add_user("dave@example.test")
    srv.hup()
    poll_rcpt(srv, "dave@example.test", 250, timeout=3)
    assert srv.running()
    srv.send("alice@example.test")
    srv.wait_mail("alice")
