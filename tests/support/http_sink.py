#!/usr/bin/env python3
"""HTTP sink for integration tests: records what is POSTed to it.

Usage: python3 tests/support/http_sink.py PORT      (PORT 0 = any free port)

Binds 127.0.0.1 only; standard library only (Python 3.11). .ci/run starts it
in the background and stops it by PID.

  POST <any path>        -> 200 "ok"; records {"path", "headers", "body"}
                            (body as text, UTF-8 with replacement)
  GET  /requests         -> 200, JSON list of the records, oldest first
  GET  /requests?path=P  -> only the records whose path is P (tests running in
                            parallel each post to their own path)
  POST /reset            -> 200, clears the records (not recorded)
  GET  /health           -> 200 "ok" (readiness)

Bodies over 1 MiB get 413 and the oldest records are dropped past 10,000, so
a runaway test cannot exhaust memory. Chunked request bodies are accepted.
The first line on stdout is "listening on 127.0.0.1:PORT".
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MAX_BODY = 1024 * 1024
MAX_RECORDS = 10_000

_lock = threading.Lock()
_records = []


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "logwarden-http-sink/1"

    def log_message(self, format, *args):  # noqa: A002 - signature is the base class's
        # Quiet: CI output is for test results.
        pass

    def _reply(self, status, body, content_type="text/plain; charset=utf-8"):
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _read_body(self):
        """The request body, or None when it is over the cap."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = bytearray()
            while True:
                size_line = self.rfile.readline().split(b";", 1)[0].strip()
                size = int(size_line or b"0", 16)
                if size == 0:
                    # Trailers until the blank line.
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                if len(data) + size > MAX_BODY:
                    return None
                data += self.rfile.read(size)
                self.rfile.readline()
            return bytes(data)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def do_POST(self):
        path = urlsplit(self.path).path
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            self._reply(400, "bad request body")
            return
        if body is None:
            self.close_connection = True
            self._reply(413, "body over 1 MiB")
            return
        if path == "/reset":
            with _lock:
                _records.clear()
            self._reply(200, "reset")
            return
        record = {
            "path": path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body.decode("utf-8", errors="replace"),
        }
        with _lock:
            _records.append(record)
            del _records[:-MAX_RECORDS]
        self._reply(200, "ok")

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == "/health":
            self._reply(200, "ok")
            return
        if url.path == "/requests":
            wanted = parse_qs(url.query).get("path")
            with _lock:
                out = [r for r in _records if not wanted or r["path"] in wanted]
            self._reply(200, json.dumps(out), "application/json")
            return
        self._reply(404, "not found")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # Parallel tests connect at once; the default backlog of 5 is small.
    request_queue_size = 128


def main():
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        print("usage: http_sink.py PORT", file=sys.stderr)
        return 2
    server = Server(("127.0.0.1", int(sys.argv[1])), Handler)
    print(f"listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
