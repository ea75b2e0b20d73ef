import * as assert from "assert";
import * as cp from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as https from "https";
import type { AddressInfo } from "net";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { fetchSums, parseReleaseArgs, parseSums, planRelease, type ReleaseInput } from "../../../ops/release";
import { UsageError } from "../../../ops/operator";
import { runProcess } from "../../../infra/transport/local";
import { parseStackConfig } from "../../../stacks/config";

const REPO = path.join(__dirname, "..", "..", "..");
const SHA_13 = "7683f768e934ff5b0981a8d173424da726f7bd8c862a70c11edde5f000ce7bff";
const SUMS = `${SHA_13}  complinist-1.3.0.tar.gz\n${"b".repeat(64)} *complinist-1.4.0.tar.gz\n`;
const REGISTRY = "https://gitlab.complinist.example/api/v4/projects/42/packages/generic/complinist";

function stackFile(stack: string): { file: string; stackText: string } {
    return { file: `Pulumi.${stack}.yaml`, stackText: fs.readFileSync(path.join(REPO, `Pulumi.${stack}.yaml`), "utf8") };
}

function plan(overrides: Partial<ReleaseInput> = {}) {
    return planRelease({ stack: "staging", version: "1.3.0", ...stackFile("staging"), sums: parseSums(SUMS), env: {}, ...overrides });
}

/** The stack file's config as the program would get it (secrets stand in). */
function configOf(text: string, stack: string) {
    const raw = (YAML.parse(text) as { config: Record<string, unknown> }).config;
    const all: Record<string, string> = { "complinist:sshPrivateKey": "k" };
    for (const [k, v] of Object.entries(raw)) all[k] = typeof v === "string" ? v : JSON.stringify(v);
    return parseStackConfig(stack, all);
}

describe("release helper (ops/release.ts)", () => {
    it("reads sha256sum output in text and binary mode", () => {
        assert.deepStrictEqual([...parseSums(SUMS)], [["complinist-1.3.0.tar.gz", SHA_13], ["complinist-1.4.0.tar.gz", "b".repeat(64)]]);
        assert.deepStrictEqual([...parseSums("garbage\n\n")], []);
    });

    it("writes the release entry, version and the replaced version as rollbackVersion, keeping every comment", () => {
        const before = stackFile("staging").stackText;
        const p = plan();
        assert.ok(p.ok, p.ok ? "" : p.message);
        assert.deepStrictEqual(p.entry, { url: `${REGISTRY}/1.3.0/complinist-1.3.0.tar.gz`, sha256: SHA_13 });
        assert.strictEqual(p.replaced, "1.1.0");
        const comments = (t: string) => t.split("\n").filter((l) => l.trim().startsWith("#"));
        assert.deepStrictEqual(comments(p.text), comments(before));
        const c = configOf(p.text, "staging");
        assert.deepStrictEqual([c.version, c.rollbackVersion], ["1.3.0", "1.1.0"]);
        assert.deepStrictEqual(c.releases["1.3.0"], p.entry);
        assert.deepStrictEqual(Object.keys(c.releases), ["1.0.0", "1.1.0", "1.3.0"]);
    });

    it("finds the artifact next to --sums-url, or under --base-url", () => {
        const bySums = plan({ sumsUrl: "https://downloads.example/complinist/1.3.0/SHA256SUMS" });
        assert.ok(bySums.ok && "url" in bySums.entry && bySums.entry.url === "https://downloads.example/complinist/1.3.0/complinist-1.3.0.tar.gz", JSON.stringify(bySums));
        const byBase = plan({ baseUrl: "https://registry.example/pkgs/complinist/" });
        assert.ok(byBase.ok && "url" in byBase.entry && byBase.entry.url === "https://registry.example/pkgs/complinist/1.3.0/complinist-1.3.0.tar.gz");
    });

    it("never takes a release's sha256 from the package registry, where any job token may have uploaded first", () => {
        const fromRegistry = "https://gitlab.example.com/api/v4/projects/42/packages/generic/complinist/1.3.0/SHA256SUMS";
        assert.throws(
            () => parseReleaseArgs(["--stack", "staging", "--version", "1.3.0", "--sums-url", fromRegistry]),
            (e: unknown) => e instanceof UsageError && /--sums-url .* is a package registry file.*build job's artifact: .*\/jobs\/<build job id>\/artifacts\/\.build\/artifacts\/SHA256SUMS/s.test(e.message),
        );
        const p = plan({ sumsUrl: fromRegistry });
        assert.ok(!p.ok && /is a package registry file/.test(p.message), JSON.stringify(p));
    });

    it("takes the sums from the build job's artifact, and the artifact's URL from --base-url or the stack's pattern, never from the job (its artifacts expire)", () => {
        const job = "https://gitlab.complinist.example/api/v4/projects/42/jobs/77/artifacts/.build/artifacts/SHA256SUMS";
        assert.strictEqual(parseReleaseArgs(["--stack", "staging", "--version", "1.3.0", "--sums-url", job, "--base-url", REGISTRY]).sumsUrl, job);
        const byBase = plan({ sumsUrl: job, baseUrl: REGISTRY });
        assert.ok(byBase.ok && "url" in byBase.entry && byBase.entry.url === `${REGISTRY}/1.3.0/complinist-1.3.0.tar.gz`, JSON.stringify(byBase));
        const byPattern = plan({ sumsUrl: job });
        assert.ok(byPattern.ok && "url" in byPattern.entry && byPattern.entry.url === `${REGISTRY}/1.3.0/complinist-1.3.0.tar.gz`, JSON.stringify(byPattern));
        const nowhere = plan({ sumsUrl: job, file: "Pulumi.new.yaml", stackText: "config:\n  complinist:version: 1.1.0\n" });
        assert.ok(!nowhere.ok && /pass --base-url/.test(nowhere.message), JSON.stringify(nowhere));
    });

    it("uses the project's registry in CI when the stack has no URL pattern, and a local path for the demo", () => {
        const empty = { file: "Pulumi.new.yaml", stackText: "config:\n  complinist:version: 1.1.0\n" };
        const ci = plan({ ...empty, env: { CI_API_V4_URL: "https://gitlab.example.com/api/v4", CI_PROJECT_ID: "9" } });
        assert.ok(ci.ok && "url" in ci.entry && ci.entry.url === "https://gitlab.example.com/api/v4/projects/9/packages/generic/complinist/1.3.0/complinist-1.3.0.tar.gz");
        const local = plan({ stack: "local", ...stackFile("local") });
        assert.ok(local.ok && "path" in local.entry && local.entry.path === ".build/artifacts/complinist-1.3.0.tar.gz");
        const nowhere = plan({ ...empty });
        assert.ok(!nowhere.ok && /pass --base-url/.test(nowhere.message));
    });

    it("refuses a version missing from SHA256SUMS, a changed sha256 and a bad URL, changing nothing", () => {
        const missing = plan({ version: "2.0.0" });
        assert.ok(!missing.ok);
        assert.match(missing.message, /^release 2\.0\.0 for stack 'staging' refused: SHA256SUMS has no line for complinist-2\.0\.0\.tar\.gz \(it lists: complinist-1\.3\.0\.tar\.gz, complinist-1\.4\.0\.tar\.gz\)\. Pulumi\.staging\.yaml was not changed\.$/);
        const changed = plan({ version: "1.1.0", sums: parseSums(`${"c".repeat(64)}  complinist-1.1.0.tar.gz\n`) });
        assert.ok(!changed.ok);
        assert.match(changed.message, /already pins 1\.1\.0 with sha256 05332cfe.*SHA256SUMS says c{64}: a version's artifact never changes/);
        const creds = plan({ baseUrl: "https://ci:token@registry.example/pkgs" });
        assert.ok(!creds.ok && /must not carry credentials/.test(creds.message));
    });

    it("changes nothing when the version is already released and deployed", () => {
        const p = plan({ version: "1.1.0", sums: parseSums("05332cfe24ff49237ee12ff579e6f56e3cfa77beebf28d663a2bee139c14e0d6  complinist-1.1.0.tar.gz\n") });
        assert.ok(p.ok && !p.changed && p.replaced === undefined);
    });

    it("fetches SHA256SUMS with the credentials as a header, never in the URL", async () => {
        const seen: http.IncomingHttpHeaders[] = [];
        const server = http.createServer((req, res) => {
            seen.push(req.headers);
            if (req.headers["private-token"] !== "glpat-x") res.writeHead(401).end("401 Unauthorized");
            else res.writeHead(200).end(SUMS);
        });
        await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
        try {
            const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/complinist/1.3.0/SHA256SUMS`;
            assert.strictEqual(await fetchSums(url, "PRIVATE-TOKEN: glpat-x"), SUMS);
            await assert.rejects(fetchSums(url, undefined), /HTTP 401 \(a private project needs RELEASE_AUTH=/);
            await assert.rejects(fetchSums(url, "glpat-x"), /RELEASE_AUTH must be one header line/);
            assert.strictEqual(seen.length, 2);
        } finally {
            server.closeAllConnections();
            server.close();
        }
    });

    describe("RELEASE_AUTH goes only to the configured origin: a redirect is followed without it, to https only", () => {
        const TOKEN = "glpat-redirect-secret";
        let servers: Array<http.Server | https.Server>;
        let tmp: string;
        afterEach(() => {
            for (const s of servers) {
                s.closeAllConnections();
                s.close();
            }
            if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
        });
        beforeEach(() => {
            servers = [];
            tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sums-redirect-"));
        });

        /** A real server on 127.0.0.1 recording every request's headers; `answer` writes the response. */
        async function serve(answer: (res: http.ServerResponse) => void, tls?: { key: Buffer; cert: Buffer }): Promise<{ url: string; seen: http.IncomingHttpHeaders[] }> {
            const seen: http.IncomingHttpHeaders[] = [];
            const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
                seen.push(req.headers);
                answer(res);
            };
            const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
            servers.push(server);
            await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
            return { url: `${tls ? "https" : "http"}://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
        }
        const carriesToken = (h: http.IncomingHttpHeaders) => Object.entries(h).some(([k, v]) => k === "private-token" || String(v).includes(TOKEN));

        it("a redirect to another origin over http is refused, and that origin never sees a request", async () => {
            const other = await serve((res) => res.writeHead(200).end(SUMS));
            const origin = await serve((res) => res.writeHead(302, { location: `${other.url}/SHA256SUMS` }).end());
            await assert.rejects(fetchSums(`${origin.url}/SHA256SUMS`, `PRIVATE-TOKEN: ${TOKEN}`), /redirected to http:\/\/127\.0\.0\.1:\d+, which is not https: a redirect is followed only to https, and never with RELEASE_AUTH/);
            assert.strictEqual(origin.seen.length, 1);
            assert.ok(carriesToken(origin.seen[0] as http.IncomingHttpHeaders), "the configured origin gets the header");
            assert.deepStrictEqual(other.seen, [], "the second origin got no request at all");
        });

        it("a redirect to https is followed without the header (a real TLS server, trusted through NODE_EXTRA_CA_CERTS)", async function () {
            const made = cp.spawnSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", path.join(tmp, "key.pem"), "-out", path.join(tmp, "cert.pem")], { encoding: "utf8" });
            if (made.status !== 0) {
                if (process.env.CI) assert.fail(`openssl is required in CI: ${made.stderr}`);
                this.skip();
            }
            const secure = await serve((res) => res.writeHead(200).end(SUMS), { key: fs.readFileSync(path.join(tmp, "key.pem")), cert: fs.readFileSync(path.join(tmp, "cert.pem")) });
            const origin = await serve((res) => res.writeHead(302, { location: `${secure.url}/storage/SHA256SUMS?X-Signature=abc` }).end());
            // A child process: Node reads NODE_EXTRA_CA_CERTS only at start.
            const code = `require(${JSON.stringify(path.join(REPO, "ops", "release"))}).fetchSums(process.argv[1], process.env.AUTH).then((t) => process.stdout.write(t), (e) => { console.error(e.message); process.exit(1); })`;
            const r = await runProcess(process.execPath, ["-r", "ts-node/register/transpile-only", "-e", code, `${origin.url}/SHA256SUMS`], "", 60000, "fetchSums did not finish", {
                NODE_EXTRA_CA_CERTS: path.join(tmp, "cert.pem"),
                AUTH: `PRIVATE-TOKEN: ${TOKEN}`,
            });
            assert.strictEqual(r.code, 0, r.stderr);
            assert.strictEqual(r.stdout, SUMS);
            assert.ok(carriesToken(origin.seen[0] as http.IncomingHttpHeaders), "the configured origin gets the header");
            assert.strictEqual(secure.seen.length, 1);
            assert.ok(!carriesToken(secure.seen[0] as http.IncomingHttpHeaders), `the redirect target got the header: ${JSON.stringify(secure.seen[0])}`);
        });
    });

    it("parses its command line", () => {
        assert.deepStrictEqual(parseReleaseArgs(["--stack", "staging", "--version", "1.3.0", "--sums-url", "https://x/SHA256SUMS"]), {
            stack: "staging",
            version: "1.3.0",
            sums: undefined,
            sumsUrl: "https://x/SHA256SUMS",
            baseUrl: undefined,
            help: false,
        });
        assert.throws(() => parseReleaseArgs(["--stack", "staging"]), (e: unknown) => e instanceof UsageError && /--version <version> is required/.test(e.message));
        assert.throws(() => parseReleaseArgs(["--stack", "staging", "--version", "1.3.0;x"]), UsageError);
        assert.throws(() => parseReleaseArgs(["--stack", "s", "--version", "1", "--sums", "a", "--sums-url", "b"]), /not both/);
    });
});
