import * as assert from "assert";
import { chromium, type Browser } from "playwright-core";
import { parseAgentState } from "../../infra/agent/state";
import { History } from "../../ops/live/history";
import { liveHost, sampleOf } from "../../ops/live/model";
import { dashboardData } from "../../ops/dashboard/shape";
import { startDashboard, type Dashboard } from "../../ops/dashboard/server";
import { canaryState, liveConfig } from "../unit/ops/liveFixtures";

/**
 * The dashboard's page in a real browser (Debian's chromium, headless, driven by playwright-core):
 * its own script runs under its Content-Security-Policy, it draws what the server sends and redraws
 * as it changes, and hostile host text shows as text, never as markup. The data here is the
 * agent's answer as the unit tests have it; test/e2e/live-view.test.ts reads a real host.
 */

const EVIL = "<img src=x onerror=alert(1)>";

/** The page's document, as the functions run in the browser see it (the project's compiler has no DOM types). */
type PageDocument = { document: { querySelector(s: string): { getAttribute(a: string): string | null } | null } };

describe("dashboard page in headless Chromium", function () {
    this.timeout(60000);
    let browser: Browser;
    let dashboard: Dashboard;
    let tick = 0;
    const history = new History(5 * 60 * 1000);

    before(async () => {
        browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
        const state = parseAgentState(JSON.stringify(canaryState((s) => ((s.lock.owner = `ci ${EVIL}`), (s.revisions = [`2025-01-12T10:00:00Z\tversion=1.2.0\tby=${EVIL}\toutcome=activated`])))), "web-1");
        dashboard = await startDashboard(
            () => {
                // Each call is a new answer: the canary's counters grow.
                tick++;
                const at = Date.now();
                const row = liveHost({ host: "web-1", address: "10.0.0.1:22", last: sampleOf("web-1", "10.0.0.1:22", state, liveConfig(), at) }, at);
                history.add("web-1", at, row.releases.map((r) => ({ ...r, requests: r.requests + 10 * tick, errors: r.role === "canary" ? r.errors + tick : r.errors })));
                return dashboardData({ stack: "staging", declaredVersion: "1.2.0", at, hosts: [row] }, history);
            },
            { port: 0, intervalMs: 100 },
        );
    });
    after(async () => {
        await browser?.close();
        await dashboard?.close();
    });

    it("loads, draws the host and its charts, redraws as answers come, and shows hostile host text as text", async () => {
        const page = await browser.newPage();
        const dialogs: string[] = [];
        const errors: string[] = [];
        page.on("dialog", (d) => {
            dialogs.push(d.message());
            void d.dismiss();
        });
        page.on("pageerror", (e) => errors.push(e.message));
        page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
        await page.goto(dashboard.url);
        await page.waitForSelector('section.host[data-host="web-1"]');
        assert.strictEqual(await page.textContent("#title"), "stack staging: declared 1.2.0 at start");
        // The canary's line grows while answers come: the chart moves.
        const canaryLine = 'svg[data-host="web-1"][data-chart="error-ratio"] polyline[data-version="1.2.0"][data-role="canary"]';
        // Functions, not strings: the page's CSP allows no eval.
        await page.waitForFunction(([sel, n]) => Number((globalThis as unknown as PageDocument).document.querySelector(sel)?.getAttribute("data-count") ?? 0) >= n, [canaryLine, 5] as const);
        const first = await page.getAttribute(canaryLine, "points");
        await page.waitForFunction(([sel, was]) => (globalThis as unknown as PageDocument).document.querySelector(sel)?.getAttribute("points") !== was, [canaryLine, first] as const);

        const text = (await page.textContent('section.host[data-host="web-1"]')) ?? "";
        assert.ok(text.includes(`lock ci ${EVIL}`), text);
        assert.ok(text.includes(`by=${EVIL}`), text);
        assert.strictEqual(await page.locator("img").count(), 0, "host text never became an element");
        assert.deepStrictEqual(dialogs, []);
        assert.deepStrictEqual(errors, [], "the page's script ran under its CSP without an error");
        await page.close();
    });
});
