#!/usr/bin/python3
"""What the connection and envelope policy (issue 18) costs: Ferry with it against Ferry without it, on loopback.

Run through bench/policy.sh (as root, like bench/run; `make bench` runs it after bench/filters.sh). The goal, from
the issue: the policy enabled (DNSBL answered by a local DNS server, greylisting of known triplets) costs no more
than 15% of throughput against the policy disabled.

Targets, started fresh by this script (bench/filters.py's Ferry: bench/run's config, a Maildir user u@example.test,
default durability, `[mailauth] verify = false`, log_level "warn" unless --log-level) and stopped by PID at the end:
    ferry-plain        no policy (the default config's: all off)
    ferry-policy       [policy] allow_networks = [] (smtp-source connects from 127.0.0.1, which the default allow
                       list would exempt), two [[dnsbl]] zones (weight 1 each, threshold 1), [greylist] enabled
                       with delay "1s" and the triplet already known, [rate_limit] connections, messages and
                       recipients at "1000000/1m" (never refuses, but every check is counted); its [dns] resolver is
                       a local DNS server whose answers have a TTL of 300 s: libunbound's cache answers every
                       lookup after the first, as a real server's cache does for a repeat client
    ferry-policy-cold  the same, with a DNS server whose answers (and NXDOMAIN's SOA) have a TTL of 0, and every
                       connection of smtp-source from a new address of 127.0.0.0/8 (bench/many_sources.c, preloaded:
                       smtp-source cannot bind its connections itself): nothing is cached, each connection's DNSBL
                       lookups are names nobody asked before and reach the DNS server, as for a stream of new
                       clients; only in --cold-modes (conn: in reuse mode a session asks once for all its messages);
                       --cold-dns lean gives it `policy.py lean-dns-server` instead of dnslib's (the same answers
                       at a sixth of the CPU, which here is taken from the same 2 cores as Ferry's)
    ferry-plain-2      a second ferry-plain (unless --no-control): plain-2 / plain is an A/A comparison, the noise
                       of this machine's throughput figures (shared with other work), against which a 15% goal is
                       judged
The DNS servers are tests/integration/dnstest.py's DnsServer (dnslib), each in a process of its own (`policy.py
dns-server`) so that their CPU is counted apart from Ferry's: NXDOMAIN for the client (1.0.0.127.ZONE), the
RFC 5782 test point 2.0.0.127.ZONE A 127.0.0.2 (Ferry checks the test points of every list at start), and the SPF
record of the sender's domain, which greylisting asks (a sender whose SPF passes is greylisted by its domain, not
by the client's network: RFC 6647 4.2), "v=spf1 ip4:127.0.0.0/8 -all": it passes, as for a real sender.
ferry-plain uses the warm DNS server too (as its [dns] resolver, unused with verify = false): the configs differ
only in the policy tables.

Before measuring, each policy target's triplet (127.0.0.0/24, <a@example.test>, <u@example.test>: smtp-source's
-f and -t, as bench-peers.sh and filters.py run it) is made known: one attempt, which must get 451 (greylisted),
a wait past the delay, a retry, which must get 250 and deliver. After the runs a check on ferry-policy-cold: with
127.0.0.1 listed in the first zone a message must get 554 at RCPT (the DNSBL is asked for every session).

Per cell (mode x sessions) and repetition, targets interleaved (order rotating per cell): smtp-source with 1 KiB
messages; msg/s e2e = messages / seconds from smtp-source's start until every message is in the Maildir and the
spool is empty (as bench/run and filters.py measure); Ferry CPU = utime+stime of its process over the same span;
DNS queries and DNS server CPU over the same span. Modes: conn = one connection per message (every message pays the
DNSBL lookups, the SPF check and the connection rate check), reuse = smtp-source -d (each session sends all its
messages on one connection: the DNSBL and SPF are asked once per session, greylisting and the message/recipient
rates per message).
Writes bench/results/policy-<stamp>.md and .tsv; prints the .md's path.
"""

import argparse
import json
import os
import re
import shutil
import signal
import smtplib
import statistics as st
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "tests" / "integration"))
from filters import Ferry, clear_files, git_desc, port_busy, tree_ticks  # noqa: E402  (filters.py's Ferry set-up)

HZ = os.sysconf("SC_CLK_TCK")
ZONES = ["bl1.bench.test", "bl2.bench.test"]
CLIENT = "1.0.0.127"            # the reversed octets of 127.0.0.1, smtp-source's address
SENDER, RCPT = "a@example.test", "u@example.test"
# Greylisting asks SPF for the sender's domain (a sender whose SPF passes is greylisted by its domain, RFC 6647 4.2):
# the DNS servers give it a record that passes for smtp-source's 127.0.0.1, as a real sender's domain has one.
SENDER_DOMAIN, SPF_RECORD = "example.test", "v=spf1 ip4:127.0.0.0/8 -all"
PORTS = {"ferry-plain": 2650, "ferry-policy": 2651, "ferry-policy-cold": 2652, "ferry-plain-2": 2653}
BEGIN, END = "<!-- policy: bench/policy.sh -->", "<!-- /policy -->"


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] policy: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------- the DNS server

def dns_server_main(argv):
    """`policy.py dns-server --ttl N --counts FILE [--listed FLAGFILE]`: dnstest's DnsServer with the zones above,
    every answer's TTL (and NXDOMAIN's SOA, RFC 2308 negative caching) set to N; prints its port, writes the
    query counts to FILE every 0.2 s, runs until SIGTERM. While FLAGFILE exists the client is listed in the first
    zone (the check after the runs)."""
    ap = argparse.ArgumentParser(prog="policy.py dns-server")
    ap.add_argument("--ttl", type=int, required=True)
    ap.add_argument("--counts", required=True)
    ap.add_argument("--listed", default=None)
    a = ap.parse_args(argv)
    from dnslib import QTYPE, RCODE, RR, SOA, A
    from dnstest import DnsServer
    zone = {SENDER_DOMAIN: [("TXT", SPF_RECORD)]}
    for z in ZONES:
        zone[f"2.0.0.127.{z}"] = [("A", "127.0.0.2"), ("TXT", f"test point of {z}")]
    dns = DnsServer(zone)
    resolve = dns.resolver.resolve

    def resolve_with_ttl(request, handler):
        name = str(request.q.qname).rstrip(".").lower()
        if a.listed and name == f"{CLIENT}.{ZONES[0]}" and os.path.exists(a.listed):
            reply = request.reply()
            with dns.resolver.lock:
                dns.resolver.queries[(name, QTYPE[request.q.qtype])] += 1
            if QTYPE[request.q.qtype] == "A":
                reply.add_answer(RR(name, QTYPE.A, rdata=A("127.0.0.2"), ttl=a.ttl))
        else:
            reply = resolve(request, handler)
        if reply is None:
            return None
        for rr in reply.rr:
            rr.ttl = a.ttl
        if reply.header.rcode == RCODE.NXDOMAIN or not reply.rr:
            apex = next((z for z in ZONES + [SENDER_DOMAIN] if name == z or name.endswith("." + z)), None)
            if apex:
                reply.add_auth(RR(apex, QTYPE.SOA, ttl=a.ttl, rdata=SOA(
                    f"ns.{apex}", f"hostmaster.{apex}", (1, 3600, 600, 86400, a.ttl))))
        return reply

    dns.resolver.resolve = resolve_with_ttl
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    with dns:
        print(dns.port, flush=True)
        tmp = a.counts + ".tmp"
        while not stop:
            with dns.resolver.lock:
                counts = {f"{n} {t}": c for (n, t), c in dns.queries.items()}
            with open(tmp, "w") as f:
                json.dump(counts, f)
            os.replace(tmp, a.counts)
            time.sleep(0.2)


def lean_dns_server_main(argv):
    """`policy.py lean-dns-server --counts FILE [--listed FLAGFILE]`: the same answers as dns-server with TTL 0, over
    UDP only, from one thread without dnslib on the query path: the records are encoded once (with dnslib), the
    NXDOMAIN for a client's name is put together from the query's own bytes. dnslib's server (a thread and a full
    parse and pack per query) costs about 0.3 ms of CPU per query, which in the cold-cache case is as much as the
    policy's whole cost and is taken from the same 2 cores as Ferry's; this one costs a fraction of that."""
    import socket
    import struct
    from collections import Counter
    from dnslib import QTYPE, RR, TXT, A, DNSRecord
    ap = argparse.ArgumentParser(prog="policy.py lean-dns-server")
    ap.add_argument("--counts", required=True)
    ap.add_argument("--listed", default=None)
    a = ap.parse_args(argv)

    def records(name, qtype):
        if name == SENDER_DOMAIN and qtype == "TXT":
            return [RR(name, QTYPE.TXT, rdata=TXT(SPF_RECORD), ttl=0)]
        for z in ZONES:
            if name == f"2.0.0.127.{z}":
                if qtype == "A":
                    return [RR(name, QTYPE.A, rdata=A("127.0.0.2"), ttl=0)]
                if qtype == "TXT":
                    return [RR(name, QTYPE.TXT, rdata=TXT(f"test point of {z}"), ttl=0)]
        return None

    def wire(name):
        return b"".join(bytes([len(x)]) + x.encode() for x in name.split(".")) + b"\0"

    def soa_wire(apex):
        # Written out, not packed by dnslib, which would compress its names against a message it is not in.
        rdata = wire(f"ns.{apex}") + wire(f"hostmaster.{apex}") + struct.pack("!IIIII", 1, 3600, 600, 86400, 0)
        return wire(apex) + struct.pack("!HHIH", 6, 1, 0, len(rdata)) + rdata

    soas = {z: soa_wire(z) for z in ZONES + [SENDER_DOMAIN]}
    answers = {}
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    counts = Counter()
    signal.signal(signal.SIGTERM, lambda *_: counts.update({"\0stop": 1}))
    print(sock.getsockname()[1], flush=True)
    tmp, last = a.counts + ".tmp", 0.0
    while not counts["\0stop"]:
        try:
            data, peer = sock.recvfrom(4096)
        except (socket.timeout, InterruptedError):
            data = None
        if data and len(data) > 17:
            end = data.index(0, 12)   # the query's name: labels up to the root (no compression in a question)
            question = data[12:end + 5]
            labels, i = [], 12
            while data[i]:
                labels.append(data[i + 1:i + 1 + data[i]].decode("ascii", "replace").lower())
                i += 1 + data[i]
            name = ".".join(labels)
            qtype = QTYPE.get(struct.unpack("!H", data[end + 1:end + 3])[0])
            counts[f"{name} {qtype}"] += 1
            listed = a.listed and name == f"{CLIENT}.{ZONES[0]}" and os.path.exists(a.listed)
            if listed:
                rrs = [RR(name, QTYPE.A, rdata=A("127.0.0.2"), ttl=0)] if qtype == "A" else []
            else:
                rrs = records(name, qtype)
            if rrs is not None:
                packed = None if listed else answers.get(question)
                if packed is None:
                    reply = DNSRecord.parse(data).reply()
                    for rr in rrs:
                        reply.add_answer(rr)
                    packed = reply.pack()[2:]   # all but the ID: the same for every later query of this question
                    if not listed:
                        answers[question] = packed
                sock.sendto(data[:2] + packed, peer)
            else:
                apex = next((z for z in soas if name == z or name.endswith("." + z)), None)
                flags = 0x8000 | 0x0400 | (struct.unpack("!H", data[2:4])[0] & 0x0100) | 0x0080 | 3
                sock.sendto(data[:2] + struct.pack("!HHHHH", flags, 1, 0, 1 if apex else 0, 0) + question
                            + (soas[apex] if apex else b""), peer)
        now = time.monotonic()
        if now - last > 0.2:
            with open(tmp, "w") as f:
                json.dump({k: c for k, c in counts.items() if not k.startswith("\0")}, f)
            os.replace(tmp, a.counts)
            last = now


class DnsProcess:
    def __init__(self, base, name, ttl, listed=None, lean=False):
        self.counts_file = Path(base) / f"dns-{name}.json"
        self.listed = listed
        args = ([sys.executable, __file__, "lean-dns-server", "--counts", str(self.counts_file)] if lean else
                [sys.executable, __file__, "dns-server", "--ttl", str(ttl), "--counts", str(self.counts_file)])
        if listed:
            args += ["--listed", str(listed)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.port = int(self.proc.stdout.readline())
        self.address = f"127.0.0.1:{self.port}"
        self.ttl = ttl

    def queries(self):
        """Queries so far (the DNSBLs' and SPF's; the difference over a run is what that run asked)."""
        time.sleep(0.25)   # one more write of the counts file
        try:
            counts = json.loads(self.counts_file.read_text())
        except (OSError, ValueError):
            return 0
        return sum(counts.values())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def policy_config(dns_address):
    zones = "".join(f'[[dnsbl]]\nzone = "{z}"\nweight = 1\n' for z in ZONES)
    return (f'[dns]\nresolver = "{dns_address}"\n'
            '[policy]\nallow_networks = []\ndnsbl_threshold = 1\ndnsbl_reject = "rcpt"\n'
            + zones +
            '[greylist]\nenabled = true\ndelay = "1s"\n'
            '[rate_limit]\nconnections = "1000000/1m"\nmessages = "1000000/1m"\nrecipients = "1000000/1m"\n')


def build_shim(base):
    """bench/many_sources.c, built for this run: smtp-source's connections from new addresses (None: no compiler)."""
    out = Path(base) / "many_sources.so"
    b = subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", str(out), str(REPO / "bench/many_sources.c"), "-ldl"],
                       capture_output=True, text=True)
    if b.returncode != 0:
        log(f"many_sources.c did not build ({b.stderr[-300:]}): ferry-policy-cold's clients all come from 127.0.0.1")
        return None
    return out


# ---------------------------------------------------------------------------------------------- checks

def smtp_attempt(port, rcpt=RCPT, data=True):
    """One SMTP transaction; returns (RCPT code, text, DATA code or None)."""
    with smtplib.SMTP("127.0.0.1", port, local_hostname="bench.example.test", timeout=30) as s:
        s.ehlo()
        s.mail(SENDER)
        code, text = s.rcpt(rcpt)
        dcode = None
        if code == 250 and data:
            dcode, _ = s.data(f"From: <{SENDER}>\r\nTo: <{rcpt}>\r\nSubject: policy bench\r\n\r\nprime\r\n")
        else:
            s.rset()
        return code, text.decode(errors="replace"), dcode


def prime_greylist(t, delay_s=1.0):
    """Makes the bench triplet known: 451 on the first attempt, 250 on a retry past the delay."""
    first = smtp_attempt(t.port)
    if first[0] != 451:
        raise SystemExit(f"policy: {t.name}: first attempt got {first[0]} {first[1]!r}, expected 451 (greylisted)")
    time.sleep(delay_s + 0.5)
    retry = smtp_attempt(t.port)
    if retry[0] != 250 or retry[2] != 250:
        raise SystemExit(f"policy: {t.name}: retry after the delay got RCPT {retry[0]} {retry[1]!r}, DATA {retry[2]}")
    got, ok = t.drain(1, 30)
    clear_files(t.count_dir)
    return f"first attempt {first[0]} ({first[1][:60]}), retry after {delay_s + 0.5:.1f} s {retry[0]}, DATA {retry[2]}"


def check_listed(t, dns):
    """With the client listed in the first zone (the cold server caches nothing), a message must be refused."""
    Path(dns.listed).touch()
    try:
        code, text, _ = smtp_attempt(t.port, data=False)
    finally:
        os.unlink(dns.listed)
    ok = code == 554 and ZONES[0] in text
    return ok, f"{code} {text[:120]}"


# ---------------------------------------------------------------------------------------------- measurement

def run_cell(t, dns, mode, conc, n, a, env=None):
    clear_files(t.count_dir)
    # The previous run's files (written, then deleted) are flushed now, not by the kernel during this run.
    os.sync()
    time.sleep(0.2)
    flag = ["-d"] if mode == "reuse" else []
    q0, k0, d0 = dns.queries(), tree_ticks(t.pid), tree_ticks(dns.proc.pid)
    load = open("/proc/loadavg").read().split()[0]
    t0 = time.monotonic()
    p = subprocess.run(["timeout", "-s", "TERM", str(a.max_run), "smtp-source", "-4", "-c", *flag, "-l", str(a.size),
                        "-m", str(n), "-s", str(conc), "-M", "bench.example.test", "-f", SENDER, "-t", RCPT,
                        f"127.0.0.1:{t.port}"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    t1 = time.monotonic()
    status = "ok" if p.returncode == 0 else f"fail{p.returncode}"
    if p.returncode:
        log(f"{t.name}: smtp-source exit {p.returncode}: {p.stderr[-300:]!r}")
    delivered, drained = t.drain(n if status == "ok" else 0, a.drain_timeout)
    t2 = time.monotonic()
    k1, d1 = tree_ticks(t.pid), tree_ticks(dns.proc.pid)
    q1 = dns.queries()
    if not drained:
        status += ",drain-timeout"
    if delivered != n:
        status += f",delivered={delivered}"
    clear_files(t.count_dir)
    return {"target": t.name, "mode": mode, "size": a.size, "conc": conc, "msgs": n, "status": status,
            "accept_s": f"{t1 - t0:.4f}", "e2e_s": f"{t2 - t0:.4f}", "delivered": delivered,
            "ferry_ticks": k1 - k0, "dns_ticks": d1 - d0, "dns_queries": q1 - q0, "load1": load}


COLUMNS = ["target", "mode", "size", "conc", "msgs", "rep", "status", "accept_s", "e2e_s", "delivered", "ferry_ticks",
           "dns_ticks", "dns_queries", "load1"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ferry", default=os.environ.get("FERRY_BIN", str(REPO / "build/ferry")))
    ap.add_argument("--base", default=os.environ.get("POLICY_BASE", "/var/lib/ferry-policy-bench"))
    ap.add_argument("--concs", default=os.environ.get("CONCS", "10 50"))
    ap.add_argument("--modes", default=os.environ.get("MODES", "conn reuse"))
    ap.add_argument("--cold-modes", default=os.environ.get("COLD_MODES", "conn"),
                    help="modes in which ferry-policy-cold runs too (\"\": never)")
    ap.add_argument("--cold-dns", default=os.environ.get("COLD_DNS", "dnslib"), choices=["dnslib", "lean"],
                    help="ferry-policy-cold's DNS server: dnstest's dnslib server, or `lean-dns-server` (the same "
                         "answers at a fraction of the CPU)")
    ap.add_argument("--size", type=int, default=int(os.environ.get("SIZE", "1024")))
    ap.add_argument("--reps", type=int, default=int(os.environ.get("REPS", "3")))
    ap.add_argument("--msgs", type=int, default=int(os.environ.get("MSGS", "3000")))
    ap.add_argument("--flood-tsv", default=os.environ.get("POLICY_FLOOD_TSV"),
                    help="policy_flood's output, when bench/run has made it (else policy_flood is run here)")
    ap.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "warn"),
                    help="every target's log_level (bench/run's and filters.py's: warn; at info, the default, each "
                         "greylist pass is a line)")
    ap.add_argument("--no-flood", action="store_true", help="no flood figure (bench/micro/policy_flood)")
    ap.add_argument("--no-control", action="store_true", help="no ferry-plain-2 (the A/A control)")
    ap.add_argument("--max-run", type=int, default=300)
    ap.add_argument("--drain-timeout", type=float, default=120)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--out", default=None, help="markdown report (default bench/results/policy-<stamp>.md)")
    ap.add_argument("--latest", default=str(REPO / "bench/results/latest.md"),
                    help="where a paragraph pointing at the report goes (\"\": nowhere)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("policy: run as root (ferry serve drops to user ferry), like bench/run")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out_md = Path(a.out or REPO / f"bench/results/policy-{stamp}.md")
    base = Path(a.base)
    subprocess.run(["rm", "-rf", str(base)], check=True)
    base.mkdir(parents=True)
    modes, cold_modes = a.modes.split(), set(a.cold_modes.split()) & set(a.modes.split())
    wanted = (["ferry-plain", "ferry-policy"] + (["ferry-policy-cold"] if cold_modes else [])
              + ([] if a.no_control else ["ferry-plain-2"]))
    for name in wanted:
        if port_busy(PORTS[name]):
            raise SystemExit(f"policy: port {PORTS[name]} ({name}) busy")
    uptime_start = open("/proc/loadavg").read().split()[:3]
    shim = build_shim(base) if cold_modes else None
    sources = [0]   # the next new client address's number (many_sources.c)

    def cold_env():
        # New addresses for every run (the rate limiter's keys and the DNS cache never see one twice).
        env = dict(os.environ, LD_PRELOAD=str(shim), MANY_SOURCES_OFFSET=str(sources[0]))
        sources[0] += a.msgs + 1000
        return env

    dns_warm = DnsProcess(base, "warm", 300)
    dns_cold = (DnsProcess(base, "cold", 0, listed=base / "listed", lean=a.cold_dns == "lean")
                if cold_modes else None)
    dns_of = {"ferry-plain": dns_warm, "ferry-plain-2": dns_warm, "ferry-policy": dns_warm, "ferry-policy-cold": dns_cold}
    servers, targets, checks = [], {}, {}
    try:
        log(f"DNS servers: warm (TTL 300) {dns_warm.address}"
            + (f", cold (TTL 0, {a.cold_dns}) {dns_cold.address}" if dns_cold else ""))
        for name in wanted:
            extra = (f'[dns]\nresolver = "{dns_warm.address}"\n' if name.startswith("ferry-plain")
                     else policy_config(dns_of[name].address))
            s = Ferry(a.ferry, base, name, PORTS[name], extra=extra, log_level=a.log_level)
            servers.append(s)
            targets[name] = s.start()
            log(f"{name} pid {targets[name].pid} on 127.0.0.1:{PORTS[name]}")
        for name in wanted:
            t = targets[name]
            if not name.startswith("ferry-plain"):
                checks[name] = prime_greylist(t)
                log(f"{name}: greylist primed: {checks[name]}")
            # warm-up (not counted)
            subprocess.run(["smtp-source", "-4", "-l", str(a.size), "-m", str(a.warmup), "-s", "5", "-M",
                            "bench.example.test", "-f", SENDER, "-t", RCPT, f"127.0.0.1:{t.port}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            got, ok = t.drain(a.warmup, a.drain_timeout)
            log(f"warm-up {name}: {got}/{a.warmup} delivered")
            if got < a.warmup:
                raise SystemExit(f"policy: warm-up of {name} delivered {got} of {a.warmup}: see {base / name}/ferry.log")
            clear_files(t.count_dir)
        res = base / "results.tsv"
        with open(res, "w") as f:
            f.write("\t".join(COLUMNS) + "\n")
        rows, cell = [], 0
        start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        for rep in range(1, a.reps + 1):
            for mode in modes:
                for conc in map(int, a.concs.split()):
                    here = [w for w in wanted if w != "ferry-policy-cold" or mode in cold_modes]
                    order = here[cell % len(here):] + here[:cell % len(here)]
                    cell += 1
                    for name in order:
                        env = cold_env() if name == "ferry-policy-cold" and shim else None
                        r = run_cell(targets[name], dns_of[name], mode, conc, a.msgs, a, env)
                        r["rep"] = rep
                        rows.append(r)
                        with open(res, "a") as f:
                            f.write("\t".join(str(r[c]) for c in COLUMNS) + "\n")
                        log("\t".join(str(r[c]) for c in COLUMNS))
                        time.sleep(1)
        end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        checks["client addresses of ferry-policy-cold"] = (
            f"{sources[0]} numbers of 127.1.0.1 onward taken, one per connection (bench/many_sources.c)" if shim
            else "127.0.0.1 only (many_sources.so did not build)")
        if dns_cold:
            ok, text = check_listed(targets["ferry-policy-cold"], dns_cold)
            checks["listed"] = ("ok: " if ok else "FAILED: ") + text
            log(f"listed client on ferry-policy-cold: {checks['listed']}")
        cfg = (base / "ferry-policy" / "ferry.toml").read_text()
    finally:
        for s in reversed(servers):
            s.stop()
        for d in (dns_cold, dns_warm):
            if d:
                d.stop()
    shutil.copy(res, out_md.with_suffix(".tsv"))
    flood = None if a.no_flood else flood_figure(a.ferry, a.flood_tsv)
    text = report(rows, a, start, end, uptime_start, checks, cfg, out_md.with_suffix(".tsv").name, flood)
    out_md.write_text(text)
    if a.latest:
        write_note(out_md, Path(a.latest))
    log(f"report: {out_md}")
    print(out_md)


# ---------------------------------------------------------------------------------------------- report

def med(v):
    return st.median(v) if v else float("nan")


def rng(v, fmt):
    return (fmt % med(v)) + " (" + (fmt % min(v)) + "–" + (fmt % max(v)) + ")" if v else "-"


def flood_figure(ferry_bin, tsv=None):
    """Issue 18's other figure, memory under a flood (bench/micro/policy_flood.cpp, 1M distinct IPv6 /64s through
    the rate limiter and greylisting): from `tsv` when bench/run has just made it, else built beside the ferry
    binary when its source is there and run; its TSV text (None without it)."""
    if tsv and Path(tsv).exists():
        return Path(tsv).read_text().strip()
    if not (REPO / "bench/micro/policy_flood.cpp").exists():
        return None
    build = Path(ferry_bin).resolve().parent
    b = subprocess.run(["cmake", "--build", str(build), "--target", "policy_flood"], capture_output=True, text=True)
    if b.returncode != 0:
        log(f"policy_flood did not build: {b.stdout[-500:]}{b.stderr[-500:]}")
        return None
    log("policy_flood: 1M distinct /64s through the policy tables")
    r = subprocess.run([str(build / "policy_flood")], capture_output=True, text=True)
    if r.returncode != 0:
        log(f"policy_flood failed: {r.stderr[-500:]}")
        return None
    return r.stdout.strip()


def flood_section(tsv):
    # As policy_flood prints it: its columns are explained in its source and in bench/report.py's table (latest.md),
    # which owns the formatting; a copy of that here would drift.
    return ["## Policy tables under a flood (bench/micro/policy_flood.cpp)\n",
            "1M distinct IPv6 /64s (greylist: 1M triplets), one each, through one table in a process of its own, "
            "simulated time (no key recovers during the flood: the worst case for eviction). kept = entries in the "
            "table at the end (bound = max_clients / max_entries); rss_growth_kib and heap_growth_bytes over the "
            "flood; ns_per_op per call including evictions; max_us the slowest call; eviction_*_us the calls that "
            "evicted.", "", "```", tsv, "```", ""]


def report(rows, a, start, end, uptime_start, checks, cfg, tsv_name, flood):
    cells = {}
    for r in rows:
        cells.setdefault((r["mode"], int(r["conc"])), {}).setdefault(r["target"], []).append(r)
    loads = [float(r["load1"]) for r in rows]
    L = [f"# Policy cost: Ferry with the issue-18 policy against Ferry without — {start} to {end}\n"]
    L.append(f"- Ferry: `{a.ferry}` ({git_desc(a.ferry)}), one process, bench/run's config (bench/filters.py's "
             f"Ferry: Maildir, fsync before 250, `[mailauth] verify = false`), log_level \"{a.log_level}\" for every target"
             + (" (at info, Ferry's default, each greylist pass is a log line; at warn it is not written)."
                if a.log_level != "info" else "."))
    L.append(f"- Machine: {os.cpu_count()} cores, kernel {os.uname().release}; load average (1, 5, 15 min) at the "
             f"start: {', '.join(uptime_start)}; 1-minute load at the start of each run: min {min(loads):.2f}, "
             f"median {med(loads):.2f}, max {max(loads):.2f}.")
    L.append(f"- Load: smtp-source, {a.size} B messages, {a.msgs} per run, from 127.0.0.1, sender <{SENDER}>, "
             f"recipient <{RCPT}>; modes: conn = a new connection per message, reuse = -d (each session sends all "
             f"its messages on one connection); targets interleaved per cell (order rotating), {a.reps} repetitions; "
             "figures are median (min–max).")
    L.append("- msg/s = messages / seconds from smtp-source's start until all are in the Maildir and the spool is "
             "empty (e2e). Ferry CPU = user+sys ms of its process per message over the same span. DNS q/msg = "
             "queries that reached the DNS server in the run (the DNSBL names 1.0.0.127.ZONE, and the SPF record "
             f"of {SENDER_DOMAIN} that greylisting asks: `{SPF_RECORD}`, a pass), per message; DNS CPU = that "
             "server's (Python, dnslib) CPU per message.")
    L.append("- DNS cache: Ferry resolves with libunbound, which caches answers. ferry-policy: answers with TTL "
             "300 s, so the cache answers the DNSBL and SPF lookups after the first (what a real server sees for a "
             "repeat client); ferry-policy-cold: TTL 0 (NXDOMAIN's SOA too) and every connection from a new "
             "address of 127.0.0.0/8 (bench/many_sources.c preloaded into smtp-source), so no lookup is answered "
             "from the cache: the cold-cache case of a stream of new clients (libunbound still joins identical "
             "lookups in flight, which here can only be the SPF record's; on loopback the DNS round trip is well "
             "under a millisecond, so a remote list's latency is not in this figure; and the test DNS server is "
             "Python: its CPU, in the DNS CPU column, competes with Ferry's for the 2 cores). ferry-policy-cold's "
             f"DNS server here: {a.cold_dns}" + (" (dnstest's DnsServer: a thread, a parse and a pack per query)."
                                              if a.cold_dns == "dnslib" else
                                              " (policy.py lean-dns-server: the same answers, UDP, one thread, "
                                              "replies put together from the query's bytes)."))
    L.append("- Checks: " + "; ".join(f"{k}: {v}" for k, v in checks.items()) + ".")
    L.append("")
    L.append("The policy target's config (the plain one has the same minus everything after `[dns]`'s resolver):")
    L.append("")
    L.append("```toml")
    L.append(cfg.strip())
    L.append("```")
    L.append("")
    summary = []
    for (mode, conc), by in sorted(cells.items()):
        L.append(f"## {a.size // 1024 if a.size % 1024 == 0 else a.size} {'KiB' if a.size % 1024 == 0 else 'B'}, "
                 f"{conc} sessions, mode {mode}\n")
        L.append("| target | msg/s (e2e) | Ferry CPU ms/msg | DNS q/msg | DNS CPU ms/msg | runs ok |")
        L.append("|---|---|---|---|---|---|")
        m = {}
        for name in PORTS:
            rs = by.get(name, [])
            if not rs:
                continue
            mps = [int(r["msgs"]) / float(r["e2e_s"]) for r in rs]
            cpu = [1000 * int(r["ferry_ticks"]) / HZ / int(r["msgs"]) for r in rs]
            dq = [int(r["dns_queries"]) / int(r["msgs"]) for r in rs]
            dcpu = [1000 * int(r["dns_ticks"]) / HZ / int(r["msgs"]) for r in rs]
            ok = sum(1 for r in rs if r["status"] == "ok")
            m[name] = {"mps": mps, "cpu": cpu, "rep": {int(r["rep"]): r for r in rs}}
            dns_cells = (rng(dq, "%.2f"), rng(dcpu, "%.2f")) if not name.startswith("ferry-plain") else ("-", "-")
            L.append(f"| {name} | {rng(mps, '%.0f')} | {rng(cpu, '%.3f')} | {dns_cells[0]} | {dns_cells[1]} | "
                     f"{ok}/{len(rs)} |")
        L.append("")
        plain = m.get("ferry-plain")
        for name in ("ferry-policy", "ferry-policy-cold", "ferry-plain-2"):
            if plain and name in m:
                pol = m[name]
                ratio = med(pol["mps"]) / med(plain["mps"])
                # the same repetition's runs ran back to back: their ratios, paired
                paired = [float(plain["rep"][k]["e2e_s"]) / float(pol["rep"][k]["e2e_s"])
                          for k in sorted(pol["rep"]) if k in plain["rep"]]
                cpu_ratio = med(pol["cpu"]) / med(plain["cpu"])
                L.append(f"{name} / ferry-plain: throughput **{ratio:.2f}×** (ratio of medians; per repetition "
                         f"{', '.join(f'{x:.2f}' for x in paired)}), Ferry CPU/msg {cpu_ratio:.2f}× "
                         f"(+{1000 * (med(pol['cpu']) - med(plain['cpu'])):.0f} µs/msg).")
                summary.append((mode, conc, name, ratio, paired, cpu_ratio))
        L.append("")
    if summary:
        L.append("## Summary: goal — the policy costs no more than 15% of throughput (ratio ≥ 0.85)\n")
        L.append("| cell | target | msg/s ratio (medians) | per repetition | CPU/msg ratio | goal met |")
        L.append("|---|---|---|---|---|---|")
        for mode, conc, name, ratio, paired, cpu_ratio in summary:
            goal = "(A/A control: the noise)" if name == "ferry-plain-2" else ("yes" if ratio >= 0.85 else "no")
            L.append(f"| {conc} sessions, {mode} | {name} | {ratio:.2f}× | {', '.join(f'{x:.2f}' for x in paired)} | "
                     f"{cpu_ratio:.2f}× | {goal} |")
        L.append("")
    bad = [f"{r['target']} {r['mode']} -s {r['conc']} rep {r['rep']}: {r['status']}" for r in rows if r["status"] != "ok"]
    L.append("Runs not ok: " + ("; ".join(bad) if bad else "none (every message delivered, spool empty, smtp-source "
                                "exit 0)."))
    L.append("")
    if flood:
        L += flood_section(flood)
    L.append("Raw per-run results (ticks = 1/%d s): `%s`" % (HZ, tsv_name))
    return "\n".join(L) + "\n"


def write_note(report_md, latest):
    """A paragraph pointing at the report in latest.md, between markers (replaced if present, else appended)."""
    text = report_md.read_text()
    title = text.splitlines()[0].split("—")[-1].strip()
    rows = re.findall(r"^\| (\d+ sessions, \w+) \| ([\w-]+) \| ([\d.]+)× \|.*\| (yes|no) \|$", text, re.M)
    def part(target, what):
        mine = [(c, r, g) for c, n, r, g in rows if n == target]
        if not mine:
            return ""
        met = sum(1 for *_, g in mine if g == "yes")
        return (f" {what}: " + "; ".join(f"{c} {r}×" for c, r, _ in mine)
                + f" (goal met in {met} of {len(mine)} cells).")
    note = (f"{BEGIN}\n## Connection and envelope policy\n\nRun {title} (bench/policy.sh): see "
            f"[{report_md.name}]({report_md.name}). Throughput with the policy (two DNSBLs on a local DNS server, "
            "greylisting of a known triplet, rate limits that never refuse) against without, goal no more than 15% "
            "less." + (part("ferry-policy", "DNS cache warm (a repeat client)") or " No complete cell.")
            + part("ferry-policy-cold", "Cold (a new client address per connection, nothing cached; the test DNS "
                   "server shares the 2 cores)") + f"\n{END}\n")
    old = latest.read_text() if latest.exists() else ""
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        out = head + note + rest.split(END, 1)[1].lstrip("\n")
    else:
        out = old.rstrip("\n") + ("\n\n" if old else "") + note
    latest.write_text(out)


if __name__ == "__main__":
    if sys.argv[1:2] == ["dns-server"]:
        dns_server_main(sys.argv[2:])
    elif sys.argv[1:2] == ["lean-dns-server"]:
        lean_dns_server_main(sys.argv[2:])
    else:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        main()
