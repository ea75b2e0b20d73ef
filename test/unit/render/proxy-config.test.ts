import * as assert from "assert";
import * as cp from "child_process";
import * as fs from "fs";
import * as http from "http";
import type { AddressInfo } from "net";
import * as os from "os";
import * as path from "path";
import { hostProgramPart } from "../../../infra/render/hostProgram";
import { requireTool, runBash } from "./bash";

/**
 * The proxy part of the host program: the HAProxy config a switch writes, checked by the
 * real haproxy (`-c`, then run for real with a reload), and `proxy_live_port` reading it back.
 */

const PROXY = hostProgramPart("proxy");
const HAPROXY = "haproxy";

interface ProxyVars {
    readonly port: number;
    readonly ports: readonly [number, number];
    readonly dir: string;
}

/** Source the proxy part with the host program's variables set, then run SNIPPET. */
function withProxy(v: ProxyVars, snippet: string) {
    const vars = [
        "SERVICE=complinist",
        `PORT=${v.port}`,
        `PORTS=(${v.ports[0]} ${v.ports[1]})`,
        "DRAIN=30",
        `PROXY_RUN_DIR='${v.dir}/run'`,
        `PROXY_STATS_SOCKET='${v.dir}/run/stats.sock'`,
        "HOST_PROGRAM=/usr/local/sbin/complinist",
        `PROXY_CONFIG='${v.dir}/haproxy.cfg'`,
    ].join("\n");
    return runBash(`set -euo pipefail\n${vars}\n${PROXY}\n${snippet}`);
}

function haproxyCheck(file: string): cp.SpawnSyncReturns<string> {
    return cp.spawnSync(HAPROXY, ["-c", "-f", file], { encoding: "utf8" });
}

const serverLines = (cfg: string) => cfg.split("\n").filter((l) => /^\s*server /.test(l));

describe("proxy part: proxy_config and proxy_live_port", () => {
    let dir: string;
    const v = (): ProxyVars => ({ port: 5000, ports: [5001, 5002], dir });

    beforeEach(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "proxy-"));
    });

    it("routes to exactly one server: the live port enabled, the other disabled", async () => {
        const r = await withProxy(v(), 'proxy_config 5001 > "$PROXY_CONFIG"');
        assert.strictEqual(r.code, 0, r.stderr);
        const cfg = fs.readFileSync(path.join(dir, "haproxy.cfg"), "utf8");
        assert.deepStrictEqual(serverLines(cfg), ["    server i5001 127.0.0.1:5001", "    server i5002 127.0.0.1:5002 disabled"]);
        assert.match(cfg, /^ {4}bind :5000$/m, "the proxy owns the service port");
        assert.match(cfg, /^ {4}hard-stop-after 30s$/m, "the old worker's in-flight requests are bounded by DRAIN");
        assert.match(cfg, new RegExp(`^ {4}stats socket ${dir}/run/admin\\.sock mode 600 level admin expose-fd listeners$`, "m"), "seamless reload");
        assert.match(cfg, new RegExp(`^ {4}bind ${dir}/run/stats\\.sock mode 600$`, "m"));

        const other = await withProxy(v(), "proxy_config 5002");
        assert.deepStrictEqual(serverLines(other.stdout), ["    server i5001 127.0.0.1:5001 disabled", "    server i5002 127.0.0.1:5002"]);
    });

    it("passes haproxy -c", async function () {
        requireTool(this, HAPROXY, ["-v"], "apt-get install haproxy");
        for (const live of [5001, 5002]) {
            await withProxy(v(), `proxy_config ${live} > "$PROXY_CONFIG"`);
            const r = haproxyCheck(path.join(dir, "haproxy.cfg"));
            assert.strictEqual(r.status, 0, r.stdout + r.stderr);
        }
    });

    it("a broken config is caught by haproxy -c (the check can fail)", async function () {
        requireTool(this, HAPROXY, ["-v"], "apt-get install haproxy");
        await withProxy(v(), 'proxy_config 5001 > "$PROXY_CONFIG"');
        const file = path.join(dir, "haproxy.cfg");
        fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace("127.0.0.1:5001", "127.0.0.1:notaport"));
        assert.notStrictEqual(haproxyCheck(file).status, 0);
    });

    it("proxy_live_port reads the enabled server back, and nothing without a config", async () => {
        assert.strictEqual((await withProxy(v(), "proxy_live_port")).stdout, "", "no config yet");
        const r = await withProxy(v(), 'proxy_config 5001 > "$PROXY_CONFIG"; proxy_live_port');
        assert.strictEqual(r.code, 0, r.stderr);
        assert.strictEqual(r.stdout, "5001\n");
        assert.strictEqual((await withProxy(v(), 'proxy_config 5002 > "$PROXY_CONFIG"; proxy_live_port')).stdout, "5002\n");
    });
});

describe("proxy part: the generated config run by haproxy, switched by a reload", () => {
    let dir: string;
    let instances: http.Server[] = [];
    let proxy: cp.ChildProcess | undefined;

    async function listen(server: http.Server): Promise<number> {
        await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
        return (server.address() as AddressInfo).port;
    }

    function get(port: number): Promise<string> {
        return new Promise((resolve) => {
            const req = http.get({ host: "127.0.0.1", port, path: "/", agent: false }, (res) => {
                let body = "";
                res.on("data", (d: Buffer) => (body += d.toString()));
                res.on("end", () => resolve(`${res.statusCode} ${body}`));
            });
            req.on("error", (e) => resolve(`error ${e.message}`));
        });
    }

    async function waitFor(what: () => string, cond: () => Promise<boolean>, ms = 15000): Promise<void> {
        const deadline = Date.now() + ms;
        while (!(await cond())) {
            if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`);
            await new Promise((r) => setTimeout(r, 50));
        }
    }

    afterEach(async () => {
        proxy?.kill("SIGTERM");
        for (const s of instances) {
            s.closeAllConnections();
            await new Promise((r) => s.close(r));
        }
        instances = [];
    });

    it("serves only the enabled instance, and a reload with the other one enabled moves every request", async function () {
        requireTool(this, HAPROXY, ["-v"], "apt-get install haproxy");
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "proxy-run-"));
        fs.mkdirSync(path.join(dir, "run"));
        const a = http.createServer((_q, s) => s.end("a"));
        const b = http.createServer((_q, s) => s.end("b"));
        instances = [a, b];
        const ports: [number, number] = [await listen(a), await listen(b)];
        const probe = http.createServer();
        const port = await listen(probe);
        await new Promise((r) => probe.close(r));
        const vars = { port, ports, dir };

        assert.strictEqual((await withProxy(vars, `proxy_config ${ports[0]} > "$PROXY_CONFIG"`)).code, 0);
        const p = cp.spawn(HAPROXY, ["-W", "-db", "-f", path.join(dir, "haproxy.cfg")], { stdio: ["ignore", "ignore", "pipe"] });
        proxy = p;
        let log = "";
        p.stderr?.on("data", (d: Buffer) => (log += d.toString()));
        await waitFor(() => `haproxy on ${port} (log: ${log})`, async () => (await get(port)) !== `error connect ECONNREFUSED 127.0.0.1:${port}`);
        for (let i = 0; i < 10; i++) assert.strictEqual(await get(port), "200 a");

        assert.strictEqual((await withProxy(vars, `proxy_config ${ports[1]} > "$PROXY_CONFIG"`)).code, 0);
        p.kill("SIGUSR2");
        await waitFor(() => `the reload to route to ${ports[1]} (log: ${log})`, async () => (await get(port)) === "200 b");
        for (let i = 0; i < 10; i++) assert.strictEqual(await get(port), "200 b");
    });
});
