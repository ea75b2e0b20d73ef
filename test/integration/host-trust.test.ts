import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { buildArtifacts, type BuiltArtifact } from "../../scripts/build-artifacts";
import { RealEngine, type ProgramConfig } from "../e2e/engine";
import { pack, type Artifact } from "./artifacts";
import { hostLayout } from "../../infra/render/layout";
import { renderReleaseInstall } from "../../infra/render/release";
import { releaseDirProvider, type ReleaseDirState } from "../../infra/providers/release";
import { closeAllConnections, sshTransport } from "../../infra/transport/ssh";
import type { Transport } from "../../infra/transport/transport";
import { TestHost, useHosts, hostEntry } from "../../dev/hosts";

/**
 * The untrusted input rule on a real host (Debian + systemd + sshd), through the SSH transport
 * the providers use: what an artifact ships is data, never a path root writes through or
 * follows; releaseAuth goes only to the origin it was configured for. Host state is observed
 * through docker exec (TestHost.exec), independent of SSH.
 */

const l = hostLayout("/opt/complinist", "complinist");
/** Root-only files an artifact's links point at: nothing the install does may change them. */
const STANDIN = "/etc/complinist-standin";
const STANDIN_DIR = "/etc/complinist-standin.d";
/** Where a dangling link in an artifact points: nothing may create it. */
const PLANTED = "/etc/complinist-planted";

describe("host trust on a real host: what an artifact ships and where a registry redirects", function () {
    this.timeout(600000);
    const hosts: TestHost[] = useHosts(1, { names: ["trust-1"] });
    const h = () => hosts[0] as TestHost;
    let t: Transport;

    const sh = (cmd: string) => h().run(cmd);

    /** Content, owner, mode, link count and mtime of the stand-ins, and every path under STANDIN_DIR. */
    const fingerprint = () =>
        sh(`for f in ${STANDIN} ${STANDIN_DIR} ${STANDIN_DIR}/file; do echo "$f $(stat -c '%F %U:%G %a %h %Y' "$f") $( [ -d "$f" ] || sha256sum <"$f" | cut -c1-16)"; done; find ${STANDIN_DIR} | sort; ls -d ${PLANTED} 2>&1 || true`);

    /**
     * A tarball built on the host by root from `build` (run in an empty directory), as
     * /root/<name>.tar.gz, and its sha256.
     */
    async function artifact(name: string, build: string): Promise<{ file: string; sha256: string }> {
        const file = `/root/${name}.tar.gz`;
        const sha256 = await sh(`set -e; d=$(mktemp -d); cd "$d"; mkdir bin; printf '#!/bin/sh\\nexit 0\\n' >bin/start; chmod 0755 bin/start; ${build}; tar -czf ${file} -C "$d" .; rm -rf "$d"; sha256sum ${file} | cut -d' ' -f1`);
        return { file, sha256 };
    }

    /** The rendered install, sent over SSH as a provider sends it; the upload is `file` on the host. */
    const install = (version: string, a: { file: string; sha256: string }) =>
        t.exec(renderReleaseInstall(l, { version, sha256: a.sha256, source: { uploaded: a.file }, authOrigins: [], who: "itest@trust", service: "complinist", commit: "c0ffee" }), { timeoutMs: 120000 });

    /** Every path changed under / since `marker` (one filesystem; /proc, /run, /tmp are others or skipped). */
    const changedSince = async (marker: string) =>
        (await sh(`find / -xdev \\( -path /proc -o -path /sys -o -path /run -o -path /tmp -o -path /var/log/journal -o -path /var/lib/systemd \\) -prune -o -newer ${marker} -print | sort`))
            .split("\n")
            .filter((p) => p !== "" && p !== "/root" && p !== marker);

    before(async () => {
        t = sshTransport({ kind: "ssh", name: h().name, address: h().address, port: h().sshPort, user: h().user, hostKey: h().hostKey, privateKey: h().privateKey, timeoutMs: 20000 });
        await sh(`printf 'root only\\n' >${STANDIN} && chmod 0600 ${STANDIN} && install -d -m 0700 ${STANDIN_DIR} && printf 'secret\\n' >${STANDIN_DIR}/file && chmod 0600 ${STANDIN_DIR}/file`);
    });
    after(async () => {
        await closeAllConnections();
    });

    describe("finding 1: root never writes through, follows or chmods a path the artifact planted", () => {
        for (const [what, build] of [
            ["a link to a root-only file", `ln -s ${STANDIN} .complinist-release`],
            ["a dangling link (the write would create its target)", `ln -s ${PLANTED} .complinist-release`],
            ["a directory", "mkdir .complinist-release"],
        ] as const) {
            it(`an artifact shipping .complinist-release as ${what} is refused whole; the stand-in and the host are untouched`, async () => {
                const a = await artifact("manifest-planted", build);
                const before = await fingerprint();
                await sh("touch /root/.trust-marker");
                const r = await install("6.6.6", a);
                assert.strictEqual(await fingerprint(), before, "the stand-ins' content, owner, mode, links and mtime, and what exists at the link's target");
                assert.strictEqual(r.code, 1, r.stdout + r.stderr);
                assert.match(r.stderr, /release 6\.6\.6 refused: its artifact ships \.complinist-release \(a (symbolic link|directory)\), the name of the manifest only the install writes; nothing was installed/);
                assert.strictEqual(await sh(`ls -A ${l.releasesDir}`), "", "no release directory, no temp name left");
                const changed = await changedSince("/root/.trust-marker");
                // The first install creates <baseDir> and the log directory, which changes their parents.
                assert.deepStrictEqual(changed.filter((p) => !/^\/(opt|var\/log)(\/complinist(\/.*)?)?$/.test(p)), [], "only the lock, the logs and releases/ may change");
            });
        }

        it("an artifact full of links (shared, bin/start, etc, a nested one) installs; every link stays a link and nothing it names changes", async () => {
            const a = await artifact(
                "links",
                `rm bin/start; ln -s ${STANDIN} bin/start; ln -s ${STANDIN_DIR} shared; ln -s /etc etc; ln -s ${STANDIN} standin; mkdir -p sub; ln -s ${STANDIN_DIR}/file sub/file; ln -s ${PLANTED} dangling`,
            );
            const before = await fingerprint();
            const r = await install("6.6.7", a);
            assert.strictEqual(r.code, 0, r.stdout + r.stderr);
            assert.strictEqual(await fingerprint(), before);
            const dir = `${l.releasesDir}/6.6.7`;
            assert.strictEqual(await sh(`stat -c '%F %U:%G %a' ${dir}/.complinist-release`), "regular file root:root 644");
            assert.match(await sh(`cat ${dir}/.complinist-release`), /^version=6\.6\.7\nsha256=[0-9a-f]{64}\ninstalledAt=\S+\ncommit=c0ffee$/);
            assert.strictEqual(await sh(`readlink ${dir}/shared`), "../../shared", "the shipped shared link was removed, not followed");
            assert.strictEqual(await sh(`stat -c '%F %a' ${dir}`), "directory 755");
            for (const [p, to] of [["bin/start", STANDIN], ["etc", "/etc"], ["standin", STANDIN], ["sub/file", `${STANDIN_DIR}/file`], ["dangling", PLANTED]]) {
                assert.strictEqual(await sh(`readlink ${dir}/${p}`), to, p);
            }
            assert.strictEqual(await sh(`ls -A ${l.sharedDir}`), "", "nothing landed in the persistent shared/");
            await sh(`rm -rf ${dir}`);
        });

        it("an artifact shipping a device node or a FIFO is refused whole: the service user never sees it", async () => {
            for (const [kind, build, shown] of [
                ["device", "mknod dev-null c 1 3", /dev-null \(type c\)/],
                ["fifo", "mkdir -p run && mkfifo run/pipe", /run\/pipe \(type p\)/],
            ] as const) {
                const a = await artifact(kind, build);
                const r = await install("6.6.8", a);
                assert.strictEqual(r.code, 1, kind + r.stdout + r.stderr);
                assert.match(r.stderr, /release 6\.6\.8 refused: its artifact ships other than files, directories and links: /, kind);
                assert.match(r.stderr, shown, kind);
                assert.strictEqual(await sh(`ls -A ${l.releasesDir}`), "", kind);
            }
        });
    });

    describe("finding 2: releaseAuth reaches only the configured origin; a redirect is followed without it, to https only", () => {
        const SECRET = "trust-token-Zq9";
        const ORIGIN = 18081;
        const OTHER = 18082;
        const SECURE = 18443;
        let served: { sha256: string };

        const SERVER = [
            "import http.server, json, ssl, sys, urllib.parse",
            "port, log = int(sys.argv[1]), sys.argv[2]",
            "class H(http.server.BaseHTTPRequestHandler):",
            "    def do_GET(self):",
            "        if self.path == '/ready':",
            "            body = b'ok'",
            "        else:",
            "            with open(log, 'a') as f: f.write(json.dumps({'path': self.path, 'headers': {k.lower(): v for k, v in self.headers.items()}}) + '\\n')",
            "            if self.path.startswith('/to?'):",
            "                self.send_response(302); self.send_header('Location', urllib.parse.unquote(self.path[4:])); self.send_header('Content-Length', '0'); self.end_headers(); return",
            "            body = open('/root/served.tar.gz', 'rb').read()",
            "        self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)",
            "    def log_message(self, *a): pass",
            "s = http.server.ThreadingHTTPServer(('127.0.0.1', port), H)",
            "if len(sys.argv) > 3:",
            "    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(sys.argv[3], sys.argv[4]); s.socket = ctx.wrap_socket(s.socket, server_side=True)",
            "s.serve_forever()",
            "",
        ].join("\n");

        /** The requests a server recorded: path and headers (lower-case names). */
        const requests = async (name: string) =>
            (await sh(`cat /root/${name}.log 2>/dev/null || true`))
                .split("\n")
                .filter((x) => x !== "")
                .map((x) => JSON.parse(x) as { path: string; headers: Record<string, string> });
        const carriesSecret = (r: { headers: Record<string, string> }) => Object.entries(r.headers).some(([k, v]) => k === "deploy-token" || v.includes(SECRET));

        async function waitReady(url: string): Promise<void> {
            const deadline = Date.now() + 30000;
            while ((await h().exec(`curl -fsS -m 2 ${url}/ready`)).code !== 0) {
                if (Date.now() > deadline) throw new Error(`${url} did not come up`);
                await new Promise((r) => setTimeout(r, 100));
            }
        }

        const state = (url: string): ReleaseDirState => ({
            host: hostEntry(h()),
            privateKey: h().privateKey,
            baseDir: "/opt/complinist",
            service: "complinist",
            version: "7.0.0",
            sha256: served.sha256,
            artifact: { url },
            auth: `Deploy-Token: ${SECRET}`,
            // The configured origin (the schema takes https origins only; the provider compares whatever it is given).
            authOrigins: [`http://127.0.0.1:${ORIGIN}`],
            stack: "itest",
            acknowledgeHostChange: [],
        });
        const via = (target: string) => `http://127.0.0.1:${ORIGIN}/to?${encodeURIComponent(target)}`;

        before(async () => {
            const a = await artifact("served-src", "true");
            await sh(`mv ${a.file} /root/served.tar.gz`);
            served = { sha256: a.sha256 };
            await sh(`cat >/root/trust-server.py <<'EOF'\n${SERVER}EOF`);
            // A certificate for 127.0.0.1 that the host's curl trusts (its CA store), as object storage's would be.
            await sh(
                "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 " +
                    "-keyout /root/tls-key.pem -out /root/tls-cert.pem 2>/dev/null && cp /root/tls-cert.pem /usr/local/share/ca-certificates/trust-test.crt && update-ca-certificates >/dev/null",
            );
            for (const [unit, port, extra] of [["origin", ORIGIN, ""], ["other", OTHER, ""], ["secure", SECURE, "/root/tls-cert.pem /root/tls-key.pem"]] as const) {
                await sh(`systemd-run --unit trust-${unit} --collect python3 /root/trust-server.py ${port} /root/${unit}.log ${extra}`);
                await waitReady(`${unit === "secure" ? "https" : "http"}://127.0.0.1:${port}`);
            }
        });
        beforeEach(() => sh(`rm -f /root/origin.log /root/other.log /root/secure.log; rm -rf ${l.releasesDir}/7.0.0`));

        it("a redirect to another origin over http is refused naming it, and that origin never sees a request", async () => {
            await assert.rejects(
                releaseDirProvider.create!(state(via(`http://127.0.0.1:${OTHER}/storage/a.tar.gz`))),
                new RegExp(`release 7\\.0\\.0 refused: the download redirects to http://127\\.0\\.0\\.1:${OTHER}, which is not https: a redirect is followed only to https, and never with releaseAuth`),
            );
            const origin = await requests("origin");
            assert.strictEqual(origin.length, 1);
            assert.ok(carriesSecret(origin[0]!), "the configured origin gets the header");
            assert.deepStrictEqual(await requests("other"), [], "the second origin got no request, so never the header");
            assert.strictEqual(await sh(`ls -A ${l.releasesDir}`), "");
        });

        it("a redirect to https is followed without the header and the verified release is installed", async () => {
            const r = await releaseDirProvider.create!(state(via(`https://127.0.0.1:${SECURE}/storage/a.tar.gz?X-Amz-Signature=abc`)));
            assert.strictEqual(r.outs.complete, true);
            assert.ok(carriesSecret((await requests("origin"))[0]!), "the configured origin gets the header");
            const secure = await requests("secure");
            assert.deepStrictEqual(secure.map((x) => x.path), ["/storage/a.tar.gz?X-Amz-Signature=abc"]);
            assert.ok(!carriesSecret(secure[0]!), `the redirect target got the header: ${JSON.stringify(secure[0])}`);
            assert.match(await sh(`cat ${l.releasesDir}/7.0.0/.complinist-release`), /^version=7\.0\.0\nsha256=/);
        });

        it("an https hop that redirects on to http is refused by curl (--proto-redir), and the http origin sees nothing", async () => {
            const chain = `https://127.0.0.1:${SECURE}/to?${encodeURIComponent(`http://127.0.0.1:${OTHER}/a.tar.gz`)}`;
            await assert.rejects(releaseDirProvider.create!(state(via(chain))), /release 7\.0\.0 was not installed: .*Protocol "http" not supported or disabled/s);
            assert.deepStrictEqual(await requests("other"), []);
            assert.ok(!carriesSecret((await requests("secure"))[0]!));
            assert.strictEqual(await sh(`ls -A ${l.releasesDir}`), "");
        });
    });
});

describe("host trust on a real host: only fields root wrote choose a rollback target", function () {
    this.timeout(900000);
    const HOSTILE = "6.0.0-hostile";
    const hosts: TestHost[] = useHosts(1, { names: ["trust-2"] });
    const h = () => hosts[0] as TestHost;
    let arts: Record<string, Artifact>;
    let driver: RealEngine;
    let tmp: string;

    const sh = (cmd: string) => h().run(cmd);
    const serves = async () => /"version": ?"([^"]*)"/.exec(await sh("curl -sS -m 5 http://127.0.0.1:5000/health"))?.[1];
    /** What a refused rollback must leave as it was: the link, the record, the results, what serves. */
    const hostState = async () => ({
        current: await sh("readlink /opt/complinist/current"),
        revisions: await sh("cat /opt/complinist/revisions.log"),
        results: await sh("ls -A /opt/complinist/.activations"),
        instances: await sh("ls -l /opt/complinist/instances | tail -n +2 | awk '{ print $9, $10, $11 }'"),
        serves: await serves(),
    });

    /** A release whose every answer is `body` with HTTP 200: a health body that says `outcome=activated`. */
    function answering(version: string, body: string): Artifact {
        const src = fs.mkdtempSync(path.join(tmp, "src-"));
        fs.mkdirSync(path.join(src, "bin"));
        const server = [
            "#!/usr/bin/env python3",
            "import os",
            "from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer",
            "class H(BaseHTTPRequestHandler):",
            "    def do_GET(self):",
            `        body = ${JSON.stringify(body)}.encode()`,
            "        self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)",
            "    def log_message(self, *a): pass",
            "ThreadingHTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()",
            "",
        ].join("\n");
        fs.writeFileSync(path.join(src, "bin", "start"), server, { mode: 0o755 });
        return pack(src, tmp, version);
    }

    function config(version: string): ProgramConfig {
        return {
            "complinist:mode": "release",
            "complinist:version": version,
            "complinist:releases": Object.fromEntries(Object.entries(arts).map(([v, a]) => [v, { path: a.file, sha256: a.sha256 }])),
            "complinist:keepReleases": 5,
            "complinist:hosts": [hostEntry(h())],
            "complinist:sshPrivateKey": h().privateKey,
            "complinist:service": { command: "bin/start", environment: { COMPLINIST_ENV: "itest" } },
            "complinist:health": { timeoutSeconds: 10, intervalMs: 300 },
        };
    }
    const up = (version: string) => driver.up(config(version), ["complinist:sshPrivateKey"]);

    before(async () => {
        tmp = fs.mkdtempSync(path.join(os.tmpdir(), "host-trust-"));
        const built = await buildArtifacts(path.join(tmp, "built"));
        arts = Object.fromEntries(built.filter((a) => a.version === "1.0.0" || a.version === "1.1.0").map((a: BuiltArtifact) => [a.version, { file: a.file, sha256: a.sha256 }]));
        arts[HOSTILE] = answering(HOSTILE, JSON.stringify({ status: "outcome=activated", version: HOSTILE }));
        driver = new RealEngine({ stack: "itest-host-trust", env: { COMPLINIST_DEPLOYER: "itest" } });
    });
    after(async () => {
        await driver?.close();
        if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    });

    it("finding 3: a health body saying outcome=activated never becomes the emergency rollback's target", async () => {
        // 1.0.0 then 1.1.0, no pinned rollback: no warm standby, the state after a failed gate.
        for (const v of ["1.0.0", "1.1.0"]) assert.strictEqual((await up(v)).error, undefined, v);
        const failed = await up(HOSTILE);
        assert.match(failed.error ?? "", /6\.0\.0-hostile failed its gate/);
        const last = await sh("tail -n 1 /opt/complinist/revisions.log");
        assert.match(last, /version=6\.0\.0-hostile\t.*\toutcome=failed .*status=outcome=activated/, "the release's answer is in its failed line");
        assert.strictEqual(await serves(), "1.1.0");
        assert.strictEqual(await sh("/usr/local/sbin/complinist status | sed -n 's/^standbyVersion=//p'"), "", "no warm standby");

        const r = await h().exec("LOCK_WAIT=30 /usr/local/sbin/complinist rollback");
        assert.match(r.stdout, /rolling back to 1\.0\.0 \(live now: 1\.1\.0\)/, r.stdout + r.stderr);
        assert.strictEqual(r.code, 0, r.stdout + r.stderr);
        assert.strictEqual(await serves(), "1.0.0");
        assert.strictEqual(await sh("readlink /opt/complinist/current"), "releases/1.0.0");
    });

    it("finding 3: `complinist rollback VERSION` refuses a path, a link under releases/ and an unkept version, changing nothing", async () => {
        // The service user plants a release-looking directory in its own shared/.
        const planted = await h().exec(
            "runuser -u complinist -- bash -c 'mkdir -p /opt/complinist/shared/x/bin && printf \"version=x\\n\" >/opt/complinist/shared/x/.complinist-release && cp /opt/complinist/releases/1.1.0/bin/start /opt/complinist/shared/x/bin/start'",
        );
        assert.strictEqual(planted.code, 0, planted.stderr);
        await sh("ln -sfn 1.1.0 /opt/complinist/releases/linked");
        const before = await hostState();
        for (const [arg, refusal] of [
            ["../shared/x", /^refused: '\.\.\/shared\/x' is not a release version \(letters, digits and \. \+ _ -, starting with a letter or digit, at most 64 characters\); nothing was changed$/m],
            ["/opt/complinist/shared/x", /^refused: '\/opt\/complinist\/shared\/x' is not a release version/m],
            ["linked", /^refused: release linked is not kept on this host \(a directory \/opt\/complinist\/releases\/<version> with its manifest\); kept: 1\.0\.0 1\.1\.0 6\.0\.0-hostile; nothing was changed$/m],
            ["9.9.9", /^refused: release 9\.9\.9 is not kept on this host/m],
        ] as const) {
            const r = await h().exec(`LOCK_WAIT=30 /usr/local/sbin/complinist rollback '${arg}'`);
            assert.strictEqual(r.code, 64, `${arg}: ${r.stdout}${r.stderr}`);
            assert.match(r.stderr, refusal, arg);
            assert.deepStrictEqual(await hostState(), before, `${arg}: nothing on the host changed`);
        }
        await sh("rm /opt/complinist/releases/linked");
        const ok = await h().exec("LOCK_WAIT=30 /usr/local/sbin/complinist rollback 1.1.0");
        assert.strictEqual(ok.code, 0, ok.stdout + ok.stderr);
        assert.strictEqual(await serves(), "1.1.0");
    });
});
