"""`ferry check-config` and `ferry serve` on good and bad configuration files."""

import re
import socket
import subprocess
from pathlib import Path

import pytest

from ferrytest import ferry_bin, free_port, sanitizer_excerpt

ERROR_RE = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<key>\S+): (?P<why>.+)$")

GOOD = """\
hostname = "mx.example.test"
data_dir = "data"

[[listen]]
address = "127.0.0.1:{port}"
role = "mx"

[domains]
local = ["example.test"]

[limits]
command_line_length = 512
text_line_length = 1000
message_size = "50M"
recipients = 100
connections = 1000
connections_per_ip = 50
errors = 10
command_timeout = "5m"
data_timeout = "10m"

[queue]
min_retry = "5m"

[aliases]
"sales@example.test" = ["alice@example.test", "bob@example.test"]
"""


def write(tmp_path, text):
    cfg = tmp_path / "ferry.toml"
    cfg.write_text(text, encoding="utf-8")
    return cfg


def run(*args, cwd, timeout=20):
    r = subprocess.run([ferry_bin(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       cwd=cwd, timeout=timeout)
    report = sanitizer_excerpt(r.stderr.decode("utf-8", errors="replace"))
    assert not report, f"sanitizer report from `ferry {' '.join(map(str, args))}`:\n{report}"
    return r


def line_of(text, needle):
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(needle)


def check_error(r, cfg, line, key_re):
    """Exit status 2 and exactly one stderr line `FILE:LINE: KEY: WHY`."""
    err = r.stderr.decode("utf-8", "replace")
    lines = [l for l in err.splitlines() if l.strip()]
    assert r.returncode == 2, f"exit status {r.returncode}, stderr: {err!r}"
    assert len(lines) == 1, f"expected one line on stderr, got {lines!r}"
    m = ERROR_RE.match(lines[0])
    assert m, f"stderr line not of the form FILE:LINE: KEY: WHY: {lines[0]!r}"
    f = Path(m.group("file"))
    if not f.is_absolute():
        f = cfg.parent / f
    assert f.resolve() == cfg.resolve(), f"file {m.group('file')!r} is not {cfg}"
    if line is not None:
        assert int(m.group("line")) == line, f"line {m.group('line')} != {line}: {lines[0]!r}"
    if key_re is not None:
        assert re.fullmatch(key_re, m.group("key")), f"key {m.group('key')!r} !~ {key_re}: {lines[0]!r}"
    assert m.group("why").strip()
    return m


def test_good_config_exits_0(tmp_path):
    cfg = write(tmp_path, GOOD.format(port=free_port()))
    r = run("check-config", "--config", str(cfg), cwd=tmp_path)
    assert r.returncode == 0, r.stderr


def test_minimal_config_exits_0(tmp_path):
    cfg = write(tmp_path, 'hostname = "mx.example.test"\ndata_dir = "data"\n[[listen]]\n'
                          f'address = "127.0.0.1:{free_port()}"\nrole = "mx"\n[domains]\nlocal = ["example.test"]\n')
    r = run("check-config", "--config", str(cfg), cwd=tmp_path)
    assert r.returncode == 0, r.stderr


def test_size_forms_accepted(tmp_path):
    for v in ('"64k"', '"50M"', "123456"):
        text = GOOD.format(port=free_port()).replace('message_size = "50M"', f"message_size = {v}")
        cfg = write(tmp_path, text)
        r = run("check-config", "--config", str(cfg), cwd=tmp_path)
        assert r.returncode == 0, (v, r.stderr)


def test_duration_forms_accepted(tmp_path):
    for v in ("500ms", "2s", "5m", "1h"):
        text = GOOD.format(port=free_port()).replace('command_timeout = "5m"', f'command_timeout = "{v}"')
        cfg = write(tmp_path, text)
        r = run("check-config", "--config", str(cfg), cwd=tmp_path)
        assert r.returncode == 0, (v, r.stderr)


def test_unknown_key_in_section(tmp_path):
    text = GOOD.format(port=free_port()).replace("recipients = 100\n", "recipients = 100\nbogus = 1\n")
    cfg = write(tmp_path, text)
    r = run("check-config", "--config", str(cfg), cwd=tmp_path)
    m = check_error(r, cfg, line_of(text, "bogus = 1"), r"limits\.bogus")
    assert "unknown" in m.group("why").lower()


def test_unknown_top_level_key(tmp_path):
    text = GOOD.format(port=free_port()).replace('hostname = "mx.example.test"\n',
                                                 'hostname = "mx.example.test"\nhostnam = "typo"\n')
    cfg = write(tmp_path, text)
    r = run("check-config", "--config", str(cfg), cwd=tmp_path)
    check_error(r, cfg, line_of(text, "hostnam ="), r"hostnam")


def test_unknown_section(tmp_path):
    text = GOOD.format(port=free_port()) + "\n[limitz]\nrecipients = 5\n"
    cfg = write(tmp_path, text)
    r = run("check-config", "--config", str(cfg), cwd=tmp_path)
    check_error(r, cfg, None, r"limitz(\.recipients)?")


def test_wrong_type(tmp_path):
    text = GOOD.format(port=free_port()).replace("recipients = 100", 'recipients = "many"')
    cfg = write(tmp_path, text)
    r = run("check-config", "--config", str(cfg), cwd=tmp_path)
    check_error(r, cfg, line_of(text, 'recipients = "many"'), r"limits\.recipients")


def test_bad_duration(tmp_path):
    text = GOOD.format(port=free_port()).replace('data_timeout = "10m"', 'data_timeout = "ten minutes"')
    cfg = write(tmp_path, text)
    r = run("check-config", "--config", str(cfg), cwd=tmp_path)
    check_error(r, cfg, line_of(text, "data_timeout"), r"limits\.data_timeout")


def test_bad_size(tmp_path):
    text = GOOD.format(port=free_port()).replace('message_size = "50M"', 'message_size = "lots"')
    cfg = write(tmp_path, text)
    r = run("check-config", "--config", str(cfg), cwd=tmp_path)
    check_error(r, cfg, line_of(text, "message_size"), r"limits\.message_size")


def test_bad_listen_address(tmp_path):
    text = re.sub(r'address = "127\.0\.0\.1:\d+"', 'address = "not an address"', GOOD.format(port=free_port()))
    cfg = write(tmp_path, text)
    r = run("check-config", "--config", str(cfg), cwd=tmp_path)
    check_error(r, cfg, line_of(text, "not an address"), r"listen(\[0\])?\.address")


def test_bad_alias_address(tmp_path):
    text = GOOD.format(port=free_port()).replace('["alice@example.test", "bob@example.test"]',
                                                 '["alice@example.test", "not an address"]')
    cfg = write(tmp_path, text)
    r = run("check-config", "--config", str(cfg), cwd=tmp_path)
    check_error(r, cfg, line_of(text, "not an address"), r"aliases\..+")


def test_toml_syntax_error(tmp_path):
    text = GOOD.format(port=free_port()).replace("errors = 10", "errors = = 10")
    cfg = write(tmp_path, text)
    r = run("check-config", "--config", str(cfg), cwd=tmp_path)
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode == 2, (r.returncode, err)
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, lines
    m = re.match(r"^(.+?):(\d+): ", lines[0])
    assert m and m.group(1).endswith("ferry.toml"), lines[0]
    assert int(m.group(2)) == line_of(text, "errors = = 10"), lines[0]


def test_every_error_reported_each_on_its_line(tmp_path):
    """Three independent mistakes: check-config names all three (file order), not only the first, and exits 2."""
    text = (GOOD.format(port=free_port())
            .replace("recipients = 100\n", "recipients = 100\nbogus = 1\n")
            .replace('min_retry = "5m"', 'min_retry = "5 minutes"')
            .replace('["alice@example.test", "bob@example.test"]', '["alice@example.test", "bob"]'))
    cfg = write(tmp_path, text)
    r = run("check-config", "--config", str(cfg), cwd=tmp_path)
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode == 2, (r.returncode, err)
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 3, lines
    found = []
    for l in lines:
        m = ERROR_RE.match(l)
        assert m, f"not FILE:LINE: KEY: WHY: {l!r}"
        assert Path(m.group("file")).resolve() == cfg.resolve(), l
        found.append((int(m.group("line")), m.group("key")))
    assert found == [
        (line_of(text, "bogus = 1"), "limits.bogus"),
        (line_of(text, "min_retry"), "queue.min_retry"),
        (line_of(text, '"bob"]'), 'aliases."sales@example.test"[1]'),
    ], lines


def test_serve_prints_every_error(tmp_path):
    port = free_port()
    text = (GOOD.format(port=port)
            .replace('hostname = "mx.example.test"', 'hostname = "mx..example.test"')
            .replace('command_timeout = "5m"', "command_timeout = 5"))
    cfg = write(tmp_path, text)
    r = run("serve", "--config", str(cfg), cwd=tmp_path, timeout=10)
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode == 2, (r.returncode, err)
    keys = [ERROR_RE.match(l).group("key") for l in err.splitlines() if l.strip()]
    assert keys == ["hostname", "limits.command_timeout"], err
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()


def test_missing_file_fails(tmp_path):
    r = run("check-config", "--config", str(tmp_path / "nope.toml"), cwd=tmp_path)
    assert r.returncode != 0
    assert r.stderr.strip()


def test_serve_bad_config_exits_2_without_listening(tmp_path):
    port = free_port()
    text = GOOD.format(port=port).replace("recipients = 100\n", "recipients = 100\nbogus = 1\n")
    cfg = write(tmp_path, text)
    r = run("serve", "--config", str(cfg), cwd=tmp_path, timeout=10)
    check_error(r, cfg, line_of(text, "bogus = 1"), r"limits\.bogus")
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()


def test_relative_data_dir_resolves_against_config_folder(ferry, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    srv = ferry(cwd=elsewhere)
    assert (srv.data_dir / "accounts").is_file()
    srv.send("alice@example.test")
    srv.wait_mail("alice")
    assert not (elsewhere / "data").exists()
