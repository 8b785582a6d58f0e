"""A scripted HTTP server on 127.0.0.1 standing in for rspamd's normal worker (POST /checkv2), for what a real rspamd
will not do on demand: answer a chosen JSON, or misbehave. (rspamdtest.BrokenRspamd has more ways to answer badly;
this one adds the chosen JSON, a reply that never comes, JSON cut short in a whole HTTP reply, and no HTTP at all.)

    with ScriptedHttp("json", reply={"action": "no action", "score": 0.0}) as peer:
        ... [rspamd] url = peer.url ...
        peer.requests[0].headers.get_all("Rcpt"), peer.requests[0].body

Modes (the attribute `mode` may change while it runs):
    json       200 with json.dumps(reply)
    hang       reads the request, never answers (until stopped)
    garbage    200 with a body that is no JSON
    truncated  200 with JSON cut short
    close      closes the connection without a reply
    500        an HTTP error
    nonsense   bytes that are no HTTP response, then close
"""

import http.server
import json
import socket
import threading
import time
from dataclasses import dataclass


@dataclass
class Request:
    path: str
    headers: object    # http.client.HTTPMessage: .get(name), .get_all(name)
    body: bytes


class ScriptedHttp:
    BODIES = {"garbage": b"this is not json\r\n", "truncated": b'{"action": "reject", "score": 20.0, "messa'}

    def __init__(self, mode="json", reply=None):
        self.mode = mode
        self.reply = reply if reply is not None else {"action": "no action", "score": 0.0, "required_score": 15.0}
        self.requests = []
        self.stopping = False
        peer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                peer.requests.append(Request(self.path, self.headers, body))
                mode = peer.mode
                if mode == "hang":
                    while not peer.stopping:
                        time.sleep(0.05)
                    self.close_connection = True
                    return
                if mode == "close":
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                if mode == "nonsense":
                    self.wfile.write(b"\x00\x01 garbage that is no HTTP\r\n\r\n")
                    self.close_connection = True
                    return
                if mode == "500":
                    code, data = 500, b"internal error"
                elif mode == "json":
                    code, data = 200, json.dumps(peer.reply).encode()
                else:
                    code, data = 200, peer.BODIES[mode]
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def handle(self):
                try:
                    super().handle()
                except (ConnectionError, OSError):
                    pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.stopping = True
        self.server.shutdown()
        self.server.server_close()
