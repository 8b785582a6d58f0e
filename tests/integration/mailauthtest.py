"""Helpers for the message authentication tests (test_mailauth_*.py): DKIM keys made and messages signed by
python3-dkim (an independent implementation), a Ferry whose mx listener checks SPF, DKIM and DMARC against a test
DNS server, and Authentication-Results read back.

    with DnsServer(zone) as dns:
        srv = mx_server(tmp_path, dns)                 # started; [mailauth] verify on, [dns] resolver = dns
        key = rsa_key()                                # or ed25519_key()
        dns.set(f"sel._domainkey.example.org", [("TXT", key.txt)])
        msg = sign(message(...), key, "example.org", "sel")
        ...
        results = auth_results(delivered_bytes)         # [(authserv_id, [(method, result, props, comment)])]
"""

import base64
import re
import subprocess
from dataclasses import dataclass
from email.utils import formatdate

import dkim

from ferrytest import Ferry

HELO = "client.example.org"


@dataclass
class Key:
    algorithm: str      # "rsa" or "ed25519"
    private: bytes      # what dkim.sign() takes: PEM for RSA, base64 of the 32-octet seed for Ed25519
    txt: str            # the key record: "v=DKIM1; k=...; p=..."


def rsa_key(bits=2048):
    pem = subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{bits}"],
                         check=True, capture_output=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubout", "-outform", "DER"], input=pem, check=True,
                         capture_output=True).stdout
    return Key("rsa", pem, "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode())


def ed25519_key():
    import nacl.signing
    sk = nacl.signing.SigningKey.generate()
    return Key("ed25519", base64.b64encode(bytes(sk)),
               "v=DKIM1; k=ed25519; p=" + base64.b64encode(bytes(sk.verify_key)).decode())


def message(from_addr="alice@example.org", to="bob@example.test", subject="hello", body="Hello Bob.\r\n",
            extra_headers=()):
    """A plain message with CRLF line ends."""
    lines = [f"From: {from_addr}", f"To: {to}", f"Subject: {subject}", f"Date: {formatdate()}",
             f"Message-ID: <{abs(hash((from_addr, subject, body)))}@example.org>", *extra_headers]
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def sign(msg, key, domain, selector, canon=(b"relaxed", b"relaxed"), headers=None, length=False):
    """msg with a DKIM-Signature by python3-dkim in front."""
    alg = b"rsa-sha256" if key.algorithm == "rsa" else b"ed25519-sha256"
    include = [h.encode() if isinstance(h, str) else h for h in headers] if headers else None
    sig = dkim.sign(msg, selector.encode(), domain.encode(), key.private, canonicalize=canon,
                    signature_algorithm=alg, include_headers=include, length=length)
    return sig + msg


def python_verify(msg, zone_txt):
    """Every DKIM-Signature of msg checked by python3-dkim; zone_txt maps 'sel._domainkey.dom' to the TXT text.
    Returns one bool per signature, in header order."""
    def dnsfunc(name, timeout=5):
        return zone_txt.get(name.decode().rstrip(".").lower(), "").encode() or None
    d = dkim.DKIM(msg)
    count = len([1 for line in msg.split(b"\r\n\r\n", 1)[0].split(b"\r\n") if line.lower().startswith(b"dkim-signature:")])
    return [d.verify(idx=i, dnsfunc=dnsfunc) for i in range(count)]


def mx_server(base, dns, *, mailauth="", start=True, **kw):
    """A Ferry (hostname mx.example.test, local domain example.test) whose mx listener checks mail against the
    test DNS server `dns`. `mailauth` adds lines to its [mailauth] table; other keywords go to Ferry()."""
    extra = kw.pop("extra_toml", "")
    extra_toml = (f'[dns]\nresolver = "{dns.address}"\ntimeout = "2s"\n\n[mailauth]\nverify = true\n{mailauth}\n'
                  + extra)
    srv = Ferry(base, extra_toml=extra_toml, **kw)
    if start:
        srv.start()
    return srv


def strip_delivery_headers(data):
    """A delivered file without the Return-Path and Delivered-To lines Ferry's Maildir delivery puts first."""
    lines = data.split(b"\r\n", 2)
    assert lines[0].startswith(b"Return-Path:") and lines[1].startswith(b"Delivered-To:"), data[:200]
    return lines[2]


def header_fields(data, name):
    """The unfolded values of every header field `name` of a message (bytes in, str out)."""
    head = data.split(b"\r\n\r\n", 1)[0]
    head = re.sub(rb"\r\n[ \t]+", b" ", head).decode("utf-8", "replace")
    out = []
    for line in head.split("\r\n"):
        k, _, v = line.partition(":")
        if k.strip().lower() == name.lower():
            out.append(v.strip())
    return out


def _strip_comments(text):
    depth, out = 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
        elif depth == 0:
            out.append(ch)
    return "".join(out)


def parse_auth_results(value):
    """One Authentication-Results value (RFC 8601) -> (authserv_id, [(method, result, {ptype.property: value},
    comments)]). Good enough for Ferry's own fields and the tests' forged ones."""
    parts = [p.strip() for p in value.split(";")]
    authserv = _strip_comments(parts[0]).split()[0].lower()
    results = []
    for p in parts[1:]:
        if not p or _strip_comments(p).strip() == "none":
            continue
        comments = " ".join(re.findall(r"\(([^)]*)\)", p))
        tokens = _strip_comments(p).split()
        method, _, result = tokens[0].partition("=")
        props = {}
        for t in tokens[1:]:
            k, _, v = t.partition("=")
            props[k.lower()] = v.strip('"')
        results.append((method.lower(), result.lower(), props, comments))
    return authserv, results


def auth_results(data, authserv_id="mx.example.test"):
    """The results Ferry recorded in a delivered or relayed message: [(method, result, props, comments)] of the
    Authentication-Results fields under authserv_id."""
    out = []
    for v in header_fields(data, "Authentication-Results"):
        sid, res = parse_auth_results(v)
        if sid == authserv_id:
            out.extend(res)
    return out


def result_of(results, method, **props):
    """The result word of the first result of `method` whose properties include props (e.g. smtp_mailfrom=...,
    header_d=...: underscores stand for dots)."""
    want = {k.replace("_", ".", 1): v for k, v in props.items()}
    for m, r, p, _ in results:
        if m == method and all(p.get(k) == v for k, v in want.items()):
            return r
    return None
