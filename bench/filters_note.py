#!/usr/bin/python3
"""Puts a short paragraph pointing at a filters report (bench/filters.py's markdown) into latest.md, between marker
comments: replaced if present, appended if not; every other line of latest.md is left as it is.

usage: filters_note.py REPORT.md LATEST.md"""
import re
import sys
from pathlib import Path

BEGIN, END = "<!-- filters: bench/filters.sh -->", "<!-- /filters -->"


def note(report):
    text = report.read_text()
    title = text.splitlines()[0].split("—")[-1].strip()   # the run's start and end
    rows = re.findall(r"^\| (\d+ KiB, \d+ sessions) \| ([\d.]+)× \| ([\d.]+)× \| (\w+) \|$", text, re.M)
    cells = "; ".join(f"{c}: {t}× the msg/s, p99 {p}×" for c, t, p, _ in rows)
    met = sum(1 for *_, g in rows if g == "yes")
    return (f"{BEGIN}\n## Spam filters (rspamd)\n\nRun {title} (bench/filters.sh): see [{report.name}]({report.name}). "
            f"Ferry + rspamd (HTTP) against Postfix + rspamd (milter), e2e: {cells or 'no complete cell'}. "
            f"Goal (≥ 1.5× Postfix's throughput at the same p99 or better) met in {met} of {len(rows)} cells"
            + (f"; why, and the A/B with no filter configured: the report's own sections" if "## Why" in text else "")
            + f".\n{END}\n")


def main():
    report, latest = Path(sys.argv[1]), Path(sys.argv[2])
    old = latest.read_text() if latest.exists() else ""
    new = note(report)
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        out = head + new + tail
    else:
        out = old.rstrip("\n") + ("\n\n" if old else "") + new
    latest.write_text(out)


if __name__ == "__main__":
    main()
