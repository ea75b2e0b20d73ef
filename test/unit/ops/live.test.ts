import * as assert from "assert";
import { parseAgentState } from "../../../infra/agent/state";
import { parseStatusArgs } from "../../../ops/status";
import { History, ratePoints } from "../../../ops/live/history";
import { liveHost, sampleOf, STALE_MS, type HostPoll } from "../../../ops/live/model";
import { LivePoller } from "../../../ops/live/poller";
import { renderLiveTable } from "../../../ops/live/table";
import { ANSI, frame, runWatch } from "../../../ops/live/watch";
import type { ExecResult } from "../../../infra/transport";
import { FakeTransport } from "./fakeTransport";
import { HOSTILE, inert } from "./hostileText";
import { canaryState, idleState, liveConfig, type MutableState } from "./liveFixtures";

const T0 = Date.parse("2025-01-12T10:00:12Z");
const answer = (s: MutableState): ExecResult => ({ code: 0, stdout: JSON.stringify(s) + "\n", stderr: "" });
const poll = (s: MutableState, at = T0, extra: Partial<HostPoll> = {}): HostPoll => ({
    host: "web-1",
    address: "10.0.0.1:22",
    last: sampleOf("web-1", "10.0.0.1:22", parseAgentState(JSON.stringify(s), "web-1"), liveConfig(), at),
    ...extra,
});

describe("live view (npm run status -- --watch)", () => {
    it("reads the agent's activation phase and response times, and names the field of one that is not the agent's", () => {
        const s = parseAgentState(JSON.stringify(canaryState()), "web-1");
        assert.deepStrictEqual([s.activation?.phase, s.proxy.counts?.["5002"]?.rtimeMs], ["canary", 5]);
        assert.strictEqual(parseAgentState(JSON.stringify(idleState()), "web-1").activation, undefined, "an older agent, or no activation: no field");
        const bad = JSON.stringify(canaryState((x) => ((x.activation as { phase: unknown }).phase = 3)));
        assert.throws(() => parseAgentState(bad, "web-1"), /^Error: host web-1: .*activation\.phase should be a string, is 3/);
        const badTime = JSON.stringify(canaryState((x) => ((x.proxy.counts as Record<string, Record<string, unknown>>)["5002"]!.rtimeMs = "5 ms")));
        assert.throws(() => parseAgentState(badTime, "web-1"), /proxy\.counts\.5002\.rtimeMs should be a whole number/);
    });

    it("a host in a canary: its phase and for how long, live, canary share, each release's figures (live first), the lock holder, the watch", () => {
        const h = liveHost(poll(canaryState()), T0);
        assert.deepStrictEqual([h.state, h.stale, h.phase, h.phaseSeconds, h.ageSeconds], ["ok", false, "canary", 12, 0]);
        assert.deepStrictEqual([h.live, h.standby, h.canary], [{ version: "1.1.0", port: 5001 }, undefined, { version: "1.2.0", port: 5002, percent: 10 }]);
        assert.deepStrictEqual(h.releases, [
            { version: "1.1.0", port: 5001, role: "live", requests: 900, errors: 0, rtimeMs: 3 },
            { version: "1.2.0", port: 5002, role: "canary", requests: 100, errors: 2, rtimeMs: 5 },
        ]);
        assert.strictEqual(h.lock, "ci@runner pid 42 since 2025-01-12T09:59:00Z");
        assert.strictEqual(h.watch, "ok: canary 12s of 60s: new 100 requests 2 errors (2.00%)");
    });

    it("between deploys: idle, the warm standby, the lock free; an activation without a watch shows its own phase; a held lock without one is 'locked'", () => {
        const idle = liveHost(poll(idleState()), T0);
        assert.deepStrictEqual([idle.phase, idle.phaseSeconds, idle.live, idle.standby, idle.canary, idle.lock], ["idle", undefined, { version: "1.2.0", port: 5002 }, { version: "1.1.0", port: 5001 }, undefined, "free"]);
        const gate = liveHost(poll(canaryState((s) => ((s.watch = null), (s.activation = { id: "x", phase: "gate", step: "instance start 1.2.0 on 5002", since: "2025-01-12T10:00:09Z" })))), T0);
        assert.deepStrictEqual([gate.phase, gate.phaseSeconds], ["gate", 3]);
        const locked = liveHost(poll(canaryState((s) => ((s.watch = null), delete s.activation))), T0);
        assert.strictEqual(locked.phase, "locked");
    });

    it("a host whose last answer is old is stale with its age; a failure after it says why and keeps what was known; before any answer it is waiting", () => {
        assert.strictEqual(liveHost(poll(canaryState()), T0 + STALE_MS).stale, false);
        const old = liveHost(poll(canaryState()), T0 + STALE_MS + 2000);
        assert.deepStrictEqual([old.stale, old.ageSeconds, old.state, old.releases.length], [true, 5, "ok", 2]);
        const failed = liveHost(poll(canaryState(), T0, { error: "connection refused", errorAt: T0 + 1000 }), T0 + 1000);
        assert.deepStrictEqual([failed.state, failed.stale, failed.error, failed.releases.length], ["unreachable", true, "connection refused", 2]);
        assert.strictEqual(liveHost({ host: "web-2", address: "b" }, T0).state, "waiting");
        assert.deepStrictEqual(liveHost({ host: "web-2", address: "b", error: "refused", errorAt: T0 }, T0).error, "refused");
    });

    it("rates and error ratios come from the counters' growth over a trailing window; a counter that went down started again from zero", () => {
        const p = (t: number, requests: number, errors: number, rtimeMs?: number) => ({ t, requests, errors, ...(rtimeMs !== undefined ? { rtimeMs } : {}) });
        const r = ratePoints([p(0, 100, 0, 3), p(1000, 150, 5, 4), p(2000, 150, 5), p(3000, 20, 2, 6)], 2000);
        assert.deepStrictEqual(r.map((x) => [x.t, x.requests, x.errors, x.errorRatio, x.rate, x.rtimeMs]), [
            [1000, 50, 5, 0.1, 50, 4],
            [2000, 50, 5, 0.1, 25, null],
            // The proxy reloaded (a canary's weights): 20 requests since, 2 errors.
            [3000, 20, 2, 0.1, 10, 6],
        ]);
        assert.strictEqual(ratePoints([p(0, 5, 0), p(1000, 5, 0)], 500)[0]?.errorRatio, null, "no request in the window: no ratio");
        const h = new History(10_000);
        h.add("web-1", 0, [{ version: "1.1.0", port: 5001, role: "live", requests: 1, errors: 0 }]);
        h.add("web-1", 0, [{ version: "1.1.0", port: 5001, role: "live", requests: 9, errors: 0 }]);
        h.add("web-1", 20_000, [{ version: "1.2.0", port: 5002, role: "live", requests: 2, errors: 0 }]);
        assert.deepStrictEqual([...h.of("web-1").keys()], ["1.2.0"], "older than the kept time: gone; the same answer twice: once");
    });

    it("the table: a row per host, a line per release with requests, errors, ratio, response time and rate; stale and failing hosts say so", () => {
        const history = new History(60_000);
        history.add("web-1", T0 - 1000, liveHost(poll(canaryState((s) => (s.proxy.counts = { "5001": { requests: 880, errors: 0, rtimeMs: 3 }, "5002": { requests: 90, errors: 2, rtimeMs: 5 } }))), T0).releases);
        history.add("web-1", T0, liveHost(poll(canaryState()), T0).releases);
        const view = { stack: "staging", declaredVersion: "1.2.0", at: T0, hosts: [liveHost(poll(canaryState()), T0), liveHost(poll(idleState(), T0 - 9000, { host: "web-2", error: "the host did not answer", errorAt: T0 - 1000 }), T0)] };
        const lines = renderLiveTable(view, { width: 200, history, intervalMs: 1000 });
        assert.strictEqual(lines[0], "stack staging · declared 1.2.0 at start · 2025-01-12 10:00:12 UTC · every 1 s · Ctrl-C to quit");
        assert.match(lines[2] ?? "", /^HOST +PHASE +LIVE +STANDBY +CANARY +LOCK$/);
        assert.match(lines[3] ?? "", /^web-1 +canary 12s +1\.1\.0 :5001 +- +1\.2\.0 :5002 10% +ci@runner pid 42/);
        assert.match(lines[4] ?? "", /^ {4}1\.1\.0 :5001 +live +900 req +0 err +0\.00% +3 ms +20\.0 req\/s$/);
        assert.match(lines[5] ?? "", /^ {4}1\.2\.0 :5002 +canary +100 req +2 err +2\.00% +5 ms +10\.0 req\/s$/);
        assert.match(lines[6] ?? "", /^ {4}watch {4}ok: canary 12s of 60s/);
        assert.match(lines[7] ?? "", /^web-2 STALE 9s +idle +1\.2\.0 :5002 +1\.1\.0 :5001 +- +free$/);
        assert.ok(lines.includes("    no answer  the host did not answer (last answer 9s ago)"), lines.join("\n"));
        const narrow = renderLiveTable(view, { width: 40, history, intervalMs: 1000 });
        assert.ok(narrow.every((l) => l.length <= 40), narrow.join("\n"));
    });

    it("host text reaches the terminal without an escape sequence, control or bidi character", () => {
        const evil = Object.values(HOSTILE).join("");
        const s = canaryState((x) => {
            x.lock.owner = `ci${evil}`;
            x.watch!.figures = `canary${evil}`;
            x.activation!.phase = `gate${evil}`;
            x.watch = null;
        });
        const lines = renderLiveTable({ stack: "staging", declaredVersion: "1.2.0", at: T0, hosts: [liveHost(poll(s), T0)] }, { width: 400, intervalMs: 1000 });
        assert.ok(lines.every(inert), JSON.stringify(lines));
        assert.match(lines.join("\n"), /gate/);
    });

    it("a frame is drawn from the top left, each line cleared after it and the screen below the last", () => {
        assert.strictEqual(frame(["a", "b"]), `${ANSI.home}a${ANSI.clearLine}\nb${ANSI.clearLine}\n${ANSI.clearBelow}`);
    });

    it("polls every host in parallel, one exec at a time per host: a host that does not answer is shown stale with its age, the other goes on", async () => {
        let now = T0;
        let release: (() => void) | undefined;
        const fast = new FakeTransport("web-1", () => answer(canaryState()));
        const slow = new FakeTransport("web-2", () => new Promise<ExecResult>((resolve) => (release = () => resolve(answer(idleState())))));
        const poller = new LivePoller(liveConfig(), [{ name: "web-1", address: "a", transport: fast }, { name: "web-2", address: "b", transport: slow }], { intervalMs: 5, now: () => now });
        poller.start();
        try {
            while (fast.scripts.length < 4) await new Promise((r) => setTimeout(r, 5));
            assert.strictEqual(slow.scripts.length, 1, "no second exec while the first is in flight");
            assert.deepStrictEqual(poller.view().hosts.map((h) => h.state), ["ok", "waiting"]);
            release?.();
            while (poller.view().hosts[1]?.state !== "ok") await new Promise((r) => setTimeout(r, 5));
            assert.match(slow.scripts[0] ?? "", /state --port .5000. --health-path .\/health./);
            // web-2 hangs from here on: web-1 keeps answering, web-2's row ages.
            const hung = slow.scripts.length;
            while (slow.scripts.length === hung) await new Promise((r) => setTimeout(r, 5));
            now += STALE_MS + 4000;
            const seen = fast.scripts.length;
            while (fast.scripts.length < seen + 2) await new Promise((r) => setTimeout(r, 5));
            const [one, two] = poller.view().hosts;
            assert.deepStrictEqual([one?.stale, two?.stale, two?.ageSeconds], [false, true, 7]);
        } finally {
            poller.stop();
        }
    });

    it("redraws until stopped, then shows the cursor again and returns 0", async () => {
        const out: string[] = [];
        const poller = new LivePoller(liveConfig(), [{ name: "web-1", address: "a", transport: new FakeTransport("web-1", () => answer(canaryState())) }], { intervalMs: 5 });
        let stop: () => void = () => undefined;
        const stopped = new Promise<void>((r) => (stop = r));
        const done = runWatch(poller, { write: (t) => out.push(t), columns: 120 }, { intervalMs: 5, stopped });
        while (out.filter((t) => t.startsWith(ANSI.home) && t.includes("canary")).length < 2) await new Promise((r) => setTimeout(r, 5));
        stop();
        assert.strictEqual(await done, 0);
        assert.ok(out[0]?.startsWith(ANSI.hideCursor), JSON.stringify(out[0]));
        assert.strictEqual(out[out.length - 1], `${ANSI.showCursor}\n`);
    });

    it("--watch is an option of npm run status; with --json it is refused", () => {
        assert.strictEqual(parseStatusArgs(["--stack", "prod", "--watch"]).watch, true);
        assert.throws(() => parseStatusArgs(["--stack", "prod", "--watch", "--json"]), /--json and --watch: choose one/);
    });
});
