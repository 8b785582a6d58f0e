#!/usr/bin/env python3
"""Relay throughput, Ferry against Postfix in the same run: smtp-source injects N messages into the MTA over
SESSIONS sessions, the MTA relays every one to smtp-sink on loopback (Ferry through [outbound] relay_host,
Postfix through relayhost), and the time runs from the first injected message to the N-th `status=sent` in the
MTA's log. Both use their default durability (fsync before 250). Prints one TSV line per MTA and the ratio.

Uses the test harness's Ferry and PostfixPeer classes (a private Postfix instance; needs root). Never part of
`make test`.
"""

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
from ferrytest import Ferry, free_port  # noqa: E402
from postfixpeer import PostfixPeer, make_base_dir  # noqa: E402


def start_sink():
    port = free_port()
    proc = subprocess.Popen(["/usr/sbin/smtp-sink", "-u", "nobody", f"127.0.0.1:{port}", "256"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    return proc, port


def wait_sent(read_log, pattern, n, timeout=600):
    start = time.monotonic()
    count = 0
    while time.monotonic() - start < timeout:
        count = len(re.findall(pattern, read_log()))
        if count >= n:
            return time.monotonic()
        time.sleep(0.05)
    raise SystemExit(f"relay bench: only {count}/{n} sent after {timeout}s")


def inject(port, rcpt, n, sessions, size):
    subprocess.run(["/usr/sbin/smtp-source", "-s", str(sessions), "-m", str(n), "-l", str(size),
                    "-f", "sender@client.test", "-t", rcpt, f"127.0.0.1:{port}"], check=True)


def run_ferry(n, sessions, size):
    sink, sink_port = start_sink()
    base = tempfile.mkdtemp(prefix="relaybench-ferry-")
    ferry = Ferry(base, aliases={"fwd@example.test": ["x@sink.test"]}, limits={"connections_per_ip": 1000},
                  extra_toml=f'[outbound]\nrelay_host = "127.0.0.1:{sink_port}"\n[dns]\nresolver = "127.0.0.1:9"\n')
    ferry.start()
    try:
        start = time.monotonic()
        inject(ferry.port, "fwd@example.test", n, sessions, size)
        end = wait_sent(lambda: ferry.log, rf"delivered id=\S+ to=<x@sink\.test> relay=\S+:{sink_port} .*status=sent", n)
        return end - start
    finally:
        ferry.stop()
        sink.terminate()
        sink.wait()
        shutil.rmtree(base, ignore_errors=True)


def run_postfix(n, sessions, size):
    sink, sink_port = start_sink()
    base = make_base_dir()
    postfix = PostfixPeer(base, role="source", relay_port=sink_port)
    postfix.start()
    try:
        start = time.monotonic()
        inject(postfix.port, "x@sink.test", n, sessions, size)
        end = wait_sent(lambda: postfix.log,
                        rf"to=<x@sink\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:{sink_port}.*status=sent", n)
        return end - start
    finally:
        postfix.stop()
        sink.terminate()
        sink.wait()
        shutil.rmtree(base, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=3000)
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--size", type=int, default=2000)
    a = ap.parse_args()
    ferry = run_ferry(a.messages, a.sessions, a.size)
    postfix = run_postfix(a.messages, a.sessions, a.size)
    print("mta\tmessages\tsessions\tsize\tseconds\tmsg_per_s")
    for name, t in (("ferry", ferry), ("postfix", postfix)):
        print(f"{name}\t{a.messages}\t{a.sessions}\t{a.size}\t{t:.2f}\t{a.messages / t:.0f}")
    print(f"# relay throughput ratio ferry/postfix: {postfix / ferry:.2f}")


if __name__ == "__main__":
    main()
