#!/usr/bin/env python3
"""Stand-in for CompliNist: the smallest HTTP app that behaves like a release.

The deployment only relies on two things, both here: the process serves
`GET /health` with the version baked into the artifact (so an Activation can tell the
release it just switched to from the one before), and it logs to stdout (journald
captures it). Standard library only, so hosts need nothing but python3.

Artifact variants are selected by the MODE file next to this script (written by
scripts/build-artifacts.ts), not by environment, so a broken release stays broken
whatever the unit file says:
  good       healthy
  unhealthy  serves, but /health answers 503 {"status":"unhealthy",...}
  nostart    exits 1 before binding the port
  flaky      /health is healthy, but 3 of every 10 other requests answer 500 (a release
             whose pages fail for a third of its users: only the error-rate watch sees it)
"""
import itertools
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
STARTED = time.monotonic()


def read_file(name, default):
    try:
        with open(os.path.join(HERE, name), encoding="utf-8") as f:
            return f.read().strip() or default
    except FileNotFoundError:
        return default


VERSION = read_file("VERSION", "0.0.0-dev")
MODE = read_file("MODE", "good")
# Requests other than /health, counted across threads (next() on a count is atomic in CPython).
PAGE_REQUESTS = itertools.count(1)

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>CompliNist</title></head>
<body><h1>CompliNist</h1><p>version {version}</p></body></html>
"""


class Handler(BaseHTTPRequestHandler):
    server_version = "CompliNist/" + VERSION

    def _send(self, code, ctype, body):
        data = body.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/health":
            healthy = MODE != "unhealthy"
            body = json.dumps({
                "status": "healthy" if healthy else "unhealthy",
                "version": VERSION,
                "uptime": round(time.monotonic() - STARTED, 3),
            })
            self._send(200 if healthy else 503, "application/json", body)
        elif MODE == "flaky" and next(PAGE_REQUESTS) % 10 in (1, 4, 7):
            self._send(500, "application/json", json.dumps({"error": "internal error (flaky release)", "version": VERSION}))
        elif path == "/":
            self._send(200, "text/html; charset=utf-8", PAGE.format(version=VERSION))
        else:
            self._send(404, "application/json", json.dumps({"error": "not found"}))

    do_HEAD = do_GET

    def log_message(self, fmt, *args):
        # stdout, not stderr: the runbook's app.log and journald both read stdout.
        sys.stdout.write("%s %s\n" % (self.address_string(), fmt % args))
        sys.stdout.flush()


def main():
    if MODE == "nostart":
        sys.stderr.write("complinist %s: refusing to start (broken build)\n" % VERSION)
        return 1
    port = int(os.environ.get("PORT", "5000"))
    host = os.environ.get("BIND", "0.0.0.0")
    httpd = ThreadingHTTPServer((host, port), Handler)
    print("complinist %s listening on %s:%d (mode %s)" % (VERSION, host, port, MODE), flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
