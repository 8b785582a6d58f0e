"""`ferry send`: compose a message (text, HTML, attachments, non-ASCII headers) and submit it to a running Ferry
over submission (STARTTLS, implicit TLS, AUTH); the delivered Maildir files are read back with Python's `email`
package. Also the failures a user meets: header injection, a wrong password, an unknown recipient, an unverified
certificate, nothing listening, bad profiles and options, each with its exit status."""

import datetime
import email
import email.parser
import email.policy
import email.utils
import hashlib
import os
import random
import re
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from ferrytest import DEFAULT_PASSWORD, Ferry, ferry_bin, free_port, sanitizer_excerpt

ALICE = "alice@example.test"
USERS = ("alice", "bob", "carol", "dave", "erin")
POLICY = email.policy.default
MIB = 1 << 20

# Environment variables that would let the machine running the tests leak into `ferry send`.
SCRUBBED = ("FERRY_PASSWORD", "XDG_CONFIG_HOME", "HOME")


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def mod_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("send")


@pytest.fixture(scope="module")
def srv(mod_dir):
    """One server for the module: mx on srv.port, submission (STARTTLS) on srv.sub_port, submissions (implicit
    TLS) on srv.subs_port; Ferry's own self-signed certificate."""
    sub, subs = free_port(), free_port()
    s = Ferry(mod_dir / "ferry", users=USERS,
              extra_toml=(f'[[listen]]\naddress = "127.0.0.1:{sub}"\nrole = "submission"\n\n'
                          f'[[listen]]\naddress = "127.0.0.1:{subs}"\nrole = "submissions"\n'))
    s.sub_port, s.subs_port = sub, subs
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def home(mod_dir):
    """An empty home folder for every `ferry send` (no profile of the machine's user is read)."""
    h = mod_dir / "home"
    h.mkdir()
    return h


@pytest.fixture(scope="module")
def pwfile(mod_dir):
    p = mod_dir / "password"
    p.write_text(DEFAULT_PASSWORD + "\n", encoding="utf-8")
    return p


class CountingListener:
    """A TCP port that counts the connections made to it and refuses each with a 554 greeting: where a
    `ferry send` that must send nothing is pointed."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.connections += 1
            try:
                conn.sendall(b"554 5.3.2 test listener: no mail here\r\n")
            except OSError:
                pass
            conn.close()

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def closed_port():
    """A port nothing listens on, held (bound, never listening) for the test so no other test can take it:
    connections to it are refused."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    yield s.getsockname()[1]
    s.close()


@pytest.fixture
def trap():
    t = CountingListener()
    yield t
    t.close()


# ---------------------------------------------------------------- running ferry send

def arg(a):
    return a if isinstance(a, bytes) else str(a).encode("utf-8")


def run_send(args, home, input=b"", env=None, timeout=90):
    """`ferry send ARGS` with HOME=home, no FERRY_PASSWORD and no XDG_CONFIG_HOME unless env sets them; stdin is
    `input` (empty by default, so a missing body never waits). Returns the CompletedProcess."""
    e = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    e["HOME"] = str(home)
    e.update(env or {})
    if isinstance(input, str):
        input = input.encode("utf-8")
    r = subprocess.run([ferry_bin().encode(), b"send", *map(arg, args)], input=input, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=e, timeout=timeout, cwd=home)
    report = sanitizer_excerpt(r.stderr.decode("utf-8", errors="replace"))
    if report:
        raise AssertionError(f"sanitizer report from ferry send:\n{report}")
    return r


def show(r):
    return (f"exit {r.returncode}\n--- stderr ---\n{r.stderr.decode('utf-8', 'replace')}\n--- stdout ---\n"
            f"{r.stdout[:3000].decode('utf-8', 'replace')}")


def submit_args(srv, pwfile, port=None, sender=ALICE):
    """Submission over STARTTLS to the module server, logged in as alice with the password from a file."""
    return ["--server", f"127.0.0.1:{port or srv.sub_port}", "--insecure", "--user", ALICE,
            "--password-file", pwfile, "--from", sender]


def token(label):
    return f"{label}-{time.monotonic_ns()}-{random.randrange(1 << 30):x}"


def ok(r):
    assert r.returncode == 0, show(r)
    return r


# ---------------------------------------------------------------- reading the delivered mail

_subjects = {}   # path -> decoded Subject of a delivered file (files never change once in new/)


def subject_of(path):
    if path not in _subjects:
        with open(path, "rb") as f:
            head = f.read(256 * 1024).split(b"\r\n\r\n", 1)[0]
        m = email.parser.BytesHeaderParser(policy=POLICY).parsebytes(head + b"\r\n\r\n")
        _subjects[path] = str(m["Subject"] or "")
    return _subjects[path]


def find_mail(srv, user, tok):
    return [p for p in srv.mail_files(user) if tok in subject_of(p)]


def wait_delivered(srv, user, tok, timeout=20.0):
    """The one message whose Subject contains tok in user's Maildir: (path, parsed message, raw bytes)."""
    deadline = time.monotonic() + timeout
    while True:
        found = find_mail(srv, user, tok)
        if found:
            time.sleep(0.05)
            found = find_mail(srv, user, tok)
            assert len(found) == 1, f"{user} got {len(found)} copies of {tok}: {found}"
            raw = found[0].read_bytes()
            return found[0], email.message_from_bytes(raw, policy=POLICY), raw
        if time.monotonic() > deadline:
            raise AssertionError(f"no message with {tok!r} in the Subject reached {user} within {timeout}s\n"
                                 f"--- server log (tail) ---\n{srv.log[-4000:]}")
        time.sleep(0.05)


def queued_count(srv):
    return len(re.findall(r"^.*\bqueued id=", srv.log, re.M))


def assert_nothing_queued(srv, before, tok=None):
    time.sleep(0.3)
    assert queued_count(srv) == before, f"a message was queued:\n{srv.log[-3000:]}"
    if tok:
        for u in USERS:
            assert not find_mail(srv, u, tok), f"{tok} was delivered to {u}"


def header_block(raw):
    """The header section of a delivered file as unfolded lines, without the server's trace fields
    (Return-Path, Delivered-To, Received): what `ferry send` composed."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    head = re.sub(rb"\r\n[ \t]+", b" ", head)
    return [l for l in head.split(b"\r\n")
            if not re.match(rb"(?i)(return-path|delivered-to|received):", l)]


def field_names(raw):
    return [l.split(b":", 1)[0].decode("ascii", "replace").lower() for l in header_block(raw)]


def assert_ascii_headers(raw):
    for line in header_block(raw):
        assert all(b < 0x80 for b in line), f"raw 8-bit octets in a composed header (not RFC 2047/2231): {line!r}"


def text_of(part):
    """A text part's content with line ends normalized (the wire form is CRLF)."""
    return part.get_content().replace("\r\n", "\n")


def parts_types(msg):
    return [p.get_content_type() for p in msg.iter_parts()]


# ---------------------------------------------------------------- sending and reading

def test_plain_text_message_over_starttls_with_password_file(srv, home, pwfile):
    tok = token("plain")
    body = "Hello Bob,\nthe plain text body.\n-- \nAlice\n"
    r = ok(run_send([*submit_args(srv, pwfile), "--to", "bob@example.test", "--subject", f"Plain {tok}",
                     "--body", body], home))
    path, msg, raw = wait_delivered(srv, "bob", tok)
    assert not msg.is_multipart()
    assert msg.get_content_type() == "text/plain"
    assert msg["MIME-Version"] == "1.0"
    assert text_of(msg) == body
    assert msg["Subject"] == f"Plain {tok}"
    assert msg["From"].addresses[0].addr_spec == ALICE
    assert [a.addr_spec for a in msg["To"].addresses] == ["bob@example.test"]
    assert msg["Return-Path"] == f"<{ALICE}>", "MAIL FROM is the --from address"
    assert " with ESMTPSA id " in re.sub(r"\s+", " ", str(msg["Received"])), \
        f"not submitted with TLS and AUTH: {msg['Received']}"
    assert b"Subject:" not in r.stdout and b"plain text body" not in r.stdout, \
        "the message was printed without --dry-run"


def test_password_from_environment(srv, home):
    tok = token("envpw")
    r = run_send(["--server", f"127.0.0.1:{srv.sub_port}", "--insecure", "--user", ALICE, "--from", ALICE,
                  "--to", "bob@example.test", "--subject", tok, "--body", "x\n"], home,
                 env={"FERRY_PASSWORD": DEFAULT_PASSWORD})
    ok(r)
    wait_delivered(srv, "bob", tok)


def test_password_is_never_taken_on_the_command_line(srv, home):
    r = run_send(["--server", f"127.0.0.1:{srv.sub_port}", "--insecure", "--user", ALICE, "--password",
                  DEFAULT_PASSWORD, "--from", ALICE, "--to", "bob@example.test", "--subject", "x", "--body", "x"],
                 home)
    assert r.returncode == 2, show(r)


def test_non_ascii_subject_and_display_names_round_trip_rfc2047(srv, home, pwfile):
    tok = token("utf8")
    subject = (f"Grüße aus Köln — 日本語のテスト, naïve café ✉ {tok} "
               "und eine ziemlich lange Betreffzeile, die gefaltet werden muss: äöü ÄÖÜ ß")
    ok(run_send(["--server", f"127.0.0.1:{srv.sub_port}", "--insecure", "--user", ALICE,
                 "--password-file", pwfile, "--from", f"Ålice Ängström <{ALICE}>",
                 "--to", "Bøb Ünïcode 日本 <bob@example.test>", "--subject", subject, "--body", "hi\n"], home))
    _, msg, raw = wait_delivered(srv, "bob", tok)
    assert msg["Subject"] == subject
    assert msg["From"].addresses[0].display_name == "Ålice Ängström"
    assert msg["From"].addresses[0].addr_spec == ALICE
    assert msg["To"].addresses[0].display_name == "Bøb Ünïcode 日本"
    assert msg["To"].addresses[0].addr_spec == "bob@example.test"
    assert_ascii_headers(raw)
    assert re.search(rb"(?im)^Subject:.*=\?utf-8\?[bq]\?", raw), "Subject is not RFC 2047 encoded"
    for line in raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        assert len(line) <= 998, f"header line over 998 octets (RFC 5322 2.1.1): {line[:100]!r}..."


def test_display_name_with_specials_stays_one_address(srv, home, pwfile):
    tok = token("specials")
    ok(run_send([*submit_args(srv, pwfile), "--to", "Doe, Jane <bob@example.test>",
                 "--cc", "Dr. Dave (Ops) <dave@example.test>", "--cc", '"Smith, \\"Bob\\"" <carol@example.test>',
                 "--subject", tok, "--body", "x\n"], home))
    _, msg, _ = wait_delivered(srv, "bob", tok)
    [to] = msg["To"].addresses
    assert (to.display_name, to.addr_spec) == ("Doe, Jane", "bob@example.test")
    assert [(a.display_name, a.addr_spec) for a in msg["Cc"].addresses] == [
        ("Dr. Dave (Ops)", "dave@example.test"), ('Smith, "Bob"', "carol@example.test")]
    wait_delivered(srv, "dave", tok)
    wait_delivered(srv, "carol", tok)


def test_cc_and_bcc_recipients_receive_it_and_bcc_is_in_no_header(srv, home, pwfile):
    tok = token("bcc")
    ok(run_send([*submit_args(srv, pwfile), "--to", "bob@example.test", "--cc", "Dave <dave@example.test>",
                 "--bcc", "carol@example.test", "--bcc", "Erin Secret <erin@example.test>",
                 "--subject", f"Bcc {tok}", "--body", "for four\n"], home))
    for user in ("bob", "dave", "carol", "erin"):
        _, msg, raw = wait_delivered(srv, user, tok)
        assert msg["Bcc"] is None, f"Bcc header in {user}'s copy"
        assert "bcc" not in field_names(raw), f"Bcc header in {user}'s copy"
        composed = b"\r\n".join(header_block(raw)).lower()
        for hidden in (b"carol", b"erin"):
            assert hidden not in composed, f"{hidden!r} visible in {user}'s copy: {composed!r}"
        assert [a.addr_spec for a in msg["To"].addresses] == ["bob@example.test"]
        assert [(a.display_name, a.addr_spec) for a in msg["Cc"].addresses] == [("Dave", "dave@example.test")]
        assert text_of(msg) == "for four\n"


def test_extra_header_fields_appear(srv, home, pwfile):
    tok = token("hdr")
    ok(run_send([*submit_args(srv, pwfile), "--to", "bob@example.test", "--subject", tok, "--body", "x\n",
                 "--header", f"X-Ferry-Test: {tok} value",
                 "--header", "Reply-To: Support <support@example.test>",
                 "--header", "Keywords: one, two",
                 "--header", "X-Note: Grüße aus Köln",
                 "--header", "X-Empty:"], home))
    _, msg, raw = wait_delivered(srv, "bob", tok)
    assert msg["X-Ferry-Test"] == f"{tok} value"
    assert msg["Reply-To"].addresses[0].addr_spec == "support@example.test"
    assert msg["Keywords"] == "one, two"
    assert msg["X-Note"] == "Grüße aus Köln"
    assert msg["X-Empty"] == ""
    assert field_names(raw).count("x-ferry-test") == 1
    assert_ascii_headers(raw)


@pytest.mark.parametrize("field", ["Bcc: evil@remote.test", "To: evil@remote.test", "Subject: second",
                                   "Content-Type: text/html", "From: mallory@remote.test"])
def test_extra_header_cannot_replace_a_composed_field(field, home, trap):
    r = run_send(["--server", f"127.0.0.1:{trap.port}", "--from", ALICE, "--to", "bob@example.test",
                  "--subject", "x", "--body", "x\n", "--header", field], home)
    assert r.returncode == 2, show(r)
    assert trap.connections == 0
    r = run_send(["--from", ALICE, "--to", "bob@example.test", "--subject", "x", "--body", "x\n",
                  "--header", field, "--dry-run"], home)
    assert r.returncode == 2 and b"evil" not in r.stdout and b"mallory" not in r.stdout, show(r)


def test_date_and_message_id_are_generated_once_and_parse(srv, home, pwfile):
    ids = []
    for i in range(2):
        tok = token(f"ids{i}")
        before = datetime.datetime.now(datetime.timezone.utc)
        ok(run_send([*submit_args(srv, pwfile), "--to", "bob@example.test", "--subject", tok, "--body", "x\n"],
                    home))
        _, msg, raw = wait_delivered(srv, "bob", tok)
        names = field_names(raw)
        assert names.count("date") == 1 and names.count("message-id") == 1, names
        date = msg["Date"].datetime
        assert date.tzinfo is not None, f"Date without a zone: {msg['Date']}"
        assert abs((date - before).total_seconds()) < 300, f"Date {msg['Date']} is not now ({before})"
        mid = str(msg["Message-ID"]).strip()
        assert re.fullmatch(r"<[^<>@\s]+@[^<>@\s]+>", mid), f"Message-ID {mid!r}"
        ids.append(mid)
        for name in ("From", "To", "Subject"):
            assert names.count(name.lower()) == 1, names
    assert ids[0] != ids[1], "two messages with the same Message-ID"


def test_html_alternative(srv, home, pwfile, tmp_path):
    tok = token("html")
    html = "<!DOCTYPE html>\n<html><body><p>Hallo <b>Wörld</b> — ✓</p>\n</body></html>\n"
    (tmp_path / "mail.html").write_text(html, encoding="utf-8")
    ok(run_send([*submit_args(srv, pwfile), "--to", "bob@example.test", "--subject", tok,
                 "--body", "Hallo Wörld — ✓\n", "--html", tmp_path / "mail.html"], home))
    _, msg, _ = wait_delivered(srv, "bob", tok)
    assert msg.get_content_type() == "multipart/alternative"
    assert parts_types(msg) == ["text/plain", "text/html"], "RFC 2046 5.1.4: the plainest part first"
    plain, rich = msg.iter_parts()
    assert text_of(plain) == "Hallo Wörld — ✓\n"
    assert text_of(rich) == html


def write(path, data):
    Path(path).write_bytes(data)
    return path


def binary_bytes(n, seed):
    rnd = random.Random(seed)
    data = bytes(rnd.getrandbits(8) for _ in range(n))
    # Every octet value, NULs and 0xFF runs, and what would be line ends and an end of DATA in the clear.
    return bytes(range(256)) + b"\0\0\0\xff\xff\xff\r\n.\r\n\n.\n\r" + data + b"\0\xff"


TEXT_ATTACHMENT = ("first line\n.\n..two dots\nFrom the start of a line\ntrailing spaces   \n"
                   "tab\tinside\nUTF-8: Grüße, 日本語\n\nno newline at the end").encode("utf-8")


def assert_attachment(part, name, content_type, data):
    assert part.get_content_type() == content_type, f"{name}: {part.get_content_type()}"
    assert part.get_content_disposition() == "attachment", f"{name}: {part['Content-Disposition']}"
    assert part.get_filename() == name
    assert part["Content-Transfer-Encoding"].lower() == "base64", f"{name}: {part['Content-Transfer-Encoding']}"
    got = part.get_payload(decode=True)
    assert len(got) == len(data) and got == data, f"{name}: {len(got)} octets back for {len(data)}, not identical"


def test_attachments_are_byte_identical_with_types_from_mime_types(srv, home, pwfile, tmp_path):
    tok = token("attach")
    files = [
        ("notes.txt", "text/plain", TEXT_ATTACHMENT),
        ("blob.ferry-unknown-ext", "application/octet-stream", binary_bytes(5000, 1)),
        ("report.pdf", "application/pdf", b"%PDF-1.4\n" + binary_bytes(3000, 2)),
        ("picture.png", "image/png", b"\x89PNG\r\n\x1a\n" + binary_bytes(3000, 3)),
        ("README", "application/octet-stream", b"no extension\n"),
        ("empty.bin", "application/octet-stream", b""),
    ]
    args = []
    for name, _, data in files:
        args += ["--attach", write(tmp_path / name, data)]
    body = "See the attached files.\n"
    ok(run_send([*submit_args(srv, pwfile), "--to", "bob@example.test", "--subject", tok, "--body", body, *args],
                home))
    _, msg, raw = wait_delivered(srv, "bob", tok)
    assert msg.get_content_type() == "multipart/mixed"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain"] + [t for _, t, _ in files]
    assert parts[0].get_content_disposition() in (None, "inline")
    assert text_of(parts[0]) == body
    for part, (name, content_type, data) in zip(parts[1:], files):
        assert_attachment(part, name, content_type, data)
    for line in raw.split(b"\r\n"):
        assert len(line) <= 998, f"line over 998 octets (RFC 5322 2.1.1): {line[:80]!r}..."


def test_html_and_attachments_nest_the_alternative_inside_mixed(srv, home, pwfile, tmp_path):
    tok = token("mixedalt")
    write(tmp_path / "page.html", b"<p>rich</p>\n")
    data = binary_bytes(1000, 4)
    ok(run_send([*submit_args(srv, pwfile), "--to", "bob@example.test", "--subject", tok, "--body", "plain\n",
                 "--html", tmp_path / "page.html", "--attach", write(tmp_path / "a.zip", data)], home))
    _, msg, _ = wait_delivered(srv, "bob", tok)
    assert msg.get_content_type() == "multipart/mixed"
    assert parts_types(msg) == ["multipart/alternative", "application/zip"]
    alt, att = msg.iter_parts()
    assert parts_types(alt) == ["text/plain", "text/html"]
    assert [text_of(p) for p in alt.iter_parts()] == ["plain\n", "<p>rich</p>\n"]
    assert_attachment(att, "a.zip", "application/zip", data)


def test_non_ascii_attachment_file_names_round_trip_rfc2231(srv, home, pwfile, tmp_path):
    tok = token("names")
    names = ["café.txt",
             "Übersicht – Straßenbahn 日本語のファイル名 mit einem sehr langen Namen, der umbrochen werden muss.pdf",
             "semi;colon \"quoted\" (paren).txt"]
    args = []
    for i, n in enumerate(names):
        args += ["--attach", write(tmp_path / n, f"file {i}\n".encode())]
    ok(run_send([*submit_args(srv, pwfile), "--to", "bob@example.test", "--subject", tok, "--body", "x\n", *args],
                home))
    _, msg, raw = wait_delivered(srv, "bob", tok)
    atts = list(msg.iter_attachments())
    assert [p.get_filename() for p in atts] == names
    assert [p.get_content_type() for p in atts] == ["text/plain", "application/pdf", "text/plain"]
    assert [p.get_payload(decode=True) for p in atts] == [f"file {i}\n".encode() for i in range(len(names))]
    # RFC 2231 parameters, not raw UTF-8 (nor only RFC 2047 words inside a quoted string).
    mime_heads = re.findall(rb"(?ims)^content-disposition:.*?(?=\r\n(?![ \t]))", raw)
    assert len(mime_heads) == 3, mime_heads
    for h in mime_heads:
        assert all(b < 0x80 for b in h), f"8-bit octets in {h!r}"
    assert re.search(rb"filename\*(0\*?)?=", mime_heads[0], re.I), f"no RFC 2231 filename*: {mime_heads[0]!r}"
    assert re.search(rb"filename\*(0\*?)?=", mime_heads[1], re.I), f"no RFC 2231 filename*: {mime_heads[1]!r}"


def test_20_mib_attachment_is_byte_identical(srv, home, pwfile, tmp_path):
    tok = token("big")
    data = os.urandom(20 * MIB) + b"\0\xff\r\n.\r\n"
    path = write(tmp_path / "big.zip", data)
    t0 = time.monotonic()
    ok(run_send([*submit_args(srv, pwfile), "--to", "bob@example.test", "--subject", tok, "--body", "big one\n",
                 "--attach", path], home, timeout=120))
    _, msg, raw = wait_delivered(srv, "bob", tok, timeout=60)
    [att] = list(msg.iter_attachments())
    assert att.get_filename() == "big.zip" and att.get_content_type() == "application/zip"
    got = att.get_payload(decode=True)
    assert len(got) == len(data), f"{len(got)} octets back for {len(data)}"
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest(), "content differs"
    assert text_of(next(msg.iter_parts())) == "big one\n"
    print(f"20 MiB: sent and delivered in {time.monotonic() - t0:.1f}s")


# ---------------------------------------------------------------- the body: --body, --body-file, stdin, 8-bit

BODY_8BIT = ("Grüße, Zoë! Ünïcödé — 日本語 — emoji ✉🙂\n"
             ".\n"
             "..two dots at the start\n"
             ".a dot at the start\n"
             "From the beginning of a line\n"
             "trailing spaces   \n"
             "\n"
             "last line\n")


def test_body_from_stdin_8bit_round_trip(srv, home, pwfile):
    tok = token("stdin")
    ok(run_send([*submit_args(srv, pwfile), "--to", "bob@example.test", "--subject", tok], home,
                input=BODY_8BIT.encode("utf-8")))
    _, msg, _ = wait_delivered(srv, "bob", tok)
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content_charset() == "utf-8"
    assert text_of(msg) == BODY_8BIT


def test_body_from_file_8bit_round_trip(srv, home, pwfile, tmp_path):
    tok = token("bodyfile")
    write(tmp_path / "body.txt", BODY_8BIT.encode("utf-8"))
    ok(run_send([*submit_args(srv, pwfile), "--to", "bob@example.test", "--subject", tok,
                 "--body-file", tmp_path / "body.txt"], home, input=b"NOT THE BODY\n"))
    _, msg, _ = wait_delivered(srv, "bob", tok)
    assert text_of(msg) == BODY_8BIT


def test_body_that_is_not_utf8_is_refused(home, trap):
    r = run_send(["--server", f"127.0.0.1:{trap.port}", "--from", ALICE, "--to", "bob@example.test", "--subject", "x"],
                 home, input="Grüße\n".encode("latin-1"))
    assert r.returncode == 2, show(r)
    assert b"UTF-8" in r.stderr, show(r)
    assert trap.connections == 0


def test_empty_body_and_missing_final_newline(srv, home, pwfile):
    for label, body, expected in (("empty", "", ""), ("nonl", "no newline at the end", "no newline at the end\n")):
        tok = token(label)
        ok(run_send([*submit_args(srv, pwfile), "--to", "bob@example.test", "--subject", tok, "--body", body], home))
        _, msg, raw = wait_delivered(srv, "bob", tok)
        assert text_of(msg) == expected
        assert raw.endswith(b"\r\n")


def test_body_with_crlf_and_a_line_over_998_octets_round_trips(srv, home, pwfile):
    tok = token("longline")
    body = "short\r\n" + "é" * 1500 + "\r\n" + ("x" * 2000) + "\r\nend\r\n"
    ok(run_send([*submit_args(srv, pwfile), "--to", "bob@example.test", "--subject", tok, "--body", body], home))
    _, msg, raw = wait_delivered(srv, "bob", tok)
    assert text_of(msg) == body.replace("\r\n", "\n")
    for line in raw.split(b"\r\n"):
        assert len(line) <= 998, f"line of {len(line)} octets sent (RFC 5322 2.1.1 allows 998)"


# ---------------------------------------------------------------- header injection and usage errors

def clean_and_injected(tmp_path):
    """(label, args with a clean value, the same args with CR/LF in it)."""
    good_file = write(tmp_path / "report.txt", b"r\n")
    cases = []
    for label, nl in (("crlf", "\r\n"), ("lf", "\n"), ("cr", "\r")):
        cases.append((f"subject-{label}", ["--subject", "Hi"], ["--subject", f"Hi{nl}Bcc: evil@remote.test"]))
    cases += [
        ("from-display-name", ["--from", f"Alice <{ALICE}>"], ["--from", f"Alice\r\nBcc: evil@remote.test <{ALICE}>"]),
        ("to-display-name", ["--to", "Bob <bob@example.test>"], ["--to", "Bob\nBcc: evil@remote.test <bob@example.test>"]),
        ("header-value", ["--header", "X-Test: fine"], ["--header", "X-Test: fine\r\nBcc: evil@remote.test"]),
        ("header-value-lf", ["--header", "X-Test: fine"], ["--header", "X-Test: fine\nBcc: evil@remote.test"]),
        ("attachment-name", ["--attach", good_file],
         ["--attach", write(tmp_path / "report\r\nBcc: evil@remote.test.txt", b"r\n")]),
        ("attachment-name-lf", ["--attach", good_file],
         ["--attach", write(tmp_path / "report\nContent-Type: text-html.txt", b"r\n")]),
    ]
    return cases


INJECTION_LABELS = ["subject-crlf", "subject-lf", "subject-cr", "from-display-name", "to-display-name",
                    "header-value", "header-value-lf", "attachment-name", "attachment-name-lf"]


@pytest.mark.parametrize("label", INJECTION_LABELS)
def test_header_injection_is_refused_and_nothing_sent(label, home, pwfile, tmp_path, trap):
    [(_, clean, injected)] = [c for c in clean_and_injected(tmp_path) if c[0] == label]

    def cmd(extra, dry):
        base = {"--from": ALICE, "--to": "bob@example.test", "--subject": "Hi"}
        for k in list(base):
            if k in extra:
                del base[k]
        args = ["--server", f"127.0.0.1:{trap.port}", "--insecure", "--user", ALICE, "--password-file", pwfile,
                "--body", "x\n", *extra]
        for k, v in base.items():
            args += [k, v]
        return args + (["--dry-run"] if dry else [])

    control = run_send(cmd(clean, True), home)
    assert control.returncode == 0, "the clean variant must compose: " + show(control)
    for dry in (False, True):
        r = run_send(cmd(injected, dry), home)
        assert r.returncode == 2, show(r)
        assert b"injection" in r.stderr.lower(), show(r)
        assert b"Bcc: evil" not in r.stdout, "the injected field was printed as part of a message"
    assert trap.connections == 0, "ferry send connected to the server with a message it cannot compose"


@pytest.mark.parametrize("label,extra", [
    ("no recipient", ["--subject", "x", "--from", ALICE]),
    ("no sender", ["--to", "bob@example.test", "--subject", "x"]),
    ("bad --to", ["--to", "not an address", "--from", ALICE]),
    ("bad --tls", ["--to", "bob@example.test", "--from", ALICE, "--tls", "sometimes"]),
    ("unreadable --attach", ["--to", "bob@example.test", "--from", ALICE, "--attach", "/nonexistent/file.pdf"]),
    ("unreadable --body-file", ["--to", "bob@example.test", "--from", ALICE, "--body-file", "/nonexistent/b.txt"]),
    ("unreadable --html", ["--to", "bob@example.test", "--from", ALICE, "--html", "/nonexistent/b.html"]),
    ("unreadable --password-file", ["--to", "bob@example.test", "--from", ALICE, "--password-file",
                                    "/nonexistent/pw"]),
    ("missing profile", ["--to", "bob@example.test", "--from", ALICE, "--profile", "/nonexistent/send.toml"]),
    ("header without colon", ["--to", "bob@example.test", "--from", ALICE, "--header", "NoColonHere"]),
    ("header given twice", ["--to", "bob@example.test", "--from", ALICE, "--header", "Reply-To: a@example.test",
                            "--header", "Reply-To: b@example.test"]),
    ("--body and --body-file", ["--to", "bob@example.test", "--from", ALICE, "--body-file", "/etc/hostname"]),
    ("--helo with a line break", ["--to", "bob@example.test", "--from", ALICE, "--helo", "laptop.test\r\nRSET"]),
])
def test_usage_errors_exit_2_and_send_nothing(label, extra, home, trap):
    body = [] if "--body-file" in extra and label != "--body and --body-file" else ["--body", "x\n"]
    args = ["--server", f"127.0.0.1:{trap.port}", "--insecure", *body, *extra]
    if "--password-file" in extra:
        args += ["--user", ALICE]
    r = run_send(args, home)
    assert r.returncode == 2, f"{label}: " + show(r)
    assert r.stderr.strip(), f"{label}: no message on stderr"
    assert trap.connections == 0, f"{label}: connected anyway"


# ---------------------------------------------------------------- refusals by the server

def test_wrong_password_exits_1_with_the_535_reply(srv, home, tmp_path):
    tok = token("wrongpw")
    bad = write(tmp_path / "bad-password", b"not the password\n")
    before = queued_count(srv)
    r = run_send(["--server", f"127.0.0.1:{srv.sub_port}", "--insecure", "--user", ALICE, "--password-file", bad,
                  "--from", ALICE, "--to", "bob@example.test", "--subject", tok, "--body", "x\n"], home)
    assert r.returncode == 1, show(r)
    assert re.search(rb"\b535\b", r.stderr) and b"5.7.8" in r.stderr, "the server's reply is not shown: " + show(r)
    assert b"not the password" not in r.stderr + r.stdout
    assert_nothing_queued(srv, before, tok)


def test_unknown_recipient_exits_1_naming_it_and_the_others_still_get_it(srv, home, pwfile):
    tok = token("unknown")
    r = run_send([*submit_args(srv, pwfile), "--to", "bob@example.test", "--to", "nobody@example.test",
                  "--cc", "dave@example.test", "--subject", tok, "--body", "x\n"], home)
    assert r.returncode == 1, show(r)
    err = r.stderr.decode("utf-8", "replace")
    [line] = [l for l in err.splitlines() if "nobody@example.test" in l] or [err]
    assert re.search(r"\b550\b", line) and "5.1.1" in line, f"the refusal and the server's reply on one line: {err}"
    assert "bob@example.test" not in err and "dave@example.test" not in err, f"accepted recipients listed: {err}"
    wait_delivered(srv, "bob", tok)
    wait_delivered(srv, "dave", tok)


def test_all_recipients_refused_exits_1_and_nothing_is_queued(srv, home, pwfile):
    tok = token("allbad")
    before = queued_count(srv)
    r = run_send([*submit_args(srv, pwfile), "--to", "nobody@example.test", "--bcc", "ghost@example.test",
                  "--subject", tok, "--body", "x\n"], home)
    assert r.returncode == 1, show(r)
    assert b"nobody@example.test" in r.stderr and b"ghost@example.test" in r.stderr, show(r)
    assert_nothing_queued(srv, before)


def test_sender_not_belonging_to_the_user_exits_1_with_the_reply(srv, home, pwfile):
    tok = token("notmine")
    before = queued_count(srv)
    r = run_send([*submit_args(srv, pwfile, sender="bob@example.test"), "--to", "carol@example.test",
                  "--subject", tok, "--body", "x\n"], home)
    assert r.returncode == 1, show(r)
    assert re.search(rb"\b553\b", r.stderr), show(r)
    assert_nothing_queued(srv, before, tok)


# ---------------------------------------------------------------- TLS

def test_implicit_tls_to_a_submissions_listener(srv, home, pwfile):
    tok = token("implicit")
    ok(run_send(["--server", f"127.0.0.1:{srv.subs_port}", "--tls", "implicit", "--insecure", "--user", ALICE,
                 "--password-file", pwfile, "--from", ALICE, "--to", "bob@example.test", "--subject", tok,
                 "--body", "x\n"], home))
    _, msg, _ = wait_delivered(srv, "bob", tok)
    assert " with ESMTPSA id " in re.sub(r"\s+", " ", str(msg["Received"]))


@pytest.mark.parametrize("mode", ["starttls", "implicit"])
def test_unverified_certificate_fails_without_insecure(mode, srv, home, pwfile):
    tok = token("verify")
    port = srv.sub_port if mode == "starttls" else srv.subs_port
    before = queued_count(srv)
    logins = len(re.findall(r"\bauth client=", srv.log))
    r = run_send(["--server", f"127.0.0.1:{port}", "--tls", mode, "--user", ALICE, "--password-file", pwfile,
                  "--from", ALICE, "--to", "bob@example.test", "--subject", tok, "--body", "x\n"], home)
    assert r.returncode == 1, show(r)
    err = r.stderr.decode("utf-8", "replace").lower()
    assert "certificate" in err and "verif" in err, show(r)
    assert_nothing_queued(srv, before, tok)
    assert len(re.findall(r"\bauth client=", srv.log)) == logins, "logged in to a server that did not verify"


def test_implicit_tls_to_a_starttls_port_fails(srv, home, pwfile):
    tok = token("wrongmode")
    before = queued_count(srv)
    r = run_send(["--server", f"127.0.0.1:{srv.sub_port}", "--tls", "implicit", "--insecure", "--user", ALICE,
                  "--password-file", pwfile, "--from", ALICE, "--to", "bob@example.test", "--subject", tok,
                  "--body", "x\n"], home, timeout=120)
    assert r.returncode not in (0, 2), show(r)
    assert r.stderr.strip(), show(r)
    assert_nothing_queued(srv, before, tok)


@pytest.fixture
def localhost_srv(tmp_path):
    """A server whose self-signed certificate names `localhost`, so a client given it as --ca-file can verify."""
    sub = free_port()
    s = Ferry(tmp_path / "lh", users=("alice", "bob"), hostname="localhost",
              extra_toml=f'[[listen]]\naddress = "127.0.0.1:{sub}"\nrole = "submission"\n')
    s.sub_port = sub
    s.start()
    yield s
    s.stop()


def test_ca_file_verifies_the_server_certificate_and_its_name(localhost_srv, home, pwfile):
    s = localhost_srv
    ca = s.data_dir / "tls" / "cert.pem"
    assert ca.is_file(), "the self-signed certificate is not where tls_context.cpp writes it"
    tok = token("cafile")
    common = ["--ca-file", ca, "--user", ALICE, "--password-file", pwfile, "--from", ALICE,
              "--to", "bob@example.test", "--body", "x\n"]
    ok(run_send(["--server", f"localhost:{s.sub_port}", "--subject", tok, *common], home))
    wait_delivered(s, "bob", tok)
    # The same trusted certificate, but the name asked for is not in it.
    tok2 = token("caname")
    r = run_send(["--server", f"127.0.0.1:{s.sub_port}", "--subject", tok2, *common], home)
    assert r.returncode == 1, show(r)
    assert b"certificate" in r.stderr.lower(), show(r)
    time.sleep(0.3)
    assert not find_mail(s, "bob", tok2)


@pytest.mark.parametrize("password", ["file", "environment"])
def test_tls_none_with_user_is_refused_before_connecting(password, home, pwfile, trap):
    how = (["--password-file", pwfile], {}) if password == "file" else ([], {"FERRY_PASSWORD": DEFAULT_PASSWORD})
    r = run_send(["--server", f"127.0.0.1:{trap.port}", "--tls", "none", "--user", ALICE, *how[0],
                  "--from", ALICE, "--to", "bob@example.test", "--subject", "x", "--body", "x\n"], home, env=how[1])
    assert r.returncode == 2, show(r)
    assert b"TLS" in r.stderr, show(r)
    assert trap.connections == 0, "connected to send a password in the clear"


def test_tls_none_without_user_sends_in_the_clear_to_mx(srv, home):
    tok = token("cleartext")
    ok(run_send(["--server", f"127.0.0.1:{srv.port}", "--tls", "none", "--from", "someone@client.test",
                 "--to", "bob@example.test", "--subject", tok, "--body", "x\n"], home))
    _, msg, _ = wait_delivered(srv, "bob", tok)
    received = re.sub(r"\s+", " ", str(msg["Received"]))
    assert " with ESMTP id " in received, f"--tls none used TLS or AUTH anyway: {received}"


def test_nothing_listening_exits_75(home, pwfile, closed_port):
    port = closed_port
    r = run_send(["--server", f"127.0.0.1:{port}", "--insecure", "--user", ALICE, "--password-file", pwfile,
                  "--from", ALICE, "--to", "bob@example.test", "--subject", "x", "--body", "x\n"], home)
    assert r.returncode == 75, show(r)
    assert r.stderr.strip(), show(r)


# ---------------------------------------------------------------- against a scripted SMTP server

class ScriptedSMTP:
    """A plain-text SMTP server in a thread that answers from a script and records every line it is sent, for
    the server behaviour Ferry itself does not show: no STARTTLS, refusals at end of DATA, 4xx replies, SIZE."""

    def __init__(self, ehlo=("250-fake.test", "250-8BITMIME", "250 SIZE 100000000"), rcpt=None,
                 data_end="250 2.0.0 Ok: queued as FAKE1"):
        self.ehlo, self.rcpt, self.data_end = list(ehlo), dict(rcpt or {}), data_end
        self.lines = []       # every command line received (bytes, without CRLF)
        self.messages = []    # the DATA content received, dot-stuffing undone
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            try:
                self._session(conn)
            except OSError:
                pass
            finally:
                conn.close()

    def _session(self, conn):
        conn.settimeout(20)
        f = conn.makefile("rb")

        def say(*lines):
            conn.sendall(b"".join(l.encode() + b"\r\n" for l in lines))

        say("220 fake.test ESMTP scripted")
        while True:
            line = f.readline()
            if not line:
                return
            line = line.rstrip(b"\r\n")
            self.lines.append(line)
            verb = line.split(b" ", 1)[0].upper()
            if verb in (b"EHLO", b"HELO"):
                say(*self.ehlo)
            elif verb == b"MAIL" or verb in (b"RSET", b"NOOP"):
                say("250 2.1.0 Ok")
            elif verb == b"RCPT":
                addr = line.split(b"<", 1)[1].split(b">", 1)[0].decode()
                say(self.rcpt.get(addr, "250 2.1.5 Ok"))
            elif verb == b"DATA":
                say("354 End data with <CR><LF>.<CR><LF>")
                data = []
                while True:
                    l = f.readline()
                    if not l or l == b".\r\n":
                        break
                    data.append(l[1:] if l.startswith(b".") else l)
                self.messages.append(b"".join(data))
                say(self.data_end)
            elif verb == b"QUIT":
                say("221 2.0.0 Bye")
                return
            elif verb == b"STARTTLS":
                say("454 4.7.0 TLS not available")
            elif verb == b"AUTH":
                say("535 5.7.8 no")
            else:
                say("502 5.5.2 unknown command")

    def verbs(self):
        return [l.split(b" ", 1)[0].upper().decode() for l in self.lines]

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def scripted():
    made = []

    def make(**kw):
        s = ScriptedSMTP(**kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def clear_args(fake, *extra):
    return ["--server", f"127.0.0.1:{fake.port}", "--tls", "none", "--from", ALICE, *extra]


def test_a_server_without_starttls_gets_neither_password_nor_message(scripted, home, pwfile):
    fake = scripted(ehlo=("250-fake.test", "250-AUTH PLAIN LOGIN", "250 8BITMIME"))
    r = run_send(["--server", f"127.0.0.1:{fake.port}", "--insecure", "--user", ALICE, "--password-file", pwfile,
                  "--from", ALICE, "--to", "bob@example.test", "--subject", "x", "--body", "x\n"], home)
    assert r.returncode in (1, 75), show(r)
    assert b"STARTTLS" in r.stderr or b"TLS" in r.stderr, show(r)
    assert fake.verbs() and fake.verbs()[0] == "EHLO", fake.lines
    assert not {"AUTH", "MAIL", "RCPT", "DATA"} & set(fake.verbs()), f"went on without TLS: {fake.lines}"
    wire = b"\n".join(fake.lines)
    assert DEFAULT_PASSWORD.encode() not in wire and b"Y29ycmVjd" not in wire


def test_envelope_has_every_recipient_and_the_content_no_bcc(scripted, home):
    fake = scripted()
    ok(run_send(clear_args(fake, "--to", "Bob <bob@remote.test>", "--cc", "carol@remote.test",
                           "--bcc", "Secret <dave@remote.test>", "--subject", "envelope",
                           "--body", "line\n.\n..\nend\n"), home))
    assert fake.lines[0].startswith(b"EHLO ") and len(fake.lines[0]) > 5, fake.lines
    [mail] = [l for l in fake.lines if l.upper().startswith(b"MAIL")]
    assert re.fullmatch(rb"MAIL FROM:<alice@example\.test>( .*)?", mail, re.I), mail
    rcpts = sorted(l.split(b"<", 1)[1].split(b">", 1)[0] for l in fake.lines if l.upper().startswith(b"RCPT"))
    assert rcpts == [b"bob@remote.test", b"carol@remote.test", b"dave@remote.test"]
    [content] = fake.messages
    head, body = content.split(b"\r\n\r\n", 1)
    assert b"dave" not in head.lower() and b"secret" not in head.lower() and b"bcc" not in head.lower(), head
    msg = email.message_from_bytes(content, policy=POLICY)
    assert text_of(msg) == "line\n.\n..\nend\n", "dot-stuffing broke the body"
    assert all(l.endswith(b"\r\n") for l in content.splitlines(keepends=True)), "bare LF sent"


def test_message_refused_at_end_of_data_exits_1_with_the_reply(scripted, home):
    fake = scripted(data_end="554 5.7.1 Message rejected as spam by scripted server")
    r = run_send(clear_args(fake, "--to", "bob@remote.test", "--to", "carol@remote.test", "--subject", "x",
                            "--body", "x\n"), home)
    assert r.returncode == 1, show(r)
    assert b"554" in r.stderr and b"rejected as spam by scripted server" in r.stderr, show(r)
    assert b"bob@remote.test" in r.stderr and b"carol@remote.test" in r.stderr, "each refused recipient is listed"


def test_temporary_refusal_at_end_of_data_exits_75(scripted, home):
    fake = scripted(data_end="451 4.3.0 Queue file write error, try later")
    r = run_send(clear_args(fake, "--to", "bob@remote.test", "--subject", "x", "--body", "x\n"), home)
    assert r.returncode == 75, show(r)
    assert b"451" in r.stderr and b"try later" in r.stderr, show(r)


def test_one_recipient_deferred_exits_75_and_one_refused_exits_1(scripted, home):
    fake = scripted(rcpt={"busy@remote.test": "450 4.2.1 Mailbox busy, try later"})
    r = run_send(clear_args(fake, "--to", "bob@remote.test", "--to", "busy@remote.test", "--subject", "x",
                            "--body", "x\n"), home)
    assert r.returncode == 75, show(r)
    err = r.stderr.decode("utf-8", "replace")
    assert re.search(r"busy@remote\.test.*450.*Mailbox busy", err), err
    assert "bob@remote.test" not in err, err
    assert len(fake.messages) == 1, "the accepted recipient did not get the message"
    fake2 = scripted(rcpt={"busy@remote.test": "450 4.2.1 Mailbox busy, try later",
                           "gone@remote.test": "550 5.1.1 No such user here"})
    r = run_send(clear_args(fake2, "--to", "bob@remote.test", "--to", "busy@remote.test", "--cc", "gone@remote.test",
                            "--subject", "x", "--body", "x\n"), home)
    assert r.returncode == 1, "a permanent refusal outweighs a temporary one: " + show(r)
    assert b"gone@remote.test" in r.stderr and b"No such user here" in r.stderr, show(r)
    assert b"busy@remote.test" in r.stderr, show(r)


def test_message_over_the_servers_size_limit_is_not_sent(scripted, home, tmp_path):
    fake = scripted(ehlo=("250-fake.test", "250 SIZE 4000"))
    r = run_send(clear_args(fake, "--to", "bob@remote.test", "--subject", "x", "--body", "x\n",
                            "--attach", write(tmp_path / "big.bin", os.urandom(6000))), home)
    assert r.returncode == 1, show(r)
    assert b"4000" in r.stderr or b"size" in r.stderr.lower(), show(r)
    assert "DATA" not in fake.verbs() and not fake.messages, f"sent anyway: {fake.lines}"


# ---------------------------------------------------------------- profiles

def toml_str(v):
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def test_profile_supplies_server_user_password_insecure_from_and_helo(srv, home, pwfile, tmp_path):
    tok = token("profile")
    profile = write(tmp_path / "send.toml", (
        f'server = "127.0.0.1:{srv.sub_port}"\ntls = "starttls"\ninsecure = true\nuser = "{ALICE}"\n'
        f'password_file = {toml_str(pwfile)}\nfrom = "Profile Person <{ALICE}>"\n'
        f'helo = "laptop.example.test"\n').encode())
    ok(run_send(["--profile", profile, "--to", "bob@example.test", "--subject", tok, "--body", "x\n"], home))
    _, msg, _ = wait_delivered(srv, "bob", tok)
    frm = msg["From"].addresses[0]
    assert (frm.display_name, frm.addr_spec) == ("Profile Person", ALICE)
    received = re.sub(r"\s+", " ", str(msg["Received"]))
    assert received.startswith("from laptop.example.test "), f"helo from the profile not used: {received}"
    assert " with ESMTPSA id " in received


def test_profile_paths_are_relative_to_the_profile_and_no_insecure_undoes_insecure(srv, home, tmp_path):
    folder = tmp_path / "profiles"
    folder.mkdir()
    write(folder / "password", (DEFAULT_PASSWORD + "\n").encode())
    profile = write(folder / "send.toml", (
        f'server = "127.0.0.1:{srv.sub_port}"\ninsecure = true\nuser = "{ALICE}"\n'
        f'password_file = "password"\nfrom = "{ALICE}"\n').encode())
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    tok = token("relprofile")
    cwd = os.getcwd()
    os.chdir(elsewhere)   # the relative password_file must not be looked for here
    try:
        ok(run_send(["--profile", profile, "--to", "bob@example.test", "--subject", tok, "--body", "x\n"], home))
        wait_delivered(srv, "bob", tok)
        r = run_send(["--profile", profile, "--no-insecure", "--to", "bob@example.test", "--subject", tok + "-v",
                      "--body", "x\n"], home)
    finally:
        os.chdir(cwd)
    assert r.returncode == 1 and b"does not verify" in r.stderr, show(r)


def test_default_profile_in_home_and_xdg_config_home(srv, tmp_path):
    pw = write(tmp_path / "pw", (DEFAULT_PASSWORD + "\n").encode())
    text = (f'server = "127.0.0.1:{srv.sub_port}"\ninsecure = true\nuser = "{ALICE}"\n'
            f'password_file = "~/.config/ferry/password"\nfrom = "Home Profile <{ALICE}>"\n')
    # ~/.config/ferry/send.toml, with a password_file under ~
    h = tmp_path / "h"
    (h / ".config" / "ferry").mkdir(parents=True)
    write(h / ".config" / "ferry" / "send.toml", text.encode())
    write(h / ".config" / "ferry" / "password", pw.read_bytes())
    tok = token("homeprofile")
    ok(run_send(["--to", "bob@example.test", "--subject", tok, "--body", "x\n"], h))
    _, msg, _ = wait_delivered(srv, "bob", tok)
    assert msg["From"].addresses[0].display_name == "Home Profile"
    # $XDG_CONFIG_HOME/ferry/send.toml wins over ~/.config
    xdg = tmp_path / "xdg"
    (xdg / "ferry").mkdir(parents=True)
    write(xdg / "ferry" / "send.toml", text.replace("Home Profile", "XDG Profile")
          .replace("~/.config/ferry/password", str(pw)).encode())
    tok = token("xdgprofile")
    ok(run_send(["--to", "bob@example.test", "--subject", tok, "--body", "x\n"], h,
                env={"XDG_CONFIG_HOME": str(xdg)}))
    _, msg, _ = wait_delivered(srv, "bob", tok)
    assert msg["From"].addresses[0].display_name == "XDG Profile"


def test_command_line_wins_over_the_profile(srv, home, pwfile, tmp_path, closed_port):
    dead = closed_port
    profile = write(tmp_path / "send.toml", (
        f'server = "127.0.0.1:{dead}"\ninsecure = true\nuser = "bob@example.test"\n'
        f'password_file = "/nonexistent/password"\nfrom = "Wrong <bob@example.test>"\n').encode())
    tok = token("override")
    ok(run_send(["--profile", profile, "--server", f"127.0.0.1:{srv.sub_port}", "--user", ALICE,
                 "--password-file", pwfile, "--from", f"Right <{ALICE}>", "--to", "bob@example.test",
                 "--subject", tok, "--body", "x\n"], home))
    _, msg, _ = wait_delivered(srv, "bob", tok)
    assert msg["From"].addresses[0].display_name == "Right"
    # And the profile is read at all: the same command without the overrides goes to the dead port.
    r = run_send(["--profile", profile, "--to", "bob@example.test", "--subject", "x", "--body", "x\n",
                  "--password-file", pwfile], home)
    assert r.returncode == 75, show(r)


@pytest.mark.parametrize("bad,named", [
    ('server = "127.0.0.1:1"\nsmtp_port = 25\n', b"smtp_port"),
    ('tls = "sometimes"\n', b"tls"),
    ('insecure = "yes"\n', b"insecure"),
    ('server = "127.0.0.1:1"\nserver = \n', b"send.toml"),
])
def test_profile_errors_exit_2_naming_the_problem(bad, named, home, tmp_path, trap):
    profile = write(tmp_path / "send.toml", bad.encode())
    r = run_send(["--profile", profile, "--server", f"127.0.0.1:{trap.port}", "--from", ALICE,
                  "--to", "bob@example.test", "--subject", "x", "--body", "x\n"], home)
    assert r.returncode == 2, show(r)
    assert named in r.stderr, show(r)
    assert trap.connections == 0


# ---------------------------------------------------------------- --dry-run

def test_dry_run_prints_a_parseable_message_and_sends_nothing(home, pwfile, tmp_path, trap):
    data = binary_bytes(2000, 5)
    write(tmp_path / "page.html", "<p>Grüße</p>\n".encode())
    r = run_send(["--server", f"127.0.0.1:{trap.port}", "--insecure", "--user", ALICE, "--password-file", pwfile,
                  "--from", f"Ålice <{ALICE}>", "--to", "Bob <bob@example.test>", "--cc", "dave@example.test",
                  "--subject", "Dry ✓ run", "--body", "Grüße\n", "--html", tmp_path / "page.html",
                  "--header", "X-Dry: yes", "--attach", write(tmp_path / "d.pdf", data), "--dry-run"], home)
    ok(r)
    assert trap.connections == 0, "--dry-run connected to the server"
    out = r.stdout.replace(b"\r\n", b"\n")
    msg = email.message_from_bytes(out, policy=POLICY)
    assert msg["Subject"] == "Dry ✓ run"
    assert msg["From"].addresses[0].display_name == "Ålice"
    assert msg["To"].addresses[0].addr_spec == "bob@example.test"
    assert msg["Cc"].addresses[0].addr_spec == "dave@example.test"
    assert msg["X-Dry"] == "yes"
    assert msg["Date"].datetime is not None and msg["Message-ID"]
    assert msg.get_content_type() == "multipart/mixed"
    assert parts_types(msg) == ["multipart/alternative", "application/pdf"]
    [att] = list(msg.iter_attachments())
    assert att.get_payload(decode=True) == data
    alt = next(msg.iter_parts())
    assert [text_of(p) for p in alt.iter_parts()] == ["Grüße\n", "<p>Grüße</p>\n"]


def test_dry_run_needs_no_server_nor_password(home):
    r = run_send(["--from", ALICE, "--to", "bob@example.test", "--subject", "x", "--body", "y", "--dry-run"], home)
    ok(r)
    msg = email.message_from_bytes(r.stdout, policy=POLICY)
    assert msg["Subject"] == "x" and text_of(msg).rstrip("\n") == "y"
