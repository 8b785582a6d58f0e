#!/usr/bin/python3
"""Latency from connect to the 250 after the final dot, one message per connection, N concurrent sessions.
Prints one TSV line: name sessions messages p50_ms p90_ms p99_ms max_ms errors."""
import argparse
import socket
import threading
import time


def one_message(port, rcpt, body):
    t0 = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    f = s.makefile("rb")

    def reply():
        while True:
            line = f.readline()
            if not line:
                raise ConnectionError("closed")
            if line[3:4] != b"-":
                return int(line[:3])

    try:
        if reply() != 220:
            raise RuntimeError("greeting")
        s.sendall(b"EHLO bench.example.test\r\n")
        reply()
        # PIPELINING: MAIL, RCPT, DATA in one write, as smtp-source and Postfix's smtp client do
        s.sendall(b"MAIL FROM:<a@example.test>\r\nRCPT TO:<" + rcpt.encode() + b">\r\nDATA\r\n")
        codes = (reply(), reply(), reply())
        if codes != (250, 250, 354):
            raise RuntimeError(f"codes {codes}")
        s.sendall(body + b".\r\n")
        if reply() != 250:
            raise RuntimeError("not accepted")
        elapsed = time.perf_counter() - t0
        s.sendall(b"QUIT\r\n")
        return elapsed
    finally:
        s.close()


def smtp_source_message(rcpt, size):
    """The shape of Postfix smtp-source's message: From/To/Date/Message-Id, then lines "1XXX..", "2XXX.." (the
    line number's last digit and 77 X) up to `size` bytes of body. rspamd's cost per message depends on the
    content (bench/latency.py's own x-lines cost it about 2.5 times as much), so the filters benchmark measures
    latency on the same content as throughput."""
    head = (f"From: <a@example.test>\r\nTo: <{rcpt}>\r\n"
            f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}\r\n"
            f"Message-Id: <latency.{time.time_ns()}@bench.example.test>\r\n\r\n").encode()
    lines, n, i = [], 0, 1
    while n < size:
        line = (str(i % 10) + "X" * 77 + "\r\n").encode()
        lines.append(line)
        n += len(line)
        i += 1
    return head + b"".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--sessions", type=int, default=50)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--rcpt", default="u@example.test")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--smtp-source-body", action="store_true",
                    help="send the message smtp-source -l SIZE sends (its header fields; body lines of a digit "
                         "and 77 X), so that a content filter sees what it sees in the smtp-source runs")
    a = ap.parse_args()
    if a.smtp_source_body:
        body = smtp_source_message(a.rcpt, a.size)
    else:
        line = b"x" * 78 + b"\r\n"
        body = b"Subject: latency\r\n\r\n" + line * max(1, a.size // len(line))
    lat, errors, lock = [], [0], threading.Lock()
    per = a.messages // a.sessions

    def worker():
        for _ in range(per):
            try:
                e = one_message(a.port, a.rcpt, body)
                with lock:
                    lat.append(e)
            except Exception:
                with lock:
                    errors[0] += 1

    threads = [threading.Thread(target=worker) for _ in range(a.sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lat.sort()

    def pct(p):
        return 1000 * lat[min(len(lat) - 1, int(p * len(lat)))] if lat else float("nan")

    print(f"{a.name}\t{a.sessions}\t{len(lat)}\t{pct(0.5):.2f}\t{pct(0.9):.2f}\t{pct(0.99):.2f}\t"
          f"{1000 * lat[-1] if lat else float('nan'):.2f}\t{errors[0]}")


if __name__ == "__main__":
    main()
