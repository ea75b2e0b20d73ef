import * as assert from "assert";
import { execFileSync, spawn, type ChildProcess } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { ARTIFACTS, buildArtifacts, type BuiltArtifact } from "../../scripts/build-artifacts";

function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const s = net.createServer();
        s.once("error", reject);
        s.listen(0, "127.0.0.1", () => {
            const { port } = s.address() as net.AddressInfo;
            s.close(() => resolve(port));
        });
    });
}

function get(port: number, urlPath: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
        http.get({ host: "127.0.0.1", port, path: urlPath, timeout: 2000 }, (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (c: Buffer) => chunks.push(c));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
        }).on("error", reject);
    });
}

async function getWhenUp(port: number, urlPath: string, child: ChildProcess): Promise<{ status: number; body: string }> {
    const deadline = Date.now() + 10000;
    for (;;) {
        try {
            return await get(port, urlPath);
        } catch (e) {
            if (child.exitCode !== null || Date.now() > deadline) throw e;
            await new Promise((r) => setTimeout(r, 100));
        }
    }
}

/** Starts an extracted release the way the service does: `bin/start` inside the release dir. */
function startRelease(dir: string, port: number): { child: ChildProcess; output: () => string } {
    const child = spawn("bin/start", [], { cwd: dir, env: { ...process.env, PORT: String(port), BIND: "127.0.0.1" } });
    let out = "";
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    return { child, output: () => out };
}

describe("sample release artifacts", function () {
    this.timeout(60000);
    let tmp: string;
    let built: BuiltArtifact[];
    const running: ChildProcess[] = [];

    before(async function () {
        tmp = fs.mkdtempSync(path.join(os.tmpdir(), "artifacts-test-"));
        built = await buildArtifacts(path.join(tmp, "a"));
    });
    afterEach(function () {
        for (const c of running.splice(0)) if (c.exitCode === null) c.kill("SIGKILL");
    });
    after(function () {
        fs.rmSync(tmp, { recursive: true, force: true });
    });

    const byVersion = (v: string): BuiltArtifact => built.find((a) => a.version === v)!;

    function extract(version: string): string {
        const dir = path.join(tmp, "x", version);
        fs.mkdirSync(dir, { recursive: true });
        execFileSync("tar", ["-xzf", byVersion(version).file, "-C", dir]);
        return dir;
    }

    it("builds one complinist-<version>.tar.gz per sample version", function () {
        assert.deepStrictEqual(
            built.map((a) => path.basename(a.file)),
            ARTIFACTS.map((s) => `complinist-${s.version}.tar.gz`),
        );
        for (const a of built) assert.strictEqual(fs.statSync(a.file).size, a.size);
    });

    it("yields byte-identical artifacts when built twice", async function () {
        const again = await buildArtifacts(path.join(tmp, "b"));
        assert.deepStrictEqual(
            again.map((a) => a.sha256),
            built.map((a) => a.sha256),
        );
    });

    it("gives every version a distinct sha256", function () {
        assert.strictEqual(new Set(built.map((a) => a.sha256)).size, built.length);
    });

    it("puts VERSION, server.py and bin/start at the top level, owned by root, mtime 0", function () {
        const listing = execFileSync("tar", ["-tvzf", byVersion("1.0.0").file], { encoding: "utf8" }).trim().split("\n");
        const names = listing.map((l) => l.split(/\s+/).pop());
        assert.deepStrictEqual(names, ["MODE", "VERSION", "bin/", "bin/start", "server.py"]);
        for (const line of listing) assert.match(line, /^\S+ 0\/0 +\d+ 1970-01-01 00:00 /);
        assert.match(listing[3]!, /^-rwxr-xr-x /);
        const dir = extract("1.0.0");
        assert.strictEqual(fs.readFileSync(path.join(dir, "VERSION"), "utf8"), "1.0.0\n");
    });

    it("a good release serves / and reports itself healthy with its own version", async function () {
        const port = await freePort();
        const { child, output } = startRelease(extract("1.4.0"), port);
        running.push(child);
        const health = await getWhenUp(port, "/health", child);
        assert.strictEqual(health.status, 200);
        const body = JSON.parse(health.body) as { status: string; version: string; uptime: number };
        assert.strictEqual(body.status, "healthy");
        assert.strictEqual(body.version, "1.4.0");
        assert.strictEqual(typeof body.uptime, "number");
        const page = await get(port, "/");
        assert.strictEqual(page.status, 200);
        assert.match(page.body, /<h1>CompliNist<\/h1>/);
        assert.match(output(), /"GET \/health HTTP\/1\.1" 200/, "requests are logged to stdout");
    });

    it("the broken 1.2.0 starts but answers 503 unhealthy", async function () {
        const port = await freePort();
        const { child } = startRelease(extract("1.2.0"), port);
        running.push(child);
        const health = await getWhenUp(port, "/health", child);
        assert.strictEqual(health.status, 503);
        assert.deepStrictEqual(
            (({ status, version }) => ({ status, version }))(JSON.parse(health.body) as { status: string; version: string }),
            { status: "unhealthy", version: "1.2.0" },
        );
    });

    it("0.9.0-nostart exits 1 immediately", async function () {
        const port = await freePort();
        const { child, output } = startRelease(extract("0.9.0-nostart"), port);
        running.push(child);
        const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
        assert.strictEqual(code, 1);
        assert.match(output(), /refusing to start/);
    });
});
