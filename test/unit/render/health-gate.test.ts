import * as assert from "assert";
import * as http from "http";
import type { AddressInfo } from "net";
import { hostProgramPart } from "../../../infra/render/hostProgram";
import { runBash, status } from "./bash";

/**
 * The host program's health contract, executed for real: `json_top` (the JSON reader the
 * gate trusts), `probe` and `smoke` against HTTP servers on 127.0.0.1, and `gate`.
 */

const HEALTH = hostProgramPart("health");

/** json_top on BODY: its exit status and what it printed (status<TAB>version). */
async function jsonTop(body: string): Promise<{ code: number; stdout: string }> {
    const r = await runBash(`set -euo pipefail\n${HEALTH}\njson_top`, { input: body });
    return { code: r.code, stdout: r.stdout };
}

async function top(body: string): Promise<{ status: string; version: string }> {
    const r = await jsonTop(body);
    assert.strictEqual(r.code, 0, `json_top refused ${JSON.stringify(body)}`);
    assert.match(r.stdout, /^[^\t\n]*\t[^\t\n]*\n$/, "one line: status<TAB>version");
    const [st, version] = r.stdout.replace(/\n$/, "").split("\t");
    return { status: st ?? "", version: version ?? "" };
}

describe("health gate: json_top (the gate's JSON reader)", () => {
    it("extracts the top-level status and version", async () => {
        assert.deepStrictEqual(await top('{"status":"healthy","version":"1.2.3"}'), { status: "healthy", version: "1.2.3" });
        assert.deepStrictEqual(await top('{"version":"2.0.0","status":"healthy"}'), { status: "healthy", version: "2.0.0" }, "key order does not matter");
    });

    it("reads pretty-printed JSON with numbers, booleans, null, arrays and objects around the keys", async () => {
        const body = JSON.stringify({ uptime: -12.5e3, ready: true, err: null, tags: ["a", { status: "x" }], db: { ok: false }, status: "healthy", version: "1.0.0" }, null, 2);
        assert.deepStrictEqual(await top(`\n${body}\n\n`), { status: "healthy", version: "1.0.0" });
    });

    it("a nested status does not count: degraded with a healthy check is degraded", async () => {
        assert.deepStrictEqual(await top('{"status":"degraded","checks":{"db":{"status":"healthy"}}}'), { status: "degraded", version: "" });
        assert.deepStrictEqual(await top('{"checks":{"db":{"status":"healthy","version":"1.0.0"}}}'), { status: "", version: "" }, "only nested keys: nothing at the top");
        assert.deepStrictEqual(await top('{"checks":[{"status":"healthy"}],"status":"starting","version":"1.0.0"}'), { status: "starting", version: "1.0.0" });
    });

    it("reads a long body whole: healthy at the end of a body over 300 characters passes", async () => {
        const checks = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`dependency-${i}`, { status: "degraded", latencyMs: i * 10 }]));
        const body = JSON.stringify({ checks, status: "healthy", version: "1.1.0" });
        assert.ok(body.length > 300, `body is ${body.length} characters`);
        assert.ok(body.indexOf('"status":"healthy"') > 300, "the healthy status is past character 300");
        assert.deepStrictEqual(await top(body), { status: "healthy", version: "1.1.0" });
    });

    it("decodes escapes in strings (quotes, slashes, \\u)", async () => {
        assert.deepStrictEqual(await top('{"status":"healthy","version":"1.0.0-\\"rc\\""}'), { status: "healthy", version: '1.0.0-"rc"' });
        assert.deepStrictEqual(await top('{"status":"heal\\u0074hy","version":"a\\/b\\\\c"}'), { status: "healthy", version: "a/b\\c" });
        assert.deepStrictEqual(await top('{"note":"a \\"status\\":\\"healthy\\" inside a string","status":"down"}'), { status: "down", version: "" }, "a quoted key inside a string is text");
    });

    for (const [what, body] of [
        ["plain text", "OK"],
        ["an empty body", ""],
        ["HTML", "<html><body>healthy</body></html>"],
        ["an array", '[{"status":"healthy","version":"1.0.0"}]'],
        ["trailing junk", '{"status":"healthy","version":"1.0.0"} and more'],
        ["two objects", '{"status":"healthy","version":"1.0.0"}{"status":"down"}'],
        ["an unterminated object", '{"status":"healthy","version":"1.0.0"'],
        ["an unterminated string", '{"status":"healthy","version":"1.0.0}'],
        ["an unbalanced nested object", '{"status":"healthy","checks":{"db":[1}'],
        ["a raw newline inside a string", '{"status":"heal\nthy","version":"1.0.0"}'],
        ["a bare word", '{"status":healthy,"version":"1.0.0"}'],
    ] as const) {
        it(`refuses ${what} (non-zero exit)`, async () => {
            const r = await jsonTop(body);
            assert.notStrictEqual(r.code, 0, `accepted ${JSON.stringify(body)} as ${JSON.stringify(r.stdout)}`);
        });
    }
});

/** A local HTTP server: path → [status, body, delayMs?]. Requests are counted per path. */
interface Server {
    readonly port: number;
    readonly hits: Map<string, number>;
    close(): Promise<void>;
}

type Route = (n: number) => { status: number; body: string; delayMs?: number } | "hang";

async function serve(routes: Record<string, Route>): Promise<Server> {
    const hits = new Map<string, number>();
    const server = http.createServer((req, res) => {
        const p = (req.url ?? "/").split("?")[0] ?? "/";
        const n = (hits.get(p) ?? 0) + 1;
        hits.set(p, n);
        const route = routes[p];
        const answer = route ? route(n) : { status: 404, body: "not found" };
        if (answer === "hang") return; // never answers: the probe's time limit must end it
        const send = () => res.writeHead(answer.status, { "content-type": "application/json" }).end(answer.body);
        if (answer.delayMs) setTimeout(send, answer.delayMs);
        else send();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return {
        port: (server.address() as AddressInfo).port,
        hits,
        close: () =>
            new Promise<void>((resolve) => {
                server.closeAllConnections();
                server.close(() => resolve());
            }),
    };
}

const healthy = (version: string) => JSON.stringify({ status: "healthy", version });

describe("health gate: probe, smoke and gate against a local HTTP server", () => {
    let app: Server;
    let notFound: Server;
    let closedPort: number;

    before(async () => {
        app = await serve({
            "/": () => ({ status: 200, body: "<html></html>" }),
            "/health": () => ({ status: 200, body: healthy("1.0.0") }),
            "/old": () => ({ status: 200, body: healthy("0.9.0") }),
            "/unavailable": () => ({ status: 503, body: healthy("1.0.0") }),
            "/nested": () => ({ status: 200, body: '{"status":"degraded","version":"1.0.0","checks":{"db":{"status":"healthy"}}}' }),
            "/text": () => ({ status: 200, body: "healthy 1.0.0" }),
            "/hang": () => "hang",
            "/slow": () => ({ status: 200, body: "slow", delayMs: 400 }),
            // Healthy from the third request on: a release that takes a moment to boot.
            "/booting": (n) => (n < 3 ? { status: 503, body: '{"status":"starting","version":"1.0.0"}' } : { status: 200, body: healthy("1.0.0") }),
        });
        notFound = await serve({ "/health": () => ({ status: 200, body: healthy("1.0.0") }) });
        const gone = await serve({});
        closedPort = gone.port;
        await gone.close();
    });

    after(async () => {
        await app.close();
        await notFound.close();
    });

    /** Run SNIPPET with the health part loaded; returns rc and SEEN. */
    async function withHealth(snippet: string, vars: Record<string, string> = {}): Promise<{ rc: number; seen: string; stderr: string }> {
        const assign = Object.entries({ PROBE_TIMEOUT: "2", INTERVAL: "0.05", HEALTH_PATH: "/health", ...vars })
            .map(([k, v]) => `${k}=${v}`)
            .join("\n");
        const r = await runBash(`set -euo pipefail\n${assign}\nCHECKS=()\nSEEN=""\n${HEALTH}\n${snippet}\nprintf 'SEEN=%s\\n' "$SEEN"`);
        const rc = /^rc=(\d+)$/m.exec(r.stdout);
        assert.ok(rc, `no rc in ${r.stdout} ${r.stderr}`);
        return { rc: Number(rc[1]), seen: /^SEEN=(.*)$/m.exec(r.stdout)?.[1] ?? "", stderr: r.stderr };
    }

    const url = (p: string, port = app.port) => `http://127.0.0.1:${port}${p}`;

    it("probe: 200, healthy, the wanted version → 0", async () => {
        const r = await withHealth(status(`probe ${url("/health")} 1.0.0`));
        assert.strictEqual(r.rc, 0, r.seen);
        assert.strictEqual(r.seen, `HTTP 200 from ${url("/health")}: status=healthy version=1.0.0`);
    });

    it("probe: another version → 1, and SEEN says which version answered", async () => {
        const r = await withHealth(status(`probe ${url("/old")} 1.0.0`));
        assert.strictEqual(r.rc, 1);
        assert.strictEqual(r.seen, `HTTP 200 from ${url("/old")}: status=healthy version=0.9.0`);
    });

    it("probe: HTTP 503 → 1, even with a healthy-looking body", async () => {
        const r = await withHealth(status(`probe ${url("/unavailable")} 1.0.0`));
        assert.strictEqual(r.rc, 1);
        assert.match(r.seen, /^HTTP 503 from /);
    });

    it("probe: a nested healthy status under a degraded top level → 1", async () => {
        const r = await withHealth(status(`probe ${url("/nested")} 1.0.0`));
        assert.strictEqual(r.rc, 1);
        assert.match(r.seen, /status=degraded version=1\.0\.0$/);
    });

    it("probe: a body that is not JSON → 1, SEEN quotes the body", async () => {
        const r = await withHealth(status(`probe ${url("/text")} 1.0.0`));
        assert.strictEqual(r.rc, 1);
        assert.strictEqual(r.seen, `HTTP 200 from ${url("/text")}, not a JSON object: healthy 1.0.0`);
    });

    it("probe: nothing listening → 1, 'no answer'", async () => {
        const r = await withHealth(status(`probe ${url("/health", closedPort)} 1.0.0`));
        assert.strictEqual(r.rc, 1);
        // curl's reason is not asserted yet: probe keeps the last line of curl's output, which is its write-out (000).
        assert.match(r.seen, new RegExp(`^no answer from ${url("/health", closedPort)}: `));
    });

    it("probe: a 100 MB body (chunked, no length) is cut at 64 KiB and fails, unread", async () => {
        const huge = http.createServer((_req, res) => {
            res.writeHead(200, { "content-type": "application/json" });
            const chunk = Buffer.alloc(1 << 20, "x");
            let sent = 0;
            const more = () => {
                while (sent < 100 && !res.destroyed) {
                    sent++;
                    if (!res.write(sent === 1 ? Buffer.concat([Buffer.from('{"status":"healthy","version":"1.0.0","pad":"'), chunk]) : chunk)) return void res.once("drain", more);
                }
                res.end('"}');
            };
            more();
        });
        await new Promise<void>((resolve) => huge.listen(0, "127.0.0.1", resolve));
        try {
            const port = (huge.address() as AddressInfo).port;
            const r = await withHealth(status(`probe ${url("/health", port)} 1.0.0`), { PROBE_TIMEOUT: "30" });
            assert.strictEqual(r.rc, 1);
            assert.strictEqual(r.seen, `the answer of ${url("/health", port)} is over 65536 bytes: not read`);
        } finally {
            huge.closeAllConnections();
            await new Promise((resolve) => huge.close(resolve));
        }
    });

    it("probe: a JSON value with a decoded newline or control character comes back as one printable line", async () => {
        const odd = await serve({ "/health": () => ({ status: 200, body: JSON.stringify({ status: "healthy\noutcome=activated", version: "1.0.0\u0007" }) }) });
        try {
            const r = await withHealth(status(`probe ${url("/health", odd.port)} 1.0.0`));
            assert.strictEqual(r.rc, 1);
            assert.strictEqual(r.seen, `HTTP 200 from ${url("/health", odd.port)}: status=healthy?outcome=activated version=1.0.0?`);
        } finally {
            await odd.close();
        }
    });

    it("probe: a server that never answers is cut off by PROBE_TIMEOUT", async () => {
        const started = Date.now();
        const r = await withHealth(status(`probe ${url("/hang")} 1.0.0`), { PROBE_TIMEOUT: "1" });
        assert.strictEqual(r.rc, 1);
        assert.match(r.seen, new RegExp(`^no answer from ${url("/hang")}: `));
        assert.ok(Date.now() - started < 10000, "bounded by the timeout");
    });

    it("smoke: CHECKS=('/|200|2000') passes where / answers 200", async () => {
        const r = await withHealth(status(`smoke ${app.port}`), {});
        assert.strictEqual(r.rc, 0, "no checks: nothing to fail");
        const ok = await withHealth(`CHECKS=('/|200|2000')\n${status(`smoke ${app.port}`)}`);
        assert.strictEqual(ok.rc, 0, ok.seen);
    });

    it("smoke: CHECKS=('/|200|2000') fails where / answers 404, naming the check", async () => {
        const r = await withHealth(`CHECKS=('/|200|2000')\n${status(`smoke ${notFound.port}`)}`);
        assert.strictEqual(r.rc, 1);
        assert.strictEqual(r.seen, "check GET /: HTTP 404, wanted 200");
    });

    it("smoke: every check runs, and a slow answer fails its maxMs (0 means no limit)", async () => {
        const slow = await withHealth(`CHECKS=('/|200|2000' '/slow|200|100')\n${status(`smoke ${app.port}`)}`);
        assert.strictEqual(slow.rc, 1);
        assert.match(slow.seen, /^check GET \/slow: answered in \d+ ms, wanted at most 100 ms$/);
        assert.ok(Number(/in (\d+) ms/.exec(slow.seen)?.[1]) >= 400, slow.seen);
        const unlimited = await withHealth(`CHECKS=('/slow|200|0')\n${status(`smoke ${app.port}`)}`);
        assert.strictEqual(unlimited.rc, 0, unlimited.seen);
    });

    it("gate: polls until the instance is healthy on the wanted version", async () => {
        app.hits.delete("/booting");
        const r = await withHealth(status(`gate ${app.port} 1.0.0 20`), { HEALTH_PATH: "/booting" });
        assert.strictEqual(r.rc, 0, r.seen);
        assert.strictEqual(app.hits.get("/booting"), 3, "503, 503, then healthy");
    });

    it("gate: gives up when the time is up, with the last thing seen", async () => {
        const r = await withHealth(status(`gate ${app.port} 1.0.0 1`), { HEALTH_PATH: "/old" });
        assert.strictEqual(r.rc, 1);
        assert.match(r.seen, /version=0\.9\.0$/);
    });

    it("gate: a healthy instance that fails a smoke check does not pass", async () => {
        const r = await withHealth(`CHECKS=('/missing|200|0')\n${status(`gate ${app.port} 1.0.0 1`)}`);
        assert.strictEqual(r.rc, 1);
        assert.strictEqual(r.seen, "check GET /missing: HTTP 404, wanted 200");
    });
});
