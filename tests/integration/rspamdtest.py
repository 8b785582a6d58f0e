"""Debian's rspamd (/usr/bin/rspamd) for the tests: unprivileged, loopback only, a private config tree.

    with DnsServer({}) as dns, Rspamd(dns=dns.address, proxy=True) as rspamd:
        rspamd.url            # "http://127.0.0.1:PORT" (the normal worker: POST /checkv2)
        rspamd.milter_address # "inet:127.0.0.1:PORT" (the rspamd_proxy worker in milter mode; proxy=True only)
        rspamd.check(b"...")  # the /checkv2 reply as a dict (for checking the fixture itself)

The config tree lives in a temp dir: a top-level rspamd.conf of our own (the workers we want, nothing else) that
includes Debian's /etc/rspamd/common.conf for the rules, with LOCAL_CONFDIR, DBDIR, RUNDIR and LOGDIR pointed
into the temp dir (`--var`). rspamd's log is `log_text()`.

Nothing leaves the machine: DNS goes to `dns` (the caller's test DNS server, tests/integration/dnstest.py) or,
without one, to an empty DnsServer of the fixture's own (every name NXDOMAIN, answered at once: a dead port would
cost every scan the DNS timeout); every module that fetches maps over HTTP or talks to outside services is
disabled, or its map list is cut to the local files (see _OVERRIDES). `outbound_attempts()` lists log lines
that mention an outside fetch (tests may assert it is empty).

Deterministic verdicts (`options { enable_test_patterns = true; }`; the patterns are rspamd's own, compiled into
librspamd-server; put one in a text body):
    GTUBE_REJECT          XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X   -> "reject"
    GTUBE_ADD_HEADER      YJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X   -> "add header"
    GTUBE_REWRITE_SUBJECT ZJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X   -> "rewrite subject"
                                                                   (subject: "***SPAM*** <original subject>")
    GTUBE_NO_ACTION       AJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X   -> "no action"
Markers of this fixture (in the Subject: field):
    SOFT_REJECT_MARK  "FERRY-SOFT-REJECT"   -> "soft reject" (force_actions rule), messages.smtp_message =
                                               SOFT_REJECT_MESSAGE
    GREYLIST_MARK     "FERRY-GREYLIST"       -> "greylist" (force_actions rule)
    MILTER_MARK       "FERRY-MILTER-HEADERS" -> the reply's milter block adds MILTER_ADD_HEADER (value
                                               MILTER_ADD_VALUE) and removes MILTER_REMOVE_HEADER (every one:
                                               remove_headers {name: 0})
Every GTUBE pattern's reply carries messages.smtp_message "Gtube pattern" (REJECT_MESSAGE); its score is the
action's threshold (reject 15, add header 14). Any other message gets "no action" (thresholds: add header 14,
reject 15, no greylist by score), whatever headers it lacks. Every reply's milter block also removes
"X-Spam" (rspamd's own remove-spam-flag routine).

Through the milter proxy (proxy=True, self_scan) the same patterns and markers give, at end of message: reject ->
SMFIR_REPLYCODE "554 5.7.1 Gtube pattern"; soft reject -> SMFIR_REPLYCODE "451 4.7.1 " + SOFT_REJECT_MESSAGE; add
header -> SMFIR_CHGHEADER "X-Spam: Yes" then SMFIR_ACCEPT; rewrite subject -> SMFIR_CHGHEADER Subject
"***SPAM*** ..." then SMFIR_ACCEPT; greylist -> SMFIR_ACCEPT only (the proxy leaves greylisting to the MTA);
MILTER_MARK -> SMFIR_CHGHEADER deleting MILTER_REMOVE_HEADER and SMFIR_ADDHEADER MILTER_ADD_HEADER, then
SMFIR_ACCEPT. The proxy negotiates no replies
(SMFIP_NR_*) for every stage before end of message.

For the failure cases, BrokenRspamd is an HTTP peer on loopback that answers /checkv2 badly, as told ("garbage":
200 with a body that is not JSON; "http500"; "close": closes without a reply; "close_mid_reply": half a reply then
close; "slow": waits `delay` seconds before a good reply; "unknown_action"): every request it reads is kept in
`requests` (headers and body).

Start-up: rspamd compiles ~10000 TLD suffixes into a hyperscan database, ~10 s the first time; the compiled
databases are kept in a cache dir shared by every instance (HS_CACHE_DIR, or $FERRY_RSPAMD_HS_CACHE), after which
start-up takes about a second. Use one instance per test module. Stopped by PID: SIGTERM to the main process, SIGKILL to its process group
(a session of its own) after a timeout.
"""

import json
import os
import shutil
import signal
import socket
import socketserver
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from dnstest import DnsServer

RSPAMD = "/usr/bin/rspamd"
CONFDIR = "/etc/rspamd"

GTUBE_REJECT = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
GTUBE_ADD_HEADER = "YJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
GTUBE_REWRITE_SUBJECT = "ZJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
GTUBE_NO_ACTION = "AJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
SOFT_REJECT_MARK = "FERRY-SOFT-REJECT"
SOFT_REJECT_MESSAGE = "Ferry test: try again later"
REJECT_MESSAGE = "Gtube pattern"
MILTER_MARK = "FERRY-MILTER-HEADERS"
GREYLIST_MARK = "FERRY-GREYLIST"
MILTER_ADD_HEADER = "X-Ferry-Rspamd-Added"
MILTER_ADD_VALUE = "added by rspamd"
MILTER_REMOVE_HEADER = "X-Ferry-Rspamd-Remove"
SPAM_SUBJECT = "***SPAM*** %s"
HS_CACHE_DIR = os.environ.get("FERRY_RSPAMD_HS_CACHE") or os.path.join(tempfile.gettempdir(),
                                                                       f"ferry-rspamd-hs-cache-{os.getuid()}")

# Modules that fetch HTTP maps, talk to outside services (fuzzy storage, update server) or need redis.
_DISABLED = ["fuzzy_check", "rspamd_update", "multimap", "phishing", "whitelist", "neural", "reputation",
             "url_redirector", "history_redis", "ratelimit", "greylist", "replies", "bimi", "clickhouse",
             "elastic", "metric_exporter", "metadata_exporter", "external_services", "antivirus", "dcc",
             "p0f", "aws_s3", "spamtrap", "url_reputation", "asn", "mid",
             # hfilter scores the client's and sender's DNS: a plain message must stay "no action"
             "hfilter"]

# Modules kept, with their map lists cut to the local files (no https:// entries).
_OVERRIDES = {
    "mime_types.conf": 'file = ["fallback+file://${CONFDIR}/maps.d/mime_types.inc"];\n',
    "rbl.conf": 'url_whitelist = ["fallback+file://${CONFDIR}/maps.d/surbl-whitelist.inc"];\n',
}


# urllib without proxies: an http_proxy in the environment must never send a test's request off the machine.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def message(subject="test", body="Hello.\r\n", sender="alice@sender.example", to="bob@example.test",
            extra_headers=()):
    """A small RFC 5322 message (bytes, CRLF) to scan."""
    lines = [f"From: <{sender}>", f"To: <{to}>", f"Subject: {subject}",
             "Date: Mon, 07 Dec 2026 12:00:00 +0000", "Message-ID: <rspamdtest.1@sender.example>",
             *extra_headers, "", body.replace("\r\n", "\n").replace("\n", "\r\n")]
    return "\r\n".join(lines).encode()


def _lua_quote(s):
    return json.dumps(s)


class Rspamd:
    def __init__(self, dns=None, proxy=False, controller=False, extra_local=None, start_timeout=30.0):
        """dns: "127.0.0.1:PORT" of a test DNS server (default: a dead loopback port). proxy: also start the
        rspamd_proxy worker in milter mode (self_scan). controller: also the controller worker.
        extra_local: {"file.conf": "text"} added to local.d."""
        self.dns = dns
        self.proxy = proxy
        self.controller = controller
        self.extra_local = extra_local or {}
        self.start_timeout = start_timeout
        self.proc = None
        self.own_dns = None
        self.dir = None
        self.port = None
        self.proxy_port = None
        self.controller_port = None

    # ------------------------------------------------------------------ config

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def milter_address(self):
        return f"inet:127.0.0.1:{self.proxy_port}" if self.proxy_port else None

    def _write_config(self):
        d = Path(self.dir)
        for sub in ("local.d", "override.d", "db", "run", "log"):
            (d / sub).mkdir()
        dns = self.dns or self.own_dns.address
        workers = [f'worker "normal" {{\n  bind_socket = "127.0.0.1:{self.port}";\n'
                   '  .include "$CONFDIR/worker-normal.inc"\n  count = 1;\n  task_timeout = 8s;\n}\n']
        if self.controller:
            workers.append(f'worker "controller" {{\n  bind_socket = "127.0.0.1:{self.controller_port}";\n'
                           '  count = 1;\n  secure_ip = "127.0.0.1";\n  password = "q1";\n'
                           '  static_dir = "${WWWDIR}";\n}\n')
        if self.proxy:
            workers.append(f'worker "rspamd_proxy" {{\n  bind_socket = "127.0.0.1:{self.proxy_port}";\n'
                           '  milter = yes;\n  timeout = 120s;\n  self_scan = yes;\n  count = 1;\n'
                           '  upstream "local" {\n    default = yes;\n    self_scan = yes;\n  }\n'
                           '  reject_message = "Spam message rejected";\n}\n')
        (d / "rspamd.conf").write_text(
            '.include "$CONFDIR/common.conf"\n'
            'options {\n  pidfile = "$RUNDIR/rspamd.pid";\n  .include "$CONFDIR/options.inc"\n'
            '  .include(try=true; priority=1,duplicate=merge) "$LOCAL_CONFDIR/local.d/options.inc"\n}\n'
            'logging {\n  type = "file";\n  filename = "$LOGDIR/rspamd.log";\n  .include "$CONFDIR/logging.inc"\n'
            '  level = "info";\n}\n' + "".join(workers))
        local = d / "local.d"
        (local / "options.inc").write_text(
            "enable_test_patterns = true;\n"
            f'dns {{\n  nameserver = ["{dns}"];\n  timeout = 1s;\n  retransmits = 1;\n}}\n'
            # Our own temp files, not /tmp; no local_addrs so 127.0.0.1 is scanned like any client.
            f'tempdir = "{d / "run"}";\n'
            f'hs_cache_dir = "{HS_CACHE_DIR}";\n'
            "local_addrs = [];\n")
        for name in _DISABLED:
            (local / f"{name}.conf").write_text("enabled = false;\n")
        for name, text in _OVERRIDES.items():
            (d / "override.d" / name).write_text(text)
        # Verdicts by pattern and marker only: no score-driven greylist, and add header at 14 (of reject's 15), far
        # above what a bare test message collects (no Date/Message-ID, no reverse DNS, an all-caps marker subject:
        # about 6, Debian's add header threshold).
        (local / "actions.conf").write_text(f'subject = {_lua_quote(SPAM_SUBJECT)};\ngreylist = null;\n'
                                            'add_header = 14;\nreject = 15;\n')
        (local / "regexp.conf").write_text(
            "FERRY_SOFT_REJECT_MARK {\n"
            f"  re = 'Subject=/{SOFT_REJECT_MARK}/H';\n  score = 0.0;\n"
            '  description = "Ferry test marker: soft reject";\n}\n'
            "FERRY_GREYLIST_MARK {\n"
            f"  re = 'Subject=/{GREYLIST_MARK}/H';\n  score = 0.0;\n"
            '  description = "Ferry test marker: greylist";\n}\n'
            "FERRY_MILTER_MARK {\n"
            f"  re = 'Subject=/{MILTER_MARK}/H';\n  score = 0.0;\n"
            '  description = "Ferry test marker: milter headers";\n}\n')
        (local / "force_actions.conf").write_text(
            "rules {\n"
            "  FERRY_SOFT_REJECT {\n"
            '    action = "soft reject";\n'
            '    expression = "FERRY_SOFT_REJECT_MARK";\n'
            f"    message = {_lua_quote(SOFT_REJECT_MESSAGE)};\n"
            "  }\n"
            "  FERRY_GREYLIST {\n"
            '    action = "greylist";\n'
            '    expression = "FERRY_GREYLIST_MARK";\n'
            "  }\n"
            "}\n")
        routine = (
            "return function(task, common_meta)\n"
            "  if not task:has_symbol('FERRY_MILTER_MARK') then return nil, {}, {}, {} end\n"
            f"  return nil, {{[{_lua_quote(MILTER_ADD_HEADER)}] = {_lua_quote(MILTER_ADD_VALUE)}}},"
            f" {{[{_lua_quote(MILTER_REMOVE_HEADER)}] = 0}}, {{}}\n"
            "end\n")
        (local / "milter_headers.conf").write_text(
            'use = ["ferry_marker"];\n'
            "skip_local = false;\nskip_authenticated = false;\n"
            f"custom {{\n  ferry_marker = <<EOD\n{routine}EOD;\n}}\n")
        for name, text in self.extra_local.items():
            (local / name).write_text(text)

    # ------------------------------------------------------------------ process

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="ferry-rspamd-")
        os.makedirs(HS_CACHE_DIR, mode=0o700, exist_ok=True)
        if self.dns is None:
            self.own_dns = DnsServer({}).__enter__()
        ports = set()
        while len(ports) < 3:
            ports.add(free_port())
        self.port, p2, p3 = sorted(ports)
        self.proxy_port = p2 if self.proxy else None
        self.controller_port = p3 if self.controller else None
        self._write_config()
        d = Path(self.dir)
        user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
        group = subprocess.run(["id", "-gn"], capture_output=True, text=True).stdout.strip()
        cmd = [RSPAMD, "-f", "-c", str(d / "rspamd.conf"), "-u", user, "-g", group,
               "--var", f"CONFDIR={CONFDIR}", "--var", f"LOCAL_CONFDIR={d}",
               "--var", f"DBDIR={d / 'db'}", "--var", f"RUNDIR={d / 'run'}", "--var", f"LOGDIR={d / 'log'}"]
        if os.geteuid() == 0:
            cmd.append("-i")   # root has no unprivileged account of its own to run as; the tests stay loopback
        self.stdout = open(d / "stdout.log", "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.stdout, stderr=subprocess.STDOUT,
                                     cwd=self.dir, start_new_session=True, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + self.start_timeout
        wanted = [self.port] + [p for p in (self.proxy_port, self.controller_port) if p]
        while True:
            if self.proc.poll() is not None:
                out = self.output()
                self.stop()
                raise AssertionError(f"rspamd exited with {self.proc.returncode} at start:\n{out[-4000:]}")
            if all(_listening(p) for p in wanted) and self._ready():
                return self
            if time.monotonic() > deadline:
                out = self.output()
                self.stop()
                raise AssertionError(f"rspamd did not start within {self.start_timeout}s:\n{out[-4000:]}")
            time.sleep(0.05)

    def _ready(self):
        try:
            with _OPENER.open(self.url + "/ping", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self, timeout=10.0):
        """SIGTERM to the main process; SIGKILL to its process group (its workers) after timeout."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.proc is not None:
            # Workers left behind by a killed main process: its group is its own (start_new_session).
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if getattr(self, "stdout", None):
            self.stdout.close()
            self.stdout = None
        if self.own_dns is not None:
            self.own_dns.__exit__(None, None, None)
            self.own_dns = None

    def cleanup(self):
        if self.dir and os.environ.get("FERRY_KEEP_RSPAMD_DIR") is None:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        self.cleanup()

    # ------------------------------------------------------------------ inspection

    def output(self):
        return self.log_text() + "\n" + _read(Path(self.dir) / "stdout.log")

    def log_text(self):
        return _read(Path(self.dir) / "log" / "rspamd.log")

    def outbound_attempts(self):
        """Log lines that mention a fetch from an outside host (maps over http, update or fuzzy servers)."""
        words = ("http://", "https://", "maps.rspamd.com", "updates.rspamd.com", "cannot connect")
        return [line for line in self.log_text().splitlines()
                if any(w in line for w in words) and "127.0.0.1" not in line]

    def check(self, data, headers=None, timeout=15):
        """POST /checkv2 with `data`; returns the JSON reply as a dict."""
        req = urllib.request.Request(self.url + "/checkv2", data=data, method="POST", headers=headers or {})
        with _OPENER.open(req, timeout=timeout) as r:
            return json.loads(r.read())


def _die_with_parent():
    """In the child before exec: SIGTERM when the process that started rspamd dies (a test run killed by a timeout
    never reaches stop(); rspamd, in a session of its own, would run on). Linux prctl(PR_SET_PDEATHSIG); it follows
    the starting thread, so start rspamd from the thread that will outlive it (pytest's main thread)."""
    import ctypes
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _read(path):
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


class BrokenRspamd:
    """An HTTP peer on 127.0.0.1 that answers POST /checkv2 the way `mode` says (see the module docstring).

        with BrokenRspamd("garbage") as bad:
            ... [rspamd] url = bad.url ...
    """

    GOOD = b'{"score":0.0,"required_score":15.0,"action":"no action","messages":{}}'

    def __init__(self, mode, delay=5.0):
        self.mode = mode
        self.delay = delay
        self.requests = []
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                try:
                    while outer._serve_one(self.rfile, self.wfile):
                        pass
                except OSError:
                    pass

        class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def _serve_one(self, rfile, wfile):
        """Reads one request and answers it; False when the connection is to end."""
        line = rfile.readline(8192)
        if not line:
            return False
        headers = []
        length = 0
        while True:
            h = rfile.readline(8192)
            if h in (b"\r\n", b"\n", b""):
                break
            name, _, value = h.decode("latin-1").partition(":")
            headers.append((name.strip(), value.strip()))
            if name.strip().lower() == "content-length":
                length = int(value)
        body = rfile.read(length)
        self.requests.append({"line": line.decode("latin-1").strip(), "headers": headers, "body": body})

        def reply(status, payload, close=True):
            wfile.write(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
                        f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n".encode() + payload)
            wfile.flush()

        if self.mode == "garbage":
            reply("200 OK", b"<html>this is not JSON</html>")
        elif self.mode == "http500":
            reply("500 Internal Server Error", b'{"error":"internal error"}')
        elif self.mode == "close":
            return False
        elif self.mode == "close_mid_reply":
            wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{\"action\":")
            wfile.flush()
        elif self.mode == "slow":
            time.sleep(self.delay)
            reply("200 OK", self.GOOD)
        elif self.mode == "unknown_action":
            reply("200 OK", b'{"score":1.0,"required_score":15.0,"action":"launch missiles"}')
        else:
            reply("200 OK", self.GOOD)
        return False

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
