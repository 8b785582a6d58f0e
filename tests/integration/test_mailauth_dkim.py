"""DKIM (RFC 6376, RFC 8463 Ed25519, RFC 8301) end to end.

1. Ferry signs: a Ferry with a loopback submission listener and keys made by `ferry dkim keygen` (RSA 2048 and
   Ed25519, relaxed/relaxed and simple/simple), an authenticated client (smtplib) sending From: its own address to a
   local mailbox. The message as delivered is verified by two independent verifiers: python3-dkim (its library with
   a DNS function, and Debian's `dkimverify` command) and opendkim-testmsg (opendkim-tools). The two commands read
   keys from live DNS through the system resolver, so they run inside a network namespace of this module's own,
   whose 127.0.0.1:53 is a dnstest.DnsServer and whose /etc/resolv.conf (bind-mounted by `ip netns exec` from
   /etc/netns/NS/resolv.conf) names it.
2. Ferry verifies: messages signed by python3-dkim, checked by `ferry check dkim` and by a real mx listener
   (Authentication-Results), against a DnsServer on a free port.
3. `ferry dkim keygen` itself, and what a broken key does to `ferry serve` and `ferry check-config`.
"""

import base64
import ctypes
import hashlib
import os
import re
import shutil
import smtplib
import subprocess
import time
from email.utils import formatdate
from pathlib import Path

import dkim
import pytest
from dkim.canonicalization import CanonicalizationPolicy

from dnstest import DnsServer
from ferrytest import DEFAULT_PASSWORD, Ferry, ferry_bin, free_port, make_message
from mailauthtest import (auth_results, ed25519_key, header_fields, message, mx_server, python_verify, result_of,
                          rsa_key, sign, strip_delivery_headers)

ALICE = "alice@example.test"
CLONE_NEWNET = 0x40000000


# ---------------------------------------------------------------- helpers

def tags(value):
    """A DKIM-Signature (or key record) value -> {tag: value}, whitespace removed (RFC 6376 3.2)."""
    out = {}
    for part in value.split(";"):
        if "=" in part:
            k, _, v = part.partition("=")
            out[k.strip()] = re.sub(r"\s+", "", v)
    return out


def signature_fields(msg):
    """The raw DKIM-Signature header fields of msg (name included, folded lines joined by CRLF), in order."""
    head = msg.split(b"\r\n\r\n", 1)[0] + b"\r\n"
    return [m.group(0) for m in re.finditer(rb"(?im)^dkim-signature:.*\r\n(?:[ \t].*\r\n)*", head)]


def only_signature(msg, i):
    """msg with every DKIM-Signature field but the i-th removed (none of them is covered by another's h=)."""
    fields = signature_fields(msg)
    for j, f in enumerate(fields):
        if j != i:
            msg = msg.replace(f, b"", 1)
    return msg


def sign_custom(msg, key, domain, selector, *, canon=(b"relaxed", b"relaxed"), alg=None, t=None, x=None,
                set_tags=None, drop_tags=()):
    """A DKIM-Signature made by python3-dkim with tags sign() does not offer: t= set, x= added, any a=, any tag
    set (set_tags: {name: value}, replaced in place or added before h=) or left out (drop_tags). The signature is
    computed over the tags as changed."""
    changes = dict(set_tags or {})
    if t is not None:
        changes["t"] = str(t)
    if x is not None:
        changes["x"] = str(x)

    class Signer(dkim.DKIM):
        def gen_header(self, fields, *args, **kwargs):
            for name, value in changes.items():
                tag, value = name.encode(), value.encode()
                at = [n for n, (k, _) in enumerate(fields) if k == tag]
                if at:
                    fields[at[0]] = (tag, value)
                else:
                    fields.insert([n for n, (k, _) in enumerate(fields) if k == b"h"][0], (tag, value))
            fields[:] = [(k, v) for k, v in fields if k.decode() not in drop_tags]
            return super().gen_header(fields, *args, **kwargs)
    algorithm = alg or (b"rsa-sha256" if key.algorithm == "rsa" else b"ed25519-sha256")
    return Signer(msg).sign(selector.encode(), domain.encode(), key.private, signature_algorithm=algorithm,
                            canonicalize=canon) + msg


def py_verdicts(msg, zone_txt):
    """python3-dkim's verdict on each DKIM-Signature of msg (an exception, e.g. a body hash mismatch, is False)."""
    out = []
    for i in range(len(signature_fields(msg))):
        try:
            out.append(python_verify(only_signature(msg, i), zone_txt) == [True])
        except dkim.DKIMException:
            out.append(False)
    return out


def dated_message(subject, sender=ALICE, to="bob@example.test"):
    """A minimal message with the fields RFC 5322 requires (opendkim-testmsg refuses one without Date:)."""
    return (f"From: <{sender}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nDate: {formatdate()}\r\n"
            f"Message-ID: <{time.monotonic_ns()}@example.test>\r\n\r\nhello\r\n").encode()


def body_hash(body, c):
    """bh= of body under c= (python3-dkim's canonicalization), as base64."""
    policy = CanonicalizationPolicy.from_c_value(c.encode())
    return base64.b64encode(hashlib.sha256(policy.canonicalize_body(body)).digest()).decode()


def parse_keygen(stdout):
    """`ferry dkim keygen` output -> (owner name, [quoted strings of the TXT record], the [[dkim.key]] lines)."""
    text = stdout.decode()
    m = re.search(r'^(\S+)\. 3600 IN TXT ((?:"[^"]*" ?)+)$', text, re.M)
    assert m, f"no `NAME. 3600 IN TXT \"...\"` line in:\n{text}"
    strings = re.findall(r'"([^"]*)"', m.group(2))
    toml = text[text.index("[[dkim.key]]"):] if "[[dkim.key]]" in text else ""
    return m.group(1), strings, toml


# ---------------------------------------------------------------- the network namespace for opendkim-testmsg

class Netns:
    """A network namespace with lo up, /etc/netns/NAME/resolv.conf naming 127.0.0.1, and a DnsServer on
    127.0.0.1:53 inside it (its sockets are made inside the namespace by this thread, then used from here).
    Where namespaces are impossible, `dns` is None and opendkim_verify() skips the test (after what it checked
    with python3-dkim)."""

    def __init__(self):
        self.name = f"ferrytest-dkim-{os.getpid()}"
        self.etc = Path("/etc/netns") / self.name
        self.dns = None
        self.made = False
        self.made_etc_netns = False
        self.skip_reason = None

    def start(self, zone):
        if shutil.which("ip") is None:
            self.skip_reason = "network namespaces impossible: no `ip` command (iproute2)"
            return self
        r = subprocess.run(["ip", "netns", "add", self.name], capture_output=True, text=True)
        if r.returncode != 0:
            self.skip_reason = f"network namespaces impossible here (`ip netns add` failed: {r.stderr.strip()})"
            return self
        self.made = True
        subprocess.run(["ip", "netns", "exec", self.name, "ip", "link", "set", "lo", "up"], check=True)
        self.made_etc_netns = not self.etc.parent.exists()
        self.etc.mkdir(parents=True, exist_ok=True)
        (self.etc / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:2 attempts:1\n")
        libc = ctypes.CDLL(None, use_errno=True)
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        try:
            if libc.setns(target, CLONE_NEWNET) != 0:
                self.skip_reason = f"network namespaces impossible here (setns: {os.strerror(ctypes.get_errno())})"
                return self
            try:
                dns = DnsServer(zone, port=53)
            finally:
                if libc.setns(own, CLONE_NEWNET) != 0:   # never leave this thread inside the namespace
                    raise OSError(ctypes.get_errno(), "setns back to the test's own network namespace")
        finally:
            os.close(own)
            os.close(target)
        self.dns = dns.__enter__()
        return self

    def stop(self):
        if self.dns is not None:
            self.dns.__exit__(None, None, None)
        if self.made:
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
            shutil.rmtree(self.etc, ignore_errors=True)
        if self.made_etc_netns:
            try:
                self.etc.parent.rmdir()         # only if no other namespace has a folder there
            except OSError:
                pass

    def opendkim_verify(self, msg):
        """opendkim-testmsg in verify mode (no -d/-k/-s), keys from the namespace's DNS: (ok, stderr)."""
        if self.dns is None:
            pytest.skip(self.skip_reason)
        r = subprocess.run(["ip", "netns", "exec", self.name, "opendkim-testmsg"], input=msg, capture_output=True,
                           timeout=30)
        return r.returncode == 0, r.stderr.decode("utf-8", "replace")

    def dkimverify(self, msg, index):
        """Debian's `dkimverify` command (python3-dkim) on signature `index`, its keys asked of the namespace's DNS
        through dnspython and /etc/resolv.conf, as on a real host: (ok, output)."""
        if self.dns is None:
            pytest.skip(self.skip_reason)
        r = subprocess.run(["ip", "netns", "exec", self.name, "/usr/bin/dkimverify", "--index", str(index)], input=msg,
                           capture_output=True, timeout=30)
        out = (r.stdout + r.stderr).decode("utf-8", "replace")
        return r.returncode == 0 and "signature ok" in out, out


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def zone_txt():
    """Every key record published, by owner name: what python3-dkim's dnsfunc answers from."""
    return {}


@pytest.fixture(scope="module")
def dns():
    """The test DNS server Ferry (mx, check dkim) asks: 127.0.0.1, a free port."""
    with DnsServer({}) as server:
        yield server


@pytest.fixture(scope="module")
def netns():
    assert shutil.which("opendkim-testmsg"), "opendkim-testmsg not found (Debian package opendkim-tools)"
    ns = Netns()
    try:
        yield ns.start({})
    finally:
        ns.stop()


@pytest.fixture(scope="module")
def publish(dns, zone_txt):
    """publish(name, txt, netns=None): the key record (or "SERVFAIL") at name in every DNS the verifiers ask."""
    def do(name, txt, ns=None):
        records = txt if txt == "SERVFAIL" else [("TXT", txt)]
        dns.set(name, records)
        if ns is not None and ns.dns is not None:
            ns.dns.set(name, records)
        if txt != "SERVFAIL":
            zone_txt[name.lower()] = txt
    return do


@pytest.fixture(scope="module")
def servers():
    """Servers started by this module's fixtures; stopped (and judged) at the end of the module."""
    started = []
    yield started
    problems = []
    for srv in started:
        rc = srv.stop()
        if rc != 0:
            problems.append(f"ferry serve in {srv.base} exited {rc} when stopped:\n{srv.log[-3000:]}")
    assert not problems, "\n\n".join(problems)


def make_signer(base, servers, canonicalization, publish, netns, domains=None, users=None, prefix=""):
    """A Ferry with a submission listener (plaintext AUTH on loopback), an RSA 2048 and an Ed25519 key made by
    `ferry dkim keygen`, [dkim] canonicalization as given; the keys' records published from keygen's output.
    Selectors: PREFIXrsa-CANON, PREFIXed-CANON (each server's own, as the records are published module-wide)."""
    sub = free_port()
    extra = (f'[[listen]]\naddress = "127.0.0.1:{sub}"\nrole = "submission"\nplaintext_auth = true\n\n'
             f'[dkim]\ncanonicalization = "{canonicalization}"\n')
    srv = Ferry(base, extra_toml=extra, domains=domains, **({"users": users} if users else {}))
    srv.sub_port = sub
    tag = canonicalization.replace("/", "-")
    srv.selectors = {"rsa": f"{prefix}rsa-{tag}", "ed25519": f"{prefix}ed-{tag}"}
    for alg, selector in srv.selectors.items():
        r = srv.cli("dkim", "keygen", "example.test", selector, "--algorithm", alg)
        assert r.returncode == 0, r
        owner, strings, toml = parse_keygen(r.stdout)
        assert owner == f"{selector}._domainkey.example.test", owner
        publish(owner, "".join(strings), netns)
        srv.extra_toml += "\n" + toml
    srv.write_config()
    srv.start()
    servers.append(srv)
    return srv


@pytest.fixture(scope="module")
def signers(tmp_path_factory, servers, publish, netns):
    made = {}

    def get(canonicalization):
        if canonicalization not in made:
            made[canonicalization] = make_signer(tmp_path_factory.mktemp("signer"), servers, canonicalization,
                                                 publish, netns)
        return made[canonicalization]
    return get


@pytest.fixture(scope="module")
def checker(dns, tmp_path_factory):
    """A configuration (never started) whose [dns] resolver is the test DNS server, for `ferry check dkim`."""
    return mx_server(tmp_path_factory.mktemp("dkimcheck"), dns, start=False, users=())


@pytest.fixture(scope="module")
def mx(dns, tmp_path_factory, servers):
    srv = mx_server(tmp_path_factory.mktemp("mx"), dns)
    servers.append(srv)
    return srv


@pytest.fixture(scope="module")
def keys(publish):
    """Keys made by openssl / python3-nacl, published under example.org (selector: Key)."""
    made = {"rsa": rsa_key(2048), "ed": ed25519_key(), "rsa1024": rsa_key(1024), "rsa768": rsa_key(768),
            "rsa512": rsa_key(512)}
    for sel, k in made.items():
        publish(f"{sel}._domainkey.example.org", k.txt)
    rsa = made["rsa"]
    publish("revoked._domainkey.example.org", "v=DKIM1; k=rsa; p=")
    publish("testing._domainkey.example.org", rsa.txt.replace("v=DKIM1;", "v=DKIM1; t=y;"))
    publish("sha1only._domainkey.example.org", rsa.txt.replace("v=DKIM1;", "v=DKIM1; h=sha1;"))
    publish("wrongtype._domainkey.example.org", rsa.txt.replace("k=rsa", "k=ed25519"))
    publish("servfail._domainkey.example.org", "SERVFAIL")
    publish("web._domainkey.example.org", rsa.txt + "; s=web")                  # not for email
    publish("anyservice._domainkey.example.org", rsa.txt + "; s=*")
    publish("strict._domainkey.example.org", rsa.txt.replace("v=DKIM1;", "v=DKIM1; t=s;"))   # i= must be d=
    publish("future._domainkey.example.org", rsa.txt.replace("v=DKIM1", "v=DKIM2"))
    publish("extra._domainkey.example.org", rsa.txt + "; zz=unknown tags are ignored")
    publish("garbage._domainkey.example.org", "this is not a key record")
    publish("badp._domainkey.example.org", "v=DKIM1; k=ed25519; p=AAAA")
    return made


def check_dkim(checker, msg):
    """`ferry check dkim` -> [(word, {d, s, a}, reason)] one per line."""
    r = checker.cli("check", "dkim", input=msg, timeout=30)
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, f"ferry check dkim exited {r.returncode}: {r.stderr.decode(errors='replace')}{out}"
    lines = []
    for line in out.splitlines():
        m = re.fullmatch(r"(\w+)((?: [a-z]=\S*)*)(?: \((.*)\))?", line)
        assert m, f"unexpected line from ferry check dkim: {line!r}"
        props = dict(p.split("=", 1) for p in m.group(2).split())
        lines.append((m.group(1), props, m.group(3) or ""))
    return lines


def words(lines):
    return [(w, p.get("s")) for w, p, _ in lines]


# ---------------------------------------------------------------- 1. Ferry signs; python3-dkim and opendkim verify

def submitted_message(canonicalization):
    """Alice's message: folded and padded header fields, a field outside the signed list, and a body whose
    trailing whitespace and blank lines the two canonicalizations treat differently."""
    subject = f"DKIM test of {canonicalization} {time.monotonic_ns()}"
    head = (f"From: Alice Example <{ALICE}>\r\n"
            "To: Bob <bob@example.test>\r\n"
            "Cc: carol@example.org\r\n"
            f"Subject: {subject},\r\n\tfolded onto a second line\r\n"
            f"Date: {formatdate()}\r\n"
            f"Message-ID: <{time.monotonic_ns()}.dkim@example.test>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain;  charset=utf-8\r\n"
            "X-Unsigned: not in the signed list\r\n")
    body = ("Body line one with trailing spaces   \r\n"
            "\tindented  with  inner  spaces\r\n"
            ".a line that starts with a dot\r\n"
            "\r\n"
            "last line\r\n"
            "\r\n\r\n")
    return subject, (head + "\r\n" + body).encode()


def submit_and_fetch(srv, content, subject, count=1):
    with smtplib.SMTP("127.0.0.1", srv.sub_port, timeout=10) as s:
        s.ehlo("client.test")
        s.login(ALICE, DEFAULT_PASSWORD)
        assert s.sendmail(ALICE, ["bob@example.test"], content) == {}
    for f in srv.wait_mail("bob", count=count):
        data = f.read_bytes()
        if subject.encode() in data:
            return strip_delivery_headers(data)
    raise AssertionError(f"no message with subject {subject!r} in bob's mailbox")


@pytest.fixture(scope="module")
def ferry_signed(signers):
    """canonicalization -> (server, the message as sent, the message as delivered, time before, time after)."""
    done = {}

    def get(canonicalization):
        if canonicalization not in done:
            srv = signers(canonicalization)
            subject, content = submitted_message(canonicalization)
            before = int(time.time())
            delivered = submit_and_fetch(srv, content, subject)
            done[canonicalization] = (srv, content, delivered, before, int(time.time()))
        return done[canonicalization]
    return get


CANONS = ["relaxed/relaxed", "simple/simple"]


@pytest.mark.parametrize("canonicalization", CANONS)
def test_ferry_signature_tags(ferry_signed, canonicalization):
    srv, content, delivered, before, after = ferry_signed(canonicalization)
    fields = header_fields(delivered, "DKIM-Signature")
    assert len(fields) == 2, f"expected an RSA and an Ed25519 signature, got {fields}"
    # The DKIM-Signature fields are put above the message's own fields.
    head_names = [l.split(b":")[0].lower() for l in delivered.split(b"\r\n\r\n")[0].split(b"\r\n")
                  if l and l[:1] not in b" \t"]
    assert head_names.index(b"from") > max(i for i, n in enumerate(head_names) if n == b"dkim-signature")
    body = delivered.split(b"\r\n\r\n", 1)[1]
    assert body == content.split(b"\r\n\r\n", 1)[1], "the body was changed on the way"
    seen = {}
    for value in fields:
        t = tags(value)
        seen[t["s"]] = t
        assert t["v"] == "1", t
        assert t["d"] == "example.test", t
        c = t.get("c", "simple/simple")
        assert (c if "/" in c else c + "/simple") == canonicalization, t
        h = [x.strip().lower() for x in t["h"].split(":")]
        assert h.count("from") == 2, f"From is not oversigned (once more than it occurs): h={t['h']}"
        for name in ("to", "cc", "subject", "date", "message-id", "mime-version", "content-type"):
            assert name in h, f"{name} is not signed: h={t['h']}"
        for name in ("received", "return-path", "delivered-to", "dkim-signature", "x-unsigned"):
            assert name not in h, f"{name} should not be signed: h={t['h']}"
        assert before - 2 <= int(t["t"]) <= after + 2, (t["t"], before, after)
        assert "x" not in t, f"Ferry's signatures have no expiry: {t}"
        assert t["bh"] == body_hash(body, canonicalization), "bh= is not the body hash of the delivered body"
        assert len(base64.b64decode(t["b"])) == (256 if t["a"] == "rsa-sha256" else 64), t
    assert {s: t["a"] for s, t in seen.items()} == {srv.selectors["rsa"]: "rsa-sha256",
                                                    srv.selectors["ed25519"]: "ed25519-sha256"}, seen


@pytest.mark.parametrize("canonicalization", CANONS)
def test_ferry_signatures_verify_with_python_dkim_and_opendkim(ferry_signed, zone_txt, netns, checker, dns,
                                                              canonicalization):
    srv, content, delivered, _, _ = ferry_signed(canonicalization)
    assert python_verify(delivered, zone_txt) == [True, True], "python3-dkim does not verify Ferry's signatures"
    # Ferry's own verifier agrees (the RSA record is two strings in DNS, as keygen printed it).
    assert sorted(w for w, _, _ in check_dkim(checker, delivered)) == ["pass", "pass"]
    for i in range(2):       # opendkim-testmsg passes a message if any signature does: one at a time
        ok, err = netns.opendkim_verify(only_signature(delivered, i))
        assert ok, f"opendkim-testmsg does not verify signature {i}: {err}"
        ok, out = netns.dkimverify(delivered, i)
        assert ok, f"dkimverify does not verify signature {i}: {out}"


@pytest.mark.parametrize("canonicalization", CANONS)
@pytest.mark.parametrize("tamper", ["added-from", "changed-body"])
def test_tampered_ferry_signed_message_fails_both_verifiers(ferry_signed, zone_txt, netns, canonicalization,
                                                             tamper):
    srv, content, delivered, _, _ = ferry_signed(canonicalization)
    if tamper == "added-from":
        bad = b"From: Mallory <mallory@example.test>\r\n" + delivered
    else:
        bad = delivered.replace(b"Body line one", b"Body line 0ne", 1)
    assert bad != delivered
    assert py_verdicts(delivered, zone_txt) == [True, True]
    assert py_verdicts(bad, zone_txt) == [False, False], f"python3-dkim still verifies after {tamper}"
    for i in range(2):
        assert netns.opendkim_verify(only_signature(delivered, i))[0], f"signature {i} does not verify untouched"
        ok, err = netns.opendkim_verify(only_signature(bad, i))
        assert not ok, f"opendkim-testmsg still verifies signature {i} after {tamper}"
        ok, out = netns.dkimverify(bad, i)
        assert not ok, f"dkimverify still verifies signature {i} after {tamper}: {out}"


def test_relaxed_signature_survives_whitespace_changes_simple_does_not(ferry_signed, zone_txt):
    """What distinguishes the two canonicalizations Ferry signed with: re-spaced header values and trailing
    whitespace in the body."""
    def respace(msg):
        head, body = msg.split(b"\r\n\r\n", 1)
        head = head.replace(b"Content-Type: text/plain;  charset=utf-8", b"Content-Type:   text/plain; charset=utf-8")
        body = body.replace(b"trailing spaces   \r\n", b"trailing spaces\r\n")
        return head + b"\r\n\r\n" + body
    relaxed = ferry_signed("relaxed/relaxed")[2]
    simple = ferry_signed("simple/simple")[2]
    assert py_verdicts(respace(relaxed), zone_txt) == [True, True]
    assert py_verdicts(respace(simple), zone_txt) == [False, False]


def test_keygen_keys_are_rsa_2048_and_ed25519(signers):
    srv = signers("relaxed/relaxed")
    for alg, selector in srv.selectors.items():
        path = srv.data_dir / "dkim" / f"example.test.{selector}.pem"
        text = subprocess.run(["openssl", "pkey", "-in", str(path), "-noout", "-text"], capture_output=True,
                              text=True, check=True).stdout
        assert ("Private-Key: (2048 bit" in text) if alg == "rsa" else text.startswith("ED25519 Private-Key"), text[:80]


def test_mail_not_from_an_authenticated_user_is_not_signed(signers):
    srv = signers("relaxed/relaxed")
    subject = f"unsigned {time.monotonic_ns()}"
    with srv.connect() as c:                 # the mx listener: no AUTH
        c.ehlo("client.test")
        c.send_message("someone@client.test", ["bob@example.test"],
                       make_message(subject, sender=ALICE, to="bob@example.test"))
        c.quit()
    deadline = time.monotonic() + 10
    while True:
        found = [f.read_bytes() for f in srv.mail_files("bob") if subject.encode() in f.read_bytes()]
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert found, "the message did not arrive"
    assert header_fields(found[0], "DKIM-Signature") == []


def test_subdomain_is_signed_with_the_parent_domains_keys(tmp_path, servers, publish, netns, zone_txt):
    srv = make_signer(tmp_path / "sub", servers, "relaxed/relaxed", publish, netns, prefix="sub-",
                      domains=["example.test", "news.example.test"],
                      users=("alice@example.test", "alice@news.example.test"))
    subject = f"from a subdomain {time.monotonic_ns()}"
    content = dated_message(subject, sender="alice@news.example.test", to="alice@example.test")
    with smtplib.SMTP("127.0.0.1", srv.sub_port, timeout=10) as s:
        s.login("alice@news.example.test", DEFAULT_PASSWORD)
        assert s.sendmail("alice@news.example.test", ["alice@example.test"], content) == {}
    [f] = srv.wait_mail("alice")
    delivered = strip_delivery_headers(f.read_bytes())
    fields = [tags(v) for v in header_fields(delivered, "DKIM-Signature")]
    assert sorted((t["d"], t["s"]) for t in fields) == sorted(("example.test", s) for s in srv.selectors.values())
    assert python_verify(delivered, zone_txt) == [True, True]
    for i in range(2):
        ok, err = netns.opendkim_verify(only_signature(delivered, i))
        assert ok, err


def test_sign_false_signs_nothing_even_with_keys(tmp_path, servers):
    sub = free_port()
    srv = Ferry(tmp_path / "nosign", extra_toml=f'[[listen]]\naddress = "127.0.0.1:{sub}"\nrole = "submission"\n'
                                                f'plaintext_auth = true\n\n[dkim]\nsign = false\n')
    r = srv.cli("dkim", "keygen", "example.test", "off", "--algorithm", "ed25519")
    assert r.returncode == 0, r
    srv.extra_toml += "\n" + parse_keygen(r.stdout)[2]
    srv.write_config()
    srv.sub_port = sub
    srv.start()
    servers.append(srv)
    subject = f"sign off {time.monotonic_ns()}"
    delivered = submit_and_fetch(srv, dated_message(subject), subject)
    assert header_fields(delivered, "DKIM-Signature") == []


def test_relayed_to_a_second_ferry_it_verifies_there_too(tmp_path, servers, dns, publish, netns, zone_txt):
    """Ferry A signs alice's mail and relays it by MX (STARTTLS, its SMTP client) to Ferry B, whose mx listener
    verifies it: dkim=pass for both keys in B's Authentication-Results, and B's copy verifies with python3-dkim and
    opendkim-testmsg."""
    dns.set("example.net", [("MX", 10, "mx.example.net")])
    dns.set("mx.example.net", [("A", "127.0.0.1")])
    b = mx_server(tmp_path / "b", dns, domains=["example.net"], users=("bob@example.net",), hostname="mx.example.net",
                  start=True)
    servers.append(b)
    sub = free_port()
    a = Ferry(tmp_path / "a", extra_toml=(
        f'[[listen]]\naddress = "127.0.0.1:{sub}"\nrole = "submission"\nplaintext_auth = true\n\n'
        f'[dns]\nresolver = "{dns.address}"\ntimeout = "2s"\n\n'
        f'[outbound]\nport = {b.port}\nconnect_timeout = "2s"\ncommand_timeout = "5s"\n'))
    a.sub_port = sub
    selectors = {"rsa": "relay-rsa", "ed25519": "relay-ed"}
    for alg, selector in selectors.items():
        r = a.cli("dkim", "keygen", "example.test", selector, "--algorithm", alg)
        assert r.returncode == 0, r
        owner, strings, toml = parse_keygen(r.stdout)
        publish(owner, "".join(strings), netns)
        a.extra_toml += "\n" + toml
    a.write_config()
    a.start()
    servers.append(a)
    subject = f"relayed {time.monotonic_ns()}"
    _, content = submitted_message("relaxed/relaxed")
    content = content.replace(b"Subject: DKIM test", f"Subject: {subject}".encode(), 1)
    with smtplib.SMTP("127.0.0.1", sub, timeout=10) as s:
        s.login(ALICE, DEFAULT_PASSWORD)
        assert s.sendmail(ALICE, ["bob@example.net"], content) == {}
    [f] = b.wait_mail("bob", domain="example.net", timeout=20)
    delivered = strip_delivery_headers(f.read_bytes())
    res = auth_results(delivered, authserv_id="mx.example.net")
    for selector in selectors.values():
        assert result_of(res, "dkim", header_d="example.test", header_s=selector) == "pass", res
    assert py_verdicts(delivered, zone_txt) == [True, True]
    for i in range(2):
        ok, err = netns.opendkim_verify(only_signature(delivered, i))
        assert ok, f"opendkim-testmsg does not verify signature {i} of the relayed copy: {err}"


# ---------------------------------------------------------------- 2. python3-dkim signs; Ferry verifies

def msg_for(subject="verify", body="Hello Bob.\r\n"):
    return message(from_addr="alice@example.org", to="bob@example.test", subject=f"{subject} {time.monotonic_ns()}",
                   body=body)


@pytest.mark.parametrize("sel,canon", [
    ("rsa", (b"relaxed", b"relaxed")), ("rsa", (b"simple", b"simple")), ("rsa", (b"relaxed", b"simple")),
    ("ed", (b"relaxed", b"relaxed")), ("ed", (b"simple", b"simple")), ("rsa1024", (b"relaxed", b"relaxed")),
], ids=["rsa-relaxed", "rsa-simple", "rsa-relaxed-simple", "ed25519-relaxed", "ed25519-simple", "rsa1024"])
def test_check_dkim_passes_python_dkim_signatures(checker, keys, sel, canon):
    signed = sign(msg_for(), keys[sel], "example.org", sel, canon=canon)
    [(word, props, reason)] = check_dkim(checker, signed)
    assert (word, props.get("d"), props.get("s")) == ("pass", "example.org", sel), (word, props, reason)
    assert props.get("a") == ("ed25519-sha256" if sel == "ed" else "rsa-sha256"), props


def test_check_dkim_reads_lf_line_ends_as_crlf(checker, keys):
    signed = sign(msg_for(), keys["ed"], "example.org", "ed", canon=(b"simple", b"simple"))
    assert words(check_dkim(checker, signed.replace(b"\r\n", b"\n"))) == [("pass", "ed")]


@pytest.mark.parametrize("canon", [(b"relaxed", b"relaxed"), (b"simple", b"simple")], ids=["relaxed", "simple"])
def test_body_length_l_tag(checker, keys, canon):
    signed = sign(msg_for(body="Signed part.\r\n"), keys["rsa"], "example.org", "rsa", canon=canon, length=True)
    assert "l" in tags(header_fields(signed, "DKIM-Signature")[0])
    # Text after the l= octets is not covered; a change inside them is.
    assert words(check_dkim(checker, signed + b"Appended after signing.\r\n")) == [("pass", "rsa")]
    assert words(check_dkim(checker, signed.replace(b"Signed part.", b"Signed bart."))) == [("fail", "rsa")]


def test_relaxed_tolerates_whitespace_simple_does_not(checker, keys):
    m = msg_for(body="Some text  \r\n")
    def respace(x):
        return x.replace(b"Subject: ", b"Subject:   ", 1).replace(b"Some text  \r\n", b"Some text\r\n")
    relaxed = sign(m, keys["rsa"], "example.org", "rsa", canon=(b"relaxed", b"relaxed"))
    simple = sign(m, keys["rsa"], "example.org", "rsa", canon=(b"simple", b"simple"))
    assert words(check_dkim(checker, respace(relaxed))) == [("pass", "rsa")]
    assert words(check_dkim(checker, respace(simple))) == [("fail", "rsa")]


def test_unsigned_header_may_change_signed_may_not(checker, keys):
    signed = sign(msg_for(), keys["rsa"], "example.org", "rsa")
    assert words(check_dkim(checker, signed.replace(b"\r\n\r\n", b"\r\nX-Added: later\r\n\r\n", 1))) \
        == [("pass", "rsa")]
    lines = check_dkim(checker, signed.replace(b"Subject: verify", b"Subject: verifY", 1))
    assert words(lines) == [("fail", "rsa")], lines


def test_tampered_body_fails(checker, keys):
    for sel in ("rsa", "ed"):
        signed = sign(msg_for(), keys[sel], "example.org", sel)
        lines = check_dkim(checker, signed.replace(b"Hello Bob.", b"Hello Eve."))
        assert words(lines) == [("fail", sel)], lines
        assert "body hash" in lines[0][2], lines


def past_expiry(key, sel):
    now = int(time.time())
    return sign_custom(msg_for(), key, "example.org", sel, t=now - 7200, x=now - 3600)


@pytest.mark.parametrize("case,want", [
    ("missing-key", "permerror"),
    ("servfail", "temperror"),
    ("revoked", "permerror"),
    ("testing", "pass"),            # t=y: still verified (RFC 6376 3.6.1)
    ("rsa768", "permerror"),        # RFC 8301 3.2: under 1024 bits
    ("rsa512", "permerror"),
    ("rsa-sha1", "permerror"),      # RFC 8301 3.1
    ("sha1only", "permerror"),      # key h=sha1 does not allow a sha256 signature
    ("wrongtype", "permerror"),     # key k=ed25519 for an rsa-sha256 signature
    ("expired", "fail"),            # x= in the past
    ("x-before-t", "permerror"),    # x= not after t=: a malformed signature
    ("future-x", "pass"),
    # signature tags (RFC 6376 3.5) and key record tags (3.6.1)
    ("i-outside-d", "permerror"),   # i= must be d= or a subdomain of it
    ("i-subdomain", "pass"),
    ("no-bh", "permerror"),         # a required tag missing
    ("no-from-in-h", "permerror"),  # From must be signed
    ("unknown-sig-tag", "pass"),    # unknown tags are ignored
    ("version-2", "permerror"),
    ("bogus-c", "permerror"),
    ("key-not-for-email", "permerror"),
    ("key-any-service", "pass"),
    ("key-t=s-subdomain-i", "permerror"),
    ("key-t=s-same-i", "pass"),
    ("key-version-2", "permerror"),
    ("key-unknown-tag", "pass"),
    ("key-garbage", "permerror"),
    ("key-bad-ed25519", "permerror"),
])
def test_check_dkim_results(checker, keys, case, want):
    rsa = keys["rsa"]
    now = int(time.time())
    msg = {
        "missing-key": lambda: sign(msg_for(), rsa, "example.org", "nokey"),
        "servfail": lambda: sign(msg_for(), rsa, "example.org", "servfail"),
        "revoked": lambda: sign(msg_for(), rsa, "example.org", "revoked"),
        "testing": lambda: sign(msg_for(), rsa, "example.org", "testing"),
        "rsa768": lambda: sign(msg_for(), keys["rsa768"], "example.org", "rsa768"),
        "rsa512": lambda: sign(msg_for(), keys["rsa512"], "example.org", "rsa512"),
        "rsa-sha1": lambda: sign_custom(msg_for(), rsa, "example.org", "rsa", alg=b"rsa-sha1"),
        "sha1only": lambda: sign(msg_for(), rsa, "example.org", "sha1only"),
        "wrongtype": lambda: sign(msg_for(), rsa, "example.org", "wrongtype"),
        "expired": lambda: past_expiry(rsa, "rsa"),
        "x-before-t": lambda: sign_custom(msg_for(), rsa, "example.org", "rsa", x=now - 60),
        "future-x": lambda: sign_custom(msg_for(), rsa, "example.org", "rsa", x=now + 3600),
        "i-outside-d": lambda: sign_custom(msg_for(), rsa, "example.org", "rsa", set_tags={"i": "@example.net"}),
        "i-subdomain": lambda: sign_custom(msg_for(), rsa, "example.org", "rsa",
                                           set_tags={"i": "joe@news.example.org"}),
        "no-bh": lambda: sign_custom(msg_for(), rsa, "example.org", "rsa", drop_tags=("bh",)),
        "no-from-in-h": lambda: sign_custom(msg_for(), rsa, "example.org", "rsa", set_tags={"h": "to:subject"}),
        "unknown-sig-tag": lambda: sign_custom(msg_for(), rsa, "example.org", "rsa", set_tags={"zz": "yy"}),
        "version-2": lambda: sign_custom(msg_for(), rsa, "example.org", "rsa", set_tags={"v": "2"}),
        "bogus-c": lambda: sign_custom(msg_for(), rsa, "example.org", "rsa", set_tags={"c": "fancy/relaxed"}),
        "key-not-for-email": lambda: sign(msg_for(), rsa, "example.org", "web"),
        "key-any-service": lambda: sign(msg_for(), rsa, "example.org", "anyservice"),
        "key-t=s-subdomain-i": lambda: sign_custom(msg_for(), rsa, "example.org", "strict",
                                                   set_tags={"i": "joe@news.example.org"}),
        "key-t=s-same-i": lambda: sign_custom(msg_for(), rsa, "example.org", "strict",
                                              set_tags={"i": "joe@example.org"}),
        "key-version-2": lambda: sign(msg_for(), rsa, "example.org", "future"),
        "key-unknown-tag": lambda: sign(msg_for(), rsa, "example.org", "extra"),
        "key-garbage": lambda: sign(msg_for(), rsa, "example.org", "garbage"),
        "key-bad-ed25519": lambda: sign(msg_for(), keys["ed"], "example.org", "badp"),
    }[case]()
    if case in ("rsa768", "rsa512", "rsa-sha1"):
        # The signature itself is sound (so only the rule of RFC 8301 can refuse it): python3-dkim verifies it
        # when told to accept small keys.
        sel = case if case != "rsa-sha1" else "rsa"
        txt = keys[sel].txt
        assert dkim.verify(msg, dnsfunc=lambda name, timeout=5: txt.encode(), minkey=512), case
    lines = check_dkim(checker, msg)
    assert len(lines) == 1 and lines[0][0] == want, f"{case}: expected {want}, got {lines}"
    assert lines[0][1].get("d") == "example.org", lines


def test_two_signatures_one_good_one_bad(checker, keys):
    bad = sign(msg_for(), keys["rsa"], "example.org", "rsa").replace(b"Hello Bob.", b"Hello Eve.")
    both = sign(bad, keys["ed"], "example.org", "ed")        # signs the changed body: good
    assert words(check_dkim(checker, both)) == [("pass", "ed"), ("fail", "rsa")]


def test_selector_with_an_ed25519_and_an_rsa_record_serves_both_algorithms(checker, keys, dns):
    # RFC 6376 3.6.2.2 leaves several key records at one name undefined; a domain adding Ed25519 (RFC 8463) publishes
    # both kinds at one selector. Each signature takes the record whose k= fits its a=, whichever comes first.
    dns.set("both._domainkey.example.org", [("TXT", keys["ed"].txt), ("TXT", keys["rsa"].txt)])
    for sel in ("rsa", "ed"):
        lines = check_dkim(checker, sign(msg_for(), keys[sel], "example.org", "both"))
        assert words(lines) == [("pass", "both")], (sel, lines)
        assert lines[0][1].get("a") == ("ed25519-sha256" if sel == "ed" else "rsa-sha256"), lines


def test_txt_record_without_strings_beside_the_key_record_is_skipped(checker, keys, dns):
    # A TXT record of RDLENGTH 0 (no character-string) at the selector is no key record (RFC 6376 3.6.2.2); the key
    # beside it is used, not a temperror for the whole answer.
    dns.set("emptytxt._domainkey.example.org", [("TXT", []), ("TXT", keys["rsa"].txt)])
    lines = check_dkim(checker, sign(msg_for(), keys["rsa"], "example.org", "emptytxt"))
    assert words(lines) == [("pass", "emptytxt")], lines


def test_only_ten_signatures_are_verified(checker, keys):
    m = msg_for()
    for _ in range(12):
        m = sign(m, keys["ed"], "example.org", "ed")
    lines = check_dkim(checker, m)
    assert [w for w, _, _ in lines] == ["pass"] * 10 + ["permerror"] * 2, lines


def test_unsigned_is_none(checker):
    lines = check_dkim(checker, msg_for())
    assert [w for w, _, _ in lines] == ["none"], lines


# -- through the mx listener

def deliver_to_mx(mx, content, subject):
    """content (None: already sent) from alice@example.org to bob through mx -> bob's copy, as delivered."""
    if content is not None:
        with mx.connect() as c:
            c.ehlo("client.example.org")
            c.send_message("alice@example.org", ["bob@example.test"], content)
            c.quit()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for f in mx.mail_files("bob"):
            data = f.read_bytes()
            if subject.encode() in data:
                return strip_delivery_headers(data)
        time.sleep(0.05)
    raise AssertionError(f"message {subject!r} not delivered\n{mx.log[-3000:]}")


def test_mx_records_dkim_results(mx, keys):
    cases = [("rsa", (b"relaxed", b"relaxed"), None, "pass"),
             ("ed", (b"simple", b"simple"), None, "pass"),
             ("ed", (b"relaxed", b"relaxed"), "append", "pass"),      # with l=: text after it is not covered
             ("rsa", (b"simple", b"simple"), "body", "fail")]
    for sel, canon, change, want in cases:
        m = msg_for(f"mx {sel} {canon[0].decode()} {change}")
        subject = re.search(rb"Subject: (.*)\r\n", m).group(1).decode()
        signed = sign(m, keys[sel], "example.org", sel, canon=canon, length=change == "append")
        if change == "append":
            signed += b"Appended by a mailing list.\r\n"
        elif change == "body":
            signed = signed.replace(b"Hello Bob.", b"Hello Eve.")
        delivered = deliver_to_mx(mx, signed, subject)
        res = auth_results(delivered)
        assert result_of(res, "dkim", header_d="example.org", header_s=sel) == want, (sel, canon, change, res)
        # header.a, and header.b: the start of the signature's b= (RFC 6008), so a reader can tell them apart
        sig = tags(header_fields(signed, "DKIM-Signature")[0])
        [props] = [p for m_, r, p, _ in res if m_ == "dkim"]
        assert props.get("header.a") == sig["a"], props
        assert len(props.get("header.b", "")) >= 8 and sig["b"].startswith(props["header.b"]), props


def test_mx_records_each_of_two_signatures(mx, keys):
    m = msg_for("mx two signatures")
    subject = re.search(rb"Subject: (.*)\r\n", m).group(1).decode()
    bad = sign(m, keys["rsa"], "example.org", "rsa").replace(b"Hello Bob.", b"Hello Eve.")
    both = sign(bad, keys["ed"], "example.org", "ed")
    res = auth_results(deliver_to_mx(mx, both, subject))
    assert result_of(res, "dkim", header_d="example.org", header_s="ed") == "pass", res
    assert result_of(res, "dkim", header_d="example.org", header_s="rsa") == "fail", res


@pytest.mark.parametrize("canon", [(b"relaxed", b"relaxed"), (b"simple", b"simple")], ids=["relaxed", "simple"])
def test_mx_verifies_dot_stuffed_data_and_bdat_chunks(mx, keys, canon):
    """The body the mx listener hashes is the message as sent: dot-stuffing undone (DATA), chunks joined wherever
    they are cut (BDAT: inside the header, in the CRLF CRLF between header and body, one octet at a time)."""
    body = ".leading dot\r\n..two dots\r\n.\r\n" + "x" * 70 + "\r\nend\r\n"
    for mode in ("data", "bdat"):
        m = msg_for(f"mx {mode} {canon[0].decode()}", body=body)
        subject = re.search(rb"Subject: (.*)\r\n", m).group(1).decode()
        signed = sign(m, keys["ed"], "example.org", "ed", canon=canon)
        with mx.connect() as c:
            c.ehlo("client.example.org")
            c.expect("MAIL FROM:<alice@example.org>", 250)
            c.expect("RCPT TO:<bob@example.test>", 250)
            if mode == "data":
                r = c.data(signed)
            else:
                end = signed.index(b"\r\n\r\n")
                cuts = [0, 7, end - 1, *range(end, end + 5), end + 20, len(signed) - 1, len(signed)]
                for i in range(len(cuts) - 1):
                    chunk = signed[cuts[i]:cuts[i + 1]]
                    last = b" LAST" if i == len(cuts) - 2 else b""
                    c.send(b"BDAT %d%s\r\n" % (len(chunk), last) + chunk)
                    r = c.reply()
                    assert r.code == 250, r
            assert r.is_(250, "2.0.0"), r
            c.quit()
        delivered = deliver_to_mx(mx, None, subject)
        assert delivered.endswith(signed), "the message was changed on the way"
        res = auth_results(delivered)
        assert result_of(res, "dkim", header_d="example.org", header_s="ed") == "pass", (mode, res)


# ---------------------------------------------------------------- 3. keygen, and broken keys

@pytest.fixture
def plain(tmp_path):
    """A configuration (not started) for the keygen and key loading tests."""
    return Ferry(tmp_path / "kg", users=())


def test_keygen_writes_mode_0600_and_never_overwrites(plain):
    r = plain.cli("dkim", "keygen", "example.test", "s1")
    assert r.returncode == 0, r
    path = plain.data_dir / "dkim" / "example.test.s1.pem"
    assert path.is_file() and (path.stat().st_mode & 0o777) == 0o600, oct(path.stat().st_mode)
    assert str(path) in r.stdout.decode(), r.stdout
    before = path.read_bytes()
    r = plain.cli("dkim", "keygen", "example.test", "s1", "--algorithm", "ed25519")
    assert r.returncode == 1, r
    assert path.read_bytes() == before, "an existing key was overwritten"
    out = plain.base / "own.pem"
    out.write_text("keep me\n")
    r = plain.cli("dkim", "keygen", "example.test", "s2", "--output", str(out))
    assert r.returncode == 1 and out.read_text() == "keep me\n", r
    out2 = plain.base / "new.pem"
    r = plain.cli("dkim", "keygen", "example.test", "s3", "--output", str(out2))
    assert r.returncode == 0 and (out2.stat().st_mode & 0o777) == 0o600, r
    assert f'private_key = "{out2}"' in r.stdout.decode(), r.stdout


@pytest.mark.parametrize("alg,bits", [("rsa", 2048), ("rsa", 1024), ("rsa", 4096), ("ed25519", None)])
def test_keygen_record_is_the_public_key_in_255_octet_strings(plain, alg, bits):
    args = ["dkim", "keygen", "example.test", "sel", "--algorithm", alg] + (["--bits", str(bits)] if bits else [])
    r = plain.cli(*args)
    assert r.returncode == 0, r
    owner, strings, toml = parse_keygen(r.stdout)
    assert owner == "sel._domainkey.example.test"
    assert all(1 <= len(s.encode()) <= 255 for s in strings), [len(s) for s in strings]
    assert all(len(s.encode()) == 255 for s in strings[:-1]), [len(s) for s in strings]
    record = "".join(strings)
    t = tags(record)
    assert (t["v"], t["k"]) == ("DKIM1", alg), record
    pem = plain.data_dir / "dkim" / "example.test.sel.pem"
    der = subprocess.run(["openssl", "pkey", "-in", str(pem), "-pubout", "-outform", "DER"], capture_output=True,
                         check=True).stdout
    if alg == "rsa":
        assert base64.b64decode(t["p"]) == der
        text = subprocess.run(["openssl", "pkey", "-in", str(pem), "-noout", "-text"], capture_output=True,
                              text=True, check=True).stdout
        assert f"Private-Key: ({bits} bit" in text
    else:
        assert base64.b64decode(t["p"]) == der[-32:]       # RFC 8463: the raw 32-octet public key
    assert re.search(r'^\[\[dkim\.key\]\]\ndomain = "example.test"\nselector = "sel"$', toml, re.M), toml


@pytest.mark.parametrize("args", [["--bits", "512"], ["--bits", "8192"]], ids=["512", "8192"])
def test_keygen_refuses_bad_sizes(plain, args):
    r = plain.cli("dkim", "keygen", "example.test", "small", *args)
    assert r.returncode == 2, r
    assert not (plain.data_dir / "dkim" / "example.test.small.pem").exists()


@pytest.mark.parametrize("domain, selector", [
    ("example.test", "a-"), ("example.test", "x" * 64), ("example.test", "s_1"), ("b\u00fccher.test", "s1"),
], ids=["selector ends in -", "selector over 63", "selector with _", "U-label domain"])
def test_keygen_refuses_names_the_config_would_refuse(plain, domain, selector):
    """What keygen accepts, [[dkim.key]] loads: the printed block is never one ferry serve refuses."""
    r = plain.cli("dkim", "keygen", domain, selector)
    assert r.returncode == 2 and b"is not a" in r.stderr, r
    assert not (plain.data_dir / "dkim").exists() or not list((plain.data_dir / "dkim").glob("*.pem"))


def test_keygen_key_signs_mail_that_verifies(tmp_path, servers, publish, netns, zone_txt):
    """The printed record, joined, is what verifies: made with --bits 1024 and --output, to the second Ferry's
    mailbox through the printed [[dkim.key]] lines (private_key included)."""
    sub = free_port()
    srv = Ferry(tmp_path / "own", extra_toml=f'[[listen]]\naddress = "127.0.0.1:{sub}"\nrole = "submission"\n'
                                             f'plaintext_auth = true\n')
    r = srv.cli("dkim", "keygen", "example.test", "k1024", "--bits", "1024", "--output", str(srv.base / "k.pem"))
    assert r.returncode == 0, r
    owner, strings, toml = parse_keygen(r.stdout)
    publish(owner, "".join(strings), netns)
    srv.extra_toml += "\n" + toml
    srv.write_config()
    srv.sub_port = sub
    srv.start()
    servers.append(srv)
    subject = f"keygen 1024 {time.monotonic_ns()}"
    delivered = submit_and_fetch(srv, dated_message(subject), subject)
    assert [tags(v)["s"] for v in header_fields(delivered, "DKIM-Signature")] == ["k1024"]
    assert python_verify(delivered, zone_txt) == [True]
    ok, err = netns.opendkim_verify(delivered)
    assert ok, err


@pytest.mark.parametrize("content", ["garbage", "missing", "rsa512"])
def test_broken_key_stops_serve_and_fails_check_config(tmp_path, content):
    srv = Ferry(tmp_path / "broken", users=())
    key = srv.base / "broken.pem"
    if content == "garbage":
        key.write_text("-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n")
    elif content == "rsa512":
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:512", "-out",
                        str(key)], check=True, capture_output=True)
    srv.extra_toml = f'[[dkim.key]]\ndomain = "example.test"\nselector = "b"\nprivate_key = "{key}"\n'
    srv.write_config()
    r = srv.cli("check-config")
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode == 2, (r.returncode, err)
    assert "dkim.key[0]" in err, err
    # Not Ferry.start(): a server that exits during start-up is what this test wants.
    p = subprocess.run([ferry_bin(), "serve", "--config", str(srv.config)], capture_output=True, timeout=20,
                       cwd=srv.base)
    out = (p.stdout + p.stderr).decode("utf-8", "replace")
    assert p.returncode == 1, (p.returncode, out)
    assert "dkim.key[0]" in out, out
