"""A scripted SMTP server on 127.0.0.x for Ferry's outbound tests: the remote MX or smarthost Ferry talks to.

    with SmtpPeer() as peer:                       # a free port on 127.0.0.1; or SmtpPeer(port=P, host="127.0.0.3"),
                                                   # or host="::1" (IPv6)
        peer.rcpt_replies = {"bad@example.org": "550 5.1.1 no such user"}
        ... Ferry's [outbound] port = peer.port ...
        [msg] = peer.wait_messages(1)
        assert msg.tls and msg.rcpts == ["bob@example.org"] and b"Subject: hi" in msg.data

Every knob is a plain attribute and is read when it is needed, so a test may change it while the peer runs
(e.g. answer 451 first, then 250):

    greeting        "220 peer.test ESMTP smtppeer"; 421 closes the connection after it, another 4xx/5xx answers
                    503 to everything but QUIT (RFC 5321 3.1)
    ehlo_caps       the EHLO keywords (default PIPELINING, SIZE 10240000, 8BITMIME, SMTPUTF8, STARTTLS, DSN,
                    ENHANCEDSTATUSCODES); STARTTLS is left out once TLS is on, and "AUTH PLAIN LOGIN" is added when
                    `auth` is set (inside TLS only, unless auth_tls_only is False)
    ehlo_reply      None, or a reply refusing EHLO (e.g. "500 5.5.1 command unrecognized": the client must HELO)
    tls_break       None, or "close" (220 to STARTTLS, then close) or "garbage" (220, then non-TLS bytes, close)
    auth            None (no AUTH), or {user: password} for AUTH PLAIN and LOGIN (initial response or challenge);
                    auth_reply forces a reply (e.g. "535 5.7.8 no"); auth_required: MAIL before AUTH gets 530
    mail_reply      reply to MAIL (default 250, or 552 when SIZE= is over the advertised limit)
    rcpt_replies    {address: reply} (addresses compared case-insensitively); rcpt_reply: every other RCPT
    data_cmd_reply  reply to DATA (default 354, or 554 without an accepted recipient)
    data_reply      reply after the final dot (default 250)
    drop_at         a verb ("GREETING", "EHLO", "MAIL", "RCPT", "DATA", ".", ...): close the connection when it
                    comes, without answering
    stall_at        a verb: never answer it (nor anything after it); the connection stays open
    delay           {verb: seconds} before answering that verb ("." is the end of the data, "GREETING" the banner)

A reply is "CODE text", several lines joined with "\\n" or given as a list, or a callable (session, line) -> reply
(None: the default). Commands in one read are answered in order, so pipelining works. The peer is strict where a
client bug would hide: MAIL before EHLO/HELO gets 503, an ESMTP parameter the session did not offer (SIZE, BODY,
SMTPUTF8, RET, ENVID, NOTIFY, ORCPT, AUTH; none after HELO) gets 555, data over the SIZE limit gets 552, and
anything pipelined behind STARTTLS is thrown away (kept in Session.injected).

Records: `transcripts` (one Session per connection: the command lines, TLS, EHLO name, transactions, AUTH,
per-read batches), `messages` (every message accepted with 250 after the dot), `connections` (count),
`active` and `max_concurrent` (connections open at once). Waits (AssertionError with every transcript on
timeout): wait_messages(n, timeout), wait_connections(n), wait_command(verb, count), wait_for(predicate).

STARTTLS uses one self-signed certificate (CN=peer.test, `openssl req -x509`) made on first use and shared by the
peers of the test process. stop() (or leaving the `with`) closes the listening socket and every connection and
joins the threads; SO_REUSEADDR lets a test start a new peer on the same port at once.
"""

import atexit
import base64
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time

DEFAULT_CAPS = ("PIPELINING", "SIZE 10240000", "8BITMIME", "SMTPUTF8", "STARTTLS", "DSN", "ENHANCEDSTATUSCODES")
IDLE_TIMEOUT = 120.0   # a session with nothing to read for this long is closed (so a forgotten client cannot hang)


def parse_path_params(argument):
    """'FROM:<a@b> SIZE=10 BODY=8BITMIME' (after the verb) -> ('a@b', {'SIZE': '10', 'BODY': '8BITMIME'}).
    Keys are upper case; a keyword without a value maps to None."""
    _, _, rest = argument.partition(":")
    rest = rest.strip()
    if rest.startswith("<"):
        end = rest.find(">")
        address, tail = (rest[1:end], rest[end + 1:]) if end >= 0 else (rest[1:], "")
    else:
        address, _, tail = rest.partition(" ")
    params = {}
    for word in tail.split():
        key, eq, value = word.partition("=")
        params[key.upper()] = value if eq else None
    return address, params


def format_reply(reply):
    """A reply given as "250 ok", "250-a\\n250 b", or ["250 a", "250 b"] -> bytes on the wire (CRLF, hyphens
    on every line but the last)."""
    lines = reply if isinstance(reply, (list, tuple)) else str(reply).replace("\r\n", "\n").split("\n")
    lines = [l for l in lines if l != ""]
    out = []
    for i, line in enumerate(lines):
        code, text = line[:3], line[4:]
        sep = " " if i == len(lines) - 1 else "-"
        out.append(f"{code}{sep}{text}")
    return ("\r\n".join(out) + "\r\n").encode("utf-8")


_cert_lock = threading.Lock()
_cert = None


def _shared_certificate():
    """One self-signed certificate for every peer of this process (made on first use, removed at exit)."""
    global _cert
    with _cert_lock:
        if _cert is None:
            directory = tempfile.mkdtemp(prefix="smtppeer-")
            atexit.register(shutil.rmtree, directory, True)
            _cert = make_certificate(directory)
        return _cert


def make_certificate(directory, cn="peer.test"):
    """A self-signed certificate and key in directory; returns (cert, key) paths."""
    cert, key = f"{directory}/cert.pem", f"{directory}/key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}",
                    "-days", "1", "-keyout", key, "-out", cert],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
    return cert, key


class Transaction:
    """One MAIL ... (RSET or end of data)."""

    def __init__(self, line, sender, params):
        self.mail_line = line
        self.sender = sender
        self.mail_params = params
        self.mail_reply = None
        self.rcpt_lines = []       # every RCPT line of the transaction
        self.rcpt_params = {}      # address -> params
        self.rcpts = []            # addresses accepted (2xx)
        self.refused = {}          # address -> reply
        self.data = None           # dot-unstuffed bytes, when the data was sent
        self.data_reply = None

    def __repr__(self):
        return f"Transaction({self.mail_line!r}, rcpts={self.rcpts}, refused={self.refused}, " \
               f"data={None if self.data is None else len(self.data)}, reply={self.data_reply!r})"


class Message:
    """A message the peer accepted (250 after the dot)."""

    def __init__(self, session, transaction):
        self.session = session
        self.tls = session.tls
        self.sender = transaction.sender
        self.mail_line = transaction.mail_line
        self.mail_params = transaction.mail_params
        self.rcpt_lines = list(transaction.rcpt_lines)
        self.rcpt_params = dict(transaction.rcpt_params)
        self.rcpts = list(transaction.rcpts)
        self.data = transaction.data

    def __repr__(self):
        return f"Message(from={self.sender!r}, to={self.rcpts}, {len(self.data)} bytes, tls={self.tls})"


class Session:
    """One connection: the transcript, and the state machine that answers it."""

    def __init__(self, peer, sock, number):
        self.peer = peer
        self.sock = sock
        self.number = number
        self.client = sock.getpeername()
        self.commands = []          # every line received in command state, decoded (AUTH continuations too)
        self.raw_commands = []      # the same, bytes
        self.log = []               # ("C" | "S", text): the dialogue, for failure messages
        self.batches = []           # command lines grouped by the read that brought them (pipelining)
        self.tls = False
        self.tls_version = None
        self.tls_error = None
        self.injected = b""         # plaintext that followed STARTTLS in the same read (thrown away)
        self.ehlo_name = None
        self.ehlo_names = []        # ("EHLO" | "HELO", name) in order
        self.auth = []              # {"mechanism", "authzid", "user", "password", "tls", "ok"} per AUTH
        self.authenticated = None
        self.transactions = []
        self.closed_by = None       # "client", "peer" (QUIT, drop, 421, stop), "error: ..."
        self.open = True
        self._buf = b""
        self._state = "command"     # command | data | auth_plain | auth_login_user | auth_login_password
        self._greeted = False       # EHLO/HELO seen (since the last STARTTLS)
        self._esmtp = False         # the last greeting was EHLO (after HELO no extension is offered)
        self._bad_greeting = False
        self._txn = None
        self._data_lines = []
        self._batch = None
        self._auth_pending = None

    # ---------------------------------------------------------------- views
    @property
    def verbs(self):
        return [_verb(c) for c in self.commands]

    @property
    def mail_from(self):
        """The first MAIL line of the connection, or None."""
        return self.transactions[0].mail_line if self.transactions else None

    @property
    def rcpt_lines(self):
        return [l for t in self.transactions for l in t.rcpt_lines]

    @property
    def messages(self):
        """The message bytes of every transaction that got its data through (whatever the final reply)."""
        return [t.data for t in self.transactions if t.data is not None]

    def describe(self):
        head = f"connection {self.number} from {self.client[0]}:{self.client[1]} tls={self.tls}" \
               f" closed_by={self.closed_by}"
        lines = [head] + [f"  {who}: {text}" for who, text in self.log]
        return "\n".join(lines)

    __str__ = describe

    # ---------------------------------------------------------------- I/O
    def send(self, reply):
        data = format_reply(reply)
        for line in data.decode("utf-8", "replace").split("\r\n")[:-1]:
            self.log.append(("S", line))
        self.sock.sendall(data)

    def close(self, by):
        if self.closed_by is None:
            self.closed_by = by
        try:
            socket.socket.shutdown(self.sock, socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    def run(self):
        try:
            self.sock.settimeout(IDLE_TIMEOUT)
            if not self._greet():
                return
            while not self.peer._stopping:
                try:
                    chunk = self.sock.recv(65536)
                except socket.timeout:
                    self.close("peer: idle timeout")
                    return
                if not chunk:
                    self.closed_by = self.closed_by or "client"
                    return
                self._buf += chunk
                self._batch = []
                if not self._process():
                    return
        except (OSError, ssl.SSLError) as e:
            if self.closed_by is None:
                self.closed_by = f"error: {e!r}"
        finally:
            self.close("peer")
            self.open = False
            self.peer._session_ended(self)

    def _stall(self):
        """Never answer again; read (and drop) whatever comes until the client or the test gives up."""
        self.log.append(("S", "(stalled)"))
        while not self.peer._stopping:
            try:
                if not self.sock.recv(65536):
                    self.closed_by = self.closed_by or "client (while stalled)"
                    return
            except socket.timeout:
                continue
            except (OSError, ssl.SSLError):
                return

    def _behave(self, verb):
        """drop_at / stall_at / delay for this verb; False when the session is over."""
        peer = self.peer
        if peer.drop_at is not None and verb == peer.drop_at.upper():
            self.log.append(("S", "(dropped)"))
            self.close("peer: drop_at " + verb)
            return False
        if peer.stall_at is not None and verb == peer.stall_at.upper():
            self._stall()
            return False
        seconds = (peer.delay or {}).get(verb) or (peer.delay or {}).get(verb.lower())
        if seconds:
            time.sleep(seconds)
        return True

    def _greet(self):
        if not self._behave("GREETING"):
            return False
        greeting = self.peer._pick(self.peer.greeting, None, None) or "220 peer.test ESMTP smtppeer"
        self.send(greeting)
        code = greeting[:3] if isinstance(greeting, str) else greeting[0][:3]
        if code == "421":
            self.close("peer: 421 greeting")
            return False
        self._bad_greeting = not code.startswith("2")
        return True

    def _process(self):
        """Handle every complete line in the buffer; False when the session is over."""
        while not self.peer._stopping:
            nl = self._buf.find(b"\r\n")
            if nl < 0:
                return True
            line, self._buf = self._buf[:nl], self._buf[nl + 2:]
            if self._state == "data":
                if line == b".":
                    if not self._end_of_data():
                        return False
                else:
                    self._data_lines.append(line[1:] if line.startswith(b".") else line)
                continue
            text = line.decode("utf-8", "replace")
            self.raw_commands.append(line)
            self.commands.append(text)
            self.log.append(("C", text))
            if self._batch is not None:
                if not self._batch:
                    self.batches.append(self._batch)
                self._batch.append(text)
            if self._state != "command":
                if not self._auth_continue(text):
                    return False
                continue
            if not self._command(line, text):
                return False
        return False

    # ---------------------------------------------------------------- commands
    def _command(self, raw, text):
        verb = _verb(text)
        arg = text[len(verb):].strip() if len(text) > len(verb) else ""
        if not self._behave(verb):
            return False
        peer = self.peer
        if verb == "QUIT":
            self.send("221 2.0.0 Bye")
            self.close("peer: QUIT")
            return False
        if self._bad_greeting:
            self.send("503 5.5.1 Bad sequence of commands (greeting was not 220)")
            return True
        if verb == "EHLO":
            refuse = peer._pick(peer.ehlo_reply, self, text)
            if refuse:
                self.send(refuse)
                return True
            self._reset_transaction()
            self._greeted = self._esmtp = True
            self.ehlo_name = arg
            self.ehlo_names.append(("EHLO", arg))
            self.send([f"250 {peer.hostname}"] + [f"250 {c}" for c in self.capabilities()])
            return True
        if verb == "HELO":
            self._reset_transaction()
            self._greeted, self._esmtp = True, False
            self.ehlo_name = arg
            self.ehlo_names.append(("HELO", arg))
            self.send(f"250 {peer.hostname}")
            return True
        if verb == "NOOP":
            self.send("250 2.0.0 Ok")
            return True
        if verb == "RSET":
            self._reset_transaction()
            self.send("250 2.0.0 Ok")
            return True
        if verb == "STARTTLS":
            return self._starttls()
        if verb == "AUTH":
            return self._auth_start(arg)
        if verb == "MAIL":
            return self._mail(text, arg)
        if verb == "RCPT":
            return self._rcpt(text, arg)
        if verb == "DATA":
            return self._data_command(text)
        self.send("502 5.5.2 Error: command not recognized")
        return True

    def capabilities(self):
        peer = self.peer
        caps = [c for c in peer.ehlo_caps if not (self.tls and c.upper() == "STARTTLS")]
        if peer.auth is not None and (self.tls or not peer.auth_tls_only):
            caps.append("AUTH PLAIN LOGIN")
        return caps

    def _offers(self, keyword):
        """Whether the extension is on in this session (offered, and the client said EHLO)."""
        return self._esmtp and any(c.split()[0].upper() == keyword for c in self.capabilities() if c.split())

    def size_limit(self):
        for c in self.capabilities():
            parts = c.split()
            if parts and parts[0].upper() == "SIZE" and len(parts) > 1 and parts[1].isdigit() and int(parts[1]):
                return int(parts[1])
        return None

    def _reset_transaction(self):
        self._txn = None

    def _starttls(self):
        peer = self.peer
        if self.tls or not self._offers("STARTTLS"):
            self.send("502 5.5.1 STARTTLS not available")
            return True
        if self._buf:   # RFC 3207 / CVE-2011-0411: nothing may follow STARTTLS in the same flight
            self.injected += self._buf
            self._buf = b""
        self.send("220 2.0.0 Ready to start TLS")
        if peer.tls_break == "close":
            self.close("peer: tls_break close")
            return False
        if peer.tls_break == "garbage":
            try:
                self.sock.sendall(b"this is not a TLS server hello\r\n" * 4)
            except OSError:
                pass
            self.close("peer: tls_break garbage")
            return False
        try:
            self.sock = peer._tls_context().wrap_socket(self.sock, server_side=True)
        except (OSError, ssl.SSLError) as e:
            self.tls_error = repr(e)
            self.close(f"error: TLS handshake: {e!r}")
            return False
        self.tls = True
        self.tls_version = self.sock.version()
        self.log.append(("S", f"(TLS established: {self.tls_version})"))
        self._greeted = self._esmtp = False
        self._reset_transaction()
        self._batch = None
        return True

    # -- AUTH
    def _auth_start(self, arg):
        if not self._offers("AUTH"):
            self.send("503 5.5.1 Error: authentication not enabled")
            return True
        if self.authenticated is not None:
            self.send("503 5.5.1 Error: already authenticated")
            return True
        mech, _, initial = arg.partition(" ")
        mech = mech.upper()
        initial = initial.strip()
        if mech == "PLAIN":
            self._auth_pending = {"mechanism": "PLAIN"}
            if initial:
                return self._auth_plain(initial)
            self._state = "auth_plain"
            self.send("334 ")
            return True
        if mech == "LOGIN":
            self._auth_pending = {"mechanism": "LOGIN"}
            if initial:
                return self._auth_login_user(initial)
            self._state = "auth_login_user"
            self.send("334 VXNlcm5hbWU6")
            return True
        self.send("504 5.5.4 Unrecognized authentication type")
        return True

    def _auth_continue(self, text):
        state, self._state = self._state, "command"
        if text.strip() == "*":
            self.send("501 5.7.0 Authentication aborted")
            return True
        if state == "auth_plain":
            return self._auth_plain(text.strip())
        if state == "auth_login_user":
            return self._auth_login_user(text.strip())
        return self._auth_login_password(text.strip())

    def _b64(self, text):
        try:
            return base64.b64decode(text, validate=True).decode("utf-8", "replace")
        except ValueError:
            self.send("501 5.5.2 Cannot decode response")
            return None

    def _auth_plain(self, b64):
        decoded = self._b64(b64)
        if decoded is None:
            return True
        parts = decoded.split("\0")
        if len(parts) != 3:
            self.send("501 5.5.2 Bad PLAIN response")
            return True
        return self._auth_finish(parts[1], parts[2], authzid=parts[0])

    def _auth_login_user(self, b64):
        user = self._b64(b64)
        if user is None:
            return True
        self._auth_pending["user"] = user
        self._state = "auth_login_password"
        self.send("334 UGFzc3dvcmQ6")
        return True

    def _auth_login_password(self, b64):
        password = self._b64(b64)
        if password is None:
            return True
        return self._auth_finish(self._auth_pending["user"], password)

    def _auth_finish(self, user, password, authzid=""):
        peer = self.peer
        forced = peer._pick(peer.auth_reply, self, user)
        if forced:
            reply = forced
        elif (peer.auth or {}).get(user) == password:
            reply = "235 2.7.0 Authentication successful"
        else:
            reply = "535 5.7.8 Error: authentication failed"
        ok = str(reply).startswith("2")
        self.auth.append({"mechanism": self._auth_pending["mechanism"], "authzid": authzid, "user": user,
                          "password": password, "tls": self.tls, "ok": ok})
        if ok:
            self.authenticated = user
        self.send(reply)
        return True

    # -- mail transaction
    def _check_params(self, params, allowed):
        for key, value in params.items():
            if key not in allowed:
                return f"555 5.5.4 Unsupported option: {key}"
        return None

    def _mail(self, text, arg):
        peer = self.peer
        if not self._greeted:
            self.send("503 5.5.1 Error: send HELO/EHLO first")
            return True
        if self._txn is not None:
            self.send("503 5.5.1 Error: nested MAIL command")
            return True
        if not arg.upper().startswith("FROM:"):
            self.send("501 5.5.4 Syntax: MAIL FROM:<address>")
            return True
        if peer.auth is not None and peer.auth_required and self.authenticated is None:
            self.send("530 5.7.0 Authentication required")
            return True
        sender, params = parse_path_params(arg)
        txn = Transaction(text, sender, params)
        self.transactions.append(txn)
        allowed = set()
        ext = {"SIZE": "SIZE", "BODY": "8BITMIME", "SMTPUTF8": "SMTPUTF8", "RET": "DSN", "ENVID": "DSN",
               "AUTH": "AUTH"}
        for key, capability in ext.items():
            if self._offers(capability):
                allowed.add(key)
        reply = self._check_params(params, allowed)
        limit = self.size_limit()
        if reply is None and "SIZE" in params and limit is not None:
            try:
                if int(params["SIZE"]) > limit:
                    reply = "552 5.3.4 Message size exceeds fixed maximum message size"
            except (TypeError, ValueError):
                reply = "501 5.5.4 Bad SIZE parameter"
        if reply is None:
            reply = peer._pick(peer.mail_reply, self, text) or "250 2.1.0 Ok"
        txn.mail_reply = reply
        if str(reply).startswith("2"):
            self._txn = txn
        self.send(reply)
        return True

    def _rcpt(self, text, arg):
        peer = self.peer
        txn = self._txn
        if txn is None:
            if self.transactions and self.transactions[-1].mail_reply and \
                    not str(self.transactions[-1].mail_reply).startswith("2"):
                self.transactions[-1].rcpt_lines.append(text)
            self.send("503 5.5.1 Error: need MAIL command")
            return True
        if not arg.upper().startswith("TO:"):
            self.send("501 5.5.4 Syntax: RCPT TO:<address>")
            return True
        address, params = parse_path_params(arg)
        txn.rcpt_lines.append(text)
        txn.rcpt_params[address] = params
        reply = self._check_params(params, {"NOTIFY", "ORCPT"} if self._offers("DSN") else set())
        if reply is None:
            table = {k.lower(): v for k, v in (peer.rcpt_replies or {}).items()}
            reply = peer._pick(table.get(address.lower()), self, text) \
                or peer._pick(peer.rcpt_reply, self, text) or "250 2.1.5 Ok"
        if str(reply).startswith("2"):
            txn.rcpts.append(address)
        else:
            txn.refused[address] = reply
        self.send(reply)
        return True

    def _data_command(self, text):
        peer = self.peer
        txn = self._txn
        if txn is None:
            self.send("503 5.5.1 Error: need RCPT command")
            return True
        if not txn.rcpts:
            self.send("554 5.5.1 Error: no valid recipients")
            return True
        reply = peer._pick(peer.data_cmd_reply, self, text) or "354 End data with <CR><LF>.<CR><LF>"
        if str(reply).startswith("3"):
            self._state = "data"
            self._data_lines = []
        else:
            self._txn = None
        self.send(reply)
        return True

    def _end_of_data(self):
        peer = self.peer
        txn = self._txn
        self._state = "command"
        txn.data = b"".join(l + b"\r\n" for l in self._data_lines)
        self._data_lines = []
        self.log.append(("C", f"({len(txn.data)} bytes of message)"))
        self.log.append(("C", "."))
        if not self._behave("."):
            return False
        limit = self.size_limit()
        if limit is not None and len(txn.data) > limit:
            reply = "552 5.3.4 Message size exceeds fixed maximum message size"
        else:
            reply = peer._pick(peer.data_reply, self, ".") or "250 2.0.0 Ok: queued as PEER" + \
                f"{self.number:04d}{len(self.transactions):04d}"
        txn.data_reply = reply
        self._txn = None
        if str(reply).startswith("2"):
            peer._accepted(Message(self, txn))
        self.send(reply)
        return True


def _verb(text):
    word = text.split(" ", 1)[0].upper()
    return word if word else text


class SmtpPeer:
    def __init__(self, port=0, host="127.0.0.1", *, greeting="220 peer.test ESMTP smtppeer", ehlo_caps=DEFAULT_CAPS,
                 ehlo_reply=None, tls_break=None, auth=None, auth_tls_only=True, auth_required=False,
                 auth_reply=None, mail_reply=None, rcpt_replies=None, rcpt_reply=None, data_cmd_reply=None,
                 data_reply=None, drop_at=None, stall_at=None, delay=None, hostname="peer.test"):
        self.host = host
        self.port = port
        self.hostname = hostname
        self.greeting = greeting
        self.ehlo_caps = list(ehlo_caps)
        self.ehlo_reply = ehlo_reply
        self.tls_break = tls_break
        self.auth = auth
        self.auth_tls_only = auth_tls_only
        self.auth_required = auth_required
        self.auth_reply = auth_reply
        self.mail_reply = mail_reply
        self.rcpt_replies = dict(rcpt_replies or {})
        self.rcpt_reply = rcpt_reply
        self.data_cmd_reply = data_cmd_reply
        self.data_reply = data_reply
        self.drop_at = drop_at
        self.stall_at = stall_at
        self.delay = dict(delay or {})

        self.transcripts = []
        self.messages = []
        self.active = 0
        self.max_concurrent = 0

        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._listener = None
        self._accept_thread = None
        self._threads = []
        self._sessions = []
        self._stopping = False
        self._ctx = None
        self._ctx_lock = threading.Lock()

    # ---------------------------------------------------------------- life cycle
    def start(self):
        assert self._listener is None, "already started"
        s = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((self.host, self.port))
        except OSError:
            s.close()
            raise
        s.listen(128)
        s.settimeout(0.1)
        self.port = s.getsockname()[1]
        self._listener = s
        self._stopping = False
        if "STARTTLS" in (c.upper() for c in self.ehlo_caps):
            self._tls_context()   # the certificate now, not inside the first client's handshake
        self._accept_thread = threading.Thread(target=self._accept_loop, name=f"smtppeer-{self.port}",
                                               daemon=True)
        self._accept_thread.start()
        return self

    def stop(self, timeout=5.0):
        """Close the listening socket and every connection; join the threads."""
        self._stopping = True
        if self._accept_thread is not None:
            self._accept_thread.join(timeout)
        if self._listener is not None:
            try:
                self._listener.close()
            except OSError:
                pass
        with self._lock:
            sessions = list(self._sessions)
            threads = list(self._threads)
        for session in sessions:
            session.close("peer: stop")
        deadline = time.monotonic() + timeout
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._listener = None
        self._accept_thread = None

    def __enter__(self):
        if self._listener is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    # ---------------------------------------------------------------- records
    @property
    def connections(self):
        """Connections accepted so far."""
        return len(self.transcripts)

    def commands(self, verb=None):
        """Every command line of every connection (only those of `verb` when given)."""
        out = []
        for t in list(self.transcripts):
            out += [c for c in t.commands if verb is None or _verb(c) == verb.upper()]
        return out

    def describe(self):
        with self._lock:
            ts = list(self.transcripts)
            msgs = len(self.messages)
        head = f"smtppeer {self.address}: {len(ts)} connection(s), {msgs} message(s) accepted, " \
               f"max concurrent {self.max_concurrent}"
        return "\n".join([head] + [t.describe() for t in ts])

    def wait_for(self, predicate, timeout=15.0, what="condition"):
        """Wait until predicate(peer) is true (checked whenever a connection or message comes, and every
        50 ms); returns its value; AssertionError with the transcripts on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate(self)
            if result:
                return result
            left = deadline - time.monotonic()
            if left <= 0:
                break
            with self._changed:
                self._changed.wait(min(left, 0.05))
        raise AssertionError(f"smtppeer: timed out after {timeout}s waiting for {what}\n{self.describe()}")

    def wait_messages(self, n=1, timeout=15.0):
        """The first n messages accepted, once there are at least n."""
        self.wait_for(lambda p: len(p.messages) >= n, timeout, f"{n} message(s)")
        return list(self.messages[:n])

    def wait_connections(self, n=1, timeout=15.0):
        self.wait_for(lambda p: p.connections >= n, timeout, f"{n} connection(s)")
        return list(self.transcripts[:n])

    def wait_command(self, verb, count=1, timeout=15.0):
        """Wait until `verb` was received `count` times (over all connections); returns those lines."""
        self.wait_for(lambda p: len(p.commands(verb)) >= count, timeout, f"{count} {verb} command(s)")
        return self.commands(verb)

    # ---------------------------------------------------------------- internals
    def _pick(self, value, session, line):
        if callable(value):
            return value(session, line)
        return value

    def _tls_context(self):
        with self._ctx_lock:
            if self._ctx is None:
                cert, key = _shared_certificate()
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                ctx.load_cert_chain(cert, key)
                self._ctx = ctx
            return self._ctx

    def _accept_loop(self):
        while not self._stopping:
            try:
                sock, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            if self._stopping:
                sock.close()
                return
            sock.settimeout(IDLE_TIMEOUT)
            with self._changed:
                session = Session(self, sock, len(self.transcripts) + 1)
                self.transcripts.append(session)
                self._sessions.append(session)
                self.active += 1
                self.max_concurrent = max(self.max_concurrent, self.active)
                t = threading.Thread(target=self._run_session, args=(session,),
                                     name=f"smtppeer-{self.port}-{session.number}", daemon=True)
                self._threads.append(t)
                self._changed.notify_all()
            t.start()

    def _run_session(self, session):
        session.run()

    def _session_ended(self, session):
        with self._changed:
            if session in self._sessions:
                self._sessions.remove(session)
                self.active -= 1
            self._changed.notify_all()

    def _accepted(self, message):
        with self._changed:
            self.messages.append(message)
            self._changed.notify_all()
