"""A private Postfix instance on 127.0.0.1, as a peer for Ferry's integration tests.

    peer = PostfixPeer(base_dir, role="destination")          # final destination for example.org
    peer = PostfixPeer(base_dir, role="source", relay_port=P)  # relays every message to [127.0.0.1]:P
    peer.start(); ...; peer.stop()

Everything lives under base_dir (never /etc/postfix, never the system's queue):

    etc/main.cf, etc/master.cf   config_directory (`postfix -c base_dir/etc`)
    spool/                       queue_directory (the master's pid file: spool/pid/master.pid)
    data/                        data_directory (master.lock, TLS caches)
    tls/cert.pem, tls/key.pem    self-signed certificate (openssl), offered with STARTTLS
    mail/<user>/Maildir/         virtual(8) Maildirs of the `users` of `domain`, owned by `mailbox_owner`
    postfix.log                  maillog_file, written by the postlog service (no syslog needed)

Both roles accept mail on 127.0.0.1:`port` (smtpd, STARTTLS offered) for `users` @`domain` (others of that domain
get 550 5.1.1); tests submit with `send()` (SMTP into that port; 127.0.0.0/8 may relay in the source role).
The source role sends every other message to relayhost [127.0.0.1]:`relay_port` (STARTTLS when offered); the
destination role relays nothing (error transport). Postfix never sends anywhere else: no DNS (smtp_dns_support_level
= disabled, no peer name lookups), the only next hop is a bracketed IP literal, and its SMTP client binds to
127.0.0.1, from where nothing but loopback can be reached.

Postfix needs root to start (the master binds, then its daemons drop to `mail_owner`). `skip_reason()` says why
these tests cannot run here (not root, Postfix not installed), or None.

The Maildirs are written by virtual(8) as `mailbox_owner` (default: nobody), so every folder above base_dir/mail
must be searchable by that account; pytest's tmp_path is not (0700). `make_base_dir()` makes a suitable one.
"""

import atexit
import grp
import os
import pwd
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from ferrytest import free_port

POSTFIX = "/usr/sbin/postfix"
DAEMON_DIR = "/usr/lib/postfix/sbin"
MAIL_OWNER = "postfix"
SETGID_GROUP = "postdrop"
HOSTNAME = "postfix.example.org"
DOMAIN = "example.org"

QUEUED_RE = re.compile(r"queued as ([0-9A-Za-z]+)")


def skip_reason():
    """Why a private Postfix instance cannot run here, or None."""
    if not os.access(POSTFIX, os.X_OK):
        return f"Postfix is not installed ({POSTFIX} missing; scripts/setup installs the postfix package)"
    if os.geteuid() != 0:
        return (f"a private Postfix instance needs root to start (`postfix -c DIR start`); "
                f"these tests run as uid {os.geteuid()}")
    try:
        pwd.getpwnam(MAIL_OWNER)
        grp.getgrnam(SETGID_GROUP)
    except KeyError as e:
        return f"the postfix package's account/group is missing ({e}); reinstall postfix"
    if shutil.which("openssl") is None:
        return "openssl is not installed (needed for Postfix's self-signed certificate)"
    return None


def make_base_dir(prefix="ferry-postfix-"):
    """A fresh folder for a PostfixPeer in the temp dir, searchable (not readable) by other users, so that
    virtual(8), running as the unprivileged mailbox owner, can reach base_dir/mail. The caller removes it."""
    d = Path(tempfile.mkdtemp(prefix=prefix))
    d.chmod(0o711)
    return d


# ---------------------------------------------------------------- processes (by PID, never by name)

def _proc_stat(pid):
    """(state, pgrp, starttime) of a live process, or None when it is gone (or a zombie)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError, OSError):
        return None
    fields = data[data.rfind(")") + 2:].split()
    state, pgrp, starttime = fields[0], int(fields[2]), int(fields[19])
    if state in ("Z", "X"):
        return None
    return state, pgrp, starttime


class _Proc:
    """A process identified by PID and start time, so a recycled PID is never signalled."""

    def __init__(self, pid):
        self.pid = pid
        st = _proc_stat(pid)
        self.starttime = st[2] if st else None

    def alive(self):
        st = _proc_stat(self.pid)
        return st is not None and st[2] == self.starttime

    def signal(self, sig):
        if self.alive():
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def wait_gone(self, timeout):
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def __repr__(self):
        return f"pid {self.pid}"


def _exe(pid):
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def _process_group(pgid, not_before):
    """Live Postfix processes (programs of DAEMON_DIR) in process group pgid, started no earlier than
    not_before (clock ticks since boot): the master's children (it calls setsid, so it leads its own group)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _proc_stat(int(entry))
            if st is not None and st[1] == pgid and st[2] >= not_before and _exe(int(entry)).startswith(DAEMON_DIR):
                out.append(_Proc(int(entry)))
    return [p for p in out if p.starttime is not None]


# ---------------------------------------------------------------- queue template

# `postfix start` first runs its integrity checks, which create the queue folders (post-install create-missing:
# some 60 processes, 1-3 s). They run once per test process, in a template instance (`postfix -c DIR check`);
# each instance gets a copy of its queue and data folders (cp -a: owners and modes as Postfix made them) and a
# `quick-start` file, with which `postfix start` skips the checks (as after `postfix quick-stop`).
_template = None
_template_lock = threading.Lock()


def _queue_template():
    global _template
    with _template_lock:
        if _template is None:
            d = Path(tempfile.mkdtemp(prefix="ferry-postfix-template-"))
            atexit.register(shutil.rmtree, d, True)
            peer = PostfixPeer(d, role="destination", users=())
            peer.write_config()
            r = peer._postfix("check")
            if r.returncode != 0:
                raise AssertionError(f"`postfix -c {peer.config_dir} check` exited {r.returncode}:\n"
                                     f"{(r.stdout + r.stderr).decode('utf-8', 'replace')}")
            _template = peer
        return _template


# ---------------------------------------------------------------- the instance

MASTER_CF = """\
# Private Postfix instance for Ferry's integration tests (rendered by tests/integration/postfixpeer.py).
# Only the smtpd below listens, on 127.0.0.1 only. chroot off everywhere (the queue is not set up as a jail).
# service type  private unpriv  chroot  wakeup  maxproc command + args
127.0.0.1:{port} inet n   -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class PostfixPeer:
    def __init__(self, base_dir, port=None, role="destination", relay_port=None, hostname=HOSTNAME,
                 domain=DOMAIN, users=("bob",), mailbox_owner="nobody", extra_main=""):
        if role not in ("destination", "source"):
            raise ValueError(f"role must be 'destination' or 'source', not {role!r}")
        if role == "source" and not relay_port:
            raise ValueError("role='source' needs relay_port (the port on 127.0.0.1 everything is relayed to)")
        self.base = Path(base_dir).resolve()
        self.port = port or free_port()
        self.role = role
        self.relay_port = relay_port
        self.hostname = hostname
        self.domain = domain
        self.users = list(users)
        pw = pwd.getpwnam(mailbox_owner)
        self.mailbox_uid, self.mailbox_gid = pw.pw_uid, pw.pw_gid
        self.mailbox_owner = mailbox_owner
        self.extra_main = extra_main
        self.config_dir = self.base / "etc"
        self.queue_dir = self.base / "spool"
        self.data_dir = self.base / "data"
        self.mail_dir = self.base / "mail"
        self.tls_dir = self.base / "tls"
        self.log_path = self.base / "postfix.log"
        self.pid_file = self.queue_dir / "pid" / "master.pid"
        # Log lines say e.g. "postfix-12345/smtpd[..]": one name per instance, even if several share a syslog.
        self.syslog_name = f"postfix-{self.port}"
        self.master = None   # _Proc of the master daemon while it runs

    # -- rendering
    def main_cf(self):
        mailboxes = ", ".join(f"{u}@{self.domain}={u}/Maildir/" for u in self.users)
        lines = [
            "# Private Postfix instance for Ferry's integration tests (rendered by tests/integration/postfixpeer.py).",
            "# Not the system's /etc/postfix: started with `postfix -c " + str(self.config_dir) + " start`.",
            "compatibility_level = 3.6",
            f"queue_directory = {self.queue_dir}",
            f"data_directory = {self.data_dir}",
            f"mail_owner = {MAIL_OWNER}",
            f"setgid_group = {SETGID_GROUP}",
            f"syslog_name = {self.syslog_name}",
            "# log to a file through postlogd (the postlog service in master.cf); no syslog daemon needed",
            f"maillog_file = {self.log_path}",
            f"maillog_file_prefixes = {self.base}",
            f"myhostname = {self.hostname}",
            f"mydomain = {self.domain}",
            "myorigin = $myhostname",
            "mydestination =",
            "local_recipient_maps =",
            "local_transport = error:5.1.1 no local(8) delivery in this instance",
            "alias_maps =",
            "alias_database =",
            "inet_interfaces = 127.0.0.1",
            "inet_protocols = ipv4",
            "mynetworks = 127.0.0.0/8",
            "smtpd_banner = $myhostname ESMTP Postfix",
            "biff = no",
            "append_dot_mydomain = no",
            "readme_directory = no",
            "# quick retries, should a delivery be deferred",
            "queue_run_delay = 1s",
            "minimal_backoff_time = 1s",
            "maximal_backoff_time = 2s",
            "",
            f"# final destination: {self.domain} -> virtual(8) -> Maildirs under {self.mail_dir};",
            f"# unknown users of {self.domain} get 550 5.1.1 at RCPT (smtpd_reject_unlisted_recipient)",
            f"virtual_mailbox_domains = {self.domain}",
            f"virtual_mailbox_base = {self.mail_dir}",
            f"virtual_mailbox_maps = inline:{{ {mailboxes} }}" if self.users else "virtual_mailbox_maps =",
            "virtual_alias_maps =",
            f"virtual_uid_maps = static:{self.mailbox_uid}",
            f"virtual_gid_maps = static:{self.mailbox_gid}",
            "",
            "# STARTTLS offered (self-signed certificate), logged and shown in Received:",
            f"smtpd_tls_cert_file = {self.tls_dir / 'cert.pem'}",
            f"smtpd_tls_key_file = {self.tls_dir / 'key.pem'}",
            "smtpd_tls_security_level = may",
            "smtpd_tls_loglevel = 1",
            "smtpd_tls_received_header = yes",
            "smtp_tls_security_level = may",
            "smtp_tls_loglevel = 1",
            "",
            "# never anything but 127.0.0.1: no DNS at all, no reverse lookups of clients, the SMTP client binds",
            "# to 127.0.0.1 (it cannot reach another network from there)",
            "smtp_dns_support_level = disabled",
            "smtp_host_lookup = native",
            "smtpd_peername_lookup = no",
            "smtp_bind_address = 127.0.0.1",
            "lmtp_bind_address = 127.0.0.1",
        ]
        if self.role == "source":
            nexthop = f"[127.0.0.1]:{self.relay_port}"
            lines += [
                "",
                f"# source: every non-{self.domain} message goes to {nexthop} (bracketed: no MX/A lookup)",
                f"relayhost = {nexthop}",
                f"default_transport = smtp:{nexthop}",
                f"relay_transport = smtp:{nexthop}",
                "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination",
            ]
        else:
            lines += [
                "",
                f"# destination: relays nothing; only {self.domain} is accepted",
                "relayhost =",
                "default_transport = error:5.7.1 this test instance relays nothing",
                "relay_transport = error:5.7.1 this test instance relays nothing",
                "smtpd_relay_restrictions = reject_unauth_destination",
            ]
        if self.extra_main:
            lines += ["", "# extra settings of this test", self.extra_main.rstrip("\n")]
        return "\n".join(lines) + "\n"

    def master_cf(self):
        return MASTER_CF.format(port=self.port)

    def _check_mailbox_path(self):
        """Every folder above mail/ must be searchable by the mailbox owner, or virtual(8) defers every message
        with a permission error deep in the log: say so now."""
        for d in [self.base, *self.base.parents]:
            st = d.stat()
            if st.st_mode & 0o001:
                continue
            if st.st_uid == self.mailbox_uid and st.st_mode & 0o100:
                continue
            if st.st_gid == self.mailbox_gid and st.st_mode & 0o010:
                continue
            raise AssertionError(f"{d} (mode {oct(st.st_mode & 0o777)}) is not searchable by {self.mailbox_owner}, "
                                 f"who writes the Maildirs under {self.mail_dir}: use postfixpeer.make_base_dir()")

    def _make_certificate(self):
        cert, key = self.tls_dir / "cert.pem", self.tls_dir / "key.pem"
        if cert.exists() and key.exists():
            return
        self.tls_dir.mkdir(mode=0o700, exist_ok=True)
        r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
                            "-subj", f"/CN={self.hostname}", "-addext", f"subjectAltName=DNS:{self.hostname}"],
                           capture_output=True, timeout=30)
        if r.returncode != 0:
            raise AssertionError(f"openssl req failed ({r.returncode}): {r.stderr.decode(errors='replace')}")
        key.chmod(0o600)

    def write_config(self):
        self.base.mkdir(parents=True, exist_ok=True)
        for d in (self.config_dir, self.queue_dir):
            d.mkdir(mode=0o755, exist_ok=True)
            d.chmod(0o755)
        self.mail_dir.mkdir(mode=0o755, exist_ok=True)
        for u in self.users:
            # virtual(8) creates the Maildir itself, as the mailbox owner, inside a folder it may write
            ud = self.mail_dir / u
            ud.mkdir(mode=0o700, exist_ok=True)
            os.chown(ud, self.mailbox_uid, self.mailbox_gid)
        self._make_certificate()
        (self.config_dir / "main.cf").write_text(self.main_cf())
        (self.config_dir / "master.cf").write_text(self.master_cf())
        # Postfix programs do not trust a table changed within the last second or so (it may be half written):
        # they re-read it every 300 ms until it has "cooled down", which costs every fresh instance ~2 s at
        # start. These files are complete, so they get an mtime a minute back.
        old = time.time() - 60
        for f in ("main.cf", "master.cf"):
            (self.config_dir / f).chmod(0o644)
            os.utime(self.config_dir / f, (old, old))

    # -- process
    def _postfix(self, *args, timeout=60):
        env = dict(os.environ)
        env["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin"
        env.pop("MAIL_CONFIG", None)
        return subprocess.run([POSTFIX, "-c", str(self.config_dir), *args], stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=timeout, env=env)

    def running(self):
        return self.master is not None and self.master.alive()

    def start(self, timeout=20.0):
        assert not self.running(), "already running"
        self.base.mkdir(parents=True, exist_ok=True)
        self._check_mailbox_path()
        self.write_config()
        if not (self.queue_dir / "pid").is_dir():
            template = _queue_template()
            for src, dst in ((template.queue_dir, self.queue_dir), (template.data_dir, self.data_dir)):
                subprocess.run(["cp", "-a", "-T", str(src), str(dst)], check=True, capture_output=True)
            (self.queue_dir / "quick-start").touch()
        # `postfix start` (checks skipped once: quick-start): `master -w` returns once the daemonized master is
        # initialized; the master calls setsid() and so leads its own process group, which is what
        # `postfix stop` and stop() below rely on.
        r = self._postfix("start", timeout=timeout + 30)
        out = (r.stdout + r.stderr).decode("utf-8", "replace")
        self.master = self._master_from_pid_file()
        if r.returncode != 0:
            self.stop()
            raise AssertionError(f"`postfix -c {self.config_dir} start` exited {r.returncode}:\n{out}\n"
                                 f"--- {self.log_path} ---\n{self.log[-3000:]}")
        if self.master is None:
            raise AssertionError(f"postfix started but {self.pid_file} names no live master:\n{out}\n"
                                 f"--- {self.log_path} ---\n{self.log[-3000:]}")
        self._wait_banner(timeout)
        return self

    def _master_from_pid_file(self):
        """The master named by the pid file, if that process is alive and really this instance's master: the
        master program, working in this queue directory (so a stale file and a recycled PID are never taken)."""
        try:
            text = self.pid_file.read_text().strip()
        except FileNotFoundError:
            return None
        if not text.isdigit():
            return None
        pid = int(text)
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            return None
        if _exe(pid) != f"{DAEMON_DIR}/master" or Path(cwd) != self.queue_dir:
            return None
        proc = _Proc(pid)
        return proc if proc.starttime is not None else None

    def _wait_banner(self, timeout):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    s.settimeout(5)
                    banner = s.recv(512)
                    if banner.startswith(b"220 "):
                        s.sendall(b"QUIT\r\n")
                        return
                    last = banner
            except OSError as e:
                last = e
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"Postfix gives no 220 banner on 127.0.0.1:{self.port} within {timeout}s ({last!r})\n"
                             f"--- {self.log_path} ---\n{self.log[-3000:]}")

    def stop(self, timeout=15.0):
        """`postfix -c DIR stop`, then make sure the master and every process of its group are gone: wait for
        them by PID, SIGKILL what is left. Returns the problems seen ([] when it went cleanly).

        `postfix stop` sends the master SIGTERM (it passes it on to its process group), waits up to 5 s, then
        SIGKILLs the group itself; `timeout` bounds that command."""
        problems = []
        master = self.master or self._master_from_pid_file()
        if master is None or not master.alive():
            self.master = None
            return problems
        group = _process_group(master.pid, master.starttime)   # the master's children, before it goes
        try:
            r = self._postfix("stop", timeout=timeout)
            if r.returncode != 0:
                problems.append(f"postfix stop exited {r.returncode}: {(r.stdout + r.stderr).decode(errors='replace')}")
        except subprocess.TimeoutExpired:
            problems.append(f"postfix stop did not return within {timeout}s")
        if not master.wait_gone(5):
            problems.append(f"master ({master}) still there after postfix stop: SIGKILL")
            master.signal(signal.SIGKILL)
            master.wait_gone(5)
        # children exit on their own once the master is gone (they watch its status pipe); give them a moment
        stragglers = [p for p in group + _process_group(master.pid, master.starttime) if p.pid != master.pid]
        deadline = time.monotonic() + 5
        while any(p.alive() for p in stragglers) and time.monotonic() < deadline:
            time.sleep(0.05)
        for p in stragglers:
            if p.alive():
                problems.append(f"postfix child {p} still there after the master exited: SIGKILL")
                p.signal(signal.SIGKILL)
                p.wait_gone(5)
        self.master = None
        return problems

    def remove(self):
        """Delete base_dir (stop first)."""
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- what tests look at
    @property
    def log(self):
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern, timeout=10.0):
        """Poll postfix.log until a line matches the regex; returns the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log.splitlines():
                m = rx.search(line)
                if m:
                    return m
            if time.monotonic() > deadline:
                raise AssertionError(f"no line of {self.log_path} matches {pattern!r}\n"
                                     f"--- postfix log (tail) ---\n{self.log[-4000:]}")
            time.sleep(0.05)

    def maildir(self, user):
        return self.mail_dir / user / "Maildir"

    def mail_files(self, user):
        """Delivered messages of user@domain (Maildir new/ and cur/), oldest first."""
        files = []
        for sub in ("new", "cur"):
            d = self.maildir(user) / sub
            if d.is_dir():
                files += [p for p in d.iterdir() if p.is_file()]
        return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))

    def wait_mail(self, user, count=1, timeout=15.0):
        deadline = time.monotonic() + timeout
        while True:
            files = self.mail_files(user)
            if len(files) >= count:
                return files
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} message(s) in {self.maildir(user)}, found {len(files)}\n"
                                     f"--- postfix log (tail) ---\n{self.log[-4000:]}")
            time.sleep(0.05)

    def send(self, mail_from, rcpts, content, helo="client.test", timeout=10):
        """One message by SMTP into this instance's own port; returns Postfix's queue id."""
        if isinstance(rcpts, str):
            rcpts = [rcpts]
        with smtplib.SMTP("127.0.0.1", self.port, local_hostname=helo, timeout=timeout) as s:
            s.ehlo(helo)
            s.mail(mail_from)
            for r in rcpts:
                code, msg = s.rcpt(r)
                if code != 250:
                    raise AssertionError(f"Postfix refused RCPT TO:<{r}>: {code} {msg!r}")
            code, msg = s.data(content)
            if code != 250:
                raise AssertionError(f"Postfix refused the data: {code} {msg!r}")
        m = QUEUED_RE.search(msg.decode("utf-8", "replace"))
        if not m:
            raise AssertionError(f"no queue id in Postfix's reply to the data: {msg!r}")
        return m.group(1)
