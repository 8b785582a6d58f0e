"""Greylisting (RFC 6647) on the mx listener, black box, with a short delay ("2s") and retry window ("20s"): the first
attempt of a triplet (client /24 or SPF-pass domain, sender, recipient) is deferred with 451 4.7.1, a retry after
the delay passes, the triplet is then known, state survives a restart; authenticated, allow-listed (configured
network or DNSWL) clients and postmaster@ are never greylisted.

Each test uses client networks (127.0.N.0/24) and senders of its own, so the triplets of one test never meet those of
another on the module's one server.
"""

import re
import smtplib
import time

import pytest

from dnstest import DnsServer
from ferrytest import DEFAULT_PASSWORD, Ferry, RawSMTP, client_context, free_port
from policytest import find_subject, has_subject, listing, message, wait_test_points_asked, zone_test_points

DELAY = 2.0
AFTER_DELAY = DELAY + 0.4
GREYLISTED_RE = re.compile(r"^4\.7\.1 Greylisted, please try again in (\d+) seconds?$")

ZONE = {
    # The SPF-pass domain test: both /24s are the domain's senders.
    "spf.test": [("TXT", "v=spf1 ip4:127.0.7.0/24 ip4:127.0.8.0/24 -all")],
    **zone_test_points("wl.test"),
    **listing("127.0.15.1", "wl.test", answer="127.0.10.2"),
}


@pytest.fixture(scope="module")
def dns():
    with DnsServer(ZONE) as server:
        yield server


@pytest.fixture(scope="module")
def srv(dns, tmp_path_factory):
    sub = free_port()
    extra = (f'[[listen]]\naddress = "127.0.0.1:{sub}"\nrole = "submission"\n\n'
             f'[dns]\nresolver = "{dns.address}"\ntimeout = "2s"\n\n'
             # SPF is on so the SPF-pass domain is known (the checks' other results do not matter here).
             '[mailauth]\nverify = true\n\n'
             '[policy]\nallow_networks = ["127.0.9.0/24"]\n\n'
             # dnswl.org's answers are 127.0.X.Y: outside the default responses of a zone not named list.dnswl.org
             '[[dnsbl]]\nzone = "wl.test"\nweight = -1\nresponses = ["127.0.0.0-127.0.255.254"]\n\n'
             f'[greylist]\nenabled = true\ndelay = "{int(DELAY)}s"\nretry_window = "20s"\n')
    server = Ferry(tmp_path_factory.mktemp("greylist"), extra_toml=extra)
    server.sub_port = sub
    server.start()
    wait_test_points_asked(dns, ["wl.test"])
    yield server
    server.stop()


def rcpt(srv, source, sender, recipient="alice@example.test"):
    """The reply to RCPT in a fresh mx session from `source`."""
    with RawSMTP(srv.port, source=source) as c:
        assert c.greeting.code == 220, c.greeting
        c.ehlo()
        c.expect(f"MAIL FROM:<{sender}>", 250, "2.1.0")
        r = c.cmd(f"RCPT TO:<{recipient}>")
        c.quit()
    return r


def assert_greylisted(r, what=""):
    assert r.is_(451, "4.7.1"), f"{what}: expected 451 4.7.1 Greylisted, got {r}"
    m = GREYLISTED_RE.match(r.text)
    assert m, f"{what}: reply text is not the RFC 6647 one: {r}"
    assert 0 <= int(m.group(1)) <= DELAY, r
    return int(m.group(1))


def deliver(srv, source, sender, subject, recipient="alice@example.test"):
    """A whole mx transaction from `source` whose RCPT must pass; waits for the delivered message."""
    with RawSMTP(srv.port, source=source) as c:
        assert c.greeting.code == 220, c.greeting
        c.ehlo()
        c.expect(f"MAIL FROM:<{sender}>", 250, "2.1.0")
        r = c.cmd(f"RCPT TO:<{recipient}>")
        assert r.is_(250, "2.1.5"), f"{source} {sender} -> {recipient}: RCPT {r}\n--- log ---\n{srv.log[-3000:]}"
        assert c.cmd("DATA").code == 354
        c.send(message(subject, sender=sender, to=recipient) + b".\r\n")
        r = c.reply()
        assert r.is_(250, "2.0.0"), r
        c.quit()
    find_subject(srv, recipient.split("@")[0], subject)


def sleep_until(t):
    left = t - time.monotonic()
    if left > 0:
        time.sleep(left)


def test_first_attempt_deferred_early_retry_deferred_retry_after_delay_passes(srv):
    client, sender = "127.0.11.1", "gl-basic@client.test"
    t0 = time.monotonic()
    assert_greylisted(rcpt(srv, client, sender), "first attempt")
    srv.wait_log(r"policy=greylist client=\[127\.0\.11\.1\]:\d+ .*action=defer")
    assert_greylisted(rcpt(srv, client, sender), "immediate retry")
    sleep_until(t0 + AFTER_DELAY)
    deliver(srv, client, sender, "greylist-retry")
    srv.wait_log(r"policy=greylist client=\[127\.0\.11\.1\]:\d+ .*action=pass")
    # The triplet is known now: a later message passes at once ...
    deliver(srv, client, sender, "greylist-known")
    # ... but another recipient is a triplet of its own.
    assert_greylisted(rcpt(srv, client, sender, "bob@example.test"), "same client and sender, other recipient")


def test_clients_of_one_24_share_a_triplet_another_24_does_not(srv):
    sender = "gl-net@client.test"
    t0 = time.monotonic()
    assert_greylisted(rcpt(srv, "127.0.5.1", sender), "first attempt from 127.0.5.1")
    sleep_until(t0 + AFTER_DELAY)
    assert_greylisted(rcpt(srv, "127.0.6.1", sender), "first attempt from 127.0.6.0/24")
    deliver(srv, "127.0.5.9", sender, "greylist-same-24")


def test_restart_keeps_passed_and_pending_triplets(srv):
    client = "127.0.17.1"
    passed, pending = "gl-passed@client.test", "gl-pending@client.test"
    t0 = time.monotonic()
    assert_greylisted(rcpt(srv, client, passed), "first attempt (to pass)")
    assert_greylisted(rcpt(srv, client, pending), "first attempt (to stay pending)")
    sleep_until(t0 + AFTER_DELAY)
    deliver(srv, client, passed, "greylist-before-restart")
    srv.stop()
    assert (srv.data_dir / "greylist").exists(), "no data_dir/greylist after stop"
    srv.start()
    # Known before the restart: passes at once. Forgotten, it would be deferred as a first attempt.
    deliver(srv, client, passed, "greylist-after-restart")
    # Pending before the restart and retried after its delay: passes. Forgotten, it would be deferred again.
    deliver(srv, client, pending, "greylist-pending-after-restart")


def test_spf_pass_domain_is_the_source_for_senders_retrying_from_another_network(srv):
    sender = "news@spf.test"
    t0 = time.monotonic()
    assert_greylisted(rcpt(srv, "127.0.7.1", sender), "first attempt from 127.0.7.1")
    sleep_until(t0 + AFTER_DELAY)
    # Another /24, the same SPF-pass domain: the same triplet, now retried after the delay.
    deliver(srv, "127.0.8.1", sender, "greylist-spf-domain")


def test_authenticated_submission_is_never_greylisted(srv):
    client, sender = "127.0.12.1", "alice@example.test"
    # Control: the same client, sender and recipient unauthenticated on mx are greylisted ...
    assert_greylisted(rcpt(srv, client, sender, "bob@example.test"), "unauthenticated on mx")
    # ... and right after (well before the delay) the authenticated submission passes.
    with smtplib.SMTP("127.0.0.1", srv.sub_port, timeout=10, source_address=(client, 0)) as s:
        s.ehlo("client.test")
        s.starttls(context=client_context())
        s.ehlo("client.test")
        s.login("alice@example.test", DEFAULT_PASSWORD)
        refused = s.sendmail(sender, ["bob@example.test"],
                             message("greylist-authenticated", sender=sender, to="bob@example.test"))
        assert refused == {}
    find_subject(srv, "bob", "greylist-authenticated")


def test_allow_listed_network_is_never_greylisted(srv):
    sender = "gl-allow@client.test"
    assert_greylisted(rcpt(srv, "127.0.13.1", sender), "control: a client outside allow_networks")
    deliver(srv, "127.0.9.1", sender, "greylist-allow-network")


def test_dnswl_listed_client_is_never_greylisted(srv, dns):
    sender = "gl-dnswl@client.test"
    assert_greylisted(rcpt(srv, "127.0.16.1", sender), "control: a client not in the DNSWL")
    deliver(srv, "127.0.15.1", sender, "greylist-dnswl")
    assert dns.queries[("1.15.0.127.wl.test", "A")] >= 1


def test_postmaster_is_never_greylisted(srv):
    client, sender = "127.0.14.1", "gl-pm@client.test"
    with RawSMTP(srv.port, source=client) as c:
        assert c.greeting.code == 220, c.greeting
        c.ehlo()
        c.expect(f"MAIL FROM:<{sender}>", 250, "2.1.0")
        assert_greylisted(c.cmd("RCPT TO:<alice@example.test>"), "alice")
        r = c.cmd("RCPT TO:<postmaster@example.test>")
        assert r.is_(250, "2.1.5"), f"postmaster@ greylisted (RFC 5321 4.5.1): {r}"
        assert c.cmd("DATA").code == 354
        c.send(message("greylist-postmaster", sender=sender, to="postmaster@example.test") + b".\r\n")
        r = c.reply()
        assert r.is_(250, "2.0.0"), r
        c.quit()
    find_subject(srv, "postmaster", "greylist-postmaster")
    assert not has_subject(srv, "alice", "greylist-postmaster")
