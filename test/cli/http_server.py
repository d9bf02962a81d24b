#!/usr/bin/env python3
"""A small HTTP server for the core/http CLI tests, on 127.0.0.1 and a free port (written to argv[1]).

/hello          200 text/plain "hello world"
/echo-headers   200 application/json: the request's headers
/artifact.bin   200 application/octet-stream: a fixed artifact
/binary         200 bytes that are not UTF-8
/slow           answers after 5 seconds (for timeouts)
/redirect       302 to /hello
/redirect-file  302 to file:///etc/hostname (which must not be followed)
/truncated      promises 1000 bytes, sends 10 and closes
anything else   404
"""
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARTIFACT = b"stagehost test artifact\n" * 100


class Handler(BaseHTTPRequestHandler):
    def send(self, status, ctype, body):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/hello":
            self.send(200, "text/plain", b"hello world\n")
        elif self.path == "/echo-headers":
            self.send(200, "application/json", json.dumps(dict(self.headers.items())).encode())
        elif self.path == "/artifact.bin":
            self.send(200, "application/octet-stream", ARTIFACT)
        elif self.path == "/binary":
            self.send(200, "application/octet-stream", b"\xff\x00\x01")
        elif self.path == "/slow":
            time.sleep(5)
            self.send(200, "text/plain", b"late\n")
        elif self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/hello")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/redirect-file":
            self.send_response(302)
            self.send_header("Location", "file:///etc/hostname")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/truncated":
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.wfile.flush()
            self.close_connection = True
        else:
            self.send(404, "text/plain", b"not found\n")

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
# The port file appears whole: written aside, then renamed.
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
server.serve_forever()
