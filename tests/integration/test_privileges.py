"""Started as root, `ferry serve` binds its ports and then becomes `user` for good; it refuses to stay root
unless told. Needs root and the `ferry` system account (scripts/setup creates it); skipped otherwise."""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from ferrytest import DOMAIN, Ferry, ferry_bin

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="privilege drop needs root")


def ferry_account():
    try:
        return pwd.getpwnam("ferry")
    except KeyError:
        pytest.skip("no `ferry` account: run scripts/setup")


def privileged_port():
    """A free TCP port below 1024 on 127.0.0.1 (only root may bind it)."""
    for port in range(1023, 600, -1):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.skip("no free port below 1024")


@pytest.fixture
def base():
    """A folder other users may traverse (pytest's own temp folders are 0700, closed to `ferry`)."""
    path = Path(tempfile.mkdtemp(prefix="ferry-priv-"))
    path.chmod(0o755)
    servers = []
    yield path, servers
    for srv in servers:
        try:
            srv.stop()
        except Exception:
            srv.kill9()
    shutil.rmtree(path, ignore_errors=True)


def refused_start(srv):
    """Runs `ferry serve` on srv's config, expecting it to refuse to start; returns its output."""
    r = subprocess.run([ferry_bin(), "serve", "--config", str(srv.config)], cwd=srv.cwd, timeout=10,
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = r.stdout.decode("utf-8", errors="replace")
    assert r.returncode == 1, (r.returncode, out)
    return out


def proc_status(pid, task=None):
    path = Path(f"/proc/{pid}") / (f"task/{task}" if task else "") / "status"
    fields = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.split()
    return fields


def test_root_binds_then_runs_as_user(base):
    folder, servers = base
    account = ferry_account()
    port = privileged_port()
    srv = Ferry(folder / "srv", top_toml='user = "ferry"\n', run_as_root=False, port=port)
    servers.append(srv)
    srv.start()
    pid = srv.proc.pid

    # Every thread: real, effective, saved and filesystem ids are the account's; no supplementary groups but
    # its own; no capabilities left.
    tasks = sorted(os.listdir(f"/proc/{pid}/task"))
    assert len(tasks) > 1, tasks   # the committer, delivery and auth threads too
    for task in tasks:
        st = proc_status(pid, task)
        assert st["Uid"] == [str(account.pw_uid)] * 4, (task, st["Uid"])
        assert st["Gid"] == [str(account.pw_gid)] * 4, (task, st["Gid"])
        assert st.get("Groups", []) == [str(account.pw_gid)], (task, st.get("Groups"))
        assert int(st["CapEff"][0], 16) == 0, (task, st["CapEff"])
        assert int(st["CapPrm"][0], 16) == 0, (task, st["CapPrm"])
    srv.wait_log(rf"running as user=ferry uid={account.pw_uid} gid={account.pw_gid}")

    # The privileged port was bound before the switch and still serves; mail is stored as the account.
    srv.send(f"alice@{DOMAIN}", subject="as ferry")
    [mail] = srv.wait_mail("alice")
    assert mail.stat().st_uid == account.pw_uid
    for path in [srv.data_dir, srv.data_dir / "accounts", srv.data_dir / "spool" / "queue",
                 srv.data_dir / "tls" / "key.pem"]:
        assert path.stat().st_uid == account.pw_uid, path

    # Root editing the accounts file keeps it readable by the server: the new user is accepted within 1 s.
    srv.add_user(f"carol@{DOMAIN}")
    assert (srv.data_dir / "accounts").stat().st_uid == account.pw_uid
    for _ in range(40):
        reply = srv.rcpt_reply(f"carol@{DOMAIN}")
        if reply.code == 250:
            break
        time.sleep(0.1)
    assert reply.is_(250, "2.1.5"), reply
    assert "Permission denied" not in srv.log

    # The control socket belongs to the account, mode 0600: root may use `ferry queue`, another user may not.
    sock = srv.data_dir / "control.sock"
    assert sock.stat().st_uid == account.pw_uid and sock.stat().st_mode & 0o777 == 0o600
    assert srv.queue_cli("list").returncode == 0
    other = subprocess.run(["su", "-s", "/bin/sh", "nobody", "-c",
                            f"{ferry_bin()} queue list --config {srv.config}"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert other.returncode == 77, (other.returncode, other.stderr)


def test_symlink_in_data_dir_does_not_give_away_its_target(base):
    """The ownership walk never follows links: a link planted in data_dir leaves its target root's."""
    folder, servers = base
    ferry_account()
    victim = folder / "victim"
    victim.write_text("root's file\n")
    srv = Ferry(folder / "srv", top_toml='user = "ferry"\n', run_as_root=False)
    servers.append(srv)
    (srv.data_dir / "spool").mkdir(exist_ok=True)
    (srv.data_dir / "spool" / "link").symlink_to(victim)
    srv.start()
    srv.send(f"alice@{DOMAIN}")
    srv.wait_mail("alice")
    assert victim.stat().st_uid == 0


def test_root_without_user_refuses_to_start(base):
    folder, servers = base
    srv = Ferry(folder / "srv", run_as_root=False)
    out = refused_start(srv)
    assert "refusing to run as root" in out, out
    assert "listening" not in out, out   # refused before binding anything


def test_run_as_root_true_stays_root_and_says_so(base):
    folder, servers = base
    srv = Ferry(folder / "srv", run_as_root=True)
    servers.append(srv)
    srv.start()
    assert proc_status(srv.proc.pid)["Uid"] == ["0"] * 4
    srv.wait_log(r"running as root \(run_as_root = true\)")


def test_unknown_user_refuses_to_start(base):
    folder, servers = base
    srv = Ferry(folder / "srv", top_toml='user = "no-such-ferry-user"\n', run_as_root=False)
    out = refused_start(srv)
    assert 'user "no-such-ferry-user" does not exist' in out, out
    assert "listening" not in out, out


def test_data_dir_closed_to_the_user_is_a_clear_error(base):
    folder, servers = base
    ferry_account()
    closed = folder / "closed"
    closed.mkdir(mode=0o700)
    srv = Ferry(closed / "srv", top_toml='user = "ferry"\n', run_as_root=False)
    out = refused_start(srv)
    assert 'user "ferry" cannot use data_dir' in out, out
