#!/usr/bin/python3
"""Ferry + rspamd (HTTP /checkv2) against Postfix + rspamd (milter), one machine, one run, on loopback.

Run through bench/filters.sh (as root, like bench/run). Targets, all started fresh by this script and stopped by
PID at the end:
    ferry-rspamd    Ferry, bench/run's config plus [rspamd] url = rspamd's normal worker
    postfix-milter  a private Postfix from ../shared/peers/bench-peers.sh (its main.cf: Maildir, default
                    durability) plus smtpd_milters = rspamd's proxy worker in milter mode, milter_protocol = 6,
                    milter_default_action = tempfail
    ferry-plain     Ferry with no filter (reference)
    postfix-plain   the same Postfix with no milter (reference)
rspamd: ONE private instance for both filtered targets, from tests/integration/rspamdtest.py (the test suite's
recipe: Debian's rules, a private config tree, DNS to a local NXDOMAIN server, nothing leaves the machine), with
one normal worker (Ferry's) and one rspamd_proxy worker in milter mode with self_scan (Postfix's): each MTA's
scans run in one rspamd process.

Per cell (size x sessions) and repetition, targets interleaved (order rotating), each target gets:
  1. throughput: smtp-source exactly as bench-peers.sh runs it (-d = reuse mode unless --mode conn); e2e = from
     its start until every message is in the mailbox and the spool is empty; CPU = utime+stime (+ reaped
     children) of the MTA's process tree and of rspamd's process tree from /proc over the same span; rspamd's
     scans counted in its log (one line per task) to check that every message was scanned.
  2. latency: bench/latency.py (connect .. 250 after the final dot, one message per connection, N sessions, the
     same size) on the same server right after; p50/p99 over its messages.
Writes RESULTS_DIR/filters-<stamp>.tsv (raw) and bench/results/filters-<stamp>.md (tables).
"""

import argparse
import os
import re
import shutil
import signal
import socket
import statistics as st
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
from rspamdtest import Rspamd  # noqa: E402  (the test suite's rspamd recipe, not a second one)

HZ = os.sysconf("SC_CLK_TCK")


class BenchRspamd(Rspamd):
    """rspamdtest's instance with `workers` processes for the normal worker and for the proxy (the test recipe
    starts one of each; its config is kept, only the two workers' count is changed)."""

    def __init__(self, workers=1, **kw):
        super().__init__(**kw)
        self.workers = workers

    def _write_config(self):
        super()._write_config()
        conf = Path(self.dir) / "rspamd.conf"
        text = conf.read_text()
        if text.count("count = 1;") < 2 and self.workers != 1:
            raise SystemExit("filters: rspamdtest's config changed: cannot set the worker count")
        conf.write_text(re.sub(r'(worker "(normal|rspamd_proxy)" \{[^}]*?)count = 1;',
                               lambda m: m.group(1) + f"count = {self.workers};", text))


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] filters: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------- /proc helpers

def tree_ticks(root):
    """utime+stime+cutime+cstime over the live process tree rooted at root (reaped children are in their parent's
    cutime/cstime), as bench-peers.sh's tree_ticks."""
    parent, ticks = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                line = f.read()
        except OSError:
            continue
        rest = line[line.rindex(")") + 2:].split()
        parent[int(d)] = int(rest[1])
        ticks[int(d)] = sum(int(x) for x in rest[11:15])
    if root not in ticks:
        return 0
    children = {}
    for p, pp in parent.items():
        children.setdefault(pp, []).append(p)
    total, todo = 0, [root]
    while todo:
        cur = todo.pop()
        total += ticks.get(cur, 0)
        todo.extend(children.get(cur, []))
    return total


def nfiles(d, skip_tmp):
    n = 0
    try:
        with os.scandir(d) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    if not (skip_tmp and e.name == "tmp"):
                        n += nfiles(e.path, skip_tmp)
                elif e.is_file(follow_symlinks=False):
                    n += 1
    except FileNotFoundError:
        pass
    return n


def clear_files(d):
    for root, _dirs, files in os.walk(d):
        if os.path.basename(root) == "tmp":
            continue
        for f in files:
            os.unlink(os.path.join(root, f))


def wait_banner(port, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                if s.recv(3) == b"220":
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def port_busy(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


# ---------------------------------------------------------------------------------------------- targets

class Target:
    def __init__(self, name, port, count_dir, queue_dirs, pid, filtered):
        self.name, self.port, self.count_dir, self.queue_dirs = name, port, count_dir, queue_dirs
        self.pid, self.filtered = pid, filtered

    def delivered(self):
        return nfiles(self.count_dir, True)

    def queued(self):
        return sum(nfiles(q, False) for q in self.queue_dirs)

    def drain(self, need, timeout):
        """Waits until need messages are in the mailbox and the queue is empty; returns (delivered, ok)."""
        end = time.monotonic() + timeout
        while True:
            got = self.delivered()
            if got >= need and self.queued() == 0:
                return got, True
            if time.monotonic() > end:
                return got, False
            time.sleep(0.005)


class Ferry:
    def __init__(self, binary, base, name, port, rspamd_url=None, extra="", log_level="warn"):
        """extra: TOML appended to the config (bench/policy.py's [policy], [[dnsbl]], ... tables)."""
        self.binary, self.dir, self.name, self.port, self.rspamd_url = binary, Path(base) / name, name, port, rspamd_url
        self.extra, self.log_level = extra, log_level
        self.proc = None

    def start(self):
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        # bench/run's config (Maildir user u@example.test, default durability, no SPF/DKIM/DMARC as the peers
        # check none) with ab.sh's connection limits; plus [rspamd] for the filtered instance.
        cfg = (f'hostname = "bench.example.test"\ndata_dir = "{self.dir}/data"\nuser = "ferry"\nlog_level = "{self.log_level}"\n'
               f'[[listen]]\naddress = "127.0.0.1:{self.port}"\n'
               '[domains]\nlocal = ["example.test", "discard.example.test"]\n'
               '[limits]\nconnections = 2000\nconnections_per_ip = 2000\n'
               '[mailauth]\nverify = false\n')
        if self.rspamd_url:
            cfg += f'[rspamd]\nurl = "{self.rspamd_url}"\n'
        cfg += self.extra
        (self.dir / "ferry.toml").write_text(cfg)
        subprocess.run([self.binary, "user", "add", "u@example.test", "--config", str(self.dir / "ferry.toml")],
                       input=b"bench\n", stdout=subprocess.DEVNULL, check=True)
        self.log = open(self.dir / "ferry.log", "wb")
        self.proc = subprocess.Popen([self.binary, "serve", "--config", str(self.dir / "ferry.toml")],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        if not wait_banner(self.port):
            raise SystemExit(f"{self.name} did not come up: {(self.dir / 'ferry.log').read_text()[-2000:]}")
        return Target(self.name, self.port, str(self.dir / "data/mail/example.test/u"),
                      [str(self.dir / "data/spool/queue")], self.proc.pid, bool(self.rspamd_url))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Postfix:
    """A private Postfix started by ../shared/peers/bench-peers.sh --setup-only (its main.cf and master.cf, its DNS
    guard), in its own BASE; the milter settings are added with postconf and a reload."""

    def __init__(self, peers_dir, base, name, port, milter=None):
        self.peers_dir, self.base, self.name, self.port, self.milter = peers_dir, Path(base) / name, name, port, milter
        self.env = dict(os.environ, BASE=str(self.base), PF_PORT=str(port))
        self.etc = self.base / "postfix/etc"

    def start(self):
        self.base.mkdir(parents=True, exist_ok=True)
        with open(self.base / "setup.log", "wb") as out:
            subprocess.run(["bash", str(self.peers_dir / "bench-peers.sh"), "--setup-only", "--peers", "postfix"],
                           env=self.env, stdout=out, stderr=subprocess.STDOUT, check=True)
        if self.milter:
            subprocess.run(["postconf", "-c", str(self.etc), "-e", f"smtpd_milters = {self.milter}",
                            "milter_default_action = tempfail", "milter_protocol = 6"], check=True)
            subprocess.run(["postfix", "-c", str(self.etc), "reload"], check=True, stderr=subprocess.DEVNULL)
            time.sleep(1)
        pid = int((self.base / "pids/postfix.pid").read_text().split()[0])
        pf = self.base / "postfix"
        return Target(self.name, self.port, str(pf / "mail/u/Maildir"),
                      [str(pf / "spool" / q) for q in ("incoming", "active", "deferred", "hold")], pid,
                      bool(self.milter))

    def stop(self):
        subprocess.run(["bash", str(self.peers_dir / "bench-peers.sh"), "--stop"], env=self.env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# ---------------------------------------------------------------------------------------------- measurement

SCAN_LINE = re.compile(r"rspamd_task_write_log")


def rspamd_scans(rspamd):
    return sum(1 for line in rspamd.log_text().splitlines() if SCAN_LINE.search(line))


def run_cell(t, rspamd, mode, size, conc, n, lat_n, a):
    clear_files(t.count_dir)
    flag = ["-d"] if mode == "reuse" else []
    s0 = rspamd_scans(rspamd)
    k0, r0 = tree_ticks(t.pid), tree_ticks(rspamd.proc.pid)
    load = open("/proc/loadavg").read().split()[0]
    t0 = time.monotonic()
    p = subprocess.run(["timeout", "-s", "TERM", str(a.max_run), "smtp-source", "-4", "-c", *flag, "-l", str(size),
                        "-m", str(n), "-s", str(conc), "-M", "bench.example.test", "-f", "a@example.test",
                        "-t", "u@example.test", f"127.0.0.1:{t.port}"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t1 = time.monotonic()
    status = "ok" if p.returncode == 0 else f"fail{p.returncode}"
    if p.returncode:
        log(f"{t.name}: smtp-source exit {p.returncode}: {p.stderr[-300:]!r}")
    delivered, drained = t.drain(n if status == "ok" else 0, a.drain_timeout)
    t2 = time.monotonic()
    k1, r1 = tree_ticks(t.pid), tree_ticks(rspamd.proc.pid)
    time.sleep(0.3)   # rspamd writes its task log line just after the reply
    s1 = rspamd_scans(rspamd)
    if not drained:
        status += ",drain-timeout"
    if delivered != n:
        status += f",delivered={delivered}"
    # latency: bench/latency.py at the same size and number of sessions, on the same server, right after
    clear_files(t.count_dir)
    lp = subprocess.run([sys.executable, str(REPO / "bench/latency.py"), "--name", t.name, "--port", str(t.port),
                         "--sessions", str(conc), "--messages", str(lat_n), "--size", str(size),
                         "--smtp-source-body"],
                        capture_output=True, text=True)
    f = lp.stdout.split("\t")
    lat = {"lat_n": f[2], "p50_ms": f[3], "p90_ms": f[4], "p99_ms": f[5], "max_ms": f[6],
           "lat_errors": f[7].strip()} if len(f) >= 8 else {"lat_n": "0", "p50_ms": "nan", "p90_ms": "nan",
                                                            "p99_ms": "nan", "max_ms": "nan", "lat_errors": "?"}
    t.drain(int(lat["lat_n"] or 0), a.drain_timeout)
    clear_files(t.count_dir)
    return {"target": t.name, "mode": mode, "size": size, "conc": conc, "msgs": n, "status": status,
            "accept_s": f"{t1 - t0:.4f}", "e2e_s": f"{t2 - t0:.4f}", "delivered": delivered,
            "mta_ticks": k1 - k0, "rspamd_ticks": r1 - r0, "scans": s1 - s0, "load1": load, **lat}


COLUMNS = ["target", "mode", "size", "conc", "msgs", "rep", "status", "accept_s", "e2e_s", "delivered", "mta_ticks",
           "rspamd_ticks", "scans", "load1", "lat_n", "p50_ms", "p90_ms", "p99_ms", "max_ms", "lat_errors"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ferry", default=os.environ.get("FERRY_BIN", str(REPO / "build/ferry")))
    ap.add_argument("--peers-dir", default=os.environ.get("PEERS_DIR", str(REPO.parent / "shared/peers")))
    ap.add_argument("--base", default=os.environ.get("FILTERS_BASE", "/var/lib/ferry-filters-bench"))
    ap.add_argument("--sizes", default=os.environ.get("SIZES", "1024 102400"))
    ap.add_argument("--concs", default=os.environ.get("CONCS", "10 50"))
    ap.add_argument("--mode", default=os.environ.get("MODE", "reuse"), choices=["reuse", "conn"])
    ap.add_argument("--reps", type=int, default=int(os.environ.get("REPS", "3")))
    ap.add_argument("--msgs", type=int, default=int(os.environ.get("MSGS", "1000")))
    ap.add_argument("--msgs-large", type=int, default=int(os.environ.get("MSGS_LARGE", "300")))
    ap.add_argument("--lat-msgs", type=int, default=int(os.environ.get("LAT_MSGS", "500")))
    ap.add_argument("--lat-msgs-large", type=int, default=int(os.environ.get("LAT_MSGS_LARGE", "300")))
    ap.add_argument("--targets", default=os.environ.get("TARGETS", "ferry-rspamd postfix-milter ferry-plain postfix-plain"))
    ap.add_argument("--rspamd-workers", type=int, default=int(os.environ.get("RSPAMD_WORKERS", "1")),
                    help="processes of rspamd's normal worker (Ferry's) and of its proxy (Postfix's): the same")
    ap.add_argument("--max-run", type=int, default=300)
    ap.add_argument("--drain-timeout", type=float, default=120)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--out", default=None, help="markdown report (default bench/results/filters-<stamp>.md)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("filters: run as root (ferry serve drops to user ferry; Postfix needs root), like bench/run")
    if not shutil.which("smtp-source"):
        raise SystemExit("filters: smtp-source missing (scripts/setup bench installs postfix)")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out_md = Path(a.out or REPO / f"bench/results/filters-{stamp}.md")
    base = Path(a.base)
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    peers = Path(a.peers_dir)
    wanted = a.targets.split()
    ports = {"ferry-rspamd": 2640, "ferry-plain": 2641, "postfix-milter": 2645, "postfix-plain": 2646}
    for name in wanted:
        if port_busy(ports[name]):
            raise SystemExit(f"filters: port {ports[name]} ({name}) busy")
    servers, targets = [], {}
    with BenchRspamd(workers=a.rspamd_workers, proxy=True) as rspamd:
        try:
            log(f"rspamd pid {rspamd.proc.pid}: normal worker {rspamd.url}, proxy (milter) {rspamd.milter_address}"
                f", dir {rspamd.dir}")
            for name in wanted:
                if name.startswith("ferry"):
                    s = Ferry(a.ferry, base, name, ports[name], rspamd.url if name == "ferry-rspamd" else None)
                else:
                    s = Postfix(peers, base, name, ports[name],
                                rspamd.milter_address if name == "postfix-milter" else None)
                servers.append(s)
                targets[name] = s.start()
                log(f"{name} pid {targets[name].pid} on 127.0.0.1:{ports[name]}")
            # warm-up (not counted): worker processes, caches, rspamd's first scans; and a check that the
            # filtered targets really go through rspamd
            for t in targets.values():
                s0 = rspamd_scans(rspamd)
                subprocess.run(["smtp-source", "-4", "-l", "1024", "-m", str(a.warmup), "-s", "5", "-M",
                                "bench.example.test", "-f", "a@example.test", "-t", "u@example.test",
                                f"127.0.0.1:{t.port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                got, ok = t.drain(a.warmup, a.drain_timeout)
                time.sleep(0.5)
                scans = rspamd_scans(rspamd) - s0
                log(f"warm-up {t.name}: {got} delivered, rspamd scans {scans}")
                if t.filtered and scans < a.warmup:
                    raise SystemExit(f"filters: {t.name} sent {a.warmup} messages but rspamd scanned {scans}")
                if not t.filtered and scans:
                    raise SystemExit(f"filters: {t.name} has no filter but rspamd scanned {scans}")
                clear_files(t.count_dir)
            res = base / "results.tsv"
            with open(res, "w") as f:
                f.write("\t".join(COLUMNS) + "\n")
            rows, cell = [], 0
            start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            for rep in range(1, a.reps + 1):
                for size in map(int, a.sizes.split()):
                    n = a.msgs if size <= 10240 else a.msgs_large
                    lat_n = a.lat_msgs if size <= 10240 else a.lat_msgs_large
                    for conc in map(int, a.concs.split()):
                        order = wanted[cell % len(wanted):] + wanted[:cell % len(wanted)]
                        cell += 1
                        for name in order:
                            r = run_cell(targets[name], rspamd, a.mode, size, conc, n, lat_n, a)
                            r["rep"] = rep
                            rows.append(r)
                            with open(res, "a") as f:
                                f.write("\t".join(str(r[c]) for c in COLUMNS) + "\n")
                            log("\t".join(str(r[c]) for c in COLUMNS))
                            time.sleep(1)
            end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            workers = (f"normal worker count = {a.rspamd_workers} (Ferry's), rspamd_proxy count = {a.rspamd_workers} "
                       "with self_scan (Postfix's)")
        finally:
            for s in reversed(servers):
                s.stop()
    shutil.copy(res, out_md.with_suffix(".tsv"))
    out_md.write_text(report(rows, a, start, end, workers, a.ferry, out_md.with_suffix(".tsv").name))
    log(f"report: {out_md}")
    print(out_md)


def git_desc(binary):
    d = Path(binary).resolve().parent.parent
    p = subprocess.run(["git", "-C", str(d), "log", "-1", "--format=%h %s"], capture_output=True, text=True)
    return p.stdout.strip()[:100] or "?"


def report(rows, a, start, end, workers, binary, tsv_name):
    def med(v):
        return st.median(v) if v else float("nan")

    def rng(v, fmt):
        return (fmt % med(v)) + " (" + (fmt % min(v)) + "–" + (fmt % max(v)) + ")" if v else "-"

    cells = {}
    for r in rows:
        cells.setdefault((int(r["size"]), int(r["conc"])), {}).setdefault(r["target"], []).append(r)
    loads = [float(r["load1"]) for r in rows]
    L = []
    L.append(f"# Filters: Ferry + rspamd (HTTP) against Postfix + rspamd (milter) — {start} to {end}\n")
    L.append(f"- Ferry: `{binary}` ({git_desc(binary)}). Postfix {postfix_version()} (private instance of "
             "../shared/peers/bench-peers.sh, its defaults: queue file fsync before 250, Maildir fsync), rspamd "
             f"{rspamd_version()}.")
    L.append(f"- Machine: {os.cpu_count()} cores, kernel {os.uname().release}; 1-minute load average at the start "
             f"of each run: min {min(loads):.2f}, median {med(loads):.2f}, max {max(loads):.2f}.")
    L.append(f"- rspamd: one private instance (tests/integration/rspamdtest.py's recipe) for both: {workers}. "
             "Both filtered MTAs wait for the verdict before their 250 (Ferry `[rspamd] on_error` default "
             "tempfail; Postfix `milter_default_action = tempfail`, `milter_protocol = 6`).")
    L.append(f"- Load: smtp-source, mode `{a.mode}`"
             + (" (-d: each session sends all its messages on one connection)" if a.mode == "reuse" else "")
             + f", {a.msgs} messages at 1 KiB and {a.msgs_large} at 100 KiB per run; targets interleaved per cell, "
             f"{a.reps} repetitions; figures are median (min–max).")
    L.append("- msg/s = messages / seconds from smtp-source's start until all are in the Maildir and the spool is "
             "empty (e2e). CPU/msg = user+sys ms of the MTA's process tree (Postfix: master and every child; "
             "Ferry: its one process) and of rspamd's process tree over the same span, per message. "
             "rspamd cores = its CPU seconds / e2e seconds (1.00 = its one scanning process is saturated). "
             "scans = rspamd tasks logged in that span (must equal msgs for the filtered targets).")
    L.append("- p50/p99 = bench/latency.py right after, same size and sessions: connect .. 250 after the final "
             f"dot, one message per connection ({a.lat_msgs} messages at 1 KiB, {a.lat_msgs_large} at 100 KiB), "
             "Python client threads, the message shaped like smtp-source's (`--smtp-source-body`: rspamd's cost "
             "depends on the content).")
    L.append("")
    summary = []
    for (size, conc), by in sorted(cells.items()):
        L.append(f"## {'1 KiB' if size == 1024 else f'{size // 1024} KiB'}, {conc} sessions\n")
        L.append("| target | msg/s (e2e) | p50 ms | p99 ms | MTA CPU ms/msg | rspamd CPU ms/msg | rspamd cores | "
                 "scans/msgs | runs ok |")
        L.append("|---|---|---|---|---|---|---|---|---|")
        m = {}
        for name in a.targets.split():
            rs = by.get(name, [])
            if not rs:
                continue
            mps = [int(r["msgs"]) / float(r["e2e_s"]) for r in rs]
            p50 = [float(r["p50_ms"]) for r in rs]
            p99 = [float(r["p99_ms"]) for r in rs]
            cpu = [1000 * int(r["mta_ticks"]) / HZ / int(r["msgs"]) for r in rs]
            rcpu = [1000 * int(r["rspamd_ticks"]) / HZ / int(r["msgs"]) for r in rs]
            rcores = [int(r["rspamd_ticks"]) / HZ / float(r["e2e_s"]) for r in rs]
            scans = "/".join(sorted({f"{r['scans']}/{r['msgs']}" for r in rs}))
            ok = sum(1 for r in rs if r["status"] == "ok" and r["lat_errors"] == "0")
            m[name] = (med(mps), med(p99), med(cpu), med(rcpu), med(p50))
            L.append(f"| {name} | {rng(mps, '%.0f')} | {rng(p50, '%.1f')} | {rng(p99, '%.1f')} | {rng(cpu, '%.2f')} | "
                     f"{rng(rcpu, '%.2f')} | {rng(rcores, '%.2f')} | {scans} | {ok}/{len(rs)} |")
        if "ferry-rspamd" in m and "postfix-milter" in m:
            f, p = m["ferry-rspamd"], m["postfix-milter"]
            L.append("")
            L.append(f"Ferry/Postfix (filtered): throughput **{f[0] / p[0]:.2f}×**, p99 {f[1]:.1f} vs {p[1]:.1f} ms "
                     f"({f[1] / p[1]:.2f}×), MTA CPU/msg {f[2] / p[2]:.2f}×, rspamd CPU/msg {f[3] / p[3]:.2f}×.")
            summary.append((size, conc, f[0] / p[0], f[1] / p[1]))
        if "ferry-rspamd" in m and "ferry-plain" in m:
            L.append(f"Ferry with rspamd / without: throughput {m['ferry-rspamd'][0] / m['ferry-plain'][0]:.2f}×.")
        L.append("")
    if summary:
        L.append("## Summary: goal ≥ 1.5× Postfix's throughput at the same p99 or better\n")
        L.append("| cell | Ferry/Postfix msg/s | Ferry/Postfix p99 | goal met |")
        L.append("|---|---|---|---|")
        for size, conc, tr, pr in summary:
            L.append(f"| {'1 KiB' if size == 1024 else f'{size // 1024} KiB'}, {conc} sessions | {tr:.2f}× | "
                     f"{pr:.2f}× | {'yes' if tr >= 1.5 and pr <= 1.0 else 'no'} |")
        L.append("")
    bad = [f"{r['target']} {r['size']} -s {r['conc']} rep {r['rep']}: {r['status']}, latency errors {r['lat_errors']}"
           for r in rows if r["status"] != "ok" or r["lat_errors"] != "0"]
    L.append("Runs not ok: " + ("; ".join(bad) if bad else "none (every message delivered, spool empty, "
                                "smtp-source exit 0, no latency errors)."))
    L.append("")
    L.append("Raw per-run results (ticks = 1/%d s): `%s`" % (HZ, tsv_name))
    return "\n".join(L) + "\n"


def postfix_version():
    p = subprocess.run(["postconf", "-d", "mail_version"], capture_output=True, text=True)
    return p.stdout.split("=")[-1].strip() or "?"


def rspamd_version():
    p = subprocess.run(["rspamd", "--version"], capture_output=True, text=True)
    return p.stdout.split()[-1] if p.stdout.split() else "?"


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    main()
