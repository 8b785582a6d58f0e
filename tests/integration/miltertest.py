"""Real milters for Ferry's filter tests, each started by the test on a free 127.0.0.1 port, with its config and
data in the test's temp dir, and stopped by PID (SIGTERM, then SIGKILL).

    with PyMilter(tmp_path / "m1") as m:        # milter_fixture.py (python3-milter): every reply and change
        ... [[milter]] address = m.address ...    # "inet:127.0.0.1:PORT", Ferry's form (unix=True: "unix:PATH")
        m.wait_events("eom")                      # the callbacks it saw, with their macros (JSON lines)

    with BadMilter(mode="garbage", at="E") as b:  # a raw-socket milter that breaks the protocol at one command
    with OpenDkim(tmp_path / "dkim", dns) as o:   # opendkim in verify mode, asking the test DNS server (dnstest)
    with Spamd(tmp_path / "sa") as sd, SpamassMilter(tmp_path / "sam", sd) as sm:   # GTUBE is rejected

`milter_toml(...)` writes a [[milter]] table for Ferry's extra_toml. `transact()` runs one SMTP transaction with
smtplib and returns every reply; `bdat()` sends a message in BDAT chunks; `header_fields()` splits a delivered
file into its raw header fields for byte-exact checks.

Nothing here needs root (as root, spamd's children run as nobody), and nothing talks to anything but 127.0.0.1
(opendkim's resolver and spamd's network tests included). test_milter_fixtures.py checks these fixtures against
Postfix.
"""

import json
import re
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from ferrytest import free_port, toml_value

HERE = Path(__file__).resolve().parent
PYTHON = "/usr/bin/python3"


def milter_toml(address, name=None, **settings):
    """One [[milter]] table: address ("inet:127.0.0.1:P"), name, default_action, *_timeout, ..."""
    lines = ["[[milter]]"]
    if name is not None:
        lines.append(f"name = {toml_value(name)}")
    lines.append(f"address = {toml_value(address)}")
    for k, v in settings.items():
        lines.append(f"{k} = {toml_value(v)}")
    return "\n".join(lines) + "\n"


def wait_port(port, proc=None, timeout=20.0, what="process", log=None):
    """Polls until 127.0.0.1:port accepts a connection (closed at once). Fails early when proc exits."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode} during start-up\n{log() if log else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} did not listen on 127.0.0.1:{port} within {timeout}s\n"
                                     f"{log() if log else ''}") from None
            time.sleep(0.05)


def _die_with_parent():
    """In the child before exec: SIGTERM when the process that started it dies (a test run killed by a timeout never
    reaches stop(), and the daemon, in a session of its own, would run on). Linux prctl(PR_SET_PDEATHSIG), which
    follows the starting thread: start daemons from pytest's main thread."""
    import ctypes
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class Daemon:
    """A foreground process of a test, stopped by its PID. Subclasses set self.cmd, self.port, self.log_path."""

    name = "daemon"
    start_timeout = 20.0
    # libmilter's shutdown waits about 5 s for its idle worker threads once it has served a connection: a milter
    # keeps nothing worth waiting for, so it gets SIGKILL sooner.
    stop_timeout = 5.0

    def __init__(self, base):
        self.base = Path(base)
        self.base.mkdir(parents=True, exist_ok=True)
        self.proc = None
        self.log_path = self.base / f"{self.name}.out"

    @property
    def address(self):
        return f"inet:127.0.0.1:{self.port}"

    def output(self):
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except FileNotFoundError:
            return ""

    def start(self):
        with open(self.log_path, "ab") as out:
            # A session of its own, so a ^C of pytest does not reach it first; it is stopped by PID below.
            self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         cwd=self.base, start_new_session=True, env=self.env(),
                                         preexec_fn=_die_with_parent)
        wait_port(self.port, self.proc, self.start_timeout, self.name,
                  log=lambda: f"--- {self.log_path} ---\n{self.output()}")
        return self

    def env(self):
        return dict(os.environ)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=None):
        """SIGTERM to the PID, SIGKILL after timeout (default: stop_timeout); returns the exit status."""
        timeout = self.stop_timeout if timeout is None else timeout
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# ---------------------------------------------------------------- python3-milter fixture

class PyMilter(Daemon):
    """milter_fixture.py: records every callback with its macros; replies and changes as the message asks (see
    that file for the tokens and the X-Test-Milter header). always: {"connect": "reject", ...}."""

    name = "pymilter"
    stop_timeout = 1.0

    def __init__(self, base, always=None, milter_name="testmilter", port=None, unix=False, noreply=(),
                 nocallback=()):
        super().__init__(base)
        self.events_path = self.base / "events.jsonl"
        # unix: a unix socket in the temp dir (Ferry's address "unix:PATH") instead of a loopback port.
        self.unix_path = self.base / "milter.sock" if unix else None
        self.port = None if unix else (port or free_port())
        where = ["--unix", str(self.unix_path)] if unix else ["--port", str(self.port)]
        self.cmd = [PYTHON, str(HERE / "milter_fixture.py"), *where, "--log", str(self.events_path),
                    "--name", milter_name]
        for stage, action in (always or {}).items():
            self.cmd += ["--always", f"{stage}={action}"]
        # Callbacks (connect, hello, envfrom, envrcpt, data, header, eoh, body) negotiated without reply / away.
        if noreply:
            self.cmd += ["--noreply", ",".join(noreply)]
        if nocallback:
            self.cmd += ["--nocallback", ",".join(nocallback)]

    @property
    def address(self):
        return f"unix:{self.unix_path}" if self.unix_path else f"inet:127.0.0.1:{self.port}"

    def start(self):
        if not self.unix_path:
            return super().start()
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         cwd=self.base, start_new_session=True, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"milter fixture exited with {self.proc.returncode}\n{self.output()}")
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.connect(str(self.unix_path))
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"milter fixture: no {self.unix_path}\n{self.output()}") from None
                time.sleep(0.05)

    def events(self, cb=None):
        """Every callback recorded so far ({conn, cb, args, macros, t}), in order; only `cb`'s when given."""
        try:
            lines = self.events_path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        out = [json.loads(line) for line in lines if line.strip()]
        return [e for e in out if cb is None or e["cb"] == cb]

    def mark(self):
        """A position in the event log: events(since=mark) are the ones recorded after it."""
        return len(self.events())

    def since(self, mark, cb=None):
        return [e for e in self.events()[mark:] if cb is None or e["cb"] == cb]

    def wait_events(self, cb, count=1, since=0, timeout=10.0):
        """Polls until at least `count` callbacks `cb` were recorded after `since`; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.since(since, cb)
            if len(got) >= count:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"milter fixture: expected {count} {cb!r} callback(s), got {len(got)}; "
                                     f"events: {json.dumps(self.since(since))[-3000:]}\n{self.output()}")
            time.sleep(0.05)


def test_milter_header(*items):
    """The X-Test-Milter header line (CRLF) for a message: tokens (str) and modifications (lists)."""
    return "X-Test-Milter: " + json.dumps(list(items)) + "\r\n"


test_milter_header.__test__ = False   # not a pytest test


# ---------------------------------------------------------------- a milter that breaks the protocol

# Milter protocol commands (MTA -> filter) and replies (filter -> MTA), Sendmail's libmilter/mfdef.h.
SMFIC_OPTNEG, SMFIC_MACRO, SMFIC_QUIT, SMFIC_QUIT_NC, SMFIC_ABORT = b"O", b"D", b"Q", b"K", b"A"
NO_REPLY = (SMFIC_MACRO, SMFIC_ABORT, SMFIC_QUIT, SMFIC_QUIT_NC)
SMFIR_CONTINUE = b"c"
MILTER_VERSION = 6
ALL_ACTIONS = 0x1FF


class BadMilter:
    """A milter on a raw socket (no library) that speaks the protocol correctly (option negotiation, `c` to every
    command) until the command `at` (one letter: O negotiation, C connect, H helo, M mail, R rcpt, T data,
    L header, N end of headers, B body, E end of message), where it does `mode`:

        badlen    a frame whose length field is 0 (no command byte)
        hugelen   a frame announcing 0xFFFFFFF0 bytes, then nothing
        unknown   a well-formed reply with an unknown code ('Z')
        garbage   bytes that are no frame at all, then close
        close     close the connection without answering
        hang      never answer (the connection stays open)
        slowN     answer `c` after N seconds (e.g. slow3)
        badneg    (at O) negotiate version 1 with no actions

    mode None: never misbehave (a correct milter). `times`: misbehave this many times, then behave (None: always), so a test can show the next session works.
    Records the commands it got per connection in `commands` (list of lists of letters)."""

    def __init__(self, mode="garbage", at="E", times=None, port=None):
        self.mode = mode
        self.at = at.encode()
        self.times = times
        self.port = port or free_port()
        self.commands = []
        self.lock = threading.Lock()
        self.sock = None
        self.threads = []
        self.conns = []
        self.stopping = False

    @property
    def address(self):
        return f"inet:127.0.0.1:{self.port}"

    def start(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(16)
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self.threads.append(t)
        return self

    def stop(self):
        self.stopping = True
        # shutdown() wakes the thread blocked in accept(); a bare close() would leave it blocked on the old socket
        # and, once the descriptor number is reused, accepting on someone else's.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        for t in self.threads[:1]:
            t.join(timeout=2)
        self.sock.close()
        for c in list(self.conns):
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()
        for t in self.threads:
            t.join(timeout=2)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _accept(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self.stopping:
                conn.close()
                return
            with self.lock:
                self.conns.append(conn)
                index = len(self.commands)
                self.commands.append([])
            t = threading.Thread(target=self._serve, args=(conn, index), daemon=True)
            t.start()
            self.threads.append(t)

    @staticmethod
    def _read(conn, n):
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    @staticmethod
    def frame(cmd, payload=b""):
        return struct.pack(">I", len(cmd) + len(payload)) + cmd + payload

    def _serve(self, conn, index):
        try:
            while True:
                (length,) = struct.unpack(">I", self._read(conn, 4))
                body = self._read(conn, length)
                cmd, payload = body[:1], body[1:]
                with self.lock:
                    self.commands[index].append(cmd.decode("latin-1"))
                if cmd == self.at and self._take_turn():
                    if not self._misbehave(conn, cmd, payload):
                        return
                    continue
                if cmd == SMFIC_OPTNEG:
                    # Offer what the MTA offered: version 6, every action, no protocol steps left out.
                    _, actions, _ = struct.unpack(">III", payload[:12])
                    conn.sendall(self.frame(b"O", struct.pack(">III", MILTER_VERSION, actions & ALL_ACTIONS, 0)))
                elif cmd in (SMFIC_QUIT, SMFIC_QUIT_NC):
                    if cmd == SMFIC_QUIT:
                        return
                elif cmd not in NO_REPLY:
                    conn.sendall(self.frame(SMFIR_CONTINUE))
        except (EOFError, OSError):
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def _take_turn(self):
        with self.lock:
            if self.mode is None:
                return False
            if self.times is None:
                return True
            if self.times > 0:
                self.times -= 1
                return True
            return False

    def _misbehave(self, conn, cmd, payload):
        """Does self.mode; True when the connection goes on afterwards."""
        m = self.mode
        if m == "badlen":
            conn.sendall(struct.pack(">I", 0))
        elif m == "hugelen":
            conn.sendall(struct.pack(">I", 0xFFFFFFF0) + b"c")
        elif m == "unknown":
            conn.sendall(self.frame(b"Z", b"what"))
        elif m == "garbage":
            conn.sendall(b"HTTP/1.0 200 OK\r\n\r\nthis is no milter\r\n")
            return False
        elif m == "close":
            return False
        elif m == "hang":
            while not self.stopping:
                time.sleep(0.1)
            return False
        elif m.startswith("slow"):
            time.sleep(float(m[4:]))
            if cmd == SMFIC_OPTNEG:
                _, actions, _ = struct.unpack(">III", payload[:12])
                conn.sendall(self.frame(b"O", struct.pack(">III", MILTER_VERSION, actions & ALL_ACTIONS, 0)))
            else:
                conn.sendall(self.frame(SMFIR_CONTINUE))
            return True
        elif m == "badneg":
            conn.sendall(self.frame(b"O", struct.pack(">III", 1, 0, 0)))
        else:
            raise ValueError(f"unknown BadMilter mode {m!r}")
        # After a broken frame the MTA should give up on us: wait for it to close (never answer again).
        conn.settimeout(30)
        try:
            while conn.recv(4096):
                pass
        except OSError:
            pass
        return False


# ---------------------------------------------------------------- opendkim (verify mode)

class OpenDkim(Daemon):
    """`opendkim -f -x CONF` in verify mode on 127.0.0.1:PORT; it asks the test DNS server `dns` (dnstest.DnsServer)
    for keys through libunbound (ResolverConfiguration: forward everything to dns, no DNSSEC). Its
    Authentication-Results carry authserv_id."""

    name = "opendkim"
    stop_timeout = 1.0

    def __init__(self, base, dns, authserv_id="mx.example.test", port=None, extra_conf=""):
        super().__init__(base)
        self.port = port or free_port()
        self.authserv_id = authserv_id
        unbound = self.base / "unbound.conf"
        host, dport = dns.address.rsplit(":", 1)
        # unbound answers NXDOMAIN by itself for the special-use names (RFC 6761) the tests use: ask instead.
        local_zones = "".join(f'  local-zone: "{z}." nodefault\n' for z in ("test", "invalid", "example"))
        unbound.write_text(
            "server:\n"
            "  do-not-query-localhost: no\n"   # the test DNS server is on 127.0.0.1
            '  module-config: "iterator"\n'   # no DNSSEC validation: the test zone is unsigned
            "  qname-minimisation: no\n"
            f"{local_zones}"
            "forward-zone:\n"
            '  name: "."\n'
            f"  forward-addr: {host}@{dport}\n")
        self.conf = self.base / "opendkim.conf"
        self.pid_file = self.base / "opendkim.pid"
        self.conf.write_text(
            f"Socket inet:{self.port}@127.0.0.1\n"
            "Mode v\n"
            "Background no\n"
            f"PidFile {self.pid_file}\n"
            f"AuthservID {authserv_id}\n"
            f"ResolverConfiguration {unbound}\n"
            "DNSTimeout 5\n"
            "Syslog no\n"
            "AlwaysAddARHeader yes\n"
            # Mail from 127.0.0.1 is verified, not taken for the filter's own users to sign.
            "InternalHosts 192.0.2.255\n"
            f"TemporaryDirectory {self.base}\n"
            + extra_conf)
        self.cmd = ["/usr/sbin/opendkim", "-f", "-x", str(self.conf)]


# ---------------------------------------------------------------- spamd + spamass-milter

class Spamd(Daemon):
    """SpamAssassin's spamd on 127.0.0.1:PORT with local tests only (-L: no DNS, no network tests), no user
    preferences, its home and pid file in the temp dir. GTUBE scores 1000."""

    name = "spamd"
    start_timeout = 60.0   # it compiles the rule set first

    def __init__(self, base, port=None):
        super().__init__(base)
        self.port = port or free_port()
        self.shared = None
        if os.geteuid() == 0:
            # spamd will not serve as root: it runs its children as `nobody`, who cannot reach into the test's temp
            # dir (pytest's is 0700), so its config and home go to a folder of their own that nobody may read,
            # removed by stop().
            self.shared = Path(tempfile.mkdtemp(prefix="ferry-spamd-"))
            self.shared.chmod(0o755)
        top = self.shared or self.base
        site = top / "site"
        site.mkdir(exist_ok=True)
        # The Debian rules stay where they are (/usr/share/spamassassin); the site config is the system's plugin
        # list (*.pre: without them nothing can scan) and a local.cf that asks nothing of the network.
        for pre in Path("/etc/spamassassin").glob("*.pre"):
            shutil.copy(pre, site / pre.name)
        (site / "local.cf").write_text("use_bayes 0\nbayes_auto_learn 0\nskip_rbl_checks 1\ndns_available no\n")
        home = top / "home"
        home.mkdir(exist_ok=True)
        self.home = home
        self.cmd = ["/usr/sbin/spamd", "-p", str(self.port), "-i", "127.0.0.1", "-A", "127.0.0.1", "-L",
                    f"--siteconfigpath={site}", "-x", f"--pidfile={self.base / 'spamd.pid'}",
                    "-s", "stderr", "--max-children=2", "--min-children=1", f"--helper-home-dir={home}"]
        if self.shared:
            self.cmd += ["-u", "nobody"]
            for d in (site, home):
                d.chmod(0o755)
            for f in site.iterdir():
                f.chmod(0o644)

    def env(self):
        e = dict(os.environ)
        e["HOME"] = str(self.home)
        return e

    def stop(self, timeout=None):
        rc = super().stop(timeout)
        if self.shared:
            shutil.rmtree(self.shared, ignore_errors=True)
        return rc


class SpamassMilter(Daemon):
    """spamass-milter on 127.0.0.1:PORT, asking `spamd` (a Spamd) through spamc; rejects at score >= reject_at."""

    name = "spamass-milter"
    stop_timeout = 1.0

    def __init__(self, base, spamd, reject_at=15, port=None):
        super().__init__(base)
        self.port = port or free_port()
        self.cmd = ["/usr/sbin/spamass-milter", "-p", f"inet:{self.port}@127.0.0.1", "-r", str(reject_at),
                    "-P", str(self.base / "spamass-milter.pid"), "--", "-d", "127.0.0.1", "-p", str(spamd.port)]


# ---------------------------------------------------------------- SMTP transactions and delivered files

def transact(port, sender, rcpts, content, helo="client.test", login=None, timeout=15.0, starttls=False):
    """One SMTP transaction with smtplib on 127.0.0.1:port; stops at the first refusal. Returns a dict of the
    replies as (code, text) tuples: greeting, ehlo, mail, rcpt (list, one per recipient), data (to the DATA
    command), end (after the final dot), queue_id (from "queued as ID"); a step not reached is missing; closed
    (the error text) when the server closed the connection.
    login: (user, password) for AUTH PLAIN first (a plaintext_auth submission listener). starttls: STARTTLS (any
    certificate taken) and EHLO again before MAIL."""
    import smtplib
    out = {"rcpt": []}
    s = smtplib.SMTP(timeout=timeout)
    s._host = "127.0.0.1"   # what starttls() names as the server (set by the constructor only when it connects)
    try:
        out["greeting"] = s.connect("127.0.0.1", port)
    except smtplib.SMTPConnectError as e:
        out["greeting"] = (e.smtp_code, e.smtp_error)
        return _texts(out)
    try:
        out["ehlo"] = s.ehlo(helo)
        if out["ehlo"][0] != 250:
            return _texts(out)
        if starttls:
            from ferrytest import client_context
            s.starttls(context=client_context())
            out["ehlo"] = s.ehlo(helo)
        if login:
            s.login(*login)
        out["mail"] = s.docmd(f"MAIL FROM:<{sender}>")
        if out["mail"][0] != 250:
            return _texts(out)
        for r in rcpts:
            out["rcpt"].append(s.docmd(f"RCPT TO:<{r}>"))
        if not any(c == 250 for c, _ in out["rcpt"]):
            return _texts(out)
        try:
            out["end"] = s.data(content)
            out["data"] = (354, b"")
        except smtplib.SMTPDataError as e:
            out["data"] = (e.smtp_code, e.smtp_error)
        return _texts(out)
    except smtplib.SMTPServerDisconnected as e:
        out["closed"] = str(e)   # the server closed the connection (after a 421, or a crash)
        return _texts(out)
    finally:
        try:
            s.quit()
        except (smtplib.SMTPException, OSError):
            s.close()


def bdat(port, sender, rcpt, content, parts=3):
    """One message in BDAT chunks (RFC 3030) on a RawSMTP session; the Reply to the last chunk."""
    from ferrytest import RawSMTP
    with RawSMTP(port) as c:
        c.ehlo()
        c.expect(f"MAIL FROM:<{sender}>", 250)
        c.expect(f"RCPT TO:<{rcpt}>", 250)
        step = len(content) // parts + 1
        chunks = [content[i:i + step] for i in range(0, len(content), step)]
        for chunk in chunks[:-1]:
            c.send(b"BDAT %d\r\n" % len(chunk) + chunk)
            r = c.reply()
            assert r.code == 250, r
        c.send(b"BDAT %d LAST\r\n" % len(chunks[-1]) + chunks[-1])
        r = c.reply()
        c.quit()
    return r


def _texts(out):
    def t(reply):
        code, msg = reply
        return code, msg.decode("utf-8", "replace") if isinstance(msg, bytes) else msg
    res = {k: (v if k == "closed" else [t(r) for r in v] if k == "rcpt" else t(v)) for k, v in out.items()}
    if "end" in res and res["end"][0] == 250:
        m = re.search(r"queued as ([0-9A-Za-z]+)", res["end"][1])
        res["queue_id"] = m.group(1) if m else None
    return res


def first_refusal(result):
    """The first reply of a transact() result that is not 2xx/3xx (in session order), or None."""
    for k in ("greeting", "ehlo", "mail", "rcpt", "data", "end"):
        v = result.get(k)
        for code, text in (v if k == "rcpt" else [v] if v else []):
            if code >= 400:
                return code, text
    return None


def header_fields(data):
    """(fields, body) of a message: fields as raw bytes, one per field with its continuation lines and CRLF."""
    head, sep, body = data.partition(b"\r\n\r\n")
    fields = []
    for line in (head + b"\r\n").split(b"\r\n")[:-1]:
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line + b"\r\n"
        else:
            fields.append(line + b"\r\n")
    return fields, body


def field_name(field):
    return field.split(b":", 1)[0].decode("latin-1").strip()
