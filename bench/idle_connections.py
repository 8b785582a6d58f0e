#!/usr/bin/python3
"""Opens N idle SMTP sessions (each has read its 220 greeting), then reads the server's RSS.
Prints TSV lines: metric value."""
import argparse
import resource
import selectors
import socket
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--count", type=int, default=10000)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, a.count + 1024), hard))

    before = rss_kib(a.pid)
    sel = selectors.DefaultSelector()
    socks, greeted = [], 0
    t0 = time.time()
    # Connect in waves so the listen backlog never overflows, and wait for each wave's greetings.
    wave = 500
    for start in range(0, a.count, wave):
        pending = 0
        for _ in range(min(wave, a.count - start)):
            s = socket.create_connection(("127.0.0.1", a.port), timeout=30)
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
            socks.append(s)
            pending += 1
        deadline = time.time() + 30
        while pending and time.time() < deadline:
            for key, _ in sel.select(timeout=1):
                data = key.fileobj.recv(512)
                if data.startswith(b"220"):
                    greeted += 1
                sel.unregister(key.fileobj)
                pending -= 1
    time.sleep(1)
    during = rss_kib(a.pid)
    print(f"idle_connections\t{len(socks)}")
    print(f"greeted\t{greeted}")
    print(f"rss_before_kib\t{before}")
    print(f"rss_idle_kib\t{during}")
    print(f"rss_per_session_bytes\t{(during - before) * 1024 // max(1, len(socks))}")
    print(f"open_seconds\t{time.time() - t0:.1f}")
    for s in socks:
        s.close()


if __name__ == "__main__":
    main()
