#!/usr/bin/env python3
"""A stand-in OTLP/HTTP collector for the traces benchmark (bench/RESULTS.md, "Traces").

    bench/otlp-sink.py PORT answer   # reads each export and answers 200 (a healthy collector)
    bench/otlp-sink.py PORT silent   # accepts connections, never reads or answers (a hung one)

Counts what it was sent on stderr when stopped. Loopback only; stops by itself after an hour.
"""
import signal
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, mode = int(sys.argv[1]), sys.argv[2]
signal.alarm(3600)
received = {"exports": 0, "bytes": 0}


class Answer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        n = int(self.headers.get("content-length", "0"))
        self.rfile.read(n)
        received["exports"] += 1
        received["bytes"] += n
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def report(*_):
    print(f"otlp-sink: {received['exports']} exports, {received['bytes']} bytes", file=sys.stderr)
    sys.exit(0)


signal.signal(signal.SIGTERM, report)
if mode == "answer":
    ThreadingHTTPServer(("127.0.0.1", port), Answer).serve_forever()
elif mode == "silent":
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(1024)
    held = []
    while True:
        conn, _ = s.accept()
        held.append(conn)
else:
    sys.exit("mode: answer or silent")
