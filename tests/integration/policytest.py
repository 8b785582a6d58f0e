"""Helpers for the connection and envelope policy tests (test_policy_*.py): DNS block list zones for dnstest.DnsServer
(RFC 5782 query names and test points), clients bound to a source address of their own, and messages found in a
Maildir by subject.

Every 127.x.y.z is an address of this machine (Linux routes 127.0.0.0/8 to lo), so each test talks from addresses of
its own and per-client state (listings, greylisting triplets, rate counters) never leaks from one test into another.
127.0.0.1 and 127.0.0.2 are never a test's client: they are the RFC 5782 test points the server asks at start.
"""

import ipaddress
import smtplib
import socket
import time

from ferrytest import maildir_files


def query_name(ip, zone):
    """The name a DNS list is asked for `ip` (RFC 5782 2.1 reversed octets, 2.4 reversed nibbles)."""
    rp = ipaddress.ip_address(ip).reverse_pointer
    for suffix in (".in-addr.arpa", ".ip6.arpa"):
        if rp.endswith(suffix):
            return rp[:-len(suffix)] + "." + zone
    raise ValueError(ip)


def zone_test_points(zone, lists_127_0_0_1=False, lists_127_0_0_2=True):
    """The RFC 5782 5 test points of a zone: 127.0.0.2 listed (A 127.0.0.2 and a TXT), 127.0.0.1 not. The flags make
    a broken list."""
    records = {}
    if lists_127_0_0_2:
        records[query_name("127.0.0.2", zone)] = [("A", "127.0.0.2"), ("TXT", f"test point of {zone}")]
    if lists_127_0_0_1:
        records[query_name("127.0.0.1", zone)] = [("A", "127.0.0.2"), ("TXT", f"{zone} lists everyone")]
    return records


def listing(ip, zone, answer="127.0.0.2", txt=None):
    """One client listed in a zone: {name: records} (a TXT only when txt is given)."""
    records = [("A", answer)]
    if txt is not None:
        records.append(("TXT", txt))
    return {query_name(ip, zone): records}


def wait_test_points_asked(dns, zones, not_listing_127_0_0_2=(), timeout=10.0):
    """Waits until the server has asked the test points of every zone (it checks them at start), so a test does not
    race the start-up check: 127.0.0.2, then 127.0.0.1 unless the zone fails at 127.0.0.2 already. Returns whether
    they were all asked; does not fail (the tests of the start-up check assert it themselves)."""
    deadline = time.monotonic() + timeout
    names = [(query_name(ip, z), "A") for z in zones for ip in ("127.0.0.2", "127.0.0.1")
             if ip == "127.0.0.2" or z not in not_listing_127_0_0_2]
    while time.monotonic() < deadline:
        if all(dns.queries[n] for n in names):
            time.sleep(0.3)   # the answers reach the server and are judged
            return True
        time.sleep(0.05)
    return False


def smtp_from(source, port, host="127.0.0.1", timeout=10):
    """smtplib.SMTP connected to host:port from the address `source`."""
    return smtplib.SMTP(host, port, timeout=timeout, source_address=(source, 0))


def message(subject, sender="sender@client.test", to="alice@example.test"):
    return (f"From: <{sender}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}.{time.monotonic_ns()}@client.test>\r\n\r\nhello\r\n").encode()


def find_subject(srv, localpart, subject, timeout=10.0, domain="example.test"):
    """Polls the Maildir of localpart@domain for a message with this subject; returns its path (AssertionError with
    the log's tail when none comes)."""
    needle = f"\r\nSubject: {subject}\r\n".encode()
    deadline = time.monotonic() + timeout
    while True:
        for f in maildir_files(srv.data_dir, domain, localpart):
            try:
                if needle in f.read_bytes():
                    return f
            except FileNotFoundError:
                pass
        if time.monotonic() > deadline:
            raise AssertionError(f"no message with subject {subject!r} for {localpart}@{domain}\n"
                                 f"--- log (tail) ---\n{srv.log[-4000:]}")
        time.sleep(0.05)


def has_subject(srv, localpart, subject, domain="example.test"):
    needle = f"\r\nSubject: {subject}\r\n".encode()
    return any(needle in f.read_bytes() for f in maildir_files(srv.data_dir, domain, localpart))


def log_lines(srv, *needles):
    """The server's log lines that contain every needle."""
    return [line for line in srv.log.splitlines() if all(n in line for n in needles)]


def free_port6():
    """A free TCP port on ::1, or None when this machine has no IPv6 loopback."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
            return s.getsockname()[1]
    except OSError:
        return None
