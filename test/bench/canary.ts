/**
 * `npm run bench -- canary`: how far a bad release gets with the canary and the error-rate
 * watch (complinist:canary, complinist:watch), and without them. One fresh test host, release
 * mode, applied by the real engine (test/e2e/engine.ts: the pinned Pulumi CLI, the program
 * inline), under load from the generator outside the host (dev/loadgen.py on this machine, through
 * Docker's bridge, as users' requests come; 8 workers, a new
 * connection per request to the page `/`, which the flaky release fails 3 times in 10):
 *
 *   set-up        1.0.0 deployed (good), not measured;
 *   canary        1.0.0 → 1.5.0-flaky with a 10% canary of 60 s and the watch's defaults:
 *                 the watch should trip and switch back to 1.0.0 through the runtime API;
 *   gate only     1.0.0 → 1.5.0-flaky without a canary and soakSeconds 0 (nothing watches:
 *                 the release takes every request after the gate), acknowledging the watch's
 *                 roll-back of the row before; then a rollback to 1.0.0 restores the host.
 *
 * Each row counts over the same window: the 60 whole seconds from the second (on the
 * generator's clock) in which the bad release answered its first request. The generator runs
 * from before the `pulumi up` until that window has passed. The switch back's time comes from
 * the host: trippedAt and switchedBackAt (epoch ms) in the activation's result file, checked
 * against deploy.log's line and the engine's error. The generator, the host program and this
 * process read one clock (the containers share the machine's). Figures are printed against
 * the goals, never asserted.
 */
import type { ActivationResult } from "../../infra/agent/protocol";
import * as os from "os";
import * as path from "path";
import { startHosts, stopHosts, TestHost, hostEntry } from "../../dev/hosts";
import { buildArtifacts, BuiltArtifact } from "../../scripts/build-artifacts";
import { ProgramConfig, RealEngine } from "../e2e/engine";
import { LoadGenerator, LoadResult } from "./loadgen";
import { hostAddress } from "../e2e/load";
import { count, markdownTable } from "./table";

const REPO = path.resolve(__dirname, "..", "..");
const GOOD = "1.0.0";
const BAD = "1.5.0-flaky";
const CANARY = { percent: 10, seconds: 60 };
/** The window both rows are counted over (the canary's length). */
const WINDOW_SECONDS = CANARY.seconds;
const PAGE = "/";
const WORKERS = 8;
/** The goals (issue 24). */
const GOAL_SHARE = 0.1;
const GOAL_SECONDS = 60;
const GOAL_SWITCH_BACK_MS = 1000;
const ACTIVATIONS_DIR = "/opt/complinist/.activations";
const DEPLOY_LOG = "/var/log/complinist/deploy.log";
const SECRETS = ["complinist:sshPrivateKey"];

interface SwitchBack {
    /** Epoch ms, host clock (the activation's result file). */
    trippedAt: number;
    switchedBackAt: number;
    /** "N ms after the watch tripped" in deploy.log's line and in the engine's error. */
    deployLogMs: number | undefined;
    engineMs: number | undefined;
}

interface Window {
    requests: number;
    failed: number;
    failedByKind: Record<string, number>;
    badAnswered: number;
    /** First to last answer of the bad release, within the window. */
    badSeconds: number;
    /** The bad release still answered at the window's end. */
    badAtEnd: boolean;
    /** The generator ran past the window's end (else the counts cover less than the window). */
    complete: boolean;
}

interface Row {
    setup: string;
    outcome: string;
    upSeconds: number;
    /** The machine's 1-minute load average when the row ended (the cores are shared with whatever else runs). */
    loadAverage: number;
    load: LoadResult;
    window: Window | undefined;
    switchBack: SwitchBack | undefined;
}

function sleep(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms));
}

const sh = (h: TestHost, cmd: string) => h.run(cmd);

/** The version answering /health on the service port, or what it said instead. */
async function serving(h: TestHost): Promise<string> {
    const out = (await h.exec("curl -sS -m 5 http://127.0.0.1:5000/health 2>&1 || true")).stdout.trim();
    return /"version": ?"([^"]+)"/.exec(out)?.[1] ?? `nothing healthy (${out.slice(0, 80)})`;
}

/** The bad release's window: the 60 whole seconds from the second it first answered in. */
function windowOf(load: LoadResult): Window | undefined {
    const bad = load.served[BAD];
    if (bad === undefined) return undefined;
    const first = Math.floor(bad.firstAt - load.startedAt);
    const seconds = load.perSecond.slice(first, first + WINDOW_SECONDS);
    const windowEnd = load.startedAt + first + WINDOW_SECONDS;
    const failedByKind: Record<string, number> = {};
    for (const s of seconds) for (const [k, n] of Object.entries(s.failedByKind)) failedByKind[k] = (failedByKind[k] ?? 0) + n;
    return {
        requests: seconds.reduce((n, s) => n + s.ok + s.failed, 0),
        failed: seconds.reduce((n, s) => n + s.failed, 0),
        failedByKind,
        badAnswered: seconds.reduce((n, s) => n + (s.versions[BAD] ?? 0), 0),
        badSeconds: Math.min(bad.lastAt, windowEnd) - bad.firstAt,
        badAtEnd: bad.lastAt >= windowEnd - 1,
        // The last entry is a partial second (the stop): the window must end before it.
        complete: load.perSecond.length > first + WINDOW_SECONDS,
    };
}

/**
 * trippedAt and switchedBackAt of the host's last activation since `since` (Unix seconds) that has
 * them, with deploy.log's and the engine's "N ms"; undefined when none switched back.
 */
async function switchBack(h: TestHost, since: number, engineError: string | undefined): Promise<SwitchBack | undefined> {
    const file = await sh(h, `find ${ACTIVATIONS_DIR} -name '*.result.json' -newermt @${Math.floor(since)} -exec grep -l '"switchedBackAt":' {} + 2>/dev/null | xargs -r ls -t | head -n 1`);
    if (file === "") return undefined;
    const kv = JSON.parse(await sh(h, `cat '${file}'`)) as ActivationResult;
    const logLine = await sh(h, `grep 'switched back to .* ms after the watch tripped' ${DEPLOY_LOG} | tail -n 1`);
    const ms = (text: string | undefined) => {
        const m = /(\d+) ms after the watch tripped/.exec(text ?? "");
        return m ? Number(m[1]) : undefined;
    };
    return { trippedAt: kv.trippedAt ?? NaN, switchedBackAt: kv.switchedBackAt ?? NaN, deployLogMs: ms(logLine), engineMs: ms(engineError) };
}

/**
 * One row: the generator on, `pulumi up` to the bad release, the load kept on until the
 * window after the bad release's first answer has passed (it answered after the up began),
 * then what the generator and the host saw.
 */
async function badRelease(h: TestHost, engine: RealEngine, lg: LoadGenerator, setup: string, config: ProgramConfig, describe: (error: string | undefined) => string): Promise<Row> {
    await lg.start();
    let error: string | undefined;
    let upSeconds = NaN;
    let load: LoadResult;
    const t0 = Date.now();
    try {
        error = (await engine.up(config, SECRETS)).error;
        upSeconds = (Date.now() - t0) / 1000;
        await sleep((WINDOW_SECONDS + 2) * 1000);
    } finally {
        load = await lg.stop();
    }
    return { setup, outcome: `${describe(error)}; ${await serving(h)} serves`, upSeconds, loadAverage: os.loadavg()[0] ?? NaN, load, window: windowOf(load), switchBack: await switchBack(h, t0 / 1000, error) };
}

const ms = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? "—" : count(Math.round(n)));
const pct = (part: number, whole: number) => (whole > 0 ? `${((100 * part) / whole).toFixed(2)}%` : "—");

function table(rows: Row[]): string {
    return markdownTable(
        ["setup", "outcome", "requests", "failed", "failed by kind", `${BAD} answered`, "share", `${BAD} took traffic s`, "1st failure → trip ms", "1st failure → switch back ms", "trip → switch back ms"],
        rows.map((r) => {
            const w = r.window;
            const firstFailed = r.load.firstFailedAt === null ? undefined : r.load.firstFailedAt * 1000;
            const sb = r.switchBack;
            return [
                r.setup,
                r.outcome,
                w ? count(w.requests) : "—",
                w ? count(w.failed) : "—",
                w ? Object.entries(w.failedByKind).map(([k, n]) => `${k} ${count(n)}`).join(", ") || "none" : "—",
                w ? count(w.badAnswered) : "0",
                w ? pct(w.badAnswered, w.requests) : "0%",
                w ? `${w.badSeconds.toFixed(2)}${w.badAtEnd ? " (still serving at the window's end)" : ""}` : "0",
                sb && firstFailed !== undefined ? ms(sb.trippedAt - firstFailed) : "—",
                sb && firstFailed !== undefined ? ms(sb.switchedBackAt - firstFailed) : "—",
                sb ? ms(sb.switchedBackAt - sb.trippedAt) : "—",
            ];
        }),
    );
}

function goals(canary: Row): void {
    const w = canary.window;
    if (w === undefined) {
        console.log(`Goal: a bad release reaches ≤ 10% of requests for ≤ 60 s: met (${BAD} answered no request)`);
    } else {
        const share = w.requests > 0 ? w.badAnswered / w.requests : NaN;
        const met = share <= GOAL_SHARE && w.badSeconds <= GOAL_SECONDS && !w.badAtEnd;
        console.log(
            `Goal: a bad release reaches ≤ 10% of requests for ≤ 60 s: ${met ? "met" : "not met"} ` +
                `(canary row: ${pct(w.badAnswered, w.requests)} of ${count(w.requests)} requests, for ${w.badSeconds.toFixed(2)} s${w.badAtEnd ? ", still serving at the window's end" : ""})`,
        );
    }
    const sb = canary.switchBack;
    if (sb === undefined) {
        console.log("Goal: the switch back takes ≤ 1 s after the watch trips: not met (the watch did not trip: no switchedBackAt on the host)");
    } else {
        const d = sb.switchedBackAt - sb.trippedAt;
        console.log(`Goal: the switch back takes ≤ 1 s after the watch trips: ${d <= GOAL_SWITCH_BACK_MS ? "met" : "not met"} (${ms(d)} ms, switchedBackAt − trippedAt on the host's clock)`);
    }
}

export async function canaryBench(): Promise<void> {
    const built = await buildArtifacts(path.join(REPO, ".build", "bench-canary-artifacts"));
    const arts: Record<string, BuiltArtifact> = Object.fromEntries(built.map((a) => [a.version, a]));
    const [h] = (await startHosts(1, { names: ["bench-canary-1"] })) as [TestHost];
    const engine = new RealEngine({ stack: "bench-canary", env: { COMPLINIST_DEPLOYER: "bench" } });
    const cfg = (version: string, rollbackVersion: string | undefined, extra: ProgramConfig = {}): ProgramConfig => ({
        "complinist:mode": "release",
        "complinist:version": version,
        "complinist:rollbackVersion": rollbackVersion,
        "complinist:releases": Object.fromEntries([GOOD, BAD].map((v) => [v, { path: path.relative(REPO, (arts[v] as BuiltArtifact).file), sha256: (arts[v] as BuiltArtifact).sha256 }])),
        "complinist:hosts": [hostEntry(h)],
        "complinist:sshPrivateKey": h.privateKey,
        "complinist:service": { command: "bin/start" },
        "complinist:health": { timeoutSeconds: 30, intervalMs: 200, drainSeconds: 10, soakSeconds: 0 },
        ...extra,
    });
    const rows: Row[] = [];
    const notes: string[] = [];
    try {
        const first = await engine.up(cfg(GOOD, undefined), SECRETS);
        if (first.error) throw new Error(`bench canary: first deploy of ${GOOD} on ${h.name} failed: ${first.error}`);
        // From outside the host, as users' requests come: the host's own are never judged (issue 29 finding 9).
        const lg = new LoadGenerator(h, 5000, PAGE, WORKERS, hostAddress(h));
        await lg.install();

        const canary = await badRelease(h, engine, lg, `canary ${CANARY.percent}% / ${CANARY.seconds} s`, cfg(BAD, GOOD, { "complinist:canary": CANARY }), (e) =>
            e === undefined ? `activated (the watch did not trip)` : /ROLLED BACK by the error-rate watch/.test(e) ? "rolled back by the watch" : `update failed: ${e.split("\n")[0]?.slice(0, 160)}`,
        );
        rows.push(canary);
        if (canary.switchBack !== undefined) {
            const sb = canary.switchBack;
            notes.push(
                `canary: trip → switch back ${ms(sb.switchedBackAt - sb.trippedAt)} ms from the result file; deploy.log says ${ms(sb.deployLogMs)} ms; the engine's error says ${ms(sb.engineMs)} ms`,
            );
        }
        // The watch's roll-back makes the host refuse the version until the stack acknowledges it.
        const ack = { "complinist:acknowledgeRolledBack": [BAD] };
        if ((await serving(h)) !== GOOD) {
            const restore = await engine.up(cfg(GOOD, BAD, ack), SECRETS);
            if (restore.error) throw new Error(`bench canary: restoring ${GOOD} after the canary row failed: ${restore.error}`);
            notes.push(`the canary row left ${BAD} serving: ${GOOD} was deployed again before the gate-only row`);
        }

        const gateOnly = await badRelease(h, engine, lg, "gate only (no canary, soak 0)", cfg(BAD, GOOD, ack), (e) => (e === undefined ? "activated (nothing watches)" : `update failed: ${e.split("\n")[0]?.slice(0, 160)}`));
        rows.push(gateOnly);
        const t0 = Date.now();
        const restore = await engine.up(cfg(GOOD, BAD, ack), SECRETS);
        notes.push(`gate only: rolled back to ${GOOD} after the window (not under load, not in the table): ${restore.error === undefined ? "done" : `FAILED: ${restore.error}`} in ${((Date.now() - t0) / 1000).toFixed(1)} s; ${await serving(h)} serves`);
    } finally {
        await engine.close();
        await stopHosts([h]);
    }

    console.log(
        `\nA bad release (${BAD}: /health healthy, 3 of 10 page requests answer HTTP 500) after ${GOOD}, one host, release mode, pulumi up through the real engine, ` +
            `under load (${WORKERS} workers in the host, a new connection per request to ${PAGE}). Counts over the ${WINDOW_SECONDS} s window from the second ${BAD} first answered in:\n`,
    );
    console.log(table(rows));
    console.log("");
    goals(rows[0] as Row);
    console.log("");
    for (const r of rows) {
        console.log(
            `${r.setup}: pulumi up ${r.upSeconds.toFixed(1)} s; the generator ran ${r.load.seconds.toFixed(1)} s, ${count(r.load.ok + r.load.failed)} requests, ${count(r.load.failed)} failed in all; ` +
                `the machine's load average (1 min, ${os.cpus().length} cores) at the row's end: ${r.loadAverage.toFixed(2)}`,
        );
        if (r.window !== undefined && !r.window.complete) console.log(`NOTE: ${r.setup}: the generator stopped before the window's end: its counts cover less than ${WINDOW_SECONDS} s`);
    }
    for (const n of notes) console.log(n);
    console.log(
        "Share: answers of the bad release (any status) over all requests in the window. Took traffic: its first to its last answer (request completion, the generator's clock). " +
            "1st failure: the generator's first failed request; trip and switch back: trippedAt and switchedBackAt from the host's activation result (the same machine clock). " +
            "The generator keeps no cookies, so the proxy balances each request on its own by weight; a browser keeps the release it first got (the proxy's cookie).",
    );
}
