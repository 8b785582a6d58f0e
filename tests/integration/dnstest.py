"""A test DNS server (dnslib) on 127.0.0.1, UDP and TCP on one free port, serving the records a test gives it.

    zone = {"example.org": [("MX", 10, "mx1.example.org"), ("MX", 20, "mx2.example.org")],
            "mx1.example.org": [("A", "127.0.0.1")],
            "alias.example.org": [("CNAME", "mx1.example.org")],
            "broken.example.org": "SERVFAIL",     # every query for the name gets SERVFAIL
            "silent.example.org": "DROP",          # never answered (the client's timeout)
            "example.org": [("TXT", "v=spf1 -all")],   # TXT: a str (cut at 255 octets) or a list of strings
            "1.0.0.127.in-addr.arpa": [("PTR", "mx1.example.org")]}
    with DnsServer(zone) as dns:
        ... f"127.0.0.1:{dns.port}" is Ferry's [dns] resolver ...

Names not in the zone get NXDOMAIN; a name in the zone without records of the type asked gets NODATA. CNAMEs are
followed inside the zone, as a recursive resolver would. Queries are counted per (name, type) in `queries`.
"""

import socket
import threading
from collections import Counter

from dnslib import AAAA, CNAME, MX, PTR, QTYPE, RCODE, RR, TXT, A, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSLogger, DNSServer

TTL = 60


def _rdata(kind, values):
    if kind == "A":
        return A(values[0])
    if kind == "AAAA":
        return AAAA(values[0])
    if kind == "MX":
        return MX(values[1] if values[1] != "." else ".", values[0])
    if kind == "CNAME":
        return CNAME(values[0])
    if kind == "PTR":
        return PTR(values[0])
    if kind == "TXT":
        # One record: a str is cut into character-strings of 255 octets (RFC 1035 3.3.14); a list gives them as is.
        text = values[0]
        if isinstance(text, str):
            data = text.encode("utf-8")
            text = [data[i:i + 255] for i in range(0, len(data), 255)] or [b""]
        return TXT(text)
    raise ValueError(kind)


class _ZoneResolver(BaseResolver):
    def __init__(self, zone):
        self.zone = {k.lower().rstrip("."): v for k, v in zone.items()}
        self.queries = Counter()
        self.lock = threading.Lock()

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        with self.lock:
            self.queries[(name, qtype)] += 1
            zone = dict(self.zone)
        for _ in range(8):   # follow CNAMEs inside the zone
            records = zone.get(name)
            if records is None:
                reply.header.rcode = RCODE.NXDOMAIN
                return reply
            if records == "SERVFAIL":
                reply.header.rcode = RCODE.SERVFAIL
                return reply
            if records == "DROP":
                return None
            cname = [r for r in records if r[0] == "CNAME"]
            if cname and qtype != "CNAME":
                reply.add_answer(RR(name, QTYPE.CNAME, rdata=_rdata("CNAME", cname[0][1:]), ttl=TTL))
                name = cname[0][1].rstrip(".").lower()
                continue
            for r in records:
                if r[0] == qtype:
                    reply.add_answer(RR(name, getattr(QTYPE, r[0]), rdata=_rdata(r[0], r[1:]), ttl=TTL))
            return reply
        reply.header.rcode = RCODE.SERVFAIL
        return reply


class _Silent(Exception):
    pass


class _Handler(DNSHandler):
    def get_reply(self, data):
        # A resolver answer of None means: stay silent (the client times out).
        request = DNSRecord.parse(data)
        reply = self.server.resolver.resolve(request, self)
        if reply is None:
            raise _Silent()
        return reply.pack()

    def handle(self):
        try:
            super().handle()
        except _Silent:
            pass


def _free_port_udp_tcp():
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port


class DnsServer:
    def __init__(self, zone, port=None, address="127.0.0.1"):
        """port: a fixed port (53 inside a network namespace of the test's own, for clients that read
        /etc/resolv.conf); default: a free one."""
        self.resolver = _ZoneResolver(zone)
        self.host = address
        self.port = port or _free_port_udp_tcp()
        logger = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
        self.servers = [DNSServer(self.resolver, address=self.host, port=self.port, tcp=tcp, logger=logger,
                                  handler=_Handler) for tcp in (False, True)]

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    @property
    def queries(self):
        return self.resolver.queries

    def set(self, name, records):
        """Adds or replaces the records of one name while the server runs (None removes the name)."""
        with self.resolver.lock:
            key = name.lower().rstrip(".")
            if records is None:
                self.resolver.zone.pop(key, None)
            else:
                self.resolver.zone[key] = records

    def __enter__(self):
        for s in self.servers:
            s.start_thread()
        return self

    def __exit__(self, *exc):
        for s in self.servers:
            s.stop()
            s.server.server_close()
