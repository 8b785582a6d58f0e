#!/usr/bin/python3
"""A scriptable milter (python3-milter, i.e. Sendmail's libmilter underneath) for Ferry's filter tests.

Run as a subprocess by miltertest.PyMilter, never imported by the tests:

    /usr/bin/python3 milter_fixture.py --port P|--unix PATH --log FILE [--always STAGE=ACTION ...] [--name NAME]

Every callback (connect, hello, envfrom, envrcpt, data, header, eoh, body, eom, abort, close) is written as one
JSON line to FILE: {"conn": N, "cb": "envrcpt", "args": [...], "macros": {"{rcpt_addr}": "...", ...}, "t": ...}.
`macros` holds every macro of MACROS the MTA has defined at that point (libmilter keeps the ones sent at earlier
stages of the session, as Sendmail and Postfix expect).

What the milter answers is chosen by the test, through the envelope and the message:

  ACTION   continue | accept | reject | tempfail | discard
           reply5 | reply4   (a custom reply with setreply: 550 5.7.9 / 451 4.7.9 "test milter: STAGE")
           replyml           (a multi-line custom reply, 550 5.7.9, three lines)
           sleepN            (answer after N seconds, e.g. sleep2.5; then continue)
           hang              (never answer; the connection stays open)
           close             (the MTA's connection is shut down without an answer)

  STAGE    connect | helo | mail | rcpt | data | eoh | body | eom

  - `--always STAGE=ACTION` (repeatable): for every session (the only way to choose the connect answer).
  - Tokens `STAGE-ACTION` in the envelope: the first label of the HELO name (helo-reject.client.test), the local
    part of the sender (mail-tempfail@..., data-reply5@..., eom-discard@...) or of a recipient. A recipient's
    token with stage rcpt applies to that recipient only; every other token applies at its stage whatever
    argument it came in.
  - The header `X-Test-Milter:` with a JSON list, read when the header arrives (so it steers eoh, body, eom):
    strings are tokens as above (a bare ACTION means eom), lists are end-of-message modifications done in order:
        ["addheader", NAME, VALUE]          smfi_addheader
        ["insheader", INDEX, NAME, VALUE]   smfi_insheader (0-based position among all header fields)
        ["chgheader", NAME, INDEX, VALUE]   smfi_chgheader (1-based per name; VALUE "" or null deletes)
        ["chgfrom", ADDR]                   smfi_chgfrom (ADDR as in MAIL FROM, with <>); ["chgfrom", ADDR, PARAMS]
        ["addrcpt", ADDR]                   smfi_addrcpt (with <>)
        ["delrcpt", ADDR]                   smfi_delrcpt (as the MTA gave it to envrcpt)
        ["replacebody", TEXT(, COUNT)]      smfi_replacebody of TEXT (repeated COUNT times: a body larger than a
                                            header line may be), sent as UTF-8 in 3 chunks
        ["quarantine", REASON]              smfi_quarantine
        ["progress", COUNT, SECONDS]        COUNT times: wait SECONDS, smfi_progress (a slow filter that says so)
    The eom answer is the last eom token, default continue. A modification whose first item is "@NAME" (e.g.
    ["@first", "addheader", "X-A", "1"]) is done only by the fixture started with --name NAME (chained milters).

`--noreply connect,hello,...` and `--nocallback body,...` negotiate protocol steps without a reply (SMFIP_NR_*: the
callback runs, its answer is not sent) or away (SMFIP_NO*: the MTA does not call it).

Misbehaviour (close, hang, sleep) is for the bad-input tests. `close` shuts down (both directions) every
connection from the MTA this process has open at that moment: a test that uses it must not run sessions in
parallel against the same instance.
"""

import argparse
import json
import os
import re
import socket
import sys
import threading
import time

import Milter

STAGES = ("connect", "helo", "mail", "rcpt", "data", "eoh", "body", "eom")
ACTION_RE = re.compile(r"^(continue|accept|reject|tempfail|discard|reply5|reply4|replyml|sleep[0-9.]+|hang|close)$")
TOKEN_RE = re.compile(r"^(" + "|".join(STAGES) + r")-(.+)$")

# The macros a Postfix-compatible MTA sends (Postfix's milter_*_macros defaults, plus Sendmail's usual ones).
MACROS = ("j", "_", "v", "{daemon_name}", "{daemon_addr}", "{daemon_port}", "{if_name}", "{if_addr}",
          "{client_addr}", "{client_port}", "{client_name}", "{client_ptr}", "{client_resolve}",
          "{client_connections}", "i", "{auth_type}", "{auth_authen}", "{auth_author}", "{auth_ssf}",
          "{cert_issuer}", "{cert_subject}", "{cipher}", "{cipher_bits}", "{tls_version}", "{mail_addr}",
          "{mail_host}", "{mail_mailer}", "{rcpt_addr}", "{rcpt_host}", "{rcpt_mailer}", "{msg_id}")

RETURN = {"continue": Milter.CONTINUE, "accept": Milter.ACCEPT, "reject": Milter.REJECT,
          "tempfail": Milter.TEMPFAIL, "discard": Milter.DISCARD}

_log_lock = threading.Lock()
_conn_ids = iter(range(1, 1 << 30))
_options = None


def log_event(conn, cb, args, macros):
    line = json.dumps({"conn": conn, "cb": cb, "args": args, "macros": macros, "t": time.time(),
                       "name": _options.name})
    with _log_lock:
        with open(_options.log, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def text(v):
    """A callback argument as JSON-safe text (bytes as latin-1, so every octet survives)."""
    if isinstance(v, bytes):
        return v.decode("latin-1")
    if isinstance(v, str):
        return v.encode("utf-8", "surrogateescape").decode("latin-1")
    if isinstance(v, (list, tuple)):
        return [text(x) for x in v]
    return v


def token_of(value, helo=False):
    """The STAGE-ACTION token in a HELO name (its first label) or an address (its local part), or None."""
    v = value.strip().strip("<>")
    part = v.split(".", 1)[0] if helo else v.rsplit("@", 1)[0]
    m = TOKEN_RE.match(part.lower())
    if m and ACTION_RE.match(m.group(2)):
        return m.group(1), m.group(2)
    return None


def shutdown_mta_connections():
    """Shuts down every accepted connection on our port (the MTA's milter connections)."""
    for fd in os.listdir("/proc/self/fd"):
        try:
            fdn = int(fd)
            if not os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                continue
            s = socket.socket(fileno=os.dup(fdn))
        except (OSError, ValueError):
            continue
        try:
            name = s.getsockname()
            ours = name == _options.unix if _options.unix else (isinstance(name, tuple) and name[1] == _options.port)
            if s.type == socket.SOCK_STREAM and ours:
                try:
                    s.getpeername()
                except OSError:
                    continue   # the listening socket
                s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        finally:
            s.close()


class TestMilter(Milter.Base):
    def __init__(self):
        self.conn = next(_conn_ids)
        self.tokens = []          # (stage, action) from the envelope and X-Test-Milter, in arrival order
        self.mods = []            # the end-of-message modifications of X-Test-Milter
        self.body_len = 0

    # -- helpers
    def macros(self):
        out = {}
        for m in MACROS:
            try:
                v = self.getsymval(m)
            except Exception:   # noqa: BLE001 - no context (Milter.testctx) or an unknown macro
                v = None
            if v is not None:
                out[m] = text(v)
        return out

    def record(self, cb, *args):
        log_event(self.conn, cb, [text(a) for a in args], self.macros())

    def answer(self, stage, extra=None):
        """The answer at `stage`: the --always action, then the session's tokens for that stage (the last wins),
        then `extra` (a token valid only for this call, e.g. this recipient's)."""
        action = "continue"
        for spec in _options.always:
            s, a = spec.split("=", 1)
            if s == stage:
                action = a
        for s, a in self.tokens:
            if s == stage:
                action = a
        if extra and extra[0] == stage:
            action = extra[1]
        return self.perform(stage, action)

    def perform(self, stage, action):
        if action.startswith("sleep"):
            time.sleep(float(action[5:]))
            return Milter.CONTINUE
        if action == "hang":
            while True:
                time.sleep(3600)
        if action == "close":
            shutdown_mta_connections()
            return Milter.CONTINUE
        if action == "reply5":
            self.setreply("550", "5.7.9", f"test milter: {stage}")
            return Milter.REJECT
        if action == "reply4":
            self.setreply("451", "4.7.9", f"test milter: {stage}")
            return Milter.TEMPFAIL
        if action == "replyml":
            self.setreply("550", "5.7.9", f"test milter: {stage}", "second line", "third line")
            return Milter.REJECT
        return RETURN[action]

    # -- callbacks
    def connect(self, hostname, family, hostaddr):
        self.record("connect", hostname, family, list(hostaddr) if isinstance(hostaddr, tuple) else hostaddr)
        return self.answer("connect")

    def hello(self, hostname):
        self.record("hello", hostname)
        tok = token_of(hostname, helo=True)
        if tok:
            self.tokens.append(tok)
        return self.answer("helo")

    def envfrom(self, sender, *params):
        self.record("envfrom", sender, *params)
        self.tokens = [t for t in self.tokens if t[0] in ("connect", "helo")]   # a new transaction
        self.mods = []
        self.body_len = 0
        tok = token_of(sender)
        if tok:
            self.tokens.append(tok)
        return self.answer("mail")

    def envrcpt(self, rcpt, *params):
        self.record("envrcpt", rcpt, *params)
        tok = token_of(rcpt)
        if tok and tok[0] != "rcpt":
            self.tokens.append(tok)
        return self.answer("rcpt", extra=tok if tok and tok[0] == "rcpt" else None)

    def data(self):
        self.record("data")
        return self.answer("data")

    @Milter.decode("bytes")
    def header(self, name, value):
        self.record("header", name, value)
        if name.lower() == "x-test-milter":
            v = value.decode("utf-8") if isinstance(value, bytes) else value
            for item in json.loads(re.sub(r"\r?\n[ \t]", " ", v)):
                if isinstance(item, str):
                    m = TOKEN_RE.match(item)
                    self.tokens.append((m.group(1), m.group(2)) if m else ("eom", item))
                elif not item[0].startswith("@"):
                    self.mods.append(item)
                elif item[0] == "@" + _options.name:
                    self.mods.append(item[1:])
        return Milter.CONTINUE

    def eoh(self):
        self.record("eoh")
        return self.answer("eoh")

    def body(self, chunk):
        self.record("body", chunk)
        self.body_len += len(chunk)
        return self.answer("body")

    def eom(self):
        self.record("eom")
        for mod in self.mods:
            self.modify(mod)
        return self.answer("eom")

    def modify(self, mod):
        op, *a = mod
        if op == "addheader":
            self.addheader(a[0], a[1])
        elif op == "insheader":
            self.addheader(a[1], a[2], int(a[0]))
        elif op == "chgheader":
            self.chgheader(a[0], int(a[1]), a[2] if a[2] else None)
        elif op == "chgfrom":
            self.chgfrom(a[0], a[1] if len(a) > 1 else None)
        elif op == "addrcpt":
            self.addrcpt(a[0])
        elif op == "delrcpt":
            self.delrcpt(a[0])
        elif op == "replacebody":
            data = a[0].encode("utf-8") * (int(a[1]) if len(a) > 1 else 1)
            step = max(1, len(data) // 3 + 1)
            for i in range(0, len(data), step):
                self.replacebody(data[i:i + step])
            if not data:
                self.replacebody(b"")
        elif op == "quarantine":
            self.quarantine(a[0])
        elif op == "progress":
            for _ in range(int(a[0])):
                time.sleep(float(a[1]))
                self.progress()
        else:
            raise ValueError(f"unknown modification {mod!r}")
        log_event(self.conn, "modified", text(list(mod)), {})

    def abort(self):
        self.record("abort")
        return Milter.CONTINUE

    def close(self):
        self.record("close")
        return Milter.CONTINUE


def main():
    global _options
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--unix", default=None, help="listen on this unix socket instead of 127.0.0.1:PORT")
    p.add_argument("--log", required=True)
    p.add_argument("--name", default="testmilter")
    p.add_argument("--always", action="append", default=[], help="STAGE=ACTION")
    p.add_argument("--timeout", type=int, default=600, help="libmilter's read timeout (seconds)")
    p.add_argument("--noreply", default="", help="callbacks negotiated without a reply (SMFIP_NR_*), comma list")
    p.add_argument("--nocallback", default="", help="callbacks negotiated away (SMFIP_NO*), comma list")
    _options = p.parse_args()
    for spec in _options.always:
        s, _, a = spec.partition("=")
        if s not in STAGES or not ACTION_RE.match(a):
            p.error(f"bad --always {spec!r}")
    open(_options.log, "a").close()
    # Protocol steps negotiated away or without reply: python3-milter's decorators on a subclass, as a milter
    # written with them would have (Milter.Base.protocol_mask reads them when libmilter negotiates).
    attrs = {}
    for name in filter(None, _options.noreply.split(",")):
        attrs[name] = Milter.noreply(getattr(TestMilter, name))
    for name in filter(None, _options.nocallback.split(",")):
        attrs[name] = Milter.nocallback(getattr(TestMilter, name))
    Milter.factory = type("NegotiatedTestMilter", (TestMilter,), attrs) if attrs else TestMilter
    # Every action (ADDHDRS, CHGHDRS, CHGBODY, ADDRCPT, DELRCPT, QUARANTINE, CHGFROM, SETSYMLIST) is offered.
    Milter.set_flags(Milter.CURR_ACTS)
    sys.stdout.flush()
    socket_spec = f"unix:{_options.unix}" if _options.unix else f"inet:{_options.port}@127.0.0.1"
    Milter.runmilter(_options.name, socket_spec, _options.timeout)


if __name__ == "__main__":
    main()
