import * as assert from "assert";
import * as cp from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import { PassThrough } from "stream";
import { hostProgramPart, renderHostProgram } from "../../../infra/render/hostProgram";
import { hostLayout, instancePorts } from "../../../infra/render/layout";
import { renderLogrotate } from "../../../infra/render/logrotate";
import { LOG_SOURCES, renderLogSource } from "../../../infra/render/logs";
import { parseKeyValues } from "../../../infra/render/protocol";
import { q } from "../../../infra/render/shell";
import { renderStatusScript } from "../../../infra/render/status";
import { localTransport } from "../../../infra/transport/local";
import { hostStatusFrom } from "../../../ops/status";
import { runBash } from "./bash";

const l = hostLayout("/opt/complinist", "complinist");
const hasShellcheck = cp.spawnSync("shellcheck", ["--version"]).status === 0;

const scripts: Record<string, string> = {
    status: renderStatusScript(l, { service: "complinist", port: 5000, healthPath: "/health" }),
    ...Object.fromEntries(LOG_SOURCES.flatMap((s) => [true, false].map((follow) => [`logs ${s}${follow ? " --follow" : ""}`, renderLogSource(l, s, { service: "complinist", lines: 50, follow })]))),
};

async function waitFor(what: string, check: () => boolean, timeoutMs = 10000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 20));
    }
}

describe("operator tool scripts", () => {
    for (const [name, script] of Object.entries(scripts)) {
        it(`${name} parses with bash -n`, () => {
            const r = cp.spawnSync("bash", ["-n"], { input: script, encoding: "utf8" });
            assert.strictEqual(r.status, 0, r.stderr);
        });
        it(`${name} passes shellcheck`, function () {
            if (!hasShellcheck) {
                if (process.env.CI) assert.fail("shellcheck is required in CI");
                this.skip();
            }
            const r = cp.spawnSync("shellcheck", ["-s", "bash", "-S", "warning", "-"], { input: script, encoding: "utf8" });
            assert.strictEqual(r.status, 0, r.stdout);
        });
    }

    it("the status script writes nothing on the host: no lock file is created, the temp dir is removed", () => {
        assert.doesNotMatch(scripts.status!, /(^|[^2])>\s*['"]?\/opt/m, "no redirection into the layout");
        assert.match(scripts.status!, /if \[ -e "\$lock" \]; then/, "flock is only tried on an existing lock file");
        assert.match(scripts.status!, /trap 'rm -rf "\$tmp"' EXIT/);
    });

    it("a log source refuses a negative or fractional line count", () => {
        assert.throws(() => renderLogSource(l, "app.log", { service: "complinist", lines: -1, follow: false }), /lines must be a whole number/);
        assert.throws(() => renderLogSource(l, "journal", { service: "complinist", lines: 1.5, follow: false }), /lines must be a whole number/);
    });

    describe("run for real on this machine, under a temp root", () => {
        let root: string;
        beforeEach(() => {
            root = fs.mkdtempSync(path.join(os.tmpdir(), "ops-scripts-"));
        });
        afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

        it("a log source prints its last N lines, or says the file is missing", async () => {
            const rl = hostLayout("/opt/complinist", "complinist", root);
            fs.mkdirSync(rl.logDir, { recursive: true });
            fs.writeFileSync(rl.logFile, Array.from({ length: 20 }, (_, i) => `line ${i + 1}`).join("\n") + "\n");
            const t = localTransport({ name: "here", root, systemd: false });
            const r = await t.exec(renderLogSource(rl, "app.log", { service: "complinist", lines: 3, follow: false }));
            assert.deepStrictEqual([r.code, r.stdout], [0, "line 18\nline 19\nline 20\n"]);
            const missing = await t.exec(renderLogSource(rl, "deploy.log", { service: "complinist", lines: 3, follow: false }));
            assert.deepStrictEqual([missing.code, missing.stdout], [0, `(no file ${rl.deployLog})\n`]);
        });

        it("a followed log source streams appended lines and quits when its stdin ends", async () => {
            const rl = hostLayout("/opt/complinist", "complinist", root);
            fs.mkdirSync(rl.logDir, { recursive: true });
            fs.writeFileSync(rl.logFile, "old\n");
            const t = localTransport({ name: "here", root, systemd: false });
            const stdin = new PassThrough();
            let seen = "";
            const done = t.exec(renderLogSource(rl, "app.log", { service: "complinist", lines: 1, follow: true }), { stdin, onStdout: (c) => (seen += c.toString()) });
            await waitFor("the history line", () => seen === "old\n");
            fs.appendFileSync(rl.logFile, "new\n");
            await waitFor("the appended line", () => seen === "old\nnew\n");
            stdin.end();
            const r = await done;
            assert.deepStrictEqual([r.code, r.stdout], [0, ""], "streamed output is not collected again");
        });

        it("the status script reports the live release, the health answer, the lock holder and the last revisions", async () => {
            const rl = hostLayout("/opt/complinist", "complinist", root);
            fs.mkdirSync(path.join(rl.releasesDir, "1.1.0"), { recursive: true });
            fs.mkdirSync(path.join(rl.releasesDir, "1.0.0"));
            fs.symlinkSync("releases/1.1.0", rl.current);
            fs.writeFileSync(rl.revisionsLog, Array.from({ length: 7 }, (_, i) => `2025-01-0${i + 1}T00:00:00Z\tversion=1.1.0\tsha256=x\tby=me\toutcome=activated`).join("\n") + "\n");
            fs.writeFileSync(`${rl.lockFile}.owner`, "ci@runner pid 7 since 2025-01-08T00:00:00Z\n");
            const server = http.createServer((req, res) => {
                res.writeHead(200, { "content-type": "application/json" });
                res.end(req.url === "/health" ? JSON.stringify({ status: "healthy", version: "1.1.0", uptime: 12 }) : "<h1>hi</h1>");
            });
            await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
            const port = (server.address() as import("net").AddressInfo).port;
            const holder = cp.spawn("flock", [rl.lockFile, "sleep", "60"], { stdio: "ignore" });
            try {
                await waitFor("the lock to be held", () => cp.spawnSync("flock", ["-n", "-E", "75", rl.lockFile, "true"]).status === 75);
                const t = localTransport({ name: "here", root, systemd: false });
                const r = await t.exec(renderStatusScript(rl, { service: "complinist", port, healthPath: "/health" }));
                assert.strictEqual(r.code, 0, r.stderr);
                const kv = parseKeyValues(r.stdout);
                const h = hostStatusFrom("here", "local", kv, { baseDir: `${root}/opt/complinist`, version: "1.1.0", service: { name: "complinist", port, user: "complinist", command: "x", environment: {}, standby: true }, health: { path: "/health", timeoutSeconds: 60, intervalMs: 1000, soakSeconds: 0, drainSeconds: 30, checks: [] } });
                assert.deepStrictEqual(h.current, { link: "releases/1.1.0", version: "1.1.0" });
                assert.deepStrictEqual(h.releases, ["1.0.0", "1.1.0"]);
                assert.deepStrictEqual([h.health?.code, h.health?.status, h.health?.version, h.health?.uptime], [200, "healthy", "1.1.0", 12]);
                assert.strictEqual(h.root?.code, 200);
                assert.deepStrictEqual(h.lock, { held: "yes", owner: "ci@runner pid 7 since 2025-01-08T00:00:00Z" });
                assert.deepStrictEqual(h.revisions.map((x) => x.slice(0, 10)), ["2025-01-03", "2025-01-04", "2025-01-05", "2025-01-06", "2025-01-07"]);
                assert.deepStrictEqual(h.problems, []);
            } finally {
                holder.kill();
                await new Promise((r) => server.close(r));
            }
        });

        it("the status script reports a canary in progress and its watch's live figures, read by the host program installed there", async () => {
            const rl = hostLayout("/opt/complinist", "complinist", root);
            const figures = "canary 12s of 60s: new 80 requests 0 errors (0.00%), previous 700 requests 0 errors (0.00%); limit 1.00% (10 x previous, maxErrorRatio); minRequests 20";
            const server = http.createServer((_req, res) => res.writeHead(200).end(JSON.stringify({ status: "healthy", version: "1.1.0" })));
            await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
            try {
                const port = (server.address() as import("net").AddressInfo).port;
                const [live, canary] = instancePorts(port) as [number, number];
                for (const v of ["1.1.0", "1.2.0"]) fs.mkdirSync(path.join(rl.releasesDir, v), { recursive: true });
                fs.symlinkSync("releases/1.1.0", rl.current);
                fs.mkdirSync(rl.instancesDir);
                fs.symlinkSync("../releases/1.1.0", path.join(rl.instancesDir, String(live)));
                fs.symlinkSync("../releases/1.2.0", path.join(rl.instancesDir, String(canary)));
                fs.mkdirSync(path.dirname(rl.hostProgram), { recursive: true });
                fs.writeFileSync(rl.hostProgram, renderHostProgram(rl, "complinist"), { mode: 0o755 });
                // The proxy config the host program writes for a 10% canary (proxy.sh proxy_config LIVE CANARY PERCENT).
                fs.mkdirSync(path.dirname(rl.proxyConfig), { recursive: true });
                const cfg = await runBash(`set -euo pipefail\nSERVICE=complinist PORT=${port} PORTS=(${live} ${canary}) DRAIN=5 PROXY_RUN_DIR=/run/x PROXY_STATS_SOCKET=/run/x/s HOST_PROGRAM=x\n${hostProgramPart("proxy")}\nproxy_config ${live} ${canary} 10 > ${q(rl.proxyConfig)}`);
                assert.strictEqual(cfg.code, 0, cfg.stderr);
                fs.mkdirSync(rl.activationsDir, { recursive: true });
                fs.writeFileSync(path.join(rl.activationsDir, "watch.now"), `phase=canary version=1.2.0 port=${canary} verdict=ok ${figures}\n`);
                const t = localTransport({ name: "here", root, systemd: false });
                const run = async () => parseKeyValues((await t.exec(renderStatusScript(rl, { service: "complinist", port, healthPath: "/health" }))).stdout);
                // Its own process group: the sleep flock forks holds the lock too, and both must go to free it.
                const holder = cp.spawn("flock", [rl.lockFile, "sleep", "60"], { stdio: "ignore", detached: true });
                try {
                    await waitFor("the lock to be held", () => cp.spawnSync("flock", ["-n", "-E", "75", rl.lockFile, "true"]).status === 75);
                    const kv = await run();
                    assert.deepStrictEqual([kv.canaryVersion, kv.watch], ["1.2.0", `phase=canary version=1.2.0 port=${canary} verdict=ok ${figures}`]);
                    const h = hostStatusFrom("here", "local", kv, { baseDir: `${root}/opt/complinist`, version: "1.2.0", service: { name: "complinist", port, user: "complinist", command: "x", environment: {}, standby: true }, health: { path: "/health", timeoutSeconds: 60, intervalMs: 1000, soakSeconds: 0, drainSeconds: 30, checks: [] } });
                    assert.deepStrictEqual([h.state, h.canaryVersion, h.watch?.verdict, h.watch?.figures], ["ok", "1.2.0", "ok", figures]);
                    assert.deepStrictEqual(h.instances.map((i) => i.role), ["live", "canary"]);
                } finally {
                    const exited = new Promise((r) => holder.once("exit", r));
                    process.kill(-(holder.pid as number), "SIGKILL");
                    await exited;
                }
                await waitFor("the lock to be free", () => cp.spawnSync("flock", ["-n", "-E", "75", rl.lockFile, "true"]).status === 0);
                // The activation's end: the lock is free, so its leftover figures are no watch in progress.
                assert.strictEqual((await run()).watch, "");
                fs.rmSync(rl.hostProgram);
                const without = await run();
                assert.deepStrictEqual([without.canaryVersion, without.watch], ["", ""], "a host without the host program has neither");
            } finally {
                await new Promise((r) => server.close(r));
            }
        });

        it("the status script reads at most 64 KiB of a health body, whatever the app sends", async () => {
            const rl = hostLayout("/opt/complinist", "complinist", root);
            const server = http.createServer((_req, res) => {
                res.writeHead(200, { "content-type": "application/json" });
                const chunk = Buffer.alloc(1 << 20, "x");
                let sent = 0;
                const more = () => {
                    while (sent++ < 100 && !res.destroyed) if (!res.write(chunk)) return void res.once("drain", more);
                    res.end();
                };
                more();
            });
            await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
            try {
                const port = (server.address() as import("net").AddressInfo).port;
                const t = localTransport({ name: "here", root, systemd: false });
                const r = await t.exec(renderStatusScript(rl, { service: "complinist", port, healthPath: "/health" }));
                assert.strictEqual(r.code, 0, r.stderr);
                const kv = parseKeyValues(r.stdout);
                assert.strictEqual(kv["health.code"], "200");
                assert.notStrictEqual(kv["health.curl"], "0", "the transfer was cut, not completed");
                assert.ok(Buffer.from(kv["health.body"] ?? "", "base64").length <= 8192, "what is reported stays bounded too");
            } finally {
                server.closeAllConnections();
                await new Promise((r) => server.close(r));
            }
        });

        it("the status script leaves a missing lock file missing and reports it free", async () => {
            const rl = hostLayout("/opt/complinist", "complinist", root);
            const t = localTransport({ name: "here", root, systemd: false });
            const r = await t.exec(renderStatusScript(rl, { service: "complinist", port: 1, healthPath: "/health" }));
            assert.strictEqual(r.code, 0, r.stderr);
            assert.strictEqual(parseKeyValues(r.stdout)["lock.held"], "no");
            assert.strictEqual(fs.existsSync(rl.lockFile), false);
            assert.match(parseKeyValues(r.stdout)["health.error"] ?? "", /curl: \(7\)/);
        });
    });

    describe("logrotate policy", () => {
        it("rotates app.log by copy and truncate (systemd keeps it open) and deploy.log by rename, re-created root:root 0640, daily, 14 kept, compressed a day late", () => {
            const text = renderLogrotate(l);
            assert.strictEqual(hostLayout("/opt/complinist", "complinist").logrotateFile, "/etc/logrotate.d/complinist");
            const blocks = Object.fromEntries([...text.matchAll(/^(\S+) \{\n([\s\S]*?)\n\}$/gm)].map((m) => [m[1], m[2]!.split("\n").map((x) => x.trim())]));
            assert.deepStrictEqual(Object.keys(blocks), ["/var/log/complinist/app.log", "/var/log/complinist/deploy.log"]);
            const common = ["daily", "rotate 14", "compress", "delaycompress", "missingok", "notifempty"];
            assert.deepStrictEqual(blocks["/var/log/complinist/app.log"], [...common, "copytruncate"]);
            assert.deepStrictEqual(blocks["/var/log/complinist/deploy.log"], [...common, "create 0640 root root"]);
            assert.doesNotMatch(text, /^\s*su /m, "the directory is root's: no su, which existed for a service-user-owned directory");
        });

        it("refuses a path that could break out of the policy's syntax", () => {
            assert.throws(() => renderLogrotate({ ...l, logFile: "/var/log/a b" }), /must be absolute/);
            assert.throws(() => renderLogrotate({ ...l, deployLog: "/var/log/x {\n/etc/shadow" }), /must be absolute/);
        });
    });
});
