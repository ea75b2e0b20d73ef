// The release download (infra/render/release.ts renderDownload) for real: the host script, run by the
// ReleaseDir provider through the local transport under a temp root, fetches from HTTP(S) servers on
// 127.0.0.1 with the real curl. Each server records every request it gets: path and headers.
import * as assert from "assert";
import * as cp from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as http from "http";
import * as https from "https";
import type { AddressInfo } from "net";
import * as os from "os";
import * as path from "path";
import { HostTarget } from "../../../infra/providers/host";
import { releaseDirProvider, ReleaseDirState } from "../../../infra/providers/release";
import { hostLayout } from "../../../infra/render/layout";
import { renderReleaseInstall } from "../../../infra/render/release";
import { useTransportFactory } from "../../../infra/transport";
import { localTransport } from "../../../infra/transport/local";
import { requireTool } from "./bash";

interface Seen {
    readonly path: string;
    readonly headers: http.IncomingHttpHeaders;
}

interface Server {
    readonly origin: string;
    readonly seen: Seen[];
    close(): Promise<void>;
}

/** Answers `routes[path]` (a body, or a redirect to a URL), 404 for any other path; records every request. */
async function serve(routes: Record<string, Buffer | { redirect: string }>, tls?: { key: string; cert: string }): Promise<Server> {
    const seen: Seen[] = [];
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
        seen.push({ path: req.url ?? "", headers: req.headers });
        const route = routes[req.url ?? ""];
        if (route === undefined) res.writeHead(404, { "content-length": "0" }).end();
        else if (Buffer.isBuffer(route)) res.writeHead(200, { "content-length": String(route.length) }).end(route);
        else res.writeHead(302, { location: route.redirect, "content-length": "0" }).end();
    };
    const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    return {
        origin: `${tls ? "https" : "http"}://127.0.0.1:${port}`,
        seen,
        close: () =>
            new Promise<void>((resolve) => {
                server.closeAllConnections();
                server.close(() => resolve());
            }),
    };
}

/** Where a route is registered after the server is up (its port is in the URLs). */
function route(server: Server, routes: Record<string, Buffer | { redirect: string }>, p: string, body: Buffer | { redirect: string }): string {
    routes[p] = body;
    return `${server.origin}${p}`;
}

describe("the release download fetches exactly the configured URL and sends releaseAuth only to its pinned origins", function () {
    this.timeout(60000);
    const SECRET = "dl-token-Zq9-pinned";
    const host: HostTarget = { name: "local-1", address: "127.0.0.1", port: 22, user: "root", hostKey: "ssh-ed25519 AAAA" };
    let dir: string;
    let root: string;
    let artifact: { bytes: Buffer; sha256: string };
    let plainRoutes: Record<string, Buffer | { redirect: string }>;
    let tlsRoutes: Record<string, Buffer | { redirect: string }>;
    let plain: Server;
    let secure: Server;
    let stdins: string[];
    let savedBundle: string | undefined;

    before(async function () {
        requireTool(this, "openssl", ["version"], "apt-get install openssl");
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "release-download-"));
        const src = path.join(dir, "src");
        fs.mkdirSync(path.join(src, "bin"), { recursive: true });
        fs.writeFileSync(path.join(src, "VERSION"), "1.0.0\n");
        fs.writeFileSync(path.join(src, "bin", "start"), "#!/bin/sh\nexit 0\n", { mode: 0o755 });
        cp.execFileSync("tar", ["-czf", path.join(dir, "a.tar.gz"), "-C", src, "."]);
        const bytes = fs.readFileSync(path.join(dir, "a.tar.gz"));
        artifact = { bytes, sha256: crypto.createHash("sha256").update(bytes).digest("hex") };
        // A certificate for 127.0.0.1 that curl trusts through CURL_CA_BUNDLE: redirects are followed to https only.
        cp.execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", path.join(dir, "key.pem"), "-out", path.join(dir, "cert.pem")], { stdio: "ignore" });
        plainRoutes = {};
        tlsRoutes = {};
        plain = await serve(plainRoutes);
        secure = await serve(tlsRoutes, { key: fs.readFileSync(path.join(dir, "key.pem"), "utf8"), cert: fs.readFileSync(path.join(dir, "cert.pem"), "utf8") });
        savedBundle = process.env.CURL_CA_BUNDLE;
        process.env.CURL_CA_BUNDLE = path.join(dir, "cert.pem");
    });

    after(async () => {
        if (savedBundle === undefined) delete process.env.CURL_CA_BUNDLE;
        else process.env.CURL_CA_BUNDLE = savedBundle;
        await plain?.close();
        await secure?.close();
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    beforeEach(() => {
        root = fs.mkdtempSync(path.join(dir, "root-"));
        stdins = [];
        plain.seen.length = 0;
        secure.seen.length = 0;
        useTransportFactory((conn) => {
            const t = localTransport({ name: conn.name, root, systemd: false });
            return { ...t, exec: (script, o) => (stdins.push(o?.stdin?.toString("utf8") ?? ""), t.exec(script, o)) };
        });
    });
    afterEach(() => useTransportFactory(undefined));

    const state = (url: string, authOrigins: string[], auth = `Deploy-Token: ${SECRET}`): ReleaseDirState => ({
        host,
        privateKey: "",
        baseDir: "/opt/complinist",
        service: "complinist",
        stack: "dev",
        version: "1.0.0",
        sha256: artifact.sha256,
        artifact: { url },
        auth,
        authOrigins,
        acknowledgeHostChange: [],
    });
    const installed = () => fs.existsSync(path.join(root, "opt/complinist/releases/1.0.0/.complinist-release"));
    const carries = (s: Seen) => s.headers["deploy-token"] !== undefined || JSON.stringify(s.headers).includes(SECRET);

    it("fetches a URL with [1-3] and {a,b} literally, with no globbing (--globoff)", async () => {
        const url = route(plain, plainRoutes, "/packages/a[1-3]{a,b}.tar.gz", artifact.bytes);
        const r = await releaseDirProvider.create!(state(url, [], ""));
        assert.strictEqual(r.outs.complete, true);
        assert.deepStrictEqual(
            plain.seen.map((s) => s.path),
            ["/packages/a[1-3]{a,b}.tar.gz"],
        );
        assert.ok(installed());
    });

    it("follows a redirect whose Location has [1-3] and {x,y} literally (--globoff on the second curl too), without the header", async () => {
        const target = route(secure, tlsRoutes, "/storage/b[1-3]{x,y}.tar.gz?sig=1", artifact.bytes);
        const url = route(plain, plainRoutes, "/packages/redirected.tar.gz", { redirect: target });
        const r = await releaseDirProvider.create!(state(url, [plain.origin]));
        assert.strictEqual(r.outs.complete, true);
        assert.deepStrictEqual(secure.seen.map((s) => s.path), ["/storage/b[1-3]{x,y}.tar.gz?sig=1"]);
        assert.ok(!secure.seen.some(carries), "the redirect target got releaseAuth");
        assert.ok(carries(plain.seen[0] as Seen), "the pinned origin gets releaseAuth");
    });

    it("sends releaseAuth to a URL of a pinned origin", async () => {
        const url = route(plain, plainRoutes, "/packages/pinned.tar.gz", artifact.bytes);
        await releaseDirProvider.create!(state(url, ["https://registry.example.com", plain.origin]));
        assert.deepStrictEqual(plain.seen.map((s) => [s.path, s.headers["deploy-token"]]), [["/packages/pinned.tar.gz", SECRET]]);
    });

    it("sends it to no other origin: the header is neither on the host's stdin nor in the request (defence in depth behind the schema)", async () => {
        const url = route(plain, plainRoutes, "/packages/unpinned.tar.gz", artifact.bytes);
        const r = await releaseDirProvider.create!(state(url, ["https://registry.example.com", `${plain.origin.replace(/:\d+$/, "")}:1`]));
        assert.strictEqual(r.outs.complete, true, "a public download still works");
        assert.deepStrictEqual(plain.seen.map((s) => s.path), ["/packages/unpinned.tar.gz"]);
        assert.ok(!plain.seen.some(carries), `the unpinned origin got releaseAuth: ${JSON.stringify(plain.seen)}`);
        assert.ok(!stdins.some((s) => s.includes(SECRET)), "releaseAuth travelled to the host for a URL it may not go to");
    });

    it("renders -H @- only for a URL of a pinned origin", () => {
        const l = hostLayout("/opt/complinist", "complinist");
        const render = (url: string, authOrigins: string[]) =>
            renderReleaseInstall(l, { version: "1.0.0", sha256: "a".repeat(64), source: { url }, authOrigins, who: "ci@runner", service: "complinist", commit: "c" });
        assert.match(render("https://registry.example.com/a.tar.gz", ["https://registry.example.com"]), /curl -sS --globoff .*-H @- /);
        for (const [url, origins] of [
            ["https://registry.example.com.evil.example/a.tar.gz", ["https://registry.example.com"]],
            ["http://registry.example.com/a.tar.gz", ["https://registry.example.com"]],
            ["https://registry.example.com:8443/a.tar.gz", ["https://registry.example.com"]],
            ["https://registry.example.com/a.tar.gz", []],
        ] as const) {
            const s = render(url, [...origins]);
            assert.ok(!s.includes("-H @-"), `${url} with ${origins.join(",")}:\n${s}`);
            assert.match(s, /<\/dev\/null\)$/m);
        }
    });
});
