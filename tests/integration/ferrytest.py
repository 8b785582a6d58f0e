"""Helpers for Ferry's black-box integration tests.

Everything here talks to a real `ferry serve` process over 127.0.0.1 only.
Each server gets its own temp directory, config file, data_dir and free port,
so test files can run in parallel (ctest -j).
"""

import json
import os
import re
import resource
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
HOSTNAME = "mx.example.test"
DOMAIN = "example.test"
DEFAULT_PASSWORD = "correct horse battery staple"

QUEUED_RE = re.compile(r"^Ok: queued as ([0-9A-Z]+)$")

# A report of AddressSanitizer, LeakSanitizer or UndefinedBehaviorSanitizer (`make sanitize`), or a failed
# libstdc++ assertion, in a ferry process's output.
SANITIZER_RE = re.compile(r"ERROR: \w*Sanitizer|runtime error:|SUMMARY: UndefinedBehaviorSanitizer"
                          r"|Sanitizer CHECK failed|Assertion '.*' failed")
EXCERPT_CHARS = 6000


def sanitizer_excerpt(text):
    """The first sanitizer report in text, from the start of its line; "" when there is none."""
    m = SANITIZER_RE.search(text)
    if not m:
        return ""
    first = text.rfind("\n", 0, m.start()) + 1
    return text[first:first + EXCERPT_CHARS]


def ferry_bin():
    path = os.environ.get("FERRY_BIN") or str(REPO / "build" / "ferry")
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        raise AssertionError(f"ferry binary not found or not executable: {path} (set FERRY_BIN)")
    return path


def client_context(**settings):
    """A TLS client context that accepts any certificate (Ferry's self-signed one); settings are attributes
    such as maximum_version."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    for k, v in settings.items():
        setattr(ctx, k, v)
    return ctx


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- TOML writer

def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def toml_key(k):
    if re.fullmatch(r"[A-Za-z0-9_-]+", k):
        return k
    return json.dumps(k, ensure_ascii=False)


def toml_section(name, values):
    lines = [f"[{name}]"]
    for k, v in values.items():
        lines.append(f"{toml_key(k)} = {toml_value(v)}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- raw SMTP client

class Reply:
    """One SMTP reply: code, and the text of each line (after `NNN-` / `NNN `)."""

    def __init__(self, code, lines, raw):
        self.code = code
        self.lines = lines
        self.raw = raw

    @property
    def text(self):
        return self.lines[0] if self.lines else ""

    @property
    def enhanced(self):
        m = re.match(r"^([245]\.\d{1,3}\.\d{1,3})(?: |$)", self.text)
        return m.group(1) if m else None

    @property
    def queue_id(self):
        """Queue id from `250 2.0.0 Ok: queued as <ID>`, or None."""
        m = re.match(r"^2\.0\.0 (.*)$", self.text)
        if not m:
            return None
        q = QUEUED_RE.match(m.group(1))
        return q.group(1) if q else None

    def is_(self, code, enhanced=None):
        if self.code != code:
            return False
        if enhanced is not None and self.enhanced != enhanced:
            return False
        return True

    def __repr__(self):
        return "Reply(" + " | ".join(l.decode("utf-8", "replace") for l in self.raw) + ")"

    __str__ = __repr__


class SMTPClosed(AssertionError):
    pass


class RawSMTP:
    """A byte-exact SMTP client on a plain socket."""

    def __init__(self, port, timeout=10.0, read_greeting=True, source=None, host="127.0.0.1"):
        """source: the client's own address (any 127.x.y.z is this machine's), so tests of per-client policy
        can be told apart; default: the kernel's choice."""
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                            source_address=(source, 0) if source else None)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.greeting = self.reply() if read_greeting else None

    # -- low level
    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise SMTPClosed(f"connection closed by server (buffer: {self.buf!r})")
        self.buf += chunk

    def read_line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def reply(self, timeout=None):
        """Read one (possibly multi-line) reply."""
        old = self.sock.gettimeout()
        if timeout is not None:
            self.sock.settimeout(timeout)
        try:
            raw = []
            texts = []
            code = None
            while True:
                line = self.read_line()
                raw.append(line)
                m = re.match(rb"^(\d{3})([ -])(.*)$", line) or re.match(rb"^(\d{3})()()$", line)
                if not m:
                    raise AssertionError(f"malformed reply line {line!r} (so far {raw!r})")
                c = int(m.group(1))
                if code is None:
                    code = c
                elif c != code:
                    raise AssertionError(f"reply code changed inside multi-line reply: {raw!r}")
                texts.append(m.group(3).decode("utf-8", "replace"))
                if m.group(2) != b"-":
                    return Reply(code, texts, raw)
        finally:
            self.sock.settimeout(old)

    def replies(self, n, timeout=None):
        return [self.reply(timeout=timeout) for _ in range(n)]

    def cmd(self, line, timeout=None):
        if isinstance(line, str):
            line = line.encode("utf-8")
        self.send(line + b"\r\n")
        return self.reply(timeout=timeout)

    def ehlo(self, name="client.test"):
        r = self.cmd(f"EHLO {name}")
        assert r.code == 250, r
        return r

    def helo(self, name="client.test"):
        r = self.cmd(f"HELO {name}")
        assert r.code == 250, r
        return r

    def expect(self, line, code, enhanced=None):
        r = self.cmd(line)
        assert r.is_(code, enhanced), f"{line!r}: expected {code} {enhanced or ''}, got {r}"
        return r

    def data(self, content, mail_from=None, rcpts=None):
        """DATA with dot-stuffing; returns the final reply (does not assert)."""
        if mail_from is not None:
            self.expect(f"MAIL FROM:<{mail_from}>", 250, "2.1.0")
        for r in rcpts or ():
            self.expect(f"RCPT TO:<{r}>", 250, "2.1.5")
        r = self.cmd("DATA")
        assert r.code == 354, r
        self.send(dot_stuff(content) + b".\r\n")
        return self.reply()

    def send_message(self, mail_from, rcpts, content):
        """A whole transaction; asserts 250 and returns the queue id."""
        r = self.data(content, mail_from=mail_from, rcpts=rcpts)
        assert r.is_(250, "2.0.0") and r.queue_id, f"end of data: expected 250 2.0.0 Ok: queued as ID, got {r}"
        return r.queue_id

    def quit(self):
        try:
            r = self.cmd("QUIT")
        finally:
            self.close()
        return r

    def wait_closed(self, timeout=3.0):
        """True if the server closes the connection within timeout (any unread data is
        returned as the second element)."""
        deadline = time.monotonic() + timeout
        extra = self.buf
        self.buf = b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False, extra
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False, extra
            except (ConnectionResetError, BrokenPipeError):
                return True, extra
            if not chunk:
                return True, extra
            extra += chunk

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def dot_stuff(content):
    if isinstance(content, str):
        content = content.encode("utf-8")
    assert content == b"" or content.endswith(b"\r\n"), "content must end with CRLF"
    out = []
    for line in content.split(b"\r\n")[:-1] if content else []:
        if line.startswith(b"."):
            line = b"." + line
        out.append(line + b"\r\n")
    return b"".join(out)


def make_message(subject="test", body="hello\r\n", sender="sender@client.test", to="alice@example.test",
                 extra_headers=""):
    text = (f"From: <{sender}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n{extra_headers}"
            f"Message-ID: <{subject.replace(' ', '.')}.{time.monotonic_ns()}@client.test>\r\n\r\n{body}")
    return text.encode("utf-8")


# ---------------------------------------------------------------- Maildir

def maildir_new(data_dir, domain, localpart):
    return Path(data_dir) / "mail" / domain / localpart / "new"


def maildir_files(data_dir, domain, localpart):
    d = maildir_new(data_dir, domain, localpart)
    try:
        return sorted(p for p in d.iterdir() if p.is_file() and not p.name.startswith("."))
    except (FileNotFoundError, NotADirectoryError):
        return []


def wait_for_maildir(data_dir, domain, localpart, count=1, timeout=10.0, log=None):
    """Poll data_dir/mail/<domain>/<localpart>/new/ until at least `count` files exist."""
    deadline = time.monotonic() + timeout
    while True:
        files = maildir_files(data_dir, domain, localpart)
        if len(files) >= count:
            return files
        if time.monotonic() > deadline:
            msg = f"expected {count} message(s) in {maildir_new(data_dir, domain, localpart)}, found {len(files)}"
            if log is not None:
                msg += "\n--- server log (tail) ---\n" + log()[-4000:]
            raise AssertionError(msg)
        time.sleep(0.05)


def parse_delivered(data):
    """Split a delivered file into (return_path, delivered_to, received_unfolded, received_raw, rest)."""
    lines = data.split(b"\r\n")
    assert lines[0].startswith(b"Return-Path: "), f"first line is not Return-Path: {data[:200]!r}"
    assert lines[1].startswith(b"Delivered-To: "), f"second line is not Delivered-To: {data[:300]!r}"
    assert lines[2].startswith(b"Received: "), f"third header is not Received: {data[:400]!r}"
    i = 3
    while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
        i += 1
    received_raw = b"\r\n".join(lines[2:i]) + b"\r\n"
    received = re.sub(rb"\r\n[ \t]+", b" ", received_raw.rstrip(b"\r\n")).decode("utf-8", "replace")
    rest = b"\r\n".join(lines[i:])
    rp = lines[0][len(b"Return-Path: "):].decode("utf-8", "replace")
    dt = lines[1][len(b"Delivered-To: "):].decode("utf-8", "replace")
    return rp, dt, received, received_raw, rest


def delivered_to_matches(value, addr):
    return value.lower() in (addr.lower(), f"<{addr.lower()}>")


def header_value(data, name):
    """Value of the first header `name` in a delivered file (unfolded), or None."""
    head = data.split(b"\r\n\r\n", 1)[0]
    head = re.sub(rb"\r\n[ \t]+", b" ", head)
    for line in head.split(b"\r\n"):
        if line.lower().startswith(name.lower().encode() + b":"):
            return line.split(b":", 1)[1].strip().decode("utf-8", "replace")
    return None


def files_under(path):
    """All non-directory entries below path (recursively); [] if path does not exist."""
    p = Path(path)
    if not p.exists():
        return []
    return sorted(x for x in p.rglob("*") if not x.is_dir())


# ---------------------------------------------------------------- the server

class Ferry:
    # Every server started in this test process, however it was made (the `ferry` fixture, a module fixture, a
    # test): conftest.py reads their logs for sanitizer reports and judges their exit status.
    started = []

    def __init__(self, base, *, limits=None, queue=None, aliases=None, domains=None, extra_toml="",
                 users=("alice", "bob"), hostname=HOSTNAME, cwd=None, top_toml="", run_as_root=None, port=None,
                 listen_toml="", nofile=None):
        self.base = Path(base)
        self.base.mkdir(parents=True, exist_ok=True)
        self.config = self.base / "ferry.toml"
        self.data_dir = self.base / "data"
        self.log_path = self.base / "ferry.log"
        self.port = port or free_port()
        self.hostname = hostname
        self.top_toml = top_toml
        # Tests run as whoever runs ctest; as root (CI) the server is told it may stay root, since pytest's
        # temp folders are closed to other users. test_privileges.py covers the switch to `user`.
        self.run_as_root = os.geteuid() == 0 if run_as_root is None else run_as_root
        self.limits = dict(limits or {})
        self.queue = dict(queue or {})
        self.aliases = dict(aliases or {})
        self.domains = list(domains or [DOMAIN])
        self.extra_toml = extra_toml
        self.listen_toml = listen_toml   # more keys of the first (mx) [[listen]] table
        self.nofile = nofile             # (soft, hard) RLIMIT_NOFILE of the server process; None: inherited
        self.cwd = Path(cwd) if cwd else self.base
        self.proc = None
        self.write_config()
        # The data dir itself is created up front; its contents are the server's business.
        self.data_dir.mkdir(exist_ok=True)
        for u in users:
            self.add_user(u if "@" in u else f"{u}@{DOMAIN}")

    # -- config
    def config_text(self):
        parts = [
            f"hostname = {toml_value(self.hostname)}\n",
            'data_dir = "data"\n',
            "run_as_root = true\n" if self.run_as_root else "",
            self.top_toml,
            "\n[[listen]]\n",
            f'address = "127.0.0.1:{self.port}"\n',
            'role = "mx"\n',
            self.listen_toml + "\n",
            toml_section("domains", {"local": self.domains}),
        ]
        if self.limits:
            parts.append("\n" + toml_section("limits", self.limits))
        if self.queue:
            parts.append("\n" + toml_section("queue", self.queue))
        if self.aliases:
            parts.append("\n" + toml_section("aliases", self.aliases))
        if self.extra_toml:
            parts.append("\n" + self.extra_toml)
        if "[dns]" not in self.extra_toml and "[dns]" not in self.top_toml:
            # Tests talk to 127.0.0.1 only: a server relaying without a test DNS server of its own asks a closed
            # loopback port (lookups fail for now: mail is deferred), never the machine's resolvers.
            parts.append('\n[dns]\nresolver = "127.0.0.1:9"\ntimeout = "1s"\n')
        if "[mailauth]" not in self.extra_toml and "[mailauth]" not in self.top_toml:
            # Mail from 127.0.0.1 has no SPF, DKIM or DMARC to check, and every check would wait for the closed DNS
            # port above: the message authentication tests (test_mailauth_*.py) turn the checks on with a DNS server.
            parts.append('\n[mailauth]\nverify = false\n')
        return "".join(parts)

    def write_config(self):
        self.config.write_text(self.config_text(), encoding="utf-8")

    # -- command line
    def cli(self, *args, input=None, timeout=30):
        """`ferry ARGS --config ...`; a sanitizer report on stderr fails the test whatever the exit status."""
        if isinstance(input, str):
            input = input.encode("utf-8")
        r = subprocess.run([ferry_bin(), *args, "--config", str(self.config)], input=input,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, cwd=self.cwd)
        report = sanitizer_excerpt(r.stderr.decode("utf-8", errors="replace"))
        if report:
            raise AssertionError(f"sanitizer report from `ferry {' '.join(map(str, args))}`:\n{report}")
        return r

    def add_user(self, addr, pw=DEFAULT_PASSWORD, check=True):
        r = self.cli("user", "add", addr, input=pw + "\n")
        if check:
            assert r.returncode == 0, f"ferry user add {addr} exited {r.returncode}: {r.stderr.decode(errors='replace')}"
        return r

    # -- process
    @property
    def log(self):
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout=10.0):
        assert not self.running()
        if not any(s is self for s in Ferry.started):
            Ferry.started.append(self)
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen([ferry_bin(), "serve", "--config", str(self.config)],
                                         stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                         cwd=self.cwd, preexec_fn=self._preexec())
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"ferry serve exited with {self.proc.returncode} during start-up\n"
                                     f"--- log ---\n{self.log[-4000:]}")
            try:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=0.5)
            except OSError:
                if time.monotonic() > deadline:
                    self.kill9()
                    raise AssertionError(f"ferry serve did not accept connections on port {self.port} "
                                         f"within {timeout}s\n--- log ---\n{self.log[-4000:]}")
                time.sleep(0.05)
                continue
            # A polite probe session, so it is over before the test starts counting connections.
            try:
                s.settimeout(2.0)
                s.recv(4096)
                s.sendall(b"QUIT\r\n")
                while s.recv(4096):
                    pass
            except OSError:
                pass
            finally:
                s.close()
            return self

    def _preexec(self):
        """What runs in the child before exec: the descriptor limit, when the test sets one."""
        if self.nofile is None:
            return None
        soft, hard = self.nofile
        return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    def stop(self, timeout=5.0):
        """SIGTERM; returns the exit status (SIGKILL after timeout, then returns None)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        return self.proc.returncode

    def kill9(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def hup(self):
        self.proc.send_signal(signal.SIGHUP)

    def restart(self):
        if self.running():
            self.stop()
        return self.start()

    # -- conveniences
    def connect(self, timeout=10.0, source=None):
        c = RawSMTP(self.port, timeout=timeout, source=source)
        assert c.greeting.code == 220, f"greeting: {c.greeting}"
        return c

    def maildir(self, localpart, domain=DOMAIN):
        return Path(self.data_dir) / "mail" / domain / localpart

    def mail_files(self, localpart, domain=DOMAIN):
        return maildir_files(self.data_dir, domain, localpart)

    def rcpt_reply(self, addr):
        """The reply to RCPT TO:<addr> in a fresh session (MAIL FROM a remote sender)."""
        with self.connect() as c:
            c.ehlo()
            c.expect("MAIL FROM:<x@client.test>", 250, "2.1.0")
            r = c.cmd(f"RCPT TO:<{addr}>")
            c.quit()
        return r

    def wait_mail(self, localpart, count=1, timeout=10.0, domain=DOMAIN):
        return wait_for_maildir(self.data_dir, domain, localpart, count=count, timeout=timeout,
                                log=lambda: self.log)

    def send(self, rcpts, content=None, mail_from="sender@client.test", subject="test"):
        """One message on a fresh connection; returns the queue id."""
        if isinstance(rcpts, str):
            rcpts = [rcpts]
        if content is None:
            content = make_message(subject=subject, to=rcpts[0], sender=mail_from or "mailer-daemon@client.test")
        with self.connect() as c:
            c.ehlo()
            qid = c.send_message(mail_from, rcpts, content)
            c.quit()
        return qid

    def wait_log(self, pattern, timeout=5.0):
        """Poll the log until a line matches the regex; returns the line."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log.splitlines():
                if rx.search(line):
                    return line
            if time.monotonic() > deadline:
                raise AssertionError(f"no log line matches {pattern!r}\n--- log (tail) ---\n{self.log[-4000:]}")
            time.sleep(0.05)

    # -- queue CLI (outbound delivery): talks to the running server over data_dir/control.sock
    def queue_cli(self, *args, timeout=30):
        """`ferry queue ARGS --config ...` (list [--json], show ID, flush [ID], delete ID); the CompletedProcess."""
        return self.cli("queue", *args, timeout=timeout)

    def queue_list(self):
        """`ferry queue list --json`, parsed: [{"id", "arrival", "age", "sender", "size", "recipients": [{"address",
        "status", "attempts", "last_error", "next_attempt"}]}] (recipients not yet final)."""
        r = self.queue_cli("list", "--json")
        out = r.stdout.decode("utf-8", errors="replace")
        assert r.returncode == 0, \
            f"ferry queue list --json exited {r.returncode}: {r.stderr.decode(errors='replace')}{out}"
        try:
            return json.loads(out)
        except ValueError as e:
            raise AssertionError(f"ferry queue list --json printed no JSON ({e}): {out[:2000]!r}") from None

    def queue_flush(self, queue_id=None):
        """`ferry queue flush [ID]`: retry now; asserts exit 0."""
        r = self.queue_cli("flush", *([queue_id] if queue_id else []))
        assert r.returncode == 0, f"ferry queue flush exited {r.returncode}: {r.stderr.decode(errors='replace')}"
        return r

    def wait_queue(self, predicate, timeout=15.0, what="queue condition"):
        """Poll `ferry queue list --json` until predicate(entries) is true; returns the entries."""
        deadline = time.monotonic() + timeout
        while True:
            entries = self.queue_list()
            if predicate(entries):
                return entries
            if time.monotonic() > deadline:
                raise AssertionError(f"ferry queue list: timed out after {timeout}s waiting for {what}; last:\n"
                                     f"{json.dumps(entries, indent=1)[:4000]}\n--- log (tail) ---\n{self.log[-4000:]}")
            time.sleep(0.1)
