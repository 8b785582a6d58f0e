#!/usr/bin/python3
"""Turns one bench run folder (results.tsv from bench-peers.sh, memory.tsv, latency.tsv, idle.tsv,
policy_flood.tsv) into the markdown report written to bench/results/latest.md."""
import csv
import os
import platform
import statistics
import subprocess
import sys
from collections import defaultdict

TARGETS = ["ferry", "postfix-maildir", "opensmtpd-maildir", "postfix-discard", "opensmtpd-discard", "smtp-sink"]


def read_tsv(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return list(csv.reader(f, delimiter="\t"))


def fnum(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def main(run):
    rows = list(csv.DictReader(open(os.path.join(run, "results.tsv")), delimiter="\t")) \
        if os.path.exists(os.path.join(run, "results.tsv")) else []
    cells = defaultdict(lambda: defaultdict(list))
    for r in rows:
        cells[(r["mode"], int(r["size"]), int(r["conc"]))][r["target"]].append(r)
    mem_rows = list(csv.DictReader(open(os.path.join(run, "memory.tsv")), delimiter="\t")) \
        if os.path.exists(os.path.join(run, "memory.tsv")) else []
    mem = defaultdict(lambda: defaultdict(list))   # cell -> target -> rows
    for r in mem_rows:
        mem[(r["mode"], int(r["size"]), int(r["conc"]))][r["target"]].append(r)

    def med(rs, key):
        vals = [fnum(r[key]) for r in rs if fnum(r[key]) is not None]
        return statistics.median(vals) if vals else None

    out = []
    cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True,
                         text=True).stdout.strip()
    out.append(f"# Ferry benchmark — {os.path.basename(run)}")
    out.append("")
    out.append(f"Machine: {os.cpu_count()} cores ({cpu}), kernel {platform.release()}, "
               f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') // 2**30} GiB. "
               "All servers on 127.0.0.1, driven in the same run by Postfix's smtp-source "
               "(`bench-peers.sh`, targets interleaved per cell). Ferry: `[queue] sync = \"filesystem\"` (default); "
               "a 250 only after the spool file, sealed with its commit trailer, is on disk (syncfs); Maildir "
               "copies on disk before their rename into new/, and that rename on disk before the spool file "
               "goes. Postfix: queue file fsync before 250, Maildir fsync (its defaults).")
    out.append("")
    out.append("accept / e2e = messages per second (smtp-source wall time / until delivered and spool empty); "
               "cpu = server CPU ms per message; ratio = Ferry ÷ postfix-maildir. `*` = capped run. "
               "Figures are medians over the repetitions. Peak memory = the highest sum of PSS over the "
               "server's process tree, sampled every 100 ms during the cell (PSS splits shared pages between "
               "the processes sharing them; postfix-* and opensmtpd-* rows are the same process tree "
               "with a different recipient).")
    out.append("")
    modes = sorted({k[0] for k in cells})
    sizes = sorted({k[1] for k in cells})
    for mode in modes:
        for size in sizes:
            concs = sorted({k[2] for k in cells if k[0] == mode and k[1] == size})
            if not concs:
                continue
            out.append(f"## {mode}, {size // 1024} KiB")
            out.append("")
            out.append("| target | " + " | ".join(f"-s {c}" for c in concs) + " |")
            out.append("|---|" + "---|" * len(concs))
            for t in TARGETS:
                line = []
                present = False
                for c in concs:
                    rs = cells[(mode, size, c)].get(t, [])
                    if not rs:
                        line.append("–")
                        continue
                    present = True
                    a, e, cp = med(rs, "accept_mps"), med(rs, "e2e_mps"), med(rs, "cpu_ms_per_msg")
                    capped = "*" if any("capped" in r["status"] for r in rs) else ""
                    bad = " ⚠" if any("delivered!=sent" in r["status"] or "fail" in r["status"] for r in rs) else ""
                    line.append(f"{a:.0f}/{e:.0f}{capped} ({cp:.2f}){bad}" if cp is not None else f"{a:.0f}/{e:.0f}{capped}")
                if present:
                    out.append(f"| {t} | " + " | ".join(line) + " |")
            ratio_e, ratio_c = [], []
            for c in concs:
                f_ = cells[(mode, size, c)].get("ferry", [])
                p_ = cells[(mode, size, c)].get("postfix-maildir", [])
                if f_ and p_:
                    ratio_e.append(f"{med(f_, 'e2e_mps') / med(p_, 'e2e_mps'):.2f}×")
                    fc, pc = med(f_, "cpu_ms_per_msg"), med(p_, "cpu_ms_per_msg")
                    ratio_c.append(f"{fc / pc:.2f}×" if fc and pc else "–")
                else:
                    ratio_e.append("–")
                    ratio_c.append("–")
            out.append("| **ratio e2e** | " + " | ".join(ratio_e) + " |")
            out.append("| **ratio cpu/msg** | " + " | ".join(ratio_c) + " |")
            out.append("")
            if any(mem[(mode, size, c)] for c in concs):
                out.append(f"Peak memory, MiB ({mode}, {size // 1024} KiB)")
                out.append("")
                out.append("| target | " + " | ".join(f"-s {c}" for c in concs) + " |")
                out.append("|---|" + "---|" * len(concs))
                for t in TARGETS:
                    vals = [med(mem[(mode, size, c)].get(t, []), "peak_pss_kib") for c in concs]
                    if any(v is not None for v in vals):
                        out.append(f"| {t} | " + " | ".join(f"{v / 1024:.1f}" if v is not None else "–"
                                                           for v in vals) + " |")
                ratio_m = []
                for c in concs:
                    fm = med(mem[(mode, size, c)].get("ferry", []), "peak_pss_kib")
                    pm = med(mem[(mode, size, c)].get("postfix-maildir", []), "peak_pss_kib")
                    ratio_m.append(f"{fm / pm:.2f}×" if fm and pm else "–")
                out.append("| **ratio memory** | " + " | ".join(ratio_m) + " |")
                out.append("")

    lat = read_tsv(os.path.join(run, "latency.tsv"))
    if lat:
        out.append("## Latency, connect → 250 after the final dot (1 KiB, one message per connection)")
        out.append("")
        out.append("| target | sessions | messages | p50 ms | p90 ms | p99 ms | max ms | errors |")
        out.append("|---|---|---|---|---|---|---|---|")
        for r in lat:
            out.append("| " + " | ".join(r) + " |")
        out.append("")
    idle = dict((r[0], r[1]) for r in read_tsv(os.path.join(run, "idle.tsv")) if len(r) == 2)
    hwm = [int(r["ferry_vmhwm_kib"]) for r in mem_rows if r["target"] == "ferry" and r["ferry_vmhwm_kib"]]
    if idle or hwm:
        out.append("## Memory")
        out.append("")
        if hwm:
            out.append(f"- Ferry peak RSS over the whole matrix (highest per-cell VmHWM): {max(hwm) / 1024:.1f} MiB")
        if idle:
            out.append(f"- {idle.get('idle_connections')} idle sessions ({idle.get('greeted')} greeted): "
                       f"RSS {int(idle.get('rss_before_kib', 0)) / 1024:.1f} MiB before, "
                       f"{int(idle.get('rss_idle_kib', 0)) / 1024:.1f} MiB with them open "
                       f"({idle.get('rss_per_session_bytes')} bytes per session)")
        out.append("")
    flood = list(csv.DictReader(open(os.path.join(run, "policy_flood.tsv")), delimiter="\t")) \
        if os.path.exists(os.path.join(run, "policy_flood.tsv")) else []
    if flood:
        out.append("## Policy tables under a flood (bench/micro/policy_flood.cpp)")
        out.append("")
        out.append("Distinct IPv6 /64s (17-octet keys), one each, fed to one table in a process of its own; "
                   "simulated time, 1 µs per client, so no key recovers during the flood (the worst case for "
                   "eviction). Rate limit 10/1m. RSS and heap growth measured over the flood; ns per call "
                   "includes the evictions. An eviction (once the table is full, one call in bound/10) is one "
                   "call that the session's thread waits for: its median and maximum; the slowest call of all "
                   "also catches rehashes and the scheduler of a shared machine.")
        out.append("")
        out.append("| table | clients | bound | entries kept | RSS growth MiB | heap growth MiB | bytes/entry "
                   "| ns per call | evictions | eviction median / max ms | slowest call ms |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in flood:
            if r["kept"] == "-":
                out.append(f"| {r['table']} | {r['clients']} | not measured (not built) | | | | | | | | |")
                continue
            out.append(f"| {r['table']} | {r['clients']} | {r['bound']} | {r['kept']} "
                       f"| {int(r['rss_growth_kib']) / 1024:.1f} | {int(r['heap_growth_bytes']) / 2**20:.1f} "
                       f"| {r['bytes_per_entry']} | {r['ns_per_op']} | {r['evictions']} "
                       f"| {float(r['eviction_median_us']) / 1000:.1f} / {float(r['eviction_max_us']) / 1000:.1f} "
                       f"| {float(r['max_us']) / 1000:.1f} |")
        out.append("")
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
