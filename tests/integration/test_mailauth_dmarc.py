"""DMARC (RFC 7489) and Authentication-Results (RFC 8601) end to end through a real `ferry serve` mx listener
(issue 7): policy discovery at the From: domain and at its organizational domain (Debian's Public Suffix List),
relaxed and strict alignment of SPF and DKIM, p=/sp=/pct=, reject (550 5.7.1, nothing delivered), quarantine
(the mailbox's Maildir++ .Junk folder), none; none/temperror/permerror; forged Authentication-Results removed; our
field at the top; `ferry check message` agreeing with the server; the `checked` log line; no checks on submission.

One test DNS server and one Ferry (mailauth verify on, dmarc_enforce default) serve the whole module; every test
uses domains of its own (see ZONE), a Subject and envelope local part of its own, and finds its message by Subject,
so tests do not see each other's mail. The client is 127.0.0.1: SPF_PASS allows it, SPF_FAIL does not. DKIM
signatures are made by python3-dkim (an independent implementation) with keys made per module run.
"""

import re
import smtplib
import time
import uuid
from pathlib import Path

import pytest

from dnstest import DnsServer
from ferrytest import DEFAULT_PASSWORD, RawSMTP, free_port
from mailauthtest import (auth_results, ed25519_key, header_fields, message, mx_server, parse_auth_results,
                          result_of, rsa_key, sign, strip_delivery_headers)

AUTHSERV = "mx.example.test"
BOB = "bob@example.test"
ALICE = "alice@example.test"
WAIT = 10.0                     # the longest a delivery may take (it takes milliseconds)

HELO = "mta.client.test"        # SPF pass for the HELO identity; aligned with no From: domain below
SPF_PASS = "v=spf1 ip4:127.0.0.1 -all"
SPF_FAIL = "v=spf1 ip4:192.0.2.1 -all"     # 127.0.0.1 is not allowed: fail (matched -all)


def txt(*texts):
    return [("TXT", t) for t in texts]


def zone(rsa, ed):
    """The whole module's DNS. Org domains: example.org (p=reject, sp=quarantine, relaxed), example.net (p=reject,
    relaxed, SPF pass), example.com (p=reject, strict adkim and aspf), example.co.uk (under the public suffix co.uk),
    example.info (null sender), example.edu (no DMARC anywhere)."""
    z = {
        HELO: txt(SPF_PASS),
        # p= at the From domain itself
        "reject.example.org": txt(SPF_FAIL), "_dmarc.reject.example.org": txt("v=DMARC1; p=reject"),
        "quarantine.example.org": txt(SPF_FAIL), "_dmarc.quarantine.example.org": txt("v=DMARC1; p=quarantine"),
        "none.example.org": txt(SPF_FAIL), "_dmarc.none.example.org": txt("v=DMARC1; p=none"),
        # the organizational domain example.org: p= for itself, sp= for subdomains without a record of their own
        "example.org": txt(SPF_FAIL),
        "_dmarc.example.org": txt("v=DMARC1; p=reject; sp=quarantine"),
        "news.example.org": txt(SPF_FAIL),
        "sub.example.org": txt(SPF_FAIL),
        "rsa1._domainkey.example.org": txt(rsa.txt),
        "ed1._domainkey.example.org": txt(ed.txt),
        # relaxed SPF alignment
        "example.net": txt(SPF_PASS), "mail.example.net": txt(SPF_PASS),
        "_dmarc.example.net": txt("v=DMARC1; p=reject"),
        # DKIM that passes for another domain
        "unaligned.example.net": txt(SPF_FAIL), "_dmarc.unaligned.example.net": txt("v=DMARC1; p=quarantine"),
        "rsa1._domainkey.other.example": txt(rsa.txt),
        # strict alignment
        "example.com": txt(SPF_FAIL), "news.example.com": txt(SPF_FAIL), "bounces.example.com": txt(SPF_PASS),
        "_dmarc.example.com": txt("v=DMARC1; p=reject; adkim=s; aspf=s"),
        "rsa1._domainkey.example.com": txt(rsa.txt),
        # a multi-label public suffix: the organizational domain of shop.example.co.uk is example.co.uk
        "shop.example.co.uk": txt(SPF_FAIL), "_dmarc.example.co.uk": txt("v=DMARC1; p=reject"),
        "rsa1._domainkey.other.co.uk": txt(rsa.txt),
        # pct=
        "pct0.example.org": txt(SPF_FAIL), "_dmarc.pct0.example.org": txt("v=DMARC1; p=reject; pct=0"),
        "pct0q.example.org": txt(SPF_FAIL), "_dmarc.pct0q.example.org": txt("v=DMARC1; p=quarantine; pct=0"),
        "pct100.example.org": txt(SPF_FAIL), "_dmarc.pct100.example.org": txt("v=DMARC1; p=reject; pct=100"),
        # no record at the From domain nor at its organizational domain
        "nodmarc.example.edu": txt(SPF_FAIL),
        # DNS failure for the From domain's record (the org domain above would quarantine: it must not be asked)
        "tempfail.example.org": txt(SPF_FAIL), "_dmarc.tempfail.example.org": "SERVFAIL",
        # two DMARC records (and a TXT record that is no DMARC record): none applies, no fallback to example.org
        "two.example.org": txt(SPF_FAIL),
        "_dmarc.two.example.org": txt("v=DMARC1; p=reject", "v=DMARC1; p=reject", "unrelated text"),
        # only one of the TXT records there is DMARC: that one applies
        "onerec.example.org": txt(SPF_FAIL),
        "_dmarc.onerec.example.org": txt("google-site-verification=abc", "v=DMARC1; p=quarantine"),
        # the null sender: SPF of the HELO name (postmaster@mta.example.info) aligns with From: example.info
        "mta.example.info": txt(SPF_PASS), "example.info": txt(SPF_FAIL),
        "_dmarc.example.info": txt("v=DMARC1; p=reject"),
    }
    return z


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def keys():
    return {"rsa": rsa_key(), "ed25519": ed25519_key()}


@pytest.fixture(scope="module")
def dns(keys):
    with DnsServer(zone(keys["rsa"], keys["ed25519"])) as server:
        yield server


@pytest.fixture(scope="module")
def srv(tmp_path_factory, dns):
    """mx on srv.port with the checks on and dmarc_enforce at its default; a loopback submission listener with
    plaintext AUTH on srv.sub_port."""
    sub = free_port()
    server = mx_server(tmp_path_factory.mktemp("dmarc"), dns, start=False,
                       extra_toml=f'\n[[listen]]\naddress = "127.0.0.1:{sub}"\nrole = "submission"\n'
                                  f'plaintext_auth = true\n')
    server.sub_port = sub
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def lenient(tmp_path_factory, dns):
    """The same checks with dmarc_enforce = false."""
    server = mx_server(tmp_path_factory.mktemp("dmarc-lenient"), dns, mailauth="dmarc_enforce = false")
    yield server
    server.stop()


# ---------------------------------------------------------------- helpers

def token(name):
    """A Subject and envelope local part no other message of the module has."""
    return f"{name}-{uuid.uuid4().hex[:10]}"


def send(server, msg, mail_from, *, helo=HELO, rcpts=(BOB,)):
    """One transaction with smtplib on the mx port; (code, text) of the reply to the end of data."""
    with smtplib.SMTP("127.0.0.1", server.port, local_hostname=helo, timeout=30) as s:
        code, text = s.ehlo(helo)
        assert code == 250, (code, text)
        code, text = s.mail(mail_from)
        assert code == 250, (code, text)
        for r in rcpts:
            code, text = s.rcpt(r)
            assert code == 250, (r, code, text)
        code, text = s.data(msg)
        s.quit()
    return code, text.decode("utf-8", "replace")


def accepted(reply):
    code, text = reply
    return code == 250 and text.startswith("2.0.0 ")


def delivered(server, subject):
    """Every delivered file (any mailbox, any folder) of the message with this Subject."""
    want = f"\r\nSubject: {subject}\r\n".encode()
    out = []
    for p in sorted((server.data_dir / "mail").rglob("*")):
        if p.is_file() and p.parent.name == "new":
            try:
                if want in p.read_bytes():
                    out.append(p)
            except FileNotFoundError:
                pass
    return out


def wait_delivered(server, subject, count=1, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while True:
        files = delivered(server, subject)
        if len(files) >= count:
            time.sleep(0.05)   # anything more would be a duplicate: let it show
            return delivered(server, subject)
        if time.monotonic() > deadline:
            raise AssertionError(f"message {subject!r}: {len(files)} of {count} copies delivered after {timeout}s\n"
                                 f"--- log (tail) ---\n{server.log[-4000:]}")
        time.sleep(0.05)


def inbox(server, user="bob"):
    return server.maildir(user) / "new"


def junk(server, user="bob"):
    return server.maildir(user) / ".Junk" / "new"


def landed_in(server, subject, folder, users=("bob",)):
    """Waits for the message's copies (one per user), asserts each is in folder(server, user) and nowhere else;
    returns their contents in users' order."""
    files = wait_delivered(server, subject, count=len(users))
    assert len(files) == len(users), f"{subject!r}: expected {len(users)} copies, found {[str(f) for f in files]}"
    out = []
    for user in users:
        want = folder(server, user)
        mine = [f for f in files if f.parent == want]
        assert len(mine) == 1, f"{subject!r} for {user}: expected one copy in {want}, found {[str(f) for f in files]}"
        out.append(mine[0].read_bytes())
    return out[0] if len(out) == 1 else out


def assert_refused(server, reply, subject, local, policy_domain):
    """550 5.7.1 naming the policy domain; no copy anywhere; nothing queued from this sender."""
    code, text = reply
    assert (code, text) == (550, f"5.7.1 Message rejected per DMARC policy of {policy_domain}"), reply
    assert delivered(server, subject) == []
    assert not re.search(rf"queued id=\S+ .*from=<{re.escape(local)}@", server.log), \
        f"a message from {local}@ was queued despite the 550"


def ours(data):
    """The one Authentication-Results field under our authserv-id: asserts there is exactly one and returns its
    results [(method, result, props, comments)]."""
    mine = [v for v in header_fields(data, "Authentication-Results") if parse_auth_results(v)[0] == AUTHSERV]
    assert len(mine) == 1, f"expected exactly one Authentication-Results of {AUTHSERV}, found {mine}"
    return parse_auth_results(mine[0])[1]


def dmarc_of(results):
    """(result, props, comments) of the one dmarc= result."""
    found = [(r, p, c) for m, r, p, c in results if m == "dmarc"]
    assert len(found) == 1, f"expected one dmarc result, got {results}"
    return found[0]


def assert_dmarc(results, result, header_from=None, p=None, dis=None):
    r, props, comments = dmarc_of(results)
    assert r == result, f"dmarc={r}, expected {result}: {results}"
    if header_from is not None:
        assert props.get("header.from") == header_from, props
    if p is not None:
        assert f"p={p}" in comments.split(), f"comment ({comments}) lacks p={p}"
    if dis is not None:
        assert f"dis={dis}" in comments.split(), f"comment ({comments}) lacks dis={dis}"


def signature_b(msg):
    """The b= value (whitespace removed) of the message's one DKIM-Signature."""
    [sig] = header_fields(msg, "DKIM-Signature")
    tags = dict(t.strip().split("=", 1) for t in sig.split(";") if t.strip())
    return re.sub(r"\s", "", tags["b"])


def dns_asked(dns, name):
    """Whether the test DNS server was ever asked for name's TXT records."""
    return dns.queries[(name, "TXT")] > 0


def checked_line(server, from_domain, **fields):
    """The `checked client=... from=DOMAIN spf=... ...` log line with these field values."""
    rx = (r"\bchecked client=\S*127\.0\.0\.1\S* from=" + re.escape(from_domain)
          + "".join(rf" (?:\S+ )*?{k}={re.escape(v)}\b" for k, v in fields.items()))
    return server.wait_log(rx)


# ---------------------------------------------------------------- policies: reject, quarantine, none

def test_reject_spf_fail_no_dkim_gets_550_and_nothing_is_delivered(srv):
    subject = token("reject")
    local = subject
    reply = send(srv, message(f"{local}@reject.example.org", subject=subject), f"{local}@reject.example.org",
                 rcpts=(BOB, ALICE))
    assert_refused(srv, reply, subject, local, "reject.example.org")
    checked_line(srv, "reject.example.org", spf="fail", spf_helo="pass", dkim="none", dmarc="fail", dis="reject")
    time.sleep(0.3)   # nothing may turn up late either
    assert delivered(srv, subject) == []


def test_policies_apply_to_bdat_too(srv):
    # CHUNKING (RFC 3030): the checks run at the last chunk as at the end of DATA.
    for domain, refused, folder in (("reject.example.org", True, None), ("quarantine.example.org", False, junk)):
        subject = token("bdat")
        content = message(f"{subject}@{domain}", subject=subject)
        parts = [content[:40], content[40:]]     # the header split across two chunks
        with RawSMTP(srv.port) as c:
            c.ehlo(HELO)
            c.expect(f"MAIL FROM:<{subject}@{domain}>", 250)
            c.expect(f"RCPT TO:<{BOB}>", 250)
            c.send(b"BDAT %d\r\n" % len(parts[0]) + parts[0])
            assert c.reply().code == 250
            c.send(b"BDAT %d LAST\r\n" % len(parts[1]) + parts[1])
            r = c.reply()
            c.quit()
        if refused:
            assert_refused(srv, (r.code, r.text), subject, subject, domain)
        else:
            assert r.is_(250, "2.0.0"), r
            assert_dmarc(ours(landed_in(srv, subject, folder)), "fail", header_from=domain, dis="quarantine")


def test_reject_without_enforcement_is_delivered_and_recorded(lenient):
    subject = token("lenient")
    msg = message(f"{subject}@reject.example.org", subject=subject)
    assert accepted(send(lenient, msg, f"{subject}@reject.example.org"))
    data = landed_in(lenient, subject, inbox)
    results = ours(data)
    assert_dmarc(results, "fail", header_from="reject.example.org", p="reject", dis="none")
    assert result_of(results, "spf", smtp_mailfrom=f"{subject}@reject.example.org") == "fail"
    # nothing applied, and the field, the log and the operator's command say so
    checked_line(lenient, "reject.example.org", dmarc="fail", dis="none")
    r = lenient.cli("check", "message", "--ip", "127.0.0.1", "--helo", HELO,
                    "--mail-from", f"{subject}@reject.example.org", input=msg)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().splitlines()[-1] == "disposition: none", r.stdout


def test_quarantine_delivers_every_local_copy_to_junk(srv):
    subject = token("quarantine")
    msg = message(f"{subject}@quarantine.example.org", subject=subject)
    assert accepted(send(srv, msg, f"{subject}@quarantine.example.org", rcpts=(BOB, ALICE)))
    bob, alice = landed_in(srv, subject, junk, users=("bob", "alice"))
    for data in (bob, alice):
        assert_dmarc(ours(data), "fail", header_from="quarantine.example.org", p="quarantine", dis="quarantine")
    for user in ("bob", "alice"):
        folder = srv.maildir(user) / ".Junk"
        assert (folder / "maildirfolder").is_file(), f"{folder} is no Maildir++ folder (no maildirfolder file)"
        assert (folder / "cur").is_dir() and (folder / "tmp").is_dir(), f"{folder} lacks cur/ or tmp/"
    checked_line(srv, "quarantine.example.org", dmarc="fail", dis="quarantine")


def test_policy_none_delivers_to_inbox_with_dmarc_fail(srv):
    subject = token("pnone")
    assert accepted(send(srv, message(f"{subject}@none.example.org", subject=subject), f"{subject}@none.example.org"))
    data = landed_in(srv, subject, inbox)
    assert_dmarc(ours(data), "fail", header_from="none.example.org", p="none", dis="none")


# ---------------------------------------------------------------- passing by DKIM or SPF, alignment

@pytest.mark.parametrize("algorithm,selector", [("rsa", "rsa1"), ("ed25519", "ed1")])
def test_aligned_dkim_passes_dmarc_although_spf_fails(srv, keys, algorithm, selector):
    subject = token(f"dkim-{algorithm}")
    msg = sign(message(f"{subject}@example.org", subject=subject), keys[algorithm], "example.org", selector)
    assert accepted(send(srv, msg, f"{subject}@example.org"))    # example.org: p=reject
    data = landed_in(srv, subject, inbox)
    results = ours(data)
    assert result_of(results, "spf", smtp_mailfrom=f"{subject}@example.org") == "fail"
    assert result_of(results, "spf", smtp_helo=HELO) == "pass"
    dkim = [(r, p) for m, r, p, _ in results if m == "dkim"]
    assert len(dkim) == 1, results
    r, props = dkim[0]
    assert r == "pass" and props.get("header.d") == "example.org" and props.get("header.s") == selector, results
    b = signature_b(msg)
    assert len(props.get("header.b", "")) >= 8 and b.startswith(props["header.b"]), (props, b)
    assert_dmarc(results, "pass", header_from="example.org", p="reject", dis="none")
    checked_line(srv, "example.org", spf="fail", dkim="pass", dmarc="pass", dis="none")


def test_aligned_spf_without_dkim_passes(srv):
    subject = token("spf-aligned")
    assert accepted(send(srv, message(f"{subject}@example.net", subject=subject), f"{subject}@example.net"))
    results = ours(landed_in(srv, subject, inbox))
    assert result_of(results, "spf", smtp_mailfrom=f"{subject}@example.net") == "pass"
    assert [m for m, *_ in results if m == "dkim"] == [], "a dkim result for an unsigned message"
    assert_dmarc(results, "pass", header_from="example.net", dis="none")


def test_relaxed_spf_alignment_accepts_a_subdomain_envelope(srv):
    subject = token("spf-relaxed")
    assert accepted(send(srv, message(f"{subject}@example.net", subject=subject), f"{subject}@mail.example.net"))
    results = ours(landed_in(srv, subject, inbox))
    assert result_of(results, "spf", smtp_mailfrom=f"{subject}@mail.example.net") == "pass"
    assert_dmarc(results, "pass", header_from="example.net")


def test_strict_spf_alignment_refuses_a_subdomain_envelope(srv):
    subject = token("spf-strict")
    reply = send(srv, message(f"{subject}@example.com", subject=subject), f"{subject}@bounces.example.com")
    assert_refused(srv, reply, subject, subject, "example.com")
    checked_line(srv, "example.com", spf="pass", dmarc="fail", dis="reject")


def test_relaxed_dkim_alignment_with_the_record_at_the_organizational_domain(srv, dns, keys):
    # From: news.example.org has no record of its own: example.org's (p=reject; sp=quarantine) applies.
    subject = token("dkim-relaxed")
    msg = sign(message(f"{subject}@news.example.org", subject=subject), keys["rsa"], "example.org", "rsa1")
    assert accepted(send(srv, msg, f"{subject}@news.example.org"))
    results = ours(landed_in(srv, subject, inbox))
    assert result_of(results, "dkim", header_d="example.org") == "pass"
    assert_dmarc(results, "pass", header_from="news.example.org", dis="none")
    assert dns_asked(dns, "_dmarc.news.example.org") and dns_asked(dns, "_dmarc.example.org")


def test_strict_dkim_alignment_fails_for_a_subdomain_from(srv, keys):
    # example.com: adkim=s. d=example.com passes, but From: is news.example.com.
    subject = token("dkim-strict")
    msg = sign(message(f"{subject}@news.example.com", subject=subject), keys["rsa"], "example.com", "rsa1")
    reply = send(srv, msg, f"{subject}@news.example.com")
    assert_refused(srv, reply, subject, subject, "example.com")
    checked_line(srv, "news.example.com", dkim="pass", dmarc="fail", dis="reject")
    # the same signature for From: example.com itself is aligned under adkim=s
    subject = token("dkim-strict-exact")
    msg = sign(message(f"{subject}@example.com", subject=subject), keys["rsa"], "example.com", "rsa1")
    assert accepted(send(srv, msg, f"{subject}@example.com"))
    assert_dmarc(ours(landed_in(srv, subject, inbox)), "pass", header_from="example.com")


def test_dkim_pass_for_another_domain_is_not_aligned(srv, keys):
    subject = token("dkim-unaligned")
    msg = sign(message(f"{subject}@unaligned.example.net", subject=subject), keys["rsa"], "other.example", "rsa1")
    assert accepted(send(srv, msg, f"{subject}@unaligned.example.net"))   # p=quarantine
    results = ours(landed_in(srv, subject, junk))
    assert result_of(results, "dkim", header_d="other.example", header_s="rsa1") == "pass"
    assert_dmarc(results, "fail", header_from="unaligned.example.net", dis="quarantine")


# ---------------------------------------------------------------- discovery: sp=, organizational domain, pct=

def test_subdomain_policy_applies_to_a_subdomain_and_p_to_the_domain_itself(srv):
    # _dmarc.example.org: p=reject; sp=quarantine. sub.example.org has no record of its own.
    subject = token("sp")
    assert accepted(send(srv, message(f"{subject}@sub.example.org", subject=subject), f"{subject}@sub.example.org"))
    assert_dmarc(ours(landed_in(srv, subject, junk)), "fail", header_from="sub.example.org", dis="quarantine")
    subject = token("sp-org")
    reply = send(srv, message(f"{subject}@example.org", subject=subject), f"{subject}@example.org")
    assert_refused(srv, reply, subject, subject, "example.org")


def test_organizational_domain_under_a_multi_label_public_suffix(srv, dns, keys):
    # shop.example.co.uk -> example.co.uk (co.uk is a public suffix); the last two labels would give co.uk.
    subject = token("psl")
    reply = send(srv, message(f"{subject}@shop.example.co.uk", subject=subject), f"{subject}@shop.example.co.uk")
    assert_refused(srv, reply, subject, subject, "example.co.uk")
    assert dns_asked(dns, "_dmarc.shop.example.co.uk")
    assert not dns_asked(dns, "_dmarc.co.uk"), "asked for the public suffix's DMARC record"
    # other.co.uk is another organization: its passing DKIM signature does not align with example.co.uk
    subject = token("psl-dkim")
    msg = sign(message(f"{subject}@shop.example.co.uk", subject=subject), keys["rsa"], "other.co.uk", "rsa1")
    reply = send(srv, msg, f"{subject}@shop.example.co.uk")
    assert_refused(srv, reply, subject, subject, "example.co.uk")
    checked_line(srv, "shop.example.co.uk", dkim="pass", dmarc="fail", dis="reject")


def test_pct_0_applies_the_next_lower_policy_and_pct_100_the_policy(srv):
    subject = token("pct0")
    assert accepted(send(srv, message(f"{subject}@pct0.example.org", subject=subject), f"{subject}@pct0.example.org"))
    assert_dmarc(ours(landed_in(srv, subject, junk)), "fail", header_from="pct0.example.org", p="reject",
                 dis="quarantine")
    subject = token("pct0q")
    assert accepted(send(srv, message(f"{subject}@pct0q.example.org", subject=subject),
                         f"{subject}@pct0q.example.org"))
    assert_dmarc(ours(landed_in(srv, subject, inbox)), "fail", header_from="pct0q.example.org", p="quarantine",
                 dis="none")
    for _ in range(3):   # pct=100: every failing message, whatever the sample
        subject = token("pct100")
        reply = send(srv, message(f"{subject}@pct100.example.org", subject=subject), f"{subject}@pct100.example.org")
        assert_refused(srv, reply, subject, subject, "pct100.example.org")


# ---------------------------------------------------------------- none, temperror, permerror

def test_no_dmarc_record_is_none_and_delivered(srv, dns):
    subject = token("nodmarc")
    assert accepted(send(srv, message(f"{subject}@nodmarc.example.edu", subject=subject),
                         f"{subject}@nodmarc.example.edu"))
    results = ours(landed_in(srv, subject, inbox))
    assert result_of(results, "spf", smtp_mailfrom=f"{subject}@nodmarc.example.edu") == "fail"
    assert_dmarc(results, "none", header_from="nodmarc.example.edu")
    # both the From domain and its organizational domain were asked
    assert dns_asked(dns, "_dmarc.nodmarc.example.edu") and dns_asked(dns, "_dmarc.example.edu")
    checked_line(srv, "nodmarc.example.edu", spf="fail", dmarc="none", dis="none")


def test_servfail_for_the_dmarc_record_is_temperror_and_refuses_nothing(srv):
    subject = token("tempfail")
    assert accepted(send(srv, message(f"{subject}@tempfail.example.org", subject=subject),
                         f"{subject}@tempfail.example.org"))
    # not the organizational domain's policy (sp=quarantine) either: inbox
    results = ours(landed_in(srv, subject, inbox))
    assert_dmarc(results, "temperror", header_from="tempfail.example.org")
    checked_line(srv, "tempfail.example.org", dmarc="temperror", dis="none")


def test_two_dmarc_records_mean_none(srv):
    subject = token("tworecs")
    assert accepted(send(srv, message(f"{subject}@two.example.org", subject=subject), f"{subject}@two.example.org"))
    assert_dmarc(ours(landed_in(srv, subject, inbox)), "none", header_from="two.example.org")


def test_txt_records_that_are_not_dmarc_are_ignored(srv):
    subject = token("onerec")
    assert accepted(send(srv, message(f"{subject}@onerec.example.org", subject=subject),
                         f"{subject}@onerec.example.org"))
    assert_dmarc(ours(landed_in(srv, subject, junk)), "fail", header_from="onerec.example.org", dis="quarantine")


def raw_message(subject, headers):
    return ("\r\n".join([*headers, "To: bob@example.test", f"Subject: {subject}",
                         f"Message-ID: <{subject}@example.org>"]) + "\r\n\r\nHello.\r\n").encode()


def test_no_from_field_is_permerror_and_delivered(srv):
    # RFC 7489 6.6.1: without a From: there is no domain to evaluate; Ferry records permerror.
    subject = token("from-count")
    reply = send(srv, raw_message(subject, []), f"{subject}@reject.example.org")
    assert accepted(reply), reply
    results = ours(landed_in(srv, subject, inbox))
    assert dmarc_of(results)[0] == "permerror", results
    checked_line(srv, "", spf="fail", dmarc="permerror", dis="none")


def test_two_from_fields_are_refused(srv):
    # RFC 5322 3.6 allows one From field; a second must not dodge the policy of the first (nor be a way around
    # it by being the one a reader shows): such a message is refused before DMARC, whatever the domains.
    for froms in (["From: a@reject.example.org", "From: b@reject.example.org"],
                  ["From: a@example.net", "From: b@reject.example.org"],
                  ["From: a@example.net", "From: b@example.net"]):
        subject = token("from-count")
        reply = send(srv, raw_message(subject, froms), f"{subject}@example.net")
        assert reply == (550, "5.6.0 Message has 2 From: header fields, RFC 5322 3.6 allows one"), (froms, reply)


def test_one_from_field_with_two_domains_gets_the_strictest_policy(srv):
    # reject.example.org (p=reject) fails; example.net passes by SPF: the spoof must not reach the inbox
    # (RFC 7489 6.6.1: each domain is evaluated, the strictest failing policy applies), whatever the order.
    for first, second in (("reject.example.org", "example.net"), ("example.net", "reject.example.org")):
        subject = token("from-two-domains")
        msg = message(f"Your Bank <{subject}@{first}>, <{subject}@{second}>", subject=subject)
        reply = send(srv, msg, f"{subject}@example.net")
        assert reply[0] == 550 and reply[1] == "5.7.1 Message rejected per DMARC policy of reject.example.org", reply


# ---------------------------------------------------------------- the null sender and the HELO identity

def test_null_sender_aligns_by_the_helo_domain(srv):
    subject = token("null-sender")
    msg = message("mailer-daemon@example.info", subject=subject)
    assert accepted(send(srv, msg, "", helo="mta.example.info"))   # example.info: p=reject
    results = ours(landed_in(srv, subject, inbox))
    assert result_of(results, "spf", smtp_helo="mta.example.info") == "pass"
    assert_dmarc(results, "pass", header_from="example.info", dis="none")


def test_helo_pass_does_not_align_when_the_envelope_sender_is_not_null(srv):
    # The same HELO, but MAIL FROM example.info fails SPF: DMARC uses the MAIL FROM identity (RFC 7489 4.1).
    subject = token("helo-not-counted")
    reply = send(srv, message(f"{subject}@example.info", subject=subject), f"{subject}@example.info",
                 helo="mta.example.info")
    assert_refused(srv, reply, subject, subject, "example.info")
    checked_line(srv, "example.info", spf="fail", spf_helo="pass", dmarc="fail", dis="reject")


# ---------------------------------------------------------------- our Authentication-Results field

FORGED = [
    "Authentication-Results: mx.example.test; dkim=pass header.d=forged-plain.example",
    "Authentication-Results: MX.Example.TEST; spf=pass smtp.mailfrom=x@forged-case.example",
    "Authentication-Results: (the receiver) mx.example.test; dmarc=pass header.from=forged-comment.example",
    "Authentication-Results: (a quoted-pair \\) in a comment) mx.example.test; dkim=pass header.d=forged-pair.example",
    "Authentication-Results: mx.example.test 1; dkim=pass header.d=forged-version.example",
    'Authentication-Results: "mx.example.test"; dkim=pass header.d=forged-quoted.example',
    "Authentication-Results: mx.example.test;\r\n\tdkim=pass\r\n header.d=forged-folded.example",
    # no ';' after the id: not RFC 8601 syntax, but a lenient reader (an MUA, a filter) takes it for ours
    "Authentication-Results: mx.example.test dkim=pass header.d=forged-nosemi.example",
]
KEPT = [
    "Authentication-Results: other.example; spf=pass smtp.mailfrom=x@kept-other.example",
    "Authentication-Results: mx.example.test.other.example; dkim=pass header.d=kept-suffix.example",
]


def test_forged_results_are_removed_others_kept_and_ours_is_on_top(srv):
    subject = token("forged")
    headers = ["Received: from upstream.example.net by relay.example.net; Tue, 1 Dec 2026 10:00:00 +0000",
               *FORGED[:3], KEPT[0], *FORGED[3:], KEPT[1], f"From: {subject}@example.net"]
    assert accepted(send(srv, raw_message(subject, headers), f"{subject}@example.net"))
    data = landed_in(srv, subject, inbox)
    for name in ("plain", "case", "comment", "pair", "version", "quoted", "folded", "nosemi"):
        assert f"forged-{name}.example".encode() not in data, f"forged Authentication-Results ({name}) kept"
    for k in KEPT:
        assert k.encode() + b"\r\n" in data, f"{k!r} was not kept as it came"
    results = ours(data)    # exactly one of ours
    assert result_of(results, "spf", smtp_mailfrom=f"{subject}@example.net") == "pass"
    assert_dmarc(results, "pass", header_from="example.net")
    # ours first (after the delivery agent's Return-Path and Delivered-To), then our Received, then the message
    head = strip_delivery_headers(data).split(b"\r\n\r\n", 1)[0]
    names = [line.split(b":", 1)[0].lower() for line in head.split(b"\r\n") if line[:1] not in (b" ", b"\t")]
    assert names[:3] == [b"authentication-results", b"received", b"received"], names
    assert head.startswith(f"Authentication-Results: {AUTHSERV};".encode()), head[:200]
    assert b"by mx.example.test" in head.split(b"\r\nReceived: ")[1].split(b"\r\nReceived: ")[0]
    assert header_fields(data, "Authentication-Results")[1:] == [k.split(": ", 1)[1] for k in KEPT]
    srv.wait_log(rf"removed {len(FORGED)} Authentication-Results fields claiming {re.escape(AUTHSERV)}")


def test_a_signed_message_with_results_of_ours_gets_them_replaced(srv, keys):
    # A forged field signed along with the message: removing it must not break the signature (it is not in h=).
    subject = token("forged-signed")
    msg = sign(message(f"{subject}@example.org", subject=subject), keys["rsa"], "example.org", "rsa1")
    msg = b"Authentication-Results: mx.example.test; dmarc=pass header.from=forged-signed.example\r\n" + msg
    assert accepted(send(srv, msg, f"{subject}@example.org"))
    data = landed_in(srv, subject, inbox)
    assert b"forged-signed.example" not in data
    results = ours(data)
    assert result_of(results, "dkim", header_d="example.org") == "pass"
    assert_dmarc(results, "pass", header_from="example.org")


# ---------------------------------------------------------------- ferry check message agrees with mx

def check_message(server, msg, mail_from, helo=HELO):
    """`ferry check message`: (results, disposition)."""
    r = server.cli("check", "message", "--ip", "127.0.0.1", "--helo", helo, "--mail-from", mail_from, input=msg)
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, f"ferry check message exited {r.returncode}: {r.stderr.decode(errors='replace')}{out}"
    field, sep, disposition = out.rpartition("disposition: ")
    assert sep and disposition.endswith("\n") and "\n" not in disposition[:-1], out
    values = header_fields(field.encode() + b"\r\n", "Authentication-Results")
    assert len(values) == 1, out
    sid, results = parse_auth_results(values[0])
    assert sid == AUTHSERV, out
    return results, disposition.strip()


def facts(results):
    return [(m, r, p) for m, r, p, _ in results]


def test_check_message_prints_what_mx_records(srv, keys):
    cases = []
    # passing by DKIM, SPF failing
    subject = token("cli-pass")
    cases.append((sign(message(f"{subject}@example.org", subject=subject), keys["ed25519"], "example.org", "ed1"),
                  f"{subject}@example.org", subject, inbox, "none"))
    # failing under p=quarantine with an unaligned signature
    subject = token("cli-quarantine")
    cases.append((sign(message(f"{subject}@unaligned.example.net", subject=subject), keys["rsa"], "other.example",
                       "rsa1"), f"{subject}@unaligned.example.net", subject, junk, "quarantine"))
    # no DMARC record
    subject = token("cli-none")
    cases.append((message(f"{subject}@nodmarc.example.edu", subject=subject), f"{subject}@nodmarc.example.edu",
                  subject, inbox, "none"))
    for msg, mail_from, subject, folder, disposition in cases:
        assert accepted(send(srv, msg, mail_from))
        served = ours(landed_in(srv, subject, folder))
        printed, printed_disposition = check_message(srv, msg, mail_from)
        assert facts(printed) == facts(served), f"{subject}: ferry check message and mx differ"
        assert printed_disposition == disposition, (subject, printed_disposition)
    # refused by mx: the command says reject, with the result the log line gave
    subject = token("cli-reject")
    msg = message(f"{subject}@reject.example.org", subject=subject)
    assert_refused(srv, send(srv, msg, f"{subject}@reject.example.org"), subject, subject, "reject.example.org")
    printed, disposition = check_message(srv, msg, f"{subject}@reject.example.org")
    assert disposition == "reject"
    assert result_of(printed, "spf", smtp_mailfrom=f"{subject}@reject.example.org") == "fail"
    assert result_of(printed, "spf", smtp_helo=HELO) == "pass"
    assert_dmarc(printed, "fail", header_from="reject.example.org", p="reject", dis="reject")


# ---------------------------------------------------------------- submission: no checks

def submit_as_alice(srv, msg):
    """alice logs in on the submission listener and sends msg to bob."""
    with smtplib.SMTP("127.0.0.1", srv.sub_port, local_hostname=HELO, timeout=30) as s:
        s.ehlo(HELO)
        s.login(ALICE, DEFAULT_PASSWORD)
        assert s.sendmail(ALICE, [BOB], msg) == {}
        s.quit()


def test_submission_gets_no_authentication_results(srv):
    subject = token("submission")
    msg = message(ALICE, to=BOB, subject=subject)
    submit_as_alice(srv, msg)
    data = landed_in(srv, subject, inbox)
    assert [v for v in header_fields(data, "Authentication-Results")
            if parse_auth_results(v)[0] == AUTHSERV] == [], "Authentication-Results of ours on submitted mail"
    assert not re.search(r"checked client=.* from=example\.test ", srv.log), "submitted mail was checked"
    # the mx listener of the same server does check (so the absence above means something)
    subject = token("submission-mx")
    assert accepted(send(srv, message(f"{subject}@example.net", subject=subject), f"{subject}@example.net"))
    ours(landed_in(srv, subject, inbox))


def test_submission_removes_results_claiming_our_authserv_id(srv):
    subject = token("submission-forged")
    msg = message(ALICE, to=BOB, subject=subject,
                  extra_headers=["Authentication-Results: mx.example.test; dmarc=pass header.from=bank.example"])
    submit_as_alice(srv, msg)
    data = landed_in(srv, subject, inbox)
    assert b"bank.example" not in data, "a local user delivered results in our name"
