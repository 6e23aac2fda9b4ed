#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A tiny HTTP(S) server for the HTTP client's tests (tests/integration/test_httpc.c).

    http_echo.py PORT [CERT KEY]

Listens on 127.0.0.1:PORT (TLS with CERT and KEY when given), one thread
per connection. Every request, whatever its method, is answered from its
path and query:

    /echo                  200, JSON {"method","path","query","headers","body"}
    ?status=N              answer with status N instead of 200
    ?retry_after=V         add "Retry-After: V"
    ?location=U            add "Location: U" (for redirect statuses)
    ?delay_ms=N            wait N ms before answering
    ?size=N                a body of N bytes of "x" instead of the echo
    ?chunked=1             with size: no Content-Length, chunked encoding

Header names in the echo are lower-case. Standard library only.
"""

import json
import ssl
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK = 64 * 1024


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: the test reads results, not logs
        pass

    def handle_any(self):
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""

        delay = int(q.get("delay_ms", "0"))
        if delay > 0:
            time.sleep(delay / 1000.0)

        status = int(q.get("status", "200"))
        if "size" in q:
            size = int(q["size"])
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            if "retry_after" in q:
                self.send_header("Retry-After", q["retry_after"])
            if q.get("chunked") == "1":
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                left = size
                while left > 0:
                    n = min(left, CHUNK)
                    self.wfile.write(b"%x\r\n" % n + b"x" * n + b"\r\n")
                    left -= n
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.send_header("Content-Length", str(size))
                self.end_headers()
                left = size
                while left > 0:
                    n = min(left, CHUNK)
                    self.wfile.write(b"x" * n)
                    left -= n
            return

        echo = {
            "method": self.command,
            "path": url.path,
            "query": url.query,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body.decode("utf-8", "replace"),
        }
        out = json.dumps(echo).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        if "retry_after" in q:
            self.send_header("Retry-After", q["retry_after"])
        if "location" in q:
            self.send_header("Location", q["location"])
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


def main():
    port = int(sys.argv[1])
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    if len(sys.argv) >= 4:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[2], sys.argv[3])
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
