import * as cp from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

/** A test-only release artifact: where it is and its sha256. */
export type Artifact = { file: string; sha256: string };

/** Pack a release directory into `<outDir>/complinist-<version>.tar.gz` and remove the directory. */
export function pack(src: string, outDir: string, version: string): Artifact {
    fs.mkdirSync(outDir, { recursive: true });
    const file = path.join(outDir, `complinist-${version}.tar.gz`);
    cp.execFileSync("tar", ["-czf", file, "-C", src, "."]);
    fs.rmSync(src, { recursive: true, force: true });
    return { file, sha256: crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex") };
}

/** A release whose bin/start is a small Python HTTP server; DO_GET is the body of its do_GET. */
function pythonArtifact(outDir: string, version: string, prelude: string[], doGet: string[]): Artifact {
    const src = fs.mkdtempSync(path.join(os.tmpdir(), "artifact-"));
    fs.mkdirSync(path.join(src, "bin"));
    const server = [
        "#!/usr/bin/env python3",
        "import json, os, time",
        "from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer",
        ...prelude,
        "class H(BaseHTTPRequestHandler):",
        "    def do_GET(self):",
        ...doGet.map((l) => `        ${l}`),
        "        self.send_response(code)",
        "        self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body.encode())",
        "    def log_message(self, *a): pass",
        "ThreadingHTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()",
        "",
    ].join("\n");
    fs.writeFileSync(path.join(src, "bin", "start"), server, { mode: 0o755 });
    return pack(src, outDir, version);
}

/**
 * A release whose /health turns "degraded" (503) `degradeAfterSeconds` after it starts, while
 * every other path keeps answering 200: it passes the gate and fails a soak, and users' pages
 * never fail because of it.
 */
export function degradingArtifact(outDir: string, version: string, degradeAfterSeconds: number): Artifact {
    return pythonArtifact(outDir, version, ["T0 = time.monotonic()"], [
        `ok = time.monotonic() - T0 < ${degradeAfterSeconds}`,
        `body = json.dumps({"status": "healthy" if ok else "degraded", "version": "${version}"}) if self.path == "/health" else "<p>page</p>"`,
        "code = 200 if (ok or self.path != '/health') else 503",
    ]);
}

/** A healthy release that serves the health contract on HEALTH_PATH only (/health is a 404), pages elsewhere. */
export function healthPathArtifact(outDir: string, version: string, healthPath: string): Artifact {
    return pythonArtifact(outDir, version, [], [
        `body = json.dumps({"status": "healthy", "version": "${version}"}) if self.path == "${healthPath}" else ("not found" if self.path == "/health" else "<p>page</p>")`,
        "code = 404 if self.path == '/health' else 200",
    ]);
}

/**
 * A release that is healthy on every host but one: where MARKER exists (a file root made on that
 * host), its /health answers 503 "broken", so it fails the gate there and only there.
 */
export function brokenWhereArtifact(outDir: string, version: string, marker: string): Artifact {
    return pythonArtifact(outDir, version, [`BROKEN = os.path.exists(${JSON.stringify(marker)})`], [
        `body = json.dumps({"status": "broken" if BROKEN else "healthy", "version": "${version}"}) if self.path == "/health" else "<p>page</p>"`,
        "code = 503 if (BROKEN and self.path == '/health') else 200",
    ]);
}

/**
 * A release whose /health is healthy (it passes the gate) but which never answers anything else:
 * every other request hangs for an hour (issue 29 finding 9: HAProxy's 60 s server timeout would
 * count one only at its end, after a short canary had passed the release).
 */
export function hangingArtifact(outDir: string, version: string): Artifact {
    return pythonArtifact(outDir, version, [], [
        "if self.path != '/health': time.sleep(3600)",
        `body = json.dumps({"status": "healthy", "version": "${version}"})`,
        "code = 200",
    ]);
}

/**
 * A healthy release that, once live, squats the other instance port from a child process (issue 29
 * finding 10: a compromised live instance blocking every later deploy): the child binds
 * 127.0.0.1:<the other port> as soon as it is free and holds it.
 */
export function squattingArtifact(outDir: string, version: string, ports: [number, number]): Artifact {
    return pythonArtifact(outDir, version, [
        "import socket",
        `OTHER = ${ports[0] + ports[1]} - int(os.environ['PORT'])`,
        "if os.fork() == 0:",
        "    while True:",
        "        try:",
        "            s = socket.socket(); s.bind(('127.0.0.1', OTHER)); s.listen(); break",
        "        except OSError: time.sleep(0.2)",
        "    while True: time.sleep(3600)",
    ], [
        `body = json.dumps({"status": "healthy", "version": "${version}"}) if self.path == "/health" else "<p>page</p>"`,
        "code = 200",
    ]);
}

/**
 * A healthy release that turns unhealthy at run time (the failover tests): while FLAG exists on
 * the host (a root-only path, e.g. under /run/complinist-faults), /health answers 503
 * {"status": "unhealthy"} with its version; every other path keeps answering 200.
 */
export function flagUnhealthyArtifact(outDir: string, version: string, flag: string): Artifact {
    return pythonArtifact(outDir, version, [], [
        `ok = not os.path.exists(${JSON.stringify(flag)})`,
        `body = json.dumps({"status": "healthy" if ok else "unhealthy", "version": "${version}"}) if self.path == "/health" else "<p>page ${version}</p>"`,
        "code = 200 if (ok or self.path != '/health') else 503",
    ]);
}
