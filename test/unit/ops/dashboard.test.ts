import * as assert from "assert";
import * as http from "http";
import { parseAgentState } from "../../../infra/agent/state";
import { History } from "../../../ops/live/history";
import { liveHost, sampleOf, type LiveView } from "../../../ops/live/model";
import { CHART, CHART_WINDOW_MS, dashboardData, hostCharts, niceMax } from "../../../ops/dashboard/shape";
import { parseDashboardArgs, startDashboard, type Dashboard } from "../../../ops/dashboard/server";
import { PAGE_CSP, PAGE_HTML } from "../../../ops/dashboard/page";
import { HOSTILE, inert } from "./hostileText";
import { canaryState, liveConfig, type MutableState } from "./liveFixtures";

const T0 = Date.parse("2025-01-12T10:00:12Z");
const rowOf = (s: MutableState, at = T0) => liveHost({ host: "web-1", address: "10.0.0.1:22", last: sampleOf("web-1", "10.0.0.1:22", parseAgentState(JSON.stringify(s), "web-1"), liveConfig(), at) }, at);

/** Ten answers a second apart: the live release steady, the canary's errors growing. */
function canaryHistory(): History {
    const h = new History(CHART_WINDOW_MS);
    for (let i = 0; i <= 10; i++) {
        h.add("web-1", T0 - (10 - i) * 1000, [
            { version: "1.1.0", port: 5001, role: "live", requests: 100 * i, errors: 0, rtimeMs: 3 },
            { version: "1.2.0", port: 5002, role: "canary", requests: 10 * i, errors: i, rtimeMs: 4 + i },
        ]);
    }
    h.add("web-1", T0 - 4000, [{ version: "1.0.9", port: 5002, role: "standby", requests: 0, errors: 0 }]);
    return h;
}

function get(url: string, opts: { method?: string; host?: string } = {}): Promise<{ code: number; headers: http.IncomingHttpHeaders; body: string }> {
    return new Promise((resolve, reject) => {
        const u = new URL(url);
        const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: opts.method ?? "GET", headers: opts.host ? { Host: opts.host } : {} }, (res) => {
            let body = "";
            res.on("data", (d: Buffer) => {
                body += d.toString();
                // An event stream never ends: its first message is enough.
                if (res.headers["content-type"] === "text/event-stream" && body.includes("\n\n", body.indexOf("data:"))) res.destroy();
            });
            res.on("close", () => resolve({ code: res.statusCode ?? 0, headers: res.headers, body }));
        });
        req.on("error", reject);
        req.end();
    });
}

describe("dashboard (npm run dashboard)", () => {
    it("accepts --stack and --port, refuses any --bind but 127.0.0.1, naming the tunnel to use instead", () => {
        assert.deepStrictEqual(parseDashboardArgs(["--stack", "prod", "--port", "0"]), { stack: "prod", port: 0, noPulumi: false, key: undefined, help: false });
        assert.strictEqual(parseDashboardArgs(["--stack", "prod", "--bind", "127.0.0.1"]).port, 8750);
        for (const bind of ["0.0.0.0", "::", "192.0.2.1", "localhost"]) assert.throws(() => parseDashboardArgs(["--stack", "prod", "--bind", bind]), /is refused: the dashboard listens on 127\.0\.0\.1 only .*ssh -L 8750:127\.0\.0\.1:8750/);
        for (const port of ["-1", "65536", "80a", ""]) assert.throws(() => parseDashboardArgs(["--stack", "prod", `--port=${port}`]), /--port .*accepted: 0 \(any free port\) to 65535/);
        assert.throws(() => parseDashboardArgs([]), /--stack <env> is required/);
    });

    it("shapes a chart per host: a line per release for its error ratio and its response time, inside the viewBox, over the last minutes", () => {
        const [errors, times] = hostCharts(rowOf(canaryState()), canaryHistory(), T0);
        assert.deepStrictEqual([errors.title, errors.unit, times.title, times.unit], ["error ratio", "%", "response time", "ms"]);
        assert.deepStrictEqual(errors.lines.map((l) => [l.version, l.role, l.count]), [["1.1.0", "live", 10], ["1.2.0", "canary", 10], ["1.0.9", "gone", 0]]);
        // The canary's 10 requests a second with one error each: a ratio of 10%, the panel's top 10% (1, 2 or 5 × 10^k).
        assert.strictEqual(errors.max, 0.1);
        assert.strictEqual(errors.lines[1]?.last, 0.1);
        assert.strictEqual(times.lines[1]?.last, 14);
        assert.strictEqual(times.max, 20);
        for (const l of [...errors.lines, ...times.lines]) {
            for (const pt of l.points.split(" ").filter(Boolean)) {
                const [x, y] = pt.split(",").map(Number) as [number, number];
                assert.ok(x >= 0 && x <= CHART.width && y >= 0 && y <= CHART.height, `${l.version}: ${pt}`);
            }
        }
        // The newest answer is at the right edge; the live release's 0% on the bottom line.
        assert.match(errors.lines[0]?.points ?? "", / 600,120$/);
        // Five minutes later, nothing of it is left to draw.
        assert.ok(hostCharts(rowOf(canaryState()), canaryHistory(), T0 + CHART_WINDOW_MS + 20_000)[0].lines.every((l) => l.count === 0));
    });

    it("a panel's top is the next 1, 2 or 5 × 10^k above its values, never below its floor", () => {
        assert.deepStrictEqual([niceMax(0, 0.01), niceMax(0.013, 0.01), niceMax(0.3, 0.01), niceMax(7, 10), niceMax(180, 10), niceMax(501, 10)], [0.01, 0.02, 0.5, 10, 200, 1000]);
    });

    it("the page's data carries no escape, control or bidi character of host text; the page sets host text only as text", () => {
        const evil = `<img src=x onerror=alert(1)>${Object.values(HOSTILE).join("")}`;
        const row = rowOf(canaryState((s) => ((s.lock.owner = evil), (s.revisions = [evil]), (s.watch!.figures = evil))));
        const view: LiveView = { stack: "staging", declaredVersion: "1.2.0", at: T0, hosts: [row] };
        const data = dashboardData(view, canaryHistory());
        const strings: string[] = [];
        JSON.stringify(data, (_k, v: unknown) => (typeof v === "string" && strings.push(v), v));
        assert.ok(strings.every(inert), strings.filter((s) => !inert(s)).join(" | "));
        assert.ok(data.hosts[0]?.lock.includes("<img src=x onerror=alert(1)>"), "kept as text: the page escapes it by setting textContent");
        assert.doesNotMatch(PAGE_HTML, /innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
    });

    describe("the server", () => {
        let d: Dashboard;
        const data = () => dashboardData({ stack: "staging", declaredVersion: "1.2.0", at: T0, hosts: [rowOf(canaryState())] }, canaryHistory());
        before(async () => (d = await startDashboard(data, { port: 0, intervalMs: 20 })));
        after(async () => d?.close());

        it("listens on 127.0.0.1 only and serves the page under its Content-Security-Policy", async () => {
            assert.match(d.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
            const page = await get(d.url);
            assert.strictEqual(page.code, 200);
            assert.strictEqual(page.headers["content-security-policy"], PAGE_CSP);
            assert.match(PAGE_CSP, /^default-src 'none'; style-src 'sha256-[A-Za-z0-9+/=]+'; script-src 'sha256-[A-Za-z0-9+/=]+'; connect-src 'self'/);
            assert.strictEqual(page.headers["x-content-type-options"], "nosniff");
            assert.match(page.body, /<title>CompliNist live view<\/title>/);
        });

        it("is read-only: every method but GET is answered 405", async () => {
            for (const method of ["POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]) {
                const r = await get(d.url, { method });
                assert.strictEqual(r.code, 405, method);
                assert.strictEqual(r.headers.allow, "GET");
            }
        });

        it("answers only to its own address: another Host (a DNS name pointed at 127.0.0.1) is refused", async () => {
            const port = new URL(d.url).port;
            assert.strictEqual((await get(d.url, { host: `evil.example:${port}` })).code, 421);
            assert.strictEqual((await get(d.url, { host: `127.0.0.1:1` })).code, 421);
            assert.strictEqual((await get(d.url, { host: `localhost:${port}` })).code, 200);
        });

        it("serves the data as JSON and as Server-Sent Events, and 404 elsewhere", async () => {
            const json = await get(`${d.url}data.json`);
            assert.strictEqual((JSON.parse(json.body) as { hosts: Array<{ host: string }> }).hosts[0]?.host, "web-1");
            const events = await get(`${d.url}events`);
            assert.strictEqual(events.headers["content-type"], "text/event-stream");
            const first = /data: (.*)\n\n/.exec(events.body)?.[1];
            assert.deepStrictEqual(JSON.parse(first ?? "null"), JSON.parse(json.body));
            assert.strictEqual((await get(`${d.url}nothing`)).code, 404);
        });
    });
});
