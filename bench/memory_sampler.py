#!/usr/bin/python3
"""Peak memory of every server, per bench cell.

Runs beside bench-peers.sh. Every 100 ms it sums the PSS (proportional set size: shared pages split between the
processes sharing them, so a multi-process server such as Postfix is not counted once per process) over the
process tree of each server, and keeps the maximum. bench-peers.sh runs one target at a time and appends one
line to results.tsv when a target finishes a cell; at that moment the maximum since the previous line is that
target's peak for the cell, and is written to memory.tsv. For Ferry (one process) it also records VmHWM, the
kernel's exact peak RSS, reset after each cell through /proc/PID/clear_refs.

usage: memory_sampler.py --run DIR --peers-base DIR --ferry-pid PID   (stops on SIGTERM)
"""
import argparse
import os
import signal
import time

# results.tsv target name -> the peer whose process tree serves it (pid file written by bench-peers.sh)
PEER_OF = {"postfix-maildir": "postfix", "postfix-discard": "postfix", "opensmtpd-maildir": "opensmtpd",
           "opensmtpd-discard": "opensmtpd", "smtp-sink": "sink"}


def children_map():
    kids = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(name))
    return kids


def tree(root, kids):
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def status_kib(pid, key, path="status"):
    try:
        with open(f"/proc/{pid}/{path}") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def peer_pid(base, peer):
    try:
        with open(os.path.join(base, "pids", f"{peer}.pid")) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def reset_hwm(pid):
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    ap.add_argument("--peers-base", required=True)
    ap.add_argument("--ferry-pid", type=int, required=True)
    ap.add_argument("--interval", type=float, default=0.1)
    args = ap.parse_args()

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    results = os.path.join(args.run, "results.tsv")
    out = open(os.path.join(args.run, "memory.tsv"), "w", buffering=1)
    out.write("target\tmode\tsize\tconc\trep\tpeak_pss_kib\tferry_vmhwm_kib\n")
    peak = {}        # root pid -> max summed PSS since the last results line
    seen_lines = 0
    reset_hwm(args.ferry_pid)
    while not stop:
        roots = {"ferry": args.ferry_pid}
        for target, peer in PEER_OF.items():
            pid = peer_pid(args.peers_base, peer)
            if pid:
                roots[target] = pid
        kids = children_map()
        for root in set(roots.values()):
            pss = sum(status_kib(p, "Pss", "smaps_rollup") for p in tree(root, kids))
            peak[root] = max(peak.get(root, 0), pss)
        try:
            with open(results) as f:
                lines = f.read().splitlines()
        except OSError:
            lines = []
        for line in lines[max(seen_lines, 1):]:
            cols = line.split("\t")
            if len(cols) < 6 or cols[0] not in roots:
                continue
            root = roots[cols[0]]
            hwm = status_kib(root, "VmHWM") if cols[0] == "ferry" else ""
            out.write("\t".join(cols[:4] + [cols[5], str(peak.get(root, 0)), str(hwm)]) + "\n")
            if cols[0] == "ferry":
                reset_hwm(root)
        if len(lines) > seen_lines:
            seen_lines = len(lines)
            peak = {}
        time.sleep(args.interval)


if __name__ == "__main__":
    main()
