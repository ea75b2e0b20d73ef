import * as assert from "assert";
import { spawn, type ChildProcessWithoutNullStreams } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { chromium, type Browser } from "playwright-core";
import { TestHost, useHosts, hostEntry } from "../../dev/hosts";
import { buildArtifacts, BuiltArtifact } from "../../scripts/build-artifacts";
import { PROJECT_DIR } from "../../scripts/engine";
import { ANSI } from "../../ops/live/watch";
import { ProgramConfig, RealEngine } from "./engine";
import { underOutsideLoad } from "./load";

/**
 * The live view on real hosts through the real engine: `npm run dashboard` serves a stack of two
 * hosts, headless Chromium (Debian's, driven by playwright-core) loads it, shows both hosts, and
 * its canary chart moves while a canary runs under load (dev/loadgen.py inside live-1); a
 * screenshot of that moment is kept under .build/test-artifacts/. `npm run status -- --watch`
 * redraws its table and ends with 0 on SIGINT.
 */

const ARTIFACTS = path.join(PROJECT_DIR, ".build", "test-artifacts");
const EVIL = "<img src=x onerror=alert(1)>";

/** The page's document as the functions run in the browser see it (the compiler here has no DOM types). */
type PageDocument = { document: { querySelector(s: string): { getAttribute(a: string): string | null; textContent: string | null } | null } };

describe("live view: npm run dashboard and npm run status -- --watch on real hosts", function () {
    this.timeout(900000);
    const hosts: TestHost[] = useHosts(2, { names: ["live-1", "live-2"] });
    const stack = `e2e-live-${crypto.randomBytes(3).toString("hex")}`;
    let arts: Record<string, BuiltArtifact>;
    let engine: RealEngine;
    let browser: Browser | undefined;
    const children: ChildProcessWithoutNullStreams[] = [];

    function config(version: string, extra: ProgramConfig = {}): ProgramConfig {
        return {
            "complinist:version": version,
            "complinist:releases": Object.fromEntries(["1.0.0", "1.1.0"].map((v) => [v, { path: path.relative(PROJECT_DIR, (arts[v] as BuiltArtifact).file), sha256: (arts[v] as BuiltArtifact).sha256 }])),
            "complinist:hosts": hosts.map(hostEntry),
            "complinist:sshPrivateKey": (hosts[0] as TestHost).privateKey,
            "complinist:service": { command: "bin/start" },
            "complinist:health": { timeoutSeconds: 20, intervalMs: 200, drainSeconds: 5 },
            ...extra,
        };
    }

    /**
     * `npm run <script> -- --stack <stack> …` left running: the command package.json names for it,
     * run as npm runs it (node_modules/.bin on PATH), in a process group of its own. `interrupt`
     * sends SIGINT to the group, as Ctrl-C in a terminal does. Not through npm itself: npm ends
     * itself by the signal it forwarded whatever the script's exit code, which is what is tested.
     */
    function start(script: string, args: string[]): { child: ChildProcessWithoutNullStreams; out: () => string; exited: Promise<number | null>; interrupt: () => void } {
        const command = (JSON.parse(fs.readFileSync(path.join(PROJECT_DIR, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts[script] as string;
        const [program, ...programArgs] = command.split(" ");
        const env = { ...process.env, ...engine.scriptEnv(), PATH: `${path.join(PROJECT_DIR, "node_modules", ".bin")}${path.delimiter}${process.env.PATH ?? ""}` };
        const child = spawn(program as string, [...programArgs, "--stack", stack, ...args], { cwd: PROJECT_DIR, env, detached: true });
        children.push(child);
        let out = "";
        child.stdout.on("data", (d: Buffer) => (out += d.toString()));
        child.stderr.on("data", (d: Buffer) => (out += d.toString()));
        const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
        return { child, out: () => out, exited, interrupt: () => process.kill(-(child.pid as number), "SIGINT") };
    }

    async function until(what: string, cond: () => boolean, ms = 120000): Promise<void> {
        const deadline = Date.now() + ms;
        while (!cond()) {
            if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
            await new Promise((r) => setTimeout(r, 50));
        }
    }

    before(async () => {
        const built = await buildArtifacts(path.join(PROJECT_DIR, ".build", "e2e-artifacts"));
        arts = Object.fromEntries(built.map((a) => [a.version, a]));
        engine = new RealEngine({ stack, inProject: true, env: { COMPLINIST_DEPLOYER: "live-view" } });
        const r = await engine.up(config("1.0.0"), ["complinist:sshPrivateKey"]);
        assert.strictEqual(r.error, undefined, r.output);
        // Host text the page must show as text: a revision line naming a hostile deployer.
        for (const h of hosts) await h.run(`printf '%s\\tversion=1.0.0\\tsha256=-\\tby=${EVIL}\\toutcome=noted\\n' "$(date -u +%FT%TZ)" >> /opt/complinist/revisions.log`);
    });
    after(async () => {
        await browser?.close();
        for (const c of children) if (c.exitCode === null && c.signalCode === null) process.kill(-(c.pid as number), "SIGTERM");
        await engine?.close();
    });

    it("npm run status -- --watch redraws the table of both hosts every second and ends with 0 on SIGINT, the cursor shown again", async () => {
        const w = start("status", ["--watch"]);
        const frames = () => w.out().split(ANSI.home).slice(1).filter((f) => f.includes(ANSI.clearBelow));
        await until("two redraws naming both hosts", () => frames().filter((f) => /\nlive-1 +idle +1\.0\.0 :500[12] /.test(f) && /\nlive-2 +idle /.test(f)).length >= 2);
        const frame = frames().find((f) => /\nlive-1 +idle/.test(f)) ?? "";
        assert.match(frame, /^stack e2e-live-\w+ · declared 1\.0\.0 at start · \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC · every 1 s · Ctrl-C to quit/);
        assert.match(frame, /\n {4}1\.0\.0 :500[12] +live +\d+ req +\d+ err /);
        assert.ok(w.out().startsWith(ANSI.hideCursor), JSON.stringify(w.out().slice(0, 40)));
        w.interrupt();
        assert.strictEqual(await w.exited, 0, w.out().slice(-2000));
        assert.ok(w.out().endsWith(`${ANSI.showCursor}\n`), JSON.stringify(w.out().slice(-40)));
    });

    it("npm run dashboard serves both hosts on 127.0.0.1; its canary chart moves while a canary runs under load; hostile host text stays text", async () => {
        const d = start("dashboard", ["--port", "0"]);
        await until("the dashboard's address", () => /http:\/\/127\.0\.0\.1:\d+\//.test(d.out()));
        const url = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(d.out())?.[1] as string;
        browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
        const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
        const dialogs: string[] = [];
        page.on("dialog", (dialog) => {
            dialogs.push(dialog.message());
            void dialog.dismiss();
        });
        await page.goto(url);
        await page.waitForSelector('section.host[data-host="live-1"] h2');
        await page.waitForSelector('section.host[data-host="live-2"] h2');
        assert.match((await page.textContent('section.host[data-host="live-1"] .facts')) ?? "", /phase idle.*live 1\.0\.0 :500[12]/);
        assert.ok(((await page.textContent('section.host[data-host="live-1"] .revisions')) ?? "").includes(`by=${EVIL}`));
        assert.strictEqual(await page.locator("img").count(), 0, "host text never became an element");

        const canaryLine = 'svg[data-host="live-1"][data-chart="error-ratio"] polyline[data-version="1.1.0"][data-role="canary"]';
        const count = (sel: string) => page.evaluate((s) => Number((globalThis as unknown as PageDocument).document.querySelector(s)?.getAttribute("data-count") ?? -1), sel);
        let shot = "";
        const { result, load } = await underOutsideLoad(hosts[0] as TestHost, "/", async () => {
            const up = engine.up(config("1.1.0", { "complinist:rollbackVersion": "1.0.0", "complinist:canary": { percent: 20, seconds: 25 } }), ["complinist:sshPrivateKey"]);
            // The canary's line appears, then grows by two more answers: the chart moves (waited on in the page, not on time).
            await page.waitForSelector(canaryLine, { state: "attached", timeout: 300000 });
            const first = await count(canaryLine);
            await page.waitForFunction(([s, n]) => Number((globalThis as unknown as PageDocument).document.querySelector(s)?.getAttribute("data-count") ?? -1) >= n, [canaryLine, first + 2] as const, { timeout: 60000 });
            const facts = (await page.textContent('section.host[data-host="live-1"] .facts')) ?? "";
            assert.match(facts, /phase canary( \d+s)?.*live 1\.0\.0 :500[12].*canary 1\.1\.0 :500[12] 20%.*lock \S+/);
            fs.mkdirSync(ARTIFACTS, { recursive: true });
            shot = path.join(ARTIFACTS, "dashboard-canary.png");
            await page.screenshot({ path: shot, fullPage: true });
            return up;
        });
        assert.strictEqual(result.error, undefined, result.output);
        assert.deepStrictEqual(load.failedByKind, {}, JSON.stringify(load));
        assert.ok(fs.statSync(shot).size > 10000, "the screenshot was written");
        // After the full switch the page follows: 1.1.0 live, the lock free.
        await page.waitForFunction(() => /phase idle.*live 1\.1\.0/.test((globalThis as unknown as PageDocument).document.querySelector('section.host[data-host="live-1"] .facts')?.textContent ?? ""), undefined, { timeout: 60000 });
        assert.deepStrictEqual(dialogs, []);
        d.interrupt();
        assert.strictEqual(await d.exited, 0, d.out().slice(-2000));
    });
});
