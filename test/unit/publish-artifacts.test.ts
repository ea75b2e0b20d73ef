// The publish job (scripts/publish-artifacts.sh) against a local stand-in for GitLab's generic
// package registry and job artifacts API on 127.0.0.1, then the release helper reading the sums the
// build job produced.
import * as assert from "assert";
import { execFile, spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as http from "http";
import type { AddressInfo } from "net";
import * as os from "os";
import * as path from "path";
import { promisify } from "util";
import { fetchSums, parseSums, planRelease } from "../../ops/release";

const SCRIPT = path.join(__dirname, "..", "..", "scripts", "publish-artifacts.sh");
const TOKEN = "job-token-123";
const BUILD_JOB_ID = "77";
const BASE = "/api/v4/projects/42/packages/generic/complinist";
const sha256 = (data: string | Buffer): string => crypto.createHash("sha256").update(data).digest("hex");

/** PUT stores a file, GET serves it (404 when absent); everything needs the JOB-TOKEN header. */
class Registry {
    readonly files = new Map<string, Buffer>();
    readonly requests: string[] = [];
    /** Called after a PUT is stored (e.g. another job's upload racing this one). */
    onPut: (file: string) => void = () => undefined;
    private readonly server = http.createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => {
            this.requests.push(`${req.method} ${req.url}`);
            if (req.headers["job-token"] !== TOKEN) return void res.writeHead(401).end('{"message":"401 Unauthorized"}');
            const file = req.url ?? "";
            if (req.method === "PUT") {
                this.files.set(file, Buffer.concat(chunks));
                this.onPut(file);
                return void res.writeHead(201).end('{"message":"201 Created"}');
            }
            const body = this.files.get(file);
            if (body === undefined) return void res.writeHead(404).end('{"message":"404 Not Found"}');
            res.writeHead(200).end(body);
        });
    });
    port = 0;
    async start(): Promise<void> {
        await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
        this.port = (this.server.address() as AddressInfo).port;
    }
    get api(): string {
        return `http://127.0.0.1:${this.port}/api/v4`;
    }
    async stop(): Promise<void> {
        this.server.closeAllConnections();
        await new Promise<void>((resolve) => this.server.close(() => resolve()));
    }
}

async function publish(dir: string, registry: Registry, token = TOKEN): Promise<{ code: number; out: string }> {
    try {
        const env = { ...process.env, CI_API_V4_URL: registry.api, CI_PROJECT_ID: "42", CI_JOB_TOKEN: token, BUILD_JOB_ID };
        const r = await promisify(execFile)("bash", [SCRIPT, dir], { env, encoding: "utf8" });
        return { code: 0, out: r.stdout + r.stderr };
    } catch (e) {
        const err = e as { code: number; stdout: string; stderr: string };
        return { code: err.code, out: err.stdout + err.stderr };
    }
}

describe("publishing the artifacts to the package registry (scripts/publish-artifacts.sh)", function () {
    this.timeout(60000);
    let registry: Registry;
    let dir: string;
    beforeEach(async () => {
        registry = new Registry();
        await registry.start();
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "publish-"));
        fs.writeFileSync(path.join(dir, "complinist-1.3.0.tar.gz"), "artifact 1.3.0");
        fs.writeFileSync(path.join(dir, "complinist-1.4.0.tar.gz"), "artifact 1.4.0");
        // What the build job writes beside them (and keeps as its artifact).
        fs.writeFileSync(path.join(dir, "SHA256SUMS"), `${sha256("artifact 1.3.0")}  complinist-1.3.0.tar.gz\n${sha256("artifact 1.4.0")}  complinist-1.4.0.tar.gz\n`);
    });
    afterEach(async () => {
        await registry.stop();
        fs.rmSync(dir, { recursive: true, force: true });
    });

    it("uploads each version's artifact and its SHA256SUMS with the job token, then says how to release it", async () => {
        const r = await publish(dir, registry);
        assert.strictEqual(r.code, 0, r.out);
        const base = BASE;
        assert.deepStrictEqual([...registry.files.keys()].sort(), [
            `${base}/1.3.0/SHA256SUMS`,
            `${base}/1.3.0/complinist-1.3.0.tar.gz`,
            `${base}/1.4.0/SHA256SUMS`,
            `${base}/1.4.0/complinist-1.4.0.tar.gz`,
        ]);
        assert.strictEqual(registry.files.get(`${base}/1.3.0/complinist-1.3.0.tar.gz`)?.toString(), "artifact 1.3.0");
        assert.match(registry.files.get(`${base}/1.3.0/SHA256SUMS`)?.toString() ?? "", /^[0-9a-f]{64} {2}complinist-1\.3\.0\.tar\.gz\n$/);
        assert.ok(!r.out.includes(TOKEN), "the token never reaches the log");
    });

    it("prints the release command that takes the sha256 from the build job's artifact, not from the registry", async () => {
        const r = await publish(dir, registry);
        assert.strictEqual(r.code, 0, r.out);
        const sums = `${registry.api}/projects/42/jobs/${BUILD_JOB_ID}/artifacts/.build/artifacts/SHA256SUMS`;
        assert.ok(r.out.includes(`npm run release -- --stack <env> --version 1.3.0 --sums-url ${sums} --base-url ${registry.api}/projects/42/packages/generic/complinist`), r.out);
        assert.ok(!/--sums-url \S*\/packages\//.test(r.out), r.out);
    });

    it("publishes the sha256 of the build job's SHA256SUMS, and refuses an artifact that does not match it or is not listed", async () => {
        fs.writeFileSync(path.join(dir, "complinist-1.4.0.tar.gz"), "swapped after the build");
        const swapped = await publish(dir, registry);
        assert.strictEqual(swapped.code, 1, swapped.out);
        assert.match(swapped.out, /complinist-1\.4\.0\.tar\.gz does not match the build job's SHA256SUMS/);
        assert.strictEqual(registry.files.size, 0, "nothing is published from a directory that fails its sums");
        fs.writeFileSync(path.join(dir, "complinist-1.4.0.tar.gz"), "artifact 1.4.0");
        fs.writeFileSync(path.join(dir, "complinist-1.5.0.tar.gz"), "not built by the build job");
        const unlisted = await publish(dir, registry);
        assert.strictEqual(unlisted.code, 1, unlisted.out);
        assert.match(unlisted.out, /complinist-1\.5\.0\.tar\.gz is not in the build job's SHA256SUMS/);
        fs.rmSync(path.join(dir, "complinist-1.5.0.tar.gz"));
        fs.rmSync(path.join(dir, "SHA256SUMS"));
        const none = await publish(dir, registry);
        assert.strictEqual(none.code, 1, none.out);
        assert.match(none.out, /no SHA256SUMS in .*the build job writes it/);
        assert.strictEqual(registry.files.size, 0);
    });

    it("never uploads over a package file the registry already holds with other bytes, even one without its SHA256SUMS", async () => {
        registry.files.set(`${BASE}/1.3.0/complinist-1.3.0.tar.gz`, Buffer.from("uploaded first by a branch pipeline"));
        const r = await publish(dir, registry);
        assert.strictEqual(r.code, 1, r.out);
        assert.deepStrictEqual(registry.requests.filter((q) => q.startsWith("PUT") && q.includes("/1.3.0/")), [], "nothing of 1.3.0 is uploaded");
        assert.match(r.out, new RegExp(`1\\.3\\.0 is already published with other bytes: .*complinist-1\\.3\\.0\\.tar\\.gz has sha256 ${sha256("uploaded first by a branch pipeline")}, the build job's SHA256SUMS says ${sha256("artifact 1.3.0")}`));
        assert.strictEqual(registry.files.get(`${BASE}/1.3.0/complinist-1.3.0.tar.gz`)?.toString(), "uploaded first by a branch pipeline");
    });

    it("fails when the registry serves other bytes than it just accepted (another upload of the version won)", async () => {
        registry.onPut = (file) => {
            if (file.endsWith("/complinist-1.3.0.tar.gz")) registry.files.set(file, Buffer.from("a racing upload"));
        };
        const r = await publish(dir, registry);
        assert.strictEqual(r.code, 1, r.out);
        assert.match(r.out, /serves other bytes at .*\/1\.3\.0\/complinist-1\.3\.0\.tar\.gz than this job uploaded/);
        assert.ok(!registry.files.has(`${BASE}/1.3.0/SHA256SUMS`), "no SHA256SUMS beside bytes that are not the build's");
    });

    it("skips a version already published with the same sha256, and refuses a changed artifact", async () => {
        assert.strictEqual((await publish(dir, registry)).code, 0);
        registry.requests.length = 0;
        const again = await publish(dir, registry);
        assert.strictEqual(again.code, 0, again.out);
        assert.ok(!registry.requests.some((q) => q.startsWith("PUT")), registry.requests.join("\n"));
        assert.match(again.out, /1\.3\.0 is already published with the same sha256/);
        fs.writeFileSync(path.join(dir, "complinist-1.3.0.tar.gz"), "rebuilt differently");
        fs.writeFileSync(path.join(dir, "SHA256SUMS"), `${sha256("rebuilt differently")}  complinist-1.3.0.tar.gz\n${sha256("artifact 1.4.0")}  complinist-1.4.0.tar.gz\n`);
        const changed = await publish(dir, registry);
        assert.strictEqual(changed.code, 1);
        assert.match(changed.out, /1\.3\.0 is already published with other bytes.*a published version never changes/s);
    });

    it("passes shellcheck", function () {
        if (spawnSync("shellcheck", ["--version"]).status !== 0) {
            if (process.env.CI) assert.fail("shellcheck is required in CI");
            this.skip();
        }
        const r = spawnSync("shellcheck", ["-S", "warning", SCRIPT], { encoding: "utf8" });
        assert.strictEqual(r.status, 0, r.stdout);
    });

    it("fails when the registry refuses the token", async () => {
        const r = await publish(dir, registry, "wrong");
        assert.strictEqual(r.code, 1);
        assert.match(r.out, /cannot check .*complinist-1\.3\.0\.tar\.gz: HTTP 401/);
        assert.strictEqual(registry.files.size, 0);
    });

    it("gives the release helper what it needs: the build job's sums, and the stack file pointing at the published artifact", async () => {
        assert.strictEqual((await publish(dir, registry)).code, 0);
        // GitLab serves the build job's artifact at the job artifacts API (the stand-in: as a file).
        const sumsUrl = `${registry.api}/projects/42/jobs/${BUILD_JOB_ID}/artifacts/.build/artifacts/SHA256SUMS`;
        registry.files.set(new URL(sumsUrl).pathname, fs.readFileSync(path.join(dir, "SHA256SUMS")));
        const baseUrl = `${registry.api}/projects/42/packages/generic/complinist`;
        const sums = parseSums(await fetchSums(sumsUrl, `JOB-TOKEN: ${TOKEN}`));
        const plan = planRelease({ stack: "staging", version: "1.4.0", file: "Pulumi.staging.yaml", stackText: "config:\n  complinist:version: 1.3.0\n", sums, sumsUrl, baseUrl, env: {} });
        assert.ok(plan.ok, plan.ok ? "" : plan.message);
        assert.ok("url" in plan.entry);
        const artifact = registry.files.get(new URL(plan.entry.url).pathname);
        assert.strictEqual(artifact?.toString(), "artifact 1.4.0", "the entry's URL is where the artifact was published");
        assert.strictEqual(plan.entry.sha256, require("crypto").createHash("sha256").update("artifact 1.4.0").digest("hex"));
    });
});
