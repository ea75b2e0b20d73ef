import * as assert from "assert";
import { parseStackConfig, type StackConfig } from "../../../stacks/config";
import { NO_AGENT_ANSWER, parseAgentState, parseStatusAnswer, type AgentState } from "../../../infra/agent/state";
import { collectStatus, hostStatusFrom, parseStatusArgs, statusExit, STATUS_EXIT, unreachableHost } from "../../../ops/status";
import { formatUptime, renderStatusJson, renderStatusTable, runStatus } from "../../../ops/statusView";
import { FakeTransport } from "./fakeTransport";
import { HOSTILE, inert } from "./hostileText";

const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMHZNMVhu73rtnkCVV1dnWn09B3L5W/ZVMUBqhTkSJws";

function config(version = "1.1.0"): StackConfig {
    return parseStackConfig("staging", {
        "complinist:version": version,
        "complinist:releases": JSON.stringify({ "1.0.0": { path: "a.tgz", sha256: "a".repeat(64) }, "1.1.0": { path: "b.tgz", sha256: "b".repeat(64) }, "1.2.0": { path: "c.tgz", sha256: "c".repeat(64) } }),
        "complinist:hosts": JSON.stringify([
            { name: "web-1", address: "10.0.0.1", hostKey: KEY },
            { name: "web-2", address: "10.0.0.2", hostKey: KEY },
        ]),
        "complinist:sshPrivateKeyPath": "key",
        "complinist:service": JSON.stringify({ command: "bin/start" }),
    });
}

type DeepMutable<T> = T extends ReadonlyArray<infer U> ? Array<DeepMutable<U>> : T extends object ? { -readonly [K in keyof T]: DeepMutable<T[K]> } : T;
type State = DeepMutable<AgentState>;

/** What the agent's `state` prints on a healthy host running 1.1.0 live with 1.0.0 as warm standby. */
function agentState(): State {
    const release = (version: string, sha: string) => ({ version, sha256: sha.repeat(64), installedAt: "2025-01-10T09:00:00Z", commit: "0123abc" });
    return {
        v: 1,
        agent: { version: "1.0.0+0123456789ab", sha256: "d".repeat(64) },
        service: "complinist",
        baseDir: "/opt/complinist",
        runtime: "process",
        now: "2025-01-12T10:00:00Z",
        current: { link: "releases/1.1.0", path: "/opt/complinist/releases/1.1.0", version: "1.1.0" },
        releases: [release("1.0.0", "a"), release("1.1.0", "b")],
        // Not in version order: the status sorts them.
        releaseDirs: ["1.1.0", "1.0.0"],
        instances: [
            { port: 5001, link: "../releases/1.1.0", path: "/opt/complinist/releases/1.1.0", version: "1.1.0", rev: "r-1", active: "active" },
            { port: 5002, link: "../releases/1.0.0", path: "/opt/complinist/releases/1.0.0", version: "1.0.0", rev: "r-1", active: "active" },
        ],
        // Go's encoding/json writes a map's keys sorted.
        units: { "complinist-proxy.service": "active", "complinist.service": "active", "complinist@5001.service": "active", "complinist@5002.service": "active" },
        proxy: { active: true, live: 5001, canary: 0, percent: 0, counts: { "5001": { requests: 700, errors: 0 }, "5002": { requests: 0, errors: 0 } }, foreign: [] },
        live: { port: 5001, version: "1.1.0", active: "active", rev: "r-1" },
        standbyVersion: "1.0.0",
        canaryVersion: "",
        served: "1.1.0",
        health: { code: 200, seconds: 0.004, body: JSON.stringify({ status: "healthy", version: "1.1.0", uptime: 11525.4 }) },
        root: { code: 200, seconds: 0.006 },
        lock: { held: "no" },
        watch: null,
        revisions: [
            `2025-01-10T10:00:00Z\tversion=1.0.0\tsha256=${"a".repeat(64)}\tby=ci@runner\toutcome=activated`,
            `2025-01-11T10:00:00Z\tversion=1.1.0\tsha256=${"b".repeat(64)}\tby=ci@runner\toutcome=activated previous=1.0.0`,
        ],
    };
}

/** The agent's answer as it travels: one JSON line, after `change` edits the healthy host's state. */
function hostOutput(change: (s: State) => void = () => undefined): string {
    const s = agentState();
    change(s);
    return JSON.stringify(s) + "\n";
}

/** The answer as ops/status.ts reads it: through the checks. */
const stateOf = (change?: (s: State) => void) => parseAgentState(hostOutput(change), "web-1");

describe("status helper", () => {
    describe("arguments", () => {
        it("requires --stack and accepts --json, --no-pulumi and --key", () => {
            assert.deepStrictEqual(parseStatusArgs(["--stack", "prod", "--json", "--no-pulumi", "--key", "k"]), { stack: "prod", json: true, watch: false, noPulumi: true, key: "k", help: false });
            assert.deepStrictEqual(parseStatusArgs(["-s", "dev"]), { stack: "dev", json: false, watch: false, noPulumi: false, key: undefined, help: false });
            assert.strictEqual(parseStatusArgs(["--help"]).help, true);
            assert.throws(() => parseStatusArgs([]), /--stack <env> is required/);
            assert.throws(() => parseStatusArgs(["--stack", "prod", "--follow"]), /Unknown option '--follow'[\s\S]*usage: npm run status/);
            assert.throws(() => parseStatusArgs(["--stack", "prod; rm -rf /"]), /--stack <env> is required/);
        });
    });

    describe("the agent's answer", () => {
        it("is read only when it is the agent's: every field it relies on is checked, and the error names the host and the field", () => {
            assert.strictEqual(parseAgentState(hostOutput(), "web-1").current.version, "1.1.0");
            const refused: Array<[string, RegExp]> = [
                ["not json", /^Error: host web-1: the agent's state did not answer JSON: "not json"/],
                ["[1]", /^Error: host web-1: the agent's state did not answer a JSON object/],
                [hostOutput((s) => ((s as { v: number }).v = 2)), /^Error: host web-1: the agent's state answered protocol version 2, not 1/],
                [hostOutput((s) => delete (s as Partial<State>).current), /^Error: host web-1: .*current should be an object, is nothing/],
                [hostOutput((s) => ((s.health as { code: unknown }).code = "200")), /^Error: host web-1: .*health\.code should be a whole number, is "200"/],
                [hostOutput((s) => ((s.instances[1] as { port: unknown }).port = "5002")), /^Error: host web-1: .*instances\[1\]\.port should be a whole number/],
                [hostOutput((s) => ((s.lock as { held: string }).held = "maybe")), /^Error: host web-1: .*lock\.held should be yes, no or unknown, is "maybe"/],
                [hostOutput((s) => ((s.units as Record<string, unknown>)["complinist.service"] = 1)), /^Error: host web-1: .*units\.complinist\.service should be a string, is 1/],
                [hostOutput((s) => ((s as { watch: unknown }).watch = "phase=canary version=1.2.0")), /^Error: host web-1: .*watch should be an object/],
                [hostOutput((s) => ((s as { revisions: unknown }).revisions = "one line")), /^Error: host web-1: .*revisions should be an array/],
                [hostOutput((s) => (s.releaseDirs = [1 as unknown as string])), /^Error: host web-1: .*releaseDirs\[0\] should be a string, is 1/],
                [NO_AGENT_ANSWER, /^Error: host web-1: .*agent should be an object, is null/],
            ];
            for (const [answer, expected] of refused) assert.throws(() => parseAgentState(answer, "web-1"), expected, answer.slice(0, 80));
        });

        it("the status script's no-agent answer is told apart from a state", () => {
            assert.strictEqual(parseStatusAnswer(`${NO_AGENT_ANSWER}\n`, "web-1"), null);
            assert.strictEqual(parseStatusAnswer(hostOutput(), "web-1")?.current.link, "releases/1.1.0");
            assert.throws(() => parseStatusAnswer('{"v":1,"agent":null,"current":{}}', "web-1"), /^Error: host web-1: .*names no agent but has current/);
            assert.throws(() => parseStatusAnswer('{"v":2,"agent":null}', "web-1"), /protocol version 2/);
        });
    });

    describe("judging a host", () => {
        it("a host live and healthy on the declared version has no problems; the standby is the other running instance", () => {
            const h = hostStatusFrom("web-1", "10.0.0.1:22", stateOf(), config());
            assert.strictEqual(h.state, "ok");
            assert.deepStrictEqual(h.problems, []);
            assert.deepStrictEqual(h.warnings, []);
            assert.strictEqual(h.checkedAt, "2025-01-12T10:00:00Z");
            assert.deepStrictEqual(h.current, { link: "releases/1.1.0", version: "1.1.0" });
            assert.deepStrictEqual(h.releases, ["1.0.0", "1.1.0"]);
            assert.deepStrictEqual(h.instances.map((i) => [i.port, i.version, i.role]), [[5001, "1.1.0", "live"], [5002, "1.0.0", "standby"]]);
            assert.deepStrictEqual([h.health?.status, h.health?.version, h.health?.uptime], ["healthy", "1.1.0", 11525.4]);
            assert.deepStrictEqual([h.root?.code, h.root?.seconds], [200, 0.006]);
            assert.strictEqual(h.revisions.length, 2);
            assert.deepStrictEqual(Object.keys(h.units), ["complinist.service", "complinist-proxy.service", "complinist@5001.service", "complinist@5002.service"], "the umbrella, the proxy, the instances: not the agent's sorted order");
        });

        it("a host that failed over to its standby by itself is a problem naming the failover and the declared version", () => {
            const h = hostStatusFrom("web-1", "a", stateOf((s) => (s.failedOver = "2025-01-12T09:59:00Z to 1.1.0: outcome=failed-over reason=live-down")), config());
            assert.strictEqual(h.state, "unhealthy");
            assert.deepStrictEqual(h.problems, ["the host failed over to its warm standby by itself (2025-01-12T09:59:00Z to 1.1.0: outcome=failed-over reason=live-down), away from the declared 1.1.0"]);
            assert.strictEqual(hostStatusFrom("web-1", "a", stateOf((s) => (s.failedOver = "")), config()).state, "ok", "an agent with no failover to report");
        });

        it("another live version, or a health answer with another version, is a problem naming both versions", () => {
            const h = hostStatusFrom("web-1", "a", stateOf(), config("1.0.0"));
            assert.strictEqual(h.state, "unhealthy");
            assert.deepStrictEqual(h.problems, [
                "live release is 1.1.0, declared version is 1.0.0",
                "http://127.0.0.1:5000/health reports version 1.1.0, declared version is 1.0.0",
            ]);
        });

        it("an unhealthy answer, a refused connection, a non-JSON body and a missing version are each a problem", () => {
            const refused = 'Get "http://127.0.0.1:5000/health": dial tcp 127.0.0.1:5000: connect: connection refused';
            const cases: Array<[string, (s: State) => void, RegExp]> = [
                ["503", (s) => (s.health = { code: 503, seconds: 0.01, body: '{"status":"unhealthy","version":"1.1.0"}' }), /answered HTTP 503 \(status unhealthy\)/],
                ["degraded", (s) => (s.health = { code: 200, seconds: 0.01, body: '{"status":"degraded","version":"1.1.0"}' }), /reports status degraded/],
                ["refused", (s) => (s.health = { code: 0, seconds: 0.001, error: refused }), /^no answer from http:\/\/127\.0\.0\.1:5000\/health: Get "http:\/\/127\.0\.0\.1:5000\/health": dial tcp .*connection refused$/],
                ["no code, no error", (s) => (s.health = { code: 0, seconds: 0.001 }), /^no answer from http:\/\/127\.0\.0\.1:5000\/health: no HTTP answer$/],
                ["not JSON", (s) => (s.health!.body = "OK"), /did not answer a JSON object with a status: OK/],
                ["empty", (s) => delete s.health!.body, /did not answer a JSON object with a status: \(empty\)/],
                ["no version", (s) => (s.health!.body = '{"status":"healthy"}'), /reports no version/],
                ["not probed", (s) => delete s.health, /^the host agent did not probe http:\/\/127\.0\.0\.1:5000\/health$/],
                ["root 502", (s) => (s.root!.code = 502), /http:\/\/127\.0\.0\.1:5000\/ answered HTTP 502/],
                ["root refused", (s) => (s.root = { code: 0, seconds: 0.001, error: "connection refused" }), /^no answer from http:\/\/127\.0\.0\.1:5000\/: connection refused$/],
                ["no current", (s) => (s.current = { link: "", path: "", version: "" }), /no live release: \/opt\/complinist\/current does not exist/],
                ["dangling", (s) => (s.current = { link: "releases/0.9.0", path: "", version: "" }), /points to releases\/0\.9\.0, which is not a release directory that exists/],
                ["outside releases/", (s) => (s.current = { link: "/tmp/x", path: "/tmp/x", version: "x" }), /points to \/tmp\/x, which is not a release directory that exists/],
            ];
            for (const [what, change, expected] of cases) {
                const h = hostStatusFrom("web-1", "a", stateOf(change), config());
                assert.strictEqual(h.state, "unhealthy", what);
                assert.ok(h.problems.some((p) => expected.test(p)), `${what}: ${h.problems.join(" / ")}`);
            }
        });

        it("a slow answer and a failed unit are warnings, not failures", () => {
            const h = hostStatusFrom("web-1", "a", stateOf((s) => ((s.root!.seconds = 2.5), (s.units["complinist@5002.service"] = "failed"))), config());
            assert.strictEqual(h.state, "ok");
            assert.deepStrictEqual(h.warnings, ["/ took 2.50 s (runbook: under 2 s)", "complinist@5002.service has failed (journalctl -u complinist@5002.service)"]);
        });

        it("names the lock holder only while the lock is held", () => {
            const held = hostStatusFrom("web-1", "a", stateOf((s) => (s.lock = { held: "yes", owner: "ci@runner pid 42 since 2025-01-12T09:59:00Z" })), config());
            assert.deepStrictEqual(held.lock, { held: "yes", owner: "ci@runner pid 42 since 2025-01-12T09:59:00Z" });
            assert.deepStrictEqual(hostStatusFrom("web-1", "a", stateOf((s) => (s.lock = { held: "yes" })), config()).lock, { held: "yes", owner: "unknown (no owner file)" });
            assert.deepStrictEqual(hostStatusFrom("web-1", "a", stateOf((s) => (s.lock = { held: "no", owner: "stale" })), config()).lock, { held: "no" });
            assert.deepStrictEqual(hostStatusFrom("web-1", "a", stateOf((s) => (s.lock = { held: "unknown" })), config()).lock, { held: "unknown" });
        });

        it("a listener beside the proxy on the service port (IPv6, another address) makes the host unhealthy, naming it", () => {
            const squatter = "pid 77 (node, uid 1000, cgroup /user.slice/user-1000.slice/session-1.scope)";
            const h = hostStatusFrom("web-1", "a", stateOf((s) => void (s.proxy = { ...s.proxy, foreign: [squatter] })), config());
            assert.strictEqual(h.state, "unhealthy");
            assert.deepStrictEqual(h.problems, [`port 5000 is also held by ${squatter}, not only by complinist-proxy.service`]);
            assert.throws(() => stateOf((s) => void (s.proxy = { ...s.proxy, foreign: "x" as unknown as string[] })), /proxy\.foreign/);
        });

        it("a host still on the single-unit layout (no instances, no proxy) is judged by its health alone", () => {
            const h = hostStatusFrom(
                "web-1",
                "a",
                stateOf((s) => {
                    s.instances = s.instances.map((i) => ({ ...i, link: "", path: "", version: "", rev: "", active: "inactive" }));
                    s.units["complinist-proxy.service"] = "inactive";
                    s.proxy = { active: false, live: 0, canary: 0, percent: 0, foreign: [] };
                    s.live = { port: 0, version: "", active: "inactive", rev: "" };
                }),
                config(),
            );
            assert.strictEqual(h.state, "ok");
            assert.deepStrictEqual(h.instances.map((i) => i.role), ["idle", "idle"]);
        });

        it("a host without the agent reports nothing live and the agent's absence as its problem", () => {
            const h = hostStatusFrom("web-1", "a", parseStatusAnswer(NO_AGENT_ANSWER, "web-1"), config());
            assert.strictEqual(h.state, "unhealthy");
            assert.deepStrictEqual(h.problems, ["the host agent is not installed (/usr/local/sbin/complinist): run pulumi up"]);
            assert.deepStrictEqual([h.current, h.health, h.root, h.lock, h.releases, h.instances, h.units, h.revisions], [undefined, undefined, undefined, undefined, [], [], {}, []]);
            const table = renderStatusTable(config(), [h]);
            assert.match(table, /web-1 \(a\)  UNHEALTHY\n {2}live {8}none \(no current link\)\n/);
            assert.match(table, /\n {2}health {6}not probed/);
            assert.match(table, /\n {2}PROBLEM {5}the host agent is not installed \(\/usr\/local\/sbin\/complinist\): run pulumi up\n/);
            assert.strictEqual(statusExit([h]), STATUS_EXIT.unhealthy);
        });
    });

    describe("a canary in progress", () => {
        const FIGURES = "canary 12s of 60s: new 80 requests 0 errors (0.00%), previous 700 requests 0 errors (0.00%); limit 1.00% (10 x previous, maxErrorRatio); minRequests 20";
        /** 1.1.0 live on 5001, the declared 1.2.0 on 5002 taking a canary share, its activation holding the lock and watching. */
        const canary = (change: (s: State) => void = () => undefined) =>
            stateOf((s) => {
                s.releaseDirs = ["1.1.0", "1.2.0"];
                s.instances[1] = { port: 5002, link: "../releases/1.2.0", path: "/opt/complinist/releases/1.2.0", version: "1.2.0", rev: "r-2", active: "active" };
                s.proxy = { ...s.proxy, canary: 5002, percent: 10 };
                s.standbyVersion = "";
                s.lock = { held: "yes", owner: "ci@runner pid 42 since 2025-01-12T09:59:00Z" };
                s.canaryVersion = "1.2.0";
                s.watch = { phase: "canary", version: "1.2.0", port: 5002, verdict: "ok", figures: FIGURES };
                change(s);
            });
        const answering = (version: string) => (s: State) => (s.health!.body = JSON.stringify({ status: "healthy", version }));

        it("is not a failure: the declared version in its canary while the one before stays live is a warning, and either may answer", () => {
            for (const answered of ["1.1.0", "1.2.0"]) {
                const h = hostStatusFrom("web-1", "a", canary(answering(answered)), config("1.2.0"));
                assert.strictEqual(h.state, "ok", `${answered}: ${h.problems.join(" / ")}`);
                assert.deepStrictEqual(h.warnings, ["a canary of 1.2.0 is in progress: it takes a share of new requests; 1.1.0 stays live until the full switch"]);
            }
            const h = hostStatusFrom("web-1", "a", canary(), config("1.2.0"));
            assert.strictEqual(h.canaryVersion, "1.2.0");
            assert.deepStrictEqual(h.instances.map((i) => [i.port, i.version, i.role]), [[5001, "1.1.0", "live"], [5002, "1.2.0", "canary"]]);
            assert.deepStrictEqual(h.watch, { phase: "canary", version: "1.2.0", port: 5002, verdict: "ok", figures: FIGURES });
        });

        it("still names a live release or an answer that is neither the canary nor the live one", () => {
            const other = hostStatusFrom("web-1", "a", canary(answering("0.9.0")), config("1.2.0"));
            assert.deepStrictEqual(other.problems, ["http://127.0.0.1:5000/health reports version 0.9.0, declared version is 1.2.0"]);
            const declaredElsewhere = hostStatusFrom("web-1", "a", canary(), config("1.0.0"));
            assert.deepStrictEqual(declaredElsewhere.problems, ["live release is 1.1.0, declared version is 1.0.0"], "the canary is not the declared version: the live one is still judged");
            assert.strictEqual(declaredElsewhere.state, "unhealthy");
        });

        it("shows the canary and the watch's live figures in the table and the JSON, and neither when there is none", async () => {
            const h = hostStatusFrom("web-1", "10.0.0.1:22", canary(), config("1.2.0"));
            const table = renderStatusTable(config("1.2.0"), [h]);
            assert.match(table, /\n {2}standby {5}none\n {2}canary {6}1\.2\.0 on :5002 takes a share of new requests \(an activation in progress; the full switch follows\)\n/);
            assert.ok(table.includes(`\n  watch       canary of 1.2.0 on :5002, under the limit so far: ${FIGURES}\n`), table);
            assert.match(table, /\n {2}warning {5}a canary of 1\.2\.0 is in progress/);
            assert.match(table, /OK: every host healthy on 1\.2\.0$/);
            const doc = JSON.parse(renderStatusJson(config("1.2.0"), [h])) as { exitCode: number; hosts: Array<{ canaryVersion?: string; watch?: unknown }> };
            assert.strictEqual(doc.exitCode, STATUS_EXIT.ok);
            assert.deepStrictEqual([doc.hosts[0]?.canaryVersion, doc.hosts[0]?.watch], ["1.2.0", { phase: "canary", version: "1.2.0", port: 5002, verdict: "ok", figures: FIGURES }]);

            const soak = hostStatusFrom(
                "web-1",
                "a",
                canary((s) => {
                    s.canaryVersion = "";
                    s.proxy = { ...s.proxy, live: 5002, canary: 0, percent: 0 };
                    s.watch = { phase: "soak", version: "1.2.0", port: 5002, verdict: "few", figures: "soak 3s of 30s: new 4 requests 0 errors (0.00%)" };
                }),
                config("1.1.0"),
            );
            assert.match(renderStatusTable(config("1.1.0"), [soak]), /\n {2}watch {7}soak of 1\.2\.0 on :5002, too few requests to judge yet: soak 3s of 30s: new 4 requests/);
            assert.strictEqual(soak.canaryVersion, undefined);

            const quiet = renderStatusTable(config(), [hostStatusFrom("web-1", "a", stateOf(), config())]);
            assert.doesNotMatch(quiet, /\n {2}(canary|watch) /);
            assert.ok(!("canaryVersion" in JSON.parse(renderStatusJson(config(), [hostStatusFrom("web-1", "a", stateOf(), config())])).hosts[0]));
        });

        it("takes the agent's watch by its fields, and warns about one that names no phase, release or port", () => {
            const trip = { phase: "soak", version: "1.2.0", port: 5002, verdict: "trip", figures: "soak 4s of 30s: new 40 requests 12 errors (30.00%)" };
            assert.deepStrictEqual(hostStatusFrom("web-1", "a", canary((s) => (s.watch = { ...trip })), config("1.2.0")).watch, trip);
            const empty = { phase: "", version: "", port: 0, verdict: "", figures: "" };
            const h = hostStatusFrom("web-1", "a", canary((s) => (s.watch = empty)), config("1.2.0"));
            assert.strictEqual(h.watch, undefined);
            assert.ok(h.warnings.includes(`the host agent's watch is not understood: ${JSON.stringify(empty)}`), h.warnings.join(" / "));
        });
    });

    describe("exit codes", () => {
        const ok = hostStatusFrom("web-1", "a", stateOf(), config());
        const bad = hostStatusFrom("web-2", "b", stateOf(), config("1.0.0"));
        const gone = unreachableHost("web-2", "b", "cannot reach");
        it("0 all healthy, 1 one unhealthy, 2 one unreachable (also next to an unhealthy one)", () => {
            assert.strictEqual(statusExit([ok, ok]), STATUS_EXIT.ok);
            assert.strictEqual(statusExit([ok, bad]), STATUS_EXIT.unhealthy);
            assert.strictEqual(statusExit([ok, gone]), STATUS_EXIT.unreachable);
            assert.strictEqual(statusExit([bad, gone]), STATUS_EXIT.unreachable);
        });
    });

    describe("against fake hosts", () => {
        it("runs one read-only script per host and exits 0 when both are healthy on the declared version", async () => {
            const t1 = new FakeTransport("web-1", () => ({ code: 0, stdout: hostOutput(), stderr: "" }));
            const t2 = new FakeTransport("web-2", () => ({ code: 0, stdout: hostOutput(), stderr: "" }));
            const out: string[] = [];
            const code = await runStatus(config(), [{ name: "web-1", address: "10.0.0.1:22", transport: t1 }, { name: "web-2", address: "10.0.0.2:22", transport: t2 }], { json: false }, { out: (s) => out.push(s) });
            assert.strictEqual(code, STATUS_EXIT.ok);
            assert.strictEqual(t1.scripts.length, 1);
            assert.ok(t1.scripts[0]!.includes("'/usr/local/sbin/complinist' state --port '5000' --health-path '/health'"), t1.scripts[0]);
            assert.match(out[0]!, /web-1 \(10\.0\.0\.1:22\)  OK/);
            assert.match(out[0]!, /standby     1\.0\.0 on :5002/);
            assert.match(out[0]!, /health      healthy 1\.1\.0, up 3h 12m 5s · HTTP 200 in 0\.004 s/);
            assert.match(out[0]!, /sha256=bbbbbbbbbbbb…  by=ci@runner  outcome=activated previous=1\.0\.0/);
            assert.match(out[0]!, /OK: every host healthy on 1\.1\.0$/);
        });

        it("exits 1 with JSON naming the problem when one host runs another version", async () => {
            const t1 = new FakeTransport("web-1", () => ({ code: 0, stdout: hostOutput(), stderr: "" }));
            const t2 = new FakeTransport("web-2", () => ({ code: 0, stdout: hostOutput((s) => (s.current = { link: "releases/1.0.0", path: "/opt/complinist/releases/1.0.0", version: "1.0.0" })), stderr: "" }));
            let json = "";
            const code = await runStatus(config(), [{ name: "web-1", address: "a", transport: t1 }, { name: "web-2", address: "b", transport: t2 }], { json: true }, { out: (s) => (json = s) });
            assert.strictEqual(code, STATUS_EXIT.unhealthy);
            const doc = JSON.parse(json) as { exitCode: number; declaredVersion: string; hosts: Array<{ host: string; state: string; problems: string[] }> };
            assert.strictEqual(doc.exitCode, 1);
            assert.strictEqual(doc.declaredVersion, "1.1.0");
            assert.deepStrictEqual(doc.hosts.map((h) => [h.host, h.state]), [["web-1", "ok"], ["web-2", "unhealthy"]]);
            assert.deepStrictEqual(doc.hosts[1]!.problems, ["live release is 1.0.0, declared version is 1.1.0"]);
        });

        it("exits 1 naming the missing agent when a host has none, and still reports the others", async () => {
            const t1 = new FakeTransport("web-1", () => ({ code: 0, stdout: hostOutput(), stderr: "" }));
            const t2 = new FakeTransport("web-2", () => ({ code: 0, stdout: `${NO_AGENT_ANSWER}\n`, stderr: "" }));
            let json = "";
            const code = await runStatus(config(), [{ name: "web-1", address: "a", transport: t1 }, { name: "web-2", address: "b", transport: t2 }], { json: true }, { out: (s) => (json = s) });
            assert.strictEqual(code, STATUS_EXIT.unhealthy);
            const doc = JSON.parse(json) as { hosts: Array<{ host: string; state: string; problems: string[] }> };
            assert.deepStrictEqual(doc.hosts.map((h) => [h.host, h.state, h.problems]), [["web-1", "ok", []], ["web-2", "unhealthy", ["the host agent is not installed (/usr/local/sbin/complinist): run pulumi up"]]]);
        });

        it("exits 2 when a host cannot be reached, refuses the script or answers what the agent does not print, and still reports the others", async () => {
            const t1 = new FakeTransport("web-1", () => ({ code: 0, stdout: hostOutput(), stderr: "" }));
            const t2 = new FakeTransport("web-2", () => Promise.reject(new Error("cannot reach host web-2 at 10.0.0.2:22 within 15 s")));
            const t3 = new FakeTransport("web-3", () => ({ code: 1, stdout: "", stderr: "sudo: a password is required\n" }));
            const t4 = new FakeTransport("web-4", () => ({ code: 0, stdout: hostOutput((s) => delete (s as Partial<State>).lock), stderr: "" }));
            const t5 = new FakeTransport("web-5", () => ({ code: 0, stdout: "current=1.1.0\nlivePort=5001\n", stderr: "" }));
            const hosts = await collectStatus(config(), [
                { name: "web-1", address: "a", transport: t1 },
                { name: "web-2", address: "b", transport: t2 },
                { name: "web-3", address: "c", transport: t3 },
                { name: "web-4", address: "d", transport: t4 },
                { name: "web-5", address: "e", transport: t5 },
            ]);
            assert.deepStrictEqual(hosts.map((h) => h.state), ["ok", "unreachable", "unreachable", "unreachable", "unreachable"]);
            assert.strictEqual(statusExit(hosts), STATUS_EXIT.unreachable);
            assert.match(hosts[2]!.error ?? "", /status script failed \(exit 1\): sudo: a password is required/);
            assert.match(hosts[3]!.error ?? "", /^host web-4: the agent's state answer is not what the agent prints: lock should be an object, is nothing$/);
            assert.match(hosts[4]!.error ?? "", /^host web-5: the agent's state did not answer JSON: "current=1\.1\.0\\nlivePort=5001\\n"$/);
            const table = renderStatusTable(config(), hosts);
            assert.match(table, /web-2 \(b\)  UNREACHABLE\n  error       cannot reach host web-2/);
            assert.match(table, /NOT OK: web-2 unreachable, web-3 unreachable, web-4 unreachable, web-5 unreachable\nNext: npm run logs -- --stack staging/);
        });
    });

    it("what a release answers reaches the terminal without a control character or escape sequence, in the table and in --json", async () => {
        const evil = Object.values(HOSTILE).join("");
        const answers = [
            hostOutput((s) => {
                s.health!.body = JSON.stringify({ status: `healthy${evil}`, version: `1.1.0${evil}`, uptime: `3 days${evil}` });
                s.revisions.push(`2025-01-12T10:00:00Z\tversion=1.1.0\tby=${evil}\toutcome=failed seen=${evil}`);
            }),
            hostOutput((s) => (s.health = { code: 503, seconds: 0.01, body: `not json ${evil} tail` })),
        ];
        const targets = answers.map((stdout, i) => ({ name: `web-${i + 1}`, address: "a", transport: new FakeTransport(`web-${i + 1}`, () => ({ code: 0, stdout, stderr: "" })) }));
        for (const json of [false, true]) {
            const out: string[] = [];
            await runStatus(config(), targets, { json }, { out: (s) => out.push(s) });
            const lines = out.join("\n").split("\n");
            for (const line of lines) assert.ok(inert(line), `${json ? "json" : "table"}: ${JSON.stringify(line)}`);
            if (!json) {
                assert.match(out[0]!, /health      healthy 1\.1\.0, up 3 days · HTTP 200/, "the text around the sequences is kept");
                assert.match(out[0]!, /not JSON: not json /);
            } else {
                assert.ok(JSON.parse(out[0]!), "the document stays valid JSON");
            }
        }
    });

    it("shows uptime the way an operator reads it", () => {
        assert.strictEqual(formatUptime(5), "5s");
        assert.strictEqual(formatUptime(3725.9), "1h 2m 5s");
        assert.strictEqual(formatUptime(2 * 86400 + 3600), "2d 1h 0m");
        assert.strictEqual(formatUptime(0), "0s");
        assert.strictEqual(formatUptime("3 days"), "3 days");
        assert.strictEqual(formatUptime(undefined), "unknown");
    });
});
