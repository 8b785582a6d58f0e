"""SPF (RFC 7208) end to end: `ferry check spf` against a test DNS server (dnstest.DnsServer) for every mechanism,
qualifier, modifier, macro and limit, and a real mx listener recording its SPF results in the delivered message's
Authentication-Results.

Every case has a domain of its own in ZONE, so what a case proves does not depend on another case's records. The
client addresses are documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32): their
reverse zones are forwarded to the test DNS server, so `ptr` and %{p} can be tested. Where a record's meaning shows
only in the names asked (macros, lookup limits), the test reads the DNS server's query counter (dns.queries,
counted per (name, type)) around the one check it runs.
"""

import ipaddress
import re
import time
from collections import Counter

import pytest

from dnstest import DnsServer
from ferrytest import make_message
from mailauthtest import auth_results, mx_server, result_of, strip_delivery_headers

HELO = "helo.client.test"
IP4 = "192.0.2.10"
IP6 = "2001:db8:1::10"


def ptr_name(ip):
    return ipaddress.ip_address(ip).reverse_pointer


def nibbles(ip):
    """%{i} of an IPv6 address (RFC 7208 7.3): the 32 nibbles, dot-separated, most significant first."""
    return ".".join(ipaddress.ip_address(ip).exploded.replace(":", ""))


def lim_terms(n, prefix):
    return " ".join(f"a:{prefix}{i}.lim.test" for i in range(1, n + 1))


ZONE = {
    # ---- all and the four qualifiers
    "all.test": [("TXT", "v=spf1 all")],
    "q-none-all.test": [("TXT", "v=spf1 all")],
    "q-plus-all.test": [("TXT", "v=spf1 +all")],
    "q-minus-all.test": [("TXT", "v=spf1 -all")],
    "q-tilde-all.test": [("TXT", "v=spf1 ~all")],
    "q-query-all.test": [("TXT", "v=spf1 ?all")],
    # the qualifier on a matching mechanism decides; the "all" after it gives something else
    "q-none-ip4.test": [("TXT", f"v=spf1 ip4:{IP4} ?all")],
    "q-plus-ip4.test": [("TXT", f"v=spf1 +ip4:{IP4} ?all")],
    "q-minus-ip4.test": [("TXT", f"v=spf1 -ip4:{IP4} +all")],
    "q-tilde-ip4.test": [("TXT", f"v=spf1 ~ip4:{IP4} +all")],
    "q-query-ip4.test": [("TXT", f"v=spf1 ?ip4:{IP4} +all")],
    "no-all.test": [("TXT", "v=spf1 ip4:203.0.113.1")],
    # ---- a
    "mech-a.test": [("TXT", "v=spf1 a -all"), ("A", IP4), ("AAAA", IP6)],
    "a-named.test": [("TXT", "v=spf1 a:host.a-named.test -all")],
    "host.a-named.test": [("A", "198.51.100.20")],
    "a24.test": [("TXT", "v=spf1 a:host.a24.test/24 -all")],
    "a-nocidr.test": [("TXT", "v=spf1 a:host.a24.test -all")],
    "host.a24.test": [("A", "192.0.2.1")],
    # ---- mx
    "mech-mx.test": [("TXT", "v=spf1 mx -all"), ("MX", 10, "mx1.mech-mx.test"), ("MX", 20, "mx2.mech-mx.test")],
    "mx1.mech-mx.test": [("A", "192.0.2.30")],
    "mx2.mech-mx.test": [("AAAA", "2001:db8:2::30")],
    "mx64.test": [("TXT", "v=spf1 mx//64 -all"), ("MX", 10, "mx.mx64.test")],
    "mx.mx64.test": [("AAAA", "2001:db8:3:4::1")],
    "mx128.test": [("TXT", "v=spf1 mx:mx64.test -all")],
    # ---- ptr (the reverse zones of the documentation ranges)
    ptr_name("192.0.2.40"): [("PTR", "mail.mech-ptr.test")],
    "mail.mech-ptr.test": [("A", "192.0.2.40")],
    ptr_name("192.0.2.41"): [("PTR", "fake.mech-ptr.test")],
    "fake.mech-ptr.test": [("A", "192.0.2.99")],          # does not point back: not validated
    ptr_name("2001:db8:1::40"): [("PTR", "mail6.mech-ptr.test")],
    "mail6.mech-ptr.test": [("AAAA", "2001:db8:1::40")],
    ptr_name("192.0.2.43"): [("PTR", "mail.elsewhere.test")],
    "mail.elsewhere.test": [("A", "192.0.2.43")],          # validated, but not inside mech-ptr.test
    "mech-ptr.test": [("TXT", "v=spf1 ptr -all")],
    "ptr-named.test": [("TXT", "v=spf1 ptr:elsewhere.test -all")],
    # ---- ip4 / ip6
    "mech-ip4.test": [("TXT", f"v=spf1 ip4:{IP4} ip4:198.51.100.0/24 -all")],
    "ip4-32.test": [("TXT", f"v=spf1 ip4:{IP4}/32 -all")],
    "ip4-0.test": [("TXT", "v=spf1 ip4:0.0.0.0/0 -all")],
    "mech-ip6.test": [("TXT", f"v=spf1 ip6:{IP6} -all")],
    "ip6-48.test": [("TXT", "v=spf1 ip6:2001:db8:5::/48 -all")],
    # ---- exists
    "mech-exists.test": [("TXT", "v=spf1 exists:%{i}.ok.exists.test -all")],
    "192.0.2.50.ok.exists.test": [("A", "127.0.0.2")],
    # ---- include and its result table (RFC 7208 5.2)
    "inc-pass.test": [("TXT", "v=spf1 include:target-pass.test -all")],
    "target-pass.test": [("TXT", "v=spf1 ip4:192.0.2.60 -all")],
    "inc-fail.test": [("TXT", "v=spf1 include:target-fail.test +all")],
    "target-fail.test": [("TXT", "v=spf1 -all")],
    "inc-softfail.test": [("TXT", "v=spf1 include:target-softfail.test +all")],
    "target-softfail.test": [("TXT", "v=spf1 ~all")],
    "inc-neutral.test": [("TXT", "v=spf1 include:target-neutral.test +all")],
    "target-neutral.test": [("TXT", "v=spf1 ?all")],
    "inc-temperror.test": [("TXT", "v=spf1 include:servfail.test +all")],
    "inc-permerror.test": [("TXT", "v=spf1 include:syntax-unknown.test +all")],
    "inc-none.test": [("TXT", "v=spf1 include:norec.test +all")],                # norec.test: TXT, no SPF
    "inc-nx.test": [("TXT", "v=spf1 include:nonexistent.test +all")],
    # ---- redirect
    "redir.test": [("TXT", "v=spf1 redirect=redir-target.test")],
    "redir-target.test": [("TXT", "v=spf1 ip4:192.0.2.70 -all")],
    "redir-none.test": [("TXT", "v=spf1 redirect=norec.test")],
    "redir-nx.test": [("TXT", "v=spf1 redirect=nonexistent.test")],
    "redir-with-all.test": [("TXT", "v=spf1 ?all redirect=redir-target.test")],   # 6.1: all wins, redirect ignored
    # ---- exp
    "exp.test": [("TXT", "v=spf1 ip4:192.0.2.80 -all exp=explain.exp.test")],
    "explain.exp.test": [("TXT", "%{i} is not one of %{d}'s designated mail servers (%{l} via %{h}); "
                                 "see http://%{d}/why?s=%{S}&r=%{r}")],
    "exp-soft.test": [("TXT", "v=spf1 ~all exp=explain.exp.test")],
    # ---- macros: each name below exists only if the macro expanded as RFC 7208 7 says
    "mac-s.test": [("TXT", "v=spf1 exists:%{s}.s.mac.test -all")],
    "mac-l.test": [("TXT", "v=spf1 exists:%{l}.l.mac.test -all")],
    "mac-o.test": [("TXT", "v=spf1 exists:%{o}.o.mac.test -all")],
    "mac-d.test": [("TXT", "v=spf1 include:inner.mac-d.test -all")],
    "inner.mac-d.test": [("TXT", "v=spf1 exists:%{d}.%{o}.d.mac.test -all")],   # %{d} is the include's domain
    "mac-i.test": [("TXT", "v=spf1 exists:%{i}.i.mac.test -all")],
    "mac-ir.test": [("TXT", "v=spf1 exists:%{ir}.%{v}.arpa.mac.test -all")],
    "mac-h.test": [("TXT", "v=spf1 exists:%{h}.h.mac.test -all")],
    "mac-p.test": [("TXT", "v=spf1 exists:%{p}.p.mac.test -all")],
    "x.y.mac-digits.test": [("TXT", "v=spf1 exists:%{o2}.%{i2r}.%{d1r}.dig.mac.test -all")],
    "mac-delim.test": [("TXT", "v=spf1 exists:%{l-+}.%{lr-+}.%{l1r-+}.%{l2}.delim.mac.test -all")],
    "mac-upper.test": [("TXT", "v=spf1 exists:%{L}.%{S}.up.mac.test -all")],
    "mac-include.test": [("TXT", "v=spf1 include:%{l}.users.mac.test -all")],
    "mac-null.test": [("TXT", "v=spf1 exists:%{l}.%{o}.null.mac.test -all")],
    # ---- the 10 DNS-querying terms (RFC 7208 4.6.4): include, a, mx count; ip4 and all do not
    "lim10.test": [("TXT", f"v=spf1 include:inc.lim.test mx:mxd.lim.test {lim_terms(8, 'n')} ip4:192.0.2.100 -all")],
    "lim11.test": [("TXT", f"v=spf1 include:inc.lim.test mx:mxd.lim.test {lim_terms(9, 'n')} ip4:192.0.2.100 -all")],
    "lim-nest10.test": [("TXT", "v=spf1 include:nest9.lim.test ip4:192.0.2.100 -all")],
    "lim-nest11.test": [("TXT", "v=spf1 include:nest10.lim.test ip4:192.0.2.100 -all")],
    "nest9.lim.test": [("TXT", f"v=spf1 {lim_terms(9, 'k')} -all")],
    "nest10.lim.test": [("TXT", f"v=spf1 {lim_terms(10, 'k')} -all")],
    "lim-redir10.test": [("TXT", f"v=spf1 {lim_terms(9, 'r')} redirect=rt.lim.test")],
    "lim-redir11.test": [("TXT", f"v=spf1 {lim_terms(10, 'r')} redirect=rt.lim.test")],
    "rt.lim.test": [("TXT", "v=spf1 ip4:192.0.2.100 -all")],
    "inc.lim.test": [("TXT", "v=spf1 -all")],
    "mxd.lim.test": [("MX", 10, "mxh.lim.test")],
    "mxh.lim.test": [("A", "203.0.113.99")],
    # ---- void lookups (RFC 7208 4.6.4): NXDOMAIN and NODATA answers, at most 2
    "void2.test": [("TXT", "v=spf1 a:v1.void.test a:v2.void.test ip4:192.0.2.110 -all")],
    "void3.test": [("TXT", "v=spf1 a:v1.void.test a:v2.void.test a:v3.void.test ip4:192.0.2.110 -all")],
    "v2.void.test": [("TXT", "not an address")],          # NODATA for A; v1 and v3 are NXDOMAIN
    # ---- MX names per mx term: 10 are looked at, more is permerror
    "mx10.test": [("TXT", "v=spf1 mx -all")] + [("MX", i, f"h{i}.mx10.test") for i in range(1, 11)],
    "mx11.test": [("TXT", "v=spf1 mx ?all")] + [("MX", i, f"h{i}.mx11.test") for i in range(1, 12)],
    # ---- errors and no record
    "servfail.test": "SERVFAIL",
    "a-servfail.test": [("TXT", "v=spf1 a:sf-host.test -all")],
    "sf-host.test": "SERVFAIL",
    "norec.test": [("TXT", "google-site-verification=abc"), ("TXT", "v=spf10 -all"), ("A", IP4)],
    "two.test": [("TXT", "v=spf1 -all"), ("TXT", "v=spf1 +all")],
    "syntax-unknown.test": [("TXT", "v=spf1 foo:bar -all")],
    "syntax-ip4.test": [("TXT", "v=spf1 ip4:192.0.2.300 -all")],
    "syntax-cidr.test": [("TXT", "v=spf1 ip4:192.0.2.0/33 -all")],
    "syntax-macro.test": [("TXT", "v=spf1 exists:%{x}.mac.test -all")],
    "syntax-tworedirect.test": [("TXT", "v=spf1 redirect=redir-target.test redirect=all.test")],
    "syntax-after-all.test": [("TXT", "v=spf1 +all foo:bar")],
    # ---- identities
    "helo-id.test": [("TXT", "v=spf1 ip4:192.0.2.130 -all")],
    "nullhelo.test": [("TXT", "v=spf1 exists:%{l}.%{o}.null.mac.test -all")],
    "postmaster.nullhelo.test.null.mac.test": [("A", "127.0.0.2")],
    # ---- record text and evaluation details
    "split.test": [("TXT", [b"v=spf1 ip4:192.0", b".2.10 -all"])],   # one record in two strings, cut mid-term
    # TXT records without text beside the SPF record: no character-string at all (RDLENGTH 0), one empty string
    "txt-no-strings.test": [("TXT", []), ("TXT", f"v=spf1 ip4:{IP4} -all"), ("TXT", [])],
    "txt-empty-string.test": [("TXT", [b""]), ("TXT", f"v=spf1 ip4:{IP4} -all")],
    "txt-only-no-strings.test": [("TXT", [])],
    "case.test": [("TXT", "v=spf1 IP4:192.0.2.10 -ALL")],
    "unknown-mod.test": [("TXT", "v=spf1 foo=bar ip4:192.0.2.10 -all")],
    "loop.test": [("TXT", "v=spf1 include:loop.test -all")],
    "exists-aaaa.test": [("TXT", "v=spf1 exists:aaaa-only.test -all")],
    "aaaa-only.test": [("AAAA", "2001:db8::1")],
    "mx-no-mx.test": [("TXT", "v=spf1 mx:a-only.test -all")],
    "a-only.test": [("A", IP4)],                                 # no MX: mx does not fall back to A (5.4)
    "dual.test": [("TXT", "v=spf1 a:h.dual.test/24//64 -all")],
    "h.dual.test": [("A", "192.0.2.1"), ("AAAA", "2001:db8:7:7::1")],
    "ip6-0.test": [("TXT", "v=spf1 ip6:::/0 -all")],
    "cname.test": [("CNAME", "target.cname.test")],
    "target.cname.test": [("TXT", f"v=spf1 ip4:{IP4} -all")],
    "drop.test": "DROP",
    "exp-more.test": [("TXT", "v=spf1 -all exp=more.exp.test")],
    "more.exp.test": [("TXT", "c=%{c} r=%{r}%_%%%-end")],
    "exp-two.test": [("TXT", "v=spf1 -all exp=two.exp.test")],
    "two.exp.test": [("TXT", "one"), ("TXT", "two")],          # not exactly one TXT record: no explanation
    "exp-nx.test": [("TXT", "v=spf1 -all exp=missing.exp.test")],
    "ptr-limit.test": [("TXT", "v=spf1 ptr:ptrlimit.test -all")],
    ptr_name("192.0.2.140"): [("PTR", f"p{i}.ptrlimit.test") for i in range(1, 13)],
    # ---- through the mx listener (the client is 127.0.0.1)
    "helo-pass.mxspf.test": [("TXT", "v=spf1 ip4:127.0.0.1 -all")],
    "helo-fail.mxspf.test": [("TXT", "v=spf1 -all")],
    "pass.mxspf.test": [("TXT", "v=spf1 ip4:127.0.0.0/8 -all")],
    "soft.mxspf.test": [("TXT", "v=spf1 ~all")],
    "tempfail.mxspf.test": "SERVFAIL",
}

# The names the macro cases must make Ferry ask for (A records, so `exists` matches).
MACRO_CASES = {
    # id: (ip, sender, helo, the name exists: asks for)
    "s": ("192.0.2.90", "strong-bad@mac-s.test", HELO, "strong-bad@mac-s.test.s.mac.test"),
    "l": ("192.0.2.90", "joe@mac-l.test", HELO, "joe.l.mac.test"),
    "o": ("192.0.2.90", "joe@mac-o.test", HELO, "mac-o.test.o.mac.test"),
    "d-in-include": ("192.0.2.90", "joe@mac-d.test", HELO, "inner.mac-d.test.mac-d.test.d.mac.test"),
    "i-ipv4": ("192.0.2.90", "joe@mac-i.test", HELO, "192.0.2.90.i.mac.test"),
    "i-ipv6": ("2001:db8:9::90", "joe@mac-i.test", HELO, nibbles("2001:db8:9::90") + ".i.mac.test"),
    "ir-v-ipv4": ("192.0.2.90", "joe@mac-ir.test", HELO, "90.2.0.192.in-addr.arpa.mac.test"),
    "ir-v-ipv6": ("2001:db8:9::90", "joe@mac-ir.test", HELO,
                  ".".join(reversed(nibbles("2001:db8:9::90").split("."))) + ".ip6.arpa.mac.test"),
    "h": ("192.0.2.90", "joe@mac-h.test", "Mail.Sender-Helo.test", "mail.sender-helo.test.h.mac.test"),
    "p": ("192.0.2.40", "joe@mac-p.test", HELO, "mail.mech-ptr.test.p.mac.test"),
    # %{o2}: last two labels; %{i2r}: reversed, then the last two parts; %{d1r}: reversed, the last part
    "digits-and-r": ("192.0.2.90", "joe@x.y.mac-digits.test", HELO, "mac-digits.test.0.192.x.dig.mac.test"),
    # custom delimiters - and +, rejoined with "."
    "delimiters": ("192.0.2.90", "foo-bar+baz@mac-delim.test", HELO,
                   "foo.bar.baz.baz.bar.foo.foo.foo-bar+baz.delim.mac.test"),
    # uppercase: URL-escaped (RFC 7208 7.3): "+" is %2B, "@" is %40
    "uppercase-escape": ("192.0.2.90", "joe+x@mac-upper.test", HELO, "joe%2bx.joe%2bx%40mac-upper.test.up.mac.test"),
    "in-include": ("192.0.2.90", "carol@mac-include.test", HELO, "carol.users.mac.test"),
}
for _ip, _sender, _helo, _name in MACRO_CASES.values():
    ZONE.setdefault(_name, [("A", "127.0.0.2")])
ZONE["carol.users.mac.test"] = [("TXT", "v=spf1 ip4:192.0.2.90 -all")]   # the include's target is an SPF domain
ZONE["mail.mech-ptr.test.p.mac.test"] = [("A", "127.0.0.2")]
for _i in range(1, 11):
    ZONE[f"h{_i}.mx10.test"] = [("A", "192.0.2.120" if _i == 10 else f"203.0.113.{_i}")]
for _i in range(1, 12):
    ZONE[f"h{_i}.mx11.test"] = [("A", f"203.0.113.{_i}")]
for _i in range(1, 13):
    ZONE[f"p{_i}.ptrlimit.test"] = [("A", "203.0.113.1")]
for _prefix in "nkr":
    for _i in range(1, 11):
        ZONE[f"{_prefix}{_i}.lim.test"] = [("A", "203.0.113.99")]


# ---------------------------------------------------------------- fixtures and helpers

@pytest.fixture(scope="module")
def dns():
    with DnsServer(ZONE) as server:
        yield server


@pytest.fixture(scope="module")
def checker(dns, tmp_path_factory):
    """A configuration (never started) whose [dns] resolver is the test DNS server, for `ferry check spf`."""
    return mx_server(tmp_path_factory.mktemp("spfcheck"), dns, start=False, users=())


class Spf:
    def __init__(self, stdout):
        lines = stdout.splitlines()
        assert lines, "ferry check spf printed nothing"
        m = re.fullmatch(r"(\w+) \((.*)\)", lines[0])
        assert m, f"first line is not `RESULT (DOMAIN: WHY)`: {stdout!r}"
        self.word = m.group(1)
        self.detail = m.group(2)
        self.domain, _, self.why = self.detail.partition(": ")
        self.explanation = lines[1:]
        self.text = stdout

    def __repr__(self):
        return repr(self.text)


def check(checker, ip, mail_from=None, helo=HELO):
    """`ferry check spf`; mail_from None checks the HELO identity."""
    args = ["check", "spf", "--ip", ip, "--helo", helo]
    if mail_from is not None:
        args += ["--mail-from", mail_from]
    r = checker.cli(*args, timeout=20)
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, f"ferry {' '.join(args)} exited {r.returncode}: {r.stderr.decode(errors='replace')}{out}"
    assert len(out.splitlines()) <= 2, out
    return Spf(out)


def check_queries(checker, dns, ip, mail_from=None, helo=HELO):
    """check(), and the DNS questions asked during it: Counter of (name, type)."""
    with dns.resolver.lock:          # the DNS server's threads count under this lock
        before = Counter(dns.queries)
    res = check(checker, ip, mail_from, helo)
    with dns.resolver.lock:
        after = Counter(dns.queries)
    return res, after - before


def expect(res, word, domain=None, term=None):
    assert res.word == word, f"expected {word}, got {res}"
    if domain is not None:
        assert res.domain == domain, f"expected the checked domain {domain}, got {res}"
    if term is not None:
        # what decided is the last term matched (after any include:/redirect= it went through)
        assert re.search(rf"matched [+~?-]?{re.escape(term)}$", res.why), \
            f"expected {term!r} to be what matched, got {res}"


# ---------------------------------------------------------------- all and the qualifiers

@pytest.mark.parametrize("qual,word", [("none", "pass"), ("plus", "pass"), ("minus", "fail"), ("tilde", "softfail"),
                                       ("query", "neutral")])
def test_qualifier_on_all(checker, qual, word):
    expect(check(checker, "203.0.113.7", f"x@q-{qual}-all.test"), word, f"q-{qual}-all.test", "all")


@pytest.mark.parametrize("qual,word", [("none", "pass"), ("plus", "pass"), ("minus", "fail"), ("tilde", "softfail"),
                                       ("query", "neutral")])
def test_qualifier_on_a_matching_mechanism(checker, qual, word):
    # The "all" after it gives a different result, so only the qualifier of the ip4 term can give `word`.
    expect(check(checker, IP4, f"x@q-{qual}-ip4.test"), word, f"q-{qual}-ip4.test", f"ip4:{IP4}")


def test_all_matches_ipv4_and_ipv6(checker):
    expect(check(checker, "203.0.113.7", "x@all.test"), "pass", "all.test", "all")
    expect(check(checker, "2001:db8:ffff::7", "x@all.test"), "pass", "all.test", "all")


def test_nothing_matches_and_no_all_is_neutral(checker):
    expect(check(checker, IP4, "x@no-all.test"), "neutral", "no-all.test")


# ---------------------------------------------------------------- mechanisms, matching and not

@pytest.mark.parametrize("ip,sender,word,term", [
    # a: the domain's own A (IPv4 client) and AAAA (IPv6 client)
    (IP4, "x@mech-a.test", "pass", "a"),
    ("192.0.2.11", "x@mech-a.test", "fail", "-all"),
    (IP6, "x@mech-a.test", "pass", "a"),
    ("2001:db8:1::11", "x@mech-a.test", "fail", "-all"),
    # a:domain
    ("198.51.100.20", "x@a-named.test", "pass", "a:host.a-named.test"),
    ("198.51.100.21", "x@a-named.test", "fail", "-all"),
    # a/24 against an A of 192.0.2.1; the same A without the prefix length matches only itself
    ("192.0.2.77", "x@a24.test", "pass", "a:host.a24.test/24"),
    ("192.0.3.77", "x@a24.test", "fail", "-all"),
    ("192.0.2.77", "x@a-nocidr.test", "fail", "-all"),
    ("192.0.2.1", "x@a-nocidr.test", "pass", "a:host.a24.test"),
], ids=["a-v4", "a-v4-no", "a-v6", "a-v6-no", "a-domain", "a-domain-no", "a24", "a24-no", "a32-no", "a32"])
def test_a(checker, ip, sender, word, term):
    expect(check(checker, ip, sender), word, sender.split("@")[1], term)


@pytest.mark.parametrize("ip,sender,word,term", [
    ("192.0.2.30", "x@mech-mx.test", "pass", "mx"),
    ("2001:db8:2::30", "x@mech-mx.test", "pass", "mx"),
    ("192.0.2.31", "x@mech-mx.test", "fail", "-all"),
    ("2001:db8:2::31", "x@mech-mx.test", "fail", "-all"),
    # mx//64: the MX host's AAAA is 2001:db8:3:4::1
    ("2001:db8:3:4:ffff::9", "x@mx64.test", "pass", "mx//64"),
    ("2001:db8:3:5::1", "x@mx64.test", "fail", "-all"),
    ("2001:db8:3:4:ffff::9", "x@mx128.test", "fail", "-all"),     # without //64 only the address itself
    ("2001:db8:3:4::1", "x@mx128.test", "pass", "mx:mx64.test"),
], ids=["mx-v4", "mx-v6", "mx-v4-no", "mx-v6-no", "mx64", "mx64-no", "mx128-no", "mx128"])
def test_mx(checker, ip, sender, word, term):
    expect(check(checker, ip, sender), word, sender.split("@")[1], term)


@pytest.mark.parametrize("ip,sender,word,term", [
    ("192.0.2.40", "x@mech-ptr.test", "pass", "ptr"),       # PTR mail.mech-ptr.test, whose A is the client
    ("2001:db8:1::40", "x@mech-ptr.test", "pass", "ptr"),   # the same over ip6.arpa and AAAA
    ("192.0.2.41", "x@mech-ptr.test", "fail", "-all"),      # PTR name does not resolve back to the client
    ("192.0.2.43", "x@mech-ptr.test", "fail", "-all"),      # validated name, but outside mech-ptr.test
    ("192.0.2.44", "x@mech-ptr.test", "fail", "-all"),      # no PTR at all
    ("192.0.2.43", "x@ptr-named.test", "pass", "ptr:elsewhere.test"),
    ("192.0.2.40", "x@ptr-named.test", "fail", "-all"),
], ids=["v4", "v6", "not-validated", "other-domain", "no-ptr", "ptr-domain", "ptr-domain-no"])
def test_ptr(checker, ip, sender, word, term):
    expect(check(checker, ip, sender), word, sender.split("@")[1], term)


def test_ptr_asks_the_reverse_zone_then_the_forward_name(checker, dns):
    res, asked = check_queries(checker, dns, "192.0.2.40", "x@mech-ptr.test")
    expect(res, "pass")
    assert asked[(ptr_name("192.0.2.40"), "PTR")] >= 1, asked
    assert asked[("mail.mech-ptr.test", "A")] >= 1, asked


@pytest.mark.parametrize("ip,sender,word,term", [
    (IP4, "x@mech-ip4.test", "pass", f"ip4:{IP4}"),
    ("192.0.2.11", "x@mech-ip4.test", "fail", "-all"),
    ("198.51.100.200", "x@mech-ip4.test", "pass", "ip4:198.51.100.0/24"),
    ("198.51.101.200", "x@mech-ip4.test", "fail", "-all"),
    (IP4, "x@ip4-32.test", "pass", f"ip4:{IP4}"),       # printed without the /32
    ("192.0.2.11", "x@ip4-32.test", "fail", "-all"),
    ("203.0.113.5", "x@ip4-0.test", "pass", "ip4:0.0.0.0/0"),
    ("2001:db8::5", "x@ip4-0.test", "fail", "-all"),             # ip4 never matches an IPv6 client
    (IP6, "x@mech-ip6.test", "pass", f"ip6:{IP6}"),
    ("2001:db8:1::11", "x@mech-ip6.test", "fail", "-all"),
    (IP4, "x@mech-ip6.test", "fail", "-all"),                    # ip6 never matches an IPv4 client
    ("2001:db8:5:ffff::1", "x@ip6-48.test", "pass", "ip6:2001:db8:5::/48"),
    ("2001:db8:6::1", "x@ip6-48.test", "fail", "-all"),
], ids=["ip4", "ip4-no", "ip4-24", "ip4-24-no", "ip4-32", "ip4-32-no", "ip4-0", "ip4-0-v6", "ip6", "ip6-no",
        "ip6-v4", "ip6-48", "ip6-48-no"])
def test_ip4_ip6(checker, ip, sender, word, term):
    expect(check(checker, ip, sender), word, sender.split("@")[1], term)


def test_exists(checker, dns):
    res, asked = check_queries(checker, dns, "192.0.2.50", "x@mech-exists.test")
    expect(res, "pass", "mech-exists.test", "exists:%{i}.ok.exists.test")
    assert asked[("192.0.2.50.ok.exists.test", "A")] >= 1, asked
    res, asked = check_queries(checker, dns, "192.0.2.51", "x@mech-exists.test")
    expect(res, "fail", "mech-exists.test", "-all")
    assert asked[("192.0.2.51.ok.exists.test", "A")] >= 1, asked


# ---------------------------------------------------------------- include (RFC 7208 5.2's table)

def test_include_of_a_passing_record_matches(checker):
    expect(check(checker, "192.0.2.60", "x@inc-pass.test"), "pass", "inc-pass.test", "include:target-pass.test")
    expect(check(checker, "192.0.2.61", "x@inc-pass.test"), "fail", "inc-pass.test", "-all")


@pytest.mark.parametrize("target,word", [
    ("fail", "pass"),          # the included fail is "no match": the +all after it decides
    ("softfail", "pass"),
    ("neutral", "pass"),
    ("temperror", "temperror"),
    ("permerror", "permerror"),
    ("none", "permerror"),     # include of a domain without an SPF record
    ("nx", "permerror"),       # include of a domain that does not exist
])
def test_include_result_table(checker, target, word):
    res = check(checker, "192.0.2.61", f"x@inc-{target}.test")
    expect(res, word, f"inc-{target}.test", "all" if word == "pass" else None)


# ---------------------------------------------------------------- redirect and exp

def test_redirect(checker):
    expect(check(checker, "192.0.2.70", "x@redir.test"), "pass")
    expect(check(checker, "192.0.2.71", "x@redir.test"), "fail")
    assert "redir-target.test" in check(checker, "192.0.2.70", "x@redir.test").text


@pytest.mark.parametrize("domain", ["redir-none.test", "redir-nx.test"])
def test_redirect_to_a_domain_without_a_record_is_permerror(checker, domain):
    # redir-none: the target has TXT records but no SPF record; redir-nx: it does not exist (NXDOMAIN).
    # RFC 7208 6.1: the target's "none" is permerror.
    expect(check(checker, "192.0.2.70", f"x@{domain}"), "permerror", domain)


def test_redirect_is_ignored_when_the_record_has_all(checker, dns):
    res, asked = check_queries(checker, dns, "192.0.2.70", "x@redir-with-all.test")
    expect(res, "neutral", "redir-with-all.test", "?all")
    assert asked[("redir-target.test", "TXT")] == 0, asked


def test_exp_explanation_on_fail_with_macros(checker):
    res = check(checker, "192.0.2.81", "joe@exp.test", helo="relay.sender.test")
    expect(res, "fail", "exp.test", "-all")
    assert res.explanation == [
        "192.0.2.81 is not one of exp.test's designated mail servers (joe via relay.sender.test); "
        "see http://exp.test/why?s=joe%40exp.test&r=mx.example.test"], res


def test_exp_is_only_for_fail(checker):
    res = check(checker, "192.0.2.80", "joe@exp.test")
    expect(res, "pass", "exp.test")
    assert res.explanation == [], res
    res = check(checker, "192.0.2.80", "joe@exp-soft.test")
    expect(res, "softfail", "exp-soft.test")
    assert res.explanation == [], res


# ---------------------------------------------------------------- macros (RFC 7208 7)

@pytest.mark.parametrize("case", list(MACRO_CASES), ids=list(MACRO_CASES))
def test_macro_expansion_is_the_name_asked(checker, dns, case):
    ip, sender, helo, name = MACRO_CASES[case]
    res, asked = check_queries(checker, dns, ip, sender, helo=helo)
    assert asked[(name, "A" if case != "in-include" else "TXT")] >= 1, \
        f"expected a question for {name}; asked: {sorted(asked)}"
    # The name exists (an A record, or for include an SPF record passing the client): only the right
    # expansion gives pass.
    expect(res, "pass", sender.split("@")[1])


def test_null_sender_checks_postmaster_at_helo(checker, dns):
    res, asked = check_queries(checker, dns, "192.0.2.90", "", helo="nullhelo.test")
    expect(res, "pass", "nullhelo.test")
    assert asked[("postmaster.nullhelo.test.null.mac.test", "A")] >= 1, asked


def test_helo_identity(checker, dns):
    res, asked = check_queries(checker, dns, "192.0.2.130", None, helo="helo-id.test")
    expect(res, "pass", "helo-id.test", "ip4:192.0.2.130")
    assert asked[("helo-id.test", "TXT")] >= 1, asked
    expect(check(checker, "192.0.2.131", None, helo="helo-id.test"), "fail", "helo-id.test")
    # With --mail-from the sender's domain is checked, not the HELO name.
    res, asked = check_queries(checker, dns, "192.0.2.131", "x@all.test", helo="helo-id.test")
    expect(res, "pass", "all.test")
    assert asked[("helo-id.test", "TXT")] == 0, asked


def test_helo_that_is_not_a_domain_is_none(checker, dns):
    res, asked = check_queries(checker, dns, "192.0.2.131", None, helo="[192.0.2.131]")
    expect(res, "none")
    assert not [q for q in asked if q[1] == "TXT"], asked


# ---------------------------------------------------------------- limits (RFC 7208 4.6.4)

@pytest.mark.parametrize("kind", ["flat", "nest", "redir"])
def test_ten_dns_lookups_pass_eleven_are_permerror(checker, dns, kind):
    ok = {"flat": "lim10.test", "nest": "lim-nest10.test", "redir": "lim-redir10.test"}[kind]
    over = {"flat": "lim11.test", "nest": "lim-nest11.test", "redir": "lim-redir11.test"}[kind]
    res, asked = check_queries(checker, dns, "192.0.2.100", f"x@{ok}")
    expect(res, "pass", ok)
    res, asked = check_queries(checker, dns, "192.0.2.100", f"x@{over}")
    expect(res, "permerror", over)
    assert "10" in res.why, res
    # The lookup over the limit is not made.
    last = {"flat": ("n9.lim.test", "A"), "nest": ("k10.lim.test", "A"), "redir": ("rt.lim.test", "TXT")}[kind]
    assert asked[last] == 0, f"{last} was asked although it is the 11th DNS term: {sorted(asked)}"


def test_two_void_lookups_pass_three_are_permerror(checker, dns):
    res, asked = check_queries(checker, dns, "192.0.2.110", "x@void2.test")
    expect(res, "pass", "void2.test", "ip4:192.0.2.110")
    assert asked[("v1.void.test", "A")] >= 1 and asked[("v2.void.test", "A")] >= 1, asked
    expect(check(checker, "192.0.2.110", "x@void3.test"), "permerror", "void3.test")


def test_ten_mx_names_are_looked_at_more_is_permerror(checker):
    expect(check(checker, "192.0.2.120", "x@mx10.test"), "pass", "mx10.test", "mx")   # the 10th name matches
    expect(check(checker, "192.0.2.121", "x@mx10.test"), "fail", "mx10.test", "-all")
    expect(check(checker, "192.0.2.121", "x@mx11.test"), "permerror", "mx11.test")


# ---------------------------------------------------------------- errors and no record

def test_servfail_is_temperror(checker):
    expect(check(checker, IP4, "x@servfail.test"), "temperror", "servfail.test")
    expect(check(checker, IP4, "x@a-servfail.test"), "temperror", "a-servfail.test")


def test_no_spf_record_is_none(checker):
    # The domain exists and has TXT records, none of them "v=spf1" (v=spf10 is not one either).
    expect(check(checker, IP4, "x@norec.test"), "none", "norec.test")


def test_nxdomain_is_none(checker, dns):
    res, asked = check_queries(checker, dns, IP4, "x@nonexistent.test")
    expect(res, "none", "nonexistent.test")
    assert asked[("nonexistent.test", "TXT")] >= 1, asked


def test_two_spf_records_are_permerror(checker):
    expect(check(checker, IP4, "x@two.test"), "permerror", "two.test")


@pytest.mark.parametrize("domain", ["syntax-unknown.test", "syntax-ip4.test", "syntax-cidr.test", "syntax-macro.test",
                                    "syntax-tworedirect.test", "syntax-after-all.test"])
def test_syntax_error_is_permerror(checker, domain):
    # syntax-after-all: "+all" comes first, but a record with a syntax error anywhere is permerror (RFC 7208 4.6).
    expect(check(checker, "192.0.2.70", f"x@{domain}"), "permerror", domain)


@pytest.mark.parametrize("args", [
    ["--ip", "not-an-ip", "--helo", HELO, "--mail-from", "x@all.test"],
    ["--ip", "192.0.2.300", "--helo", HELO],
    ["--ip", IP4, "--helo", "", "--mail-from", "x@all.test"],
    ["--ip", IP4, "--mail-from", "x@all.test"],
], ids=["bad-ip", "bad-ipv4", "empty-helo", "no-helo"])
def test_usage_errors_exit_2(checker, args):
    r = checker.cli("check", "spf", *args)
    assert (r.returncode, r.stdout) == (2, b""), r


# ---------------------------------------------------------------- record text and evaluation details

def test_record_in_several_strings_is_joined_without_spaces(checker):
    # RFC 7208 3.3: the strings of one TXT record are concatenated as they are
    expect(check(checker, IP4, "x@split.test"), "pass", "split.test", f"ip4:{IP4}")


@pytest.mark.parametrize("domain", ["txt-no-strings.test", "txt-empty-string.test"])
def test_txt_record_without_text_is_discarded(checker, domain):
    # RFC 7208 4.5: TXT records that do not begin with "v=spf1" are discarded, also one of no character-strings
    # (RDLENGTH 0, which libunbound cannot copy) or of one empty string; the SPF record beside them decides.
    expect(check(checker, IP4, f"x@{domain}"), "pass", domain, f"ip4:{IP4}")


def test_txt_record_without_text_alone_is_none(checker):
    expect(check(checker, IP4, "x@txt-only-no-strings.test"), "none", "txt-only-no-strings.test")


def test_mechanism_names_are_case_insensitive(checker):
    expect(check(checker, IP4, "x@case.test"), "pass", "case.test")
    expect(check(checker, "192.0.2.11", "x@case.test"), "fail", "case.test")


def test_sender_domain_is_checked_in_lower_case(checker, dns):
    res, asked = check_queries(checker, dns, IP4, "Joe@MECH-IP4.Test")
    expect(res, "pass", "mech-ip4.test")


def test_unknown_modifier_is_ignored(checker):
    expect(check(checker, IP4, "x@unknown-mod.test"), "pass", "unknown-mod.test", f"ip4:{IP4}")


def test_include_loop_ends_in_permerror(checker):
    expect(check(checker, IP4, "x@loop.test"), "permerror", "loop.test")


def test_exists_asks_for_a_even_for_an_ipv6_client(checker, dns):
    # RFC 7208 5.7: an A query whatever the client's address family; aaaa-only.test has only an AAAA
    res, asked = check_queries(checker, dns, "2001:db8::1", "x@exists-aaaa.test")
    expect(res, "fail", "exists-aaaa.test", "-all")
    assert asked[("aaaa-only.test", "A")] >= 1 and asked[("aaaa-only.test", "AAAA")] == 0, asked


def test_mx_does_not_fall_back_to_a(checker):
    expect(check(checker, IP4, "x@mx-no-mx.test"), "fail", "mx-no-mx.test", "-all")


@pytest.mark.parametrize("ip,word", [("192.0.2.99", "pass"), ("192.0.3.1", "fail"), ("2001:db8:7:7::99", "pass"),
                                     ("2001:db8:7:8::1", "fail")])
def test_dual_cidr_length(checker, ip, word):
    expect(check(checker, ip, "x@dual.test"), word, "dual.test")


def test_ip6_zero_length_matches_every_ipv6_client_and_no_ipv4(checker):
    expect(check(checker, "2001:db8:abcd::5", "x@ip6-0.test"), "pass", "ip6-0.test", "ip6:::/0")
    expect(check(checker, "203.0.113.5", "x@ip6-0.test"), "fail", "ip6-0.test", "-all")


def test_ipv4_mapped_ipv6_client_is_ipv4(checker):
    expect(check(checker, f"::ffff:{IP4}", "x@mech-ip4.test"), "pass", "mech-ip4.test", f"ip4:{IP4}")


def test_cname_to_the_record_is_followed(checker):
    expect(check(checker, IP4, "x@cname.test"), "pass", "cname.test")


def test_unanswered_query_is_temperror(checker):
    # The DNS server never answers: [dns] timeout (2 s), then temperror, not none.
    start = time.monotonic()
    expect(check(checker, IP4, "x@drop.test"), "temperror", "drop.test")
    assert time.monotonic() - start < 15


def test_exp_only_macros_and_escapes(checker):
    res = check(checker, "2001:db8::99", "joe@exp-more.test")
    expect(res, "fail", "exp-more.test")
    # %{c}: the client address as written; %{r}: our name (authserv_id); %_ %% %-: space, "%", "%20"
    assert res.explanation == ["c=2001:db8::99 r=mx.example.test %%20end"], res


@pytest.mark.parametrize("domain", ["exp-two.test", "exp-nx.test"])
def test_exp_without_exactly_one_record_gives_fail_without_explanation(checker, domain):
    res = check(checker, "192.0.2.99", f"joe@{domain}")
    expect(res, "fail", domain, "-all")
    assert res.explanation == [], res


def test_ptr_looks_at_no_more_than_ten_names(checker, dns):
    res, asked = check_queries(checker, dns, "192.0.2.140", "x@ptr-limit.test")
    expect(res, "fail", "ptr-limit.test", "-all")
    lookups = [q for q in asked if q[0].endswith(".ptrlimit.test") and q[1] in ("A", "AAAA")]
    assert 1 <= len(lookups) <= 10, f"{len(lookups)} address lookups for 12 PTR names: {sorted(lookups)}"


# ---------------------------------------------------------------- through the mx listener

@pytest.fixture
def mx(dns, tmp_path):
    srv = mx_server(tmp_path / "mx", dns)
    yield srv
    assert srv.stop() == 0, srv.log[-3000:]


def deliver(mx, helo, mail_from, count):
    """One message from 127.0.0.1 (EHLO helo, MAIL FROM mail_from) to bob; the count-th copy in bob's
    mailbox as delivered, without Return-Path and Delivered-To."""
    subject = f"spf-{count}-{helo}"
    with mx.connect() as c:
        c.ehlo(helo)
        sender = mail_from or "postmaster@" + helo
        c.send_message(mail_from, ["bob@example.test"],
                       make_message(subject, sender=sender, to="bob@example.test"))
        c.quit()
    files = mx.wait_mail("bob", count=count)
    [data] = [d for d in (f.read_bytes() for f in files) if f"Subject: {subject}\r\n".encode() in d]
    return strip_delivery_headers(data)


def test_mx_records_spf_pass_for_mail_from_and_helo(mx):
    msg = deliver(mx, "helo-pass.mxspf.test", "sender@pass.mxspf.test", 1)
    res = auth_results(msg)
    assert result_of(res, "spf", smtp_mailfrom="sender@pass.mxspf.test") == "pass", res
    assert result_of(res, "spf", smtp_helo="helo-pass.mxspf.test") == "pass", res
    mx.wait_log(r"\bchecked client=\S+ .*\bspf=pass\b")


def test_mx_records_softfail_fail_and_temperror_and_still_delivers(mx):
    msg = deliver(mx, "helo-fail.mxspf.test", "sender@soft.mxspf.test", 1)
    res = auth_results(msg)
    assert result_of(res, "spf", smtp_mailfrom="sender@soft.mxspf.test") == "softfail", res
    assert result_of(res, "spf", smtp_helo="helo-fail.mxspf.test") == "fail", res
    msg = deliver(mx, "helo-pass.mxspf.test", "sender@tempfail.mxspf.test", 2)
    res = auth_results(msg)
    assert result_of(res, "spf", smtp_mailfrom="sender@tempfail.mxspf.test") == "temperror", res


def test_mx_null_sender_is_checked_as_postmaster_at_helo(mx):
    msg = deliver(mx, "helo-fail.mxspf.test", "", 1)
    res = auth_results(msg)
    assert result_of(res, "spf", smtp_mailfrom="postmaster@helo-fail.mxspf.test") == "fail", res
    assert result_of(res, "spf", smtp_helo="helo-fail.mxspf.test") == "fail", res
