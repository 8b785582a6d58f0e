"""Ferry's resolver (libunbound) against a test DNS server, through `ferry dns DOMAIN`: MX order and
randomisation, implicit MX, null MX, NXDOMAIN, SERVFAIL, timeouts, CNAMEs, hosts without addresses."""

import subprocess
import time

import pytest

from dnstest import DnsServer
from ferrytest import ferry_bin

ZONE = {
    "example.org": [("MX", 20, "mx2.example.org"), ("MX", 10, "mx1.example.org")],
    "mx1.example.org": [("A", "127.0.0.1"), ("AAAA", "::1")],
    "mx2.example.org": [("CNAME", "real.example.org")],
    "real.example.org": [("A", "127.0.0.2")],
    "equal.example.org": [("MX", 5, "a.example.org"), ("MX", 5, "b.example.org")],
    "a.example.org": [("A", "127.0.0.10")],
    "b.example.org": [("A", "127.0.0.11")],
    "implicit.example.org": [("A", "127.0.0.3")],
    "null.example.org": [("MX", 0, ".")],
    "noaddr.example.org": [("MX", 10, "gone.example.org")],
    "fallback.example.org": [("MX", 10, "gone.example.org"), ("MX", 20, "mx1.example.org")],
    "halfbroken.example.org": [("MX", 10, "broken.example.org")],
    "twice.example.org": [("MX", 10, "c1.example.org"), ("MX", 20, "c2.example.org")],
    "c1.example.org": [("CNAME", "shared.example.org")],
    "c2.example.org": [("CNAME", "shared.example.org")],
    "shared.example.org": [("A", "127.0.0.4")],
    "broken.example.org": "SERVFAIL",
    "silent.example.org": "DROP",
}


@pytest.fixture(scope="module")
def dns():
    with DnsServer(ZONE) as server:
        yield server


@pytest.fixture
def lookup(dns, tmp_path):
    config = tmp_path / "ferry.toml"
    config.write_text(f'data_dir = "data"\n[[listen]]\naddress = "127.0.0.1:0"\n'
                      f'[dns]\nresolver = "{dns.address}"\ntimeout = "1s"\n')

    def run(domain, stderr=None):
        r = subprocess.run([ferry_bin(), "dns", domain, "--config", str(config)], capture_output=True, text=True,
                           timeout=20)
        if stderr is None:
            assert not r.stderr, r.stderr
        else:
            stderr.append(r.stderr)
        return r.returncode, r.stdout.splitlines()
    return run


def test_mx_hosts_in_preference_order_with_addresses_and_cnames_followed(lookup):
    rc, lines = lookup("example.org")
    assert rc == 0, lines
    assert lines == ["10 mx1.example.org ::1 127.0.0.1", "20 mx2.example.org 127.0.0.2"]


def test_equal_preferences_are_tried_in_random_order(lookup):
    firsts = set()
    for _ in range(24):
        rc, lines = lookup("equal.example.org")
        assert rc == 0 and len(lines) == 2, lines
        firsts.add(lines[0].split()[1])
        if len(firsts) == 2:
            break
    assert firsts == {"a.example.org", "b.example.org"}


def test_no_mx_means_the_domain_itself(lookup):
    assert lookup("implicit.example.org") == (0, ["0 implicit.example.org (no MX: implicit) 127.0.0.3"])


def test_null_mx_is_permanent_5_1_10(lookup):
    rc, lines = lookup("null.example.org")
    assert rc == 1
    assert lines == ["permanent 5.1.10 domain null.example.org does not accept mail (null MX, RFC 7505)"]


def test_nxdomain_is_permanent_5_1_2(lookup):
    rc, lines = lookup("nowhere.example.org")
    assert rc == 1
    assert lines == ["permanent 5.1.2 domain nowhere.example.org does not exist (NXDOMAIN)"]


def test_servfail_is_temporary(lookup):
    rc, lines = lookup("broken.example.org")
    assert rc == 75
    assert lines == ["temporary 4.4.3 MX lookup for broken.example.org failed: SERVFAIL"]


def test_silent_server_times_out_as_temporary(lookup):
    t0 = time.monotonic()
    rc, lines = lookup("silent.example.org")
    elapsed = time.monotonic() - t0
    assert rc == 75
    assert lines == ["temporary 4.4.3 MX lookup for silent.example.org failed: no answer within 1000 ms"]
    assert elapsed < 5, elapsed


def test_mx_host_without_address_is_skipped_for_the_next(lookup):
    rc, lines = lookup("fallback.example.org")
    assert rc == 0, lines
    assert lines == ["# host gone.example.org does not exist (NXDOMAIN)", "20 mx1.example.org ::1 127.0.0.1"]


def test_no_mx_host_with_an_address_is_permanent_5_4_4(lookup):
    rc, lines = lookup("noaddr.example.org")
    assert rc == 1
    assert lines[-1] == "permanent 5.4.4 host gone.example.org does not exist (NXDOMAIN)"


def test_mx_host_lookup_failing_for_now_is_temporary(lookup):
    rc, lines = lookup("halfbroken.example.org")
    assert rc == 75
    assert lines[-1].startswith("temporary 4.4.3 ") and "broken.example.org" in lines[-1], lines


def test_answers_are_cached(dns, lookup):
    """Two MX hosts that are aliases of one host: its address is asked for once, then comes from the cache."""
    rc, lines = lookup("twice.example.org")
    assert rc == 0
    assert lines == ["10 c1.example.org 127.0.0.4", "20 c2.example.org 127.0.0.4"]
    assert dns.queries[("shared.example.org", "A")] == 1, dict(dns.queries)


def test_bad_domain_is_a_usage_error(lookup):
    err = []
    rc, _ = lookup("not a domain", stderr=err)
    assert rc == 2
    assert 'ferry dns: "not a domain" is not a domain name' in err[0]
