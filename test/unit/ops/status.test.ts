import * as assert from "assert";
import { parseStackConfig, type StackConfig } from "../../../stacks/config";
import { collectStatus, hostStatusFrom, parseStatusArgs, parseWatchLine, statusExit, STATUS_EXIT, unreachableHost } from "../../../ops/status";
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

const b64 = (s: string) => Buffer.from(s).toString("base64");

/** What the status script prints on a healthy host running 1.1.0 live with 1.0.0 as warm standby. */
function hostOutput(over: Record<string, string> = {}): string {
    const kv: Record<string, string> = {
        now: "2025-01-12T10:00:00Z",
        "current.link": "releases/1.1.0",
        "current.path": "/opt/complinist/releases/1.1.0",
        releases: "1.1.0 1.0.0 ",
        "instance.5001.link": "../releases/1.1.0",
        "instance.5001.path": "/opt/complinist/releases/1.1.0",
        "instance.5001.active": "active",
        "instance.5002.link": "../releases/1.0.0",
        "instance.5002.path": "/opt/complinist/releases/1.0.0",
        "instance.5002.active": "active",
        "unit.complinist.service": "active",
        "unit.complinist-proxy.service": "active",
        "unit.complinist@5001.service": "active",
        "unit.complinist@5002.service": "active",
        "health.code": "200",
        "health.seconds": "0.004",
        "health.curl": "0",
        "health.body": b64(JSON.stringify({ status: "healthy", version: "1.1.0", uptime: 11525.4 })),
        "root.code": "200",
        "root.seconds": "0.006",
        "root.curl": "0",
        "lock.held": "no",
        canaryVersion: "",
        watch: "",
        "revision.1": `2025-01-10T10:00:00Z\tversion=1.0.0\tsha256=${"a".repeat(64)}\tby=ci@runner\toutcome=activated`,
        "revision.2": `2025-01-11T10:00:00Z\tversion=1.1.0\tsha256=${"b".repeat(64)}\tby=ci@runner\toutcome=activated previous=1.0.0`,
        ...over,
    };
    return Object.entries(kv).map(([k, v]) => `${k}=${v}`).join("\n") + "\n";
}

const kvOf = (text: string) => Object.fromEntries(text.trim().split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));

describe("status helper", () => {
    describe("arguments", () => {
        it("requires --stack and accepts --json, --no-pulumi and --key", () => {
            assert.deepStrictEqual(parseStatusArgs(["--stack", "prod", "--json", "--no-pulumi", "--key", "k"]), { stack: "prod", json: true, noPulumi: true, key: "k", help: false });
            assert.deepStrictEqual(parseStatusArgs(["-s", "dev"]), { stack: "dev", json: false, noPulumi: false, key: undefined, help: false });
            assert.strictEqual(parseStatusArgs(["--help"]).help, true);
            assert.throws(() => parseStatusArgs([]), /--stack <env> is required/);
            assert.throws(() => parseStatusArgs(["--stack", "prod", "--follow"]), /Unknown option '--follow'[\s\S]*usage: npm run status/);
            assert.throws(() => parseStatusArgs(["--stack", "prod; rm -rf /"]), /--stack <env> is required/);
        });
    });

    describe("judging a host", () => {
        it("a host live and healthy on the declared version has no problems; the standby is the other running instance", () => {
            const h = hostStatusFrom("web-1", "10.0.0.1:22", kvOf(hostOutput()), config());
            assert.strictEqual(h.state, "ok");
            assert.deepStrictEqual(h.problems, []);
            assert.deepStrictEqual(h.current, { link: "releases/1.1.0", version: "1.1.0" });
            assert.deepStrictEqual(h.releases, ["1.0.0", "1.1.0"]);
            assert.deepStrictEqual(h.instances.map((i) => [i.port, i.version, i.role]), [[5001, "1.1.0", "live"], [5002, "1.0.0", "standby"]]);
            assert.deepStrictEqual([h.health?.status, h.health?.version, h.health?.uptime], ["healthy", "1.1.0", 11525.4]);
            assert.strictEqual(h.revisions.length, 2);
        });

        it("another live version, or a health answer with another version, is a problem naming both versions", () => {
            const h = hostStatusFrom("web-1", "a", kvOf(hostOutput()), config("1.0.0"));
            assert.strictEqual(h.state, "unhealthy");
            assert.deepStrictEqual(h.problems, [
                "live release is 1.1.0, declared version is 1.0.0",
                "http://127.0.0.1:5000/health reports version 1.1.0, declared version is 1.0.0",
            ]);
        });

        it("an unhealthy answer, a refused connection, a non-JSON body and a missing version are each a problem", () => {
            const cases: Array<[Record<string, string>, RegExp]> = [
                [{ "health.code": "503", "health.body": b64('{"status":"unhealthy","version":"1.1.0"}') }, /answered HTTP 503 \(status unhealthy\)/],
                [{ "health.code": "200", "health.body": b64('{"status":"degraded","version":"1.1.0"}') }, /reports status degraded/],
                [{ "health.code": "000", "health.curl": "7", "health.error": "curl: (7) Failed to connect", "health.body": "" }, /no answer from http:\/\/127\.0\.0\.1:5000\/health: curl: \(7\) Failed to connect/],
                [{ "health.body": b64("OK") }, /did not answer a JSON object with a status: OK/],
                [{ "health.body": b64('{"status":"healthy"}') }, /reports no version/],
                [{ "root.code": "502" }, /http:\/\/127\.0\.0\.1:5000\/ answered HTTP 502/],
                [{ "current.link": "", "current.path": "" }, /no live release: \/opt\/complinist\/current does not exist/],
                [{ "current.link": "releases/0.9.0", "current.path": "" }, /points to releases\/0\.9\.0, which is not a release directory that exists/],
            ];
            for (const [over, expected] of cases) {
                const h = hostStatusFrom("web-1", "a", kvOf(hostOutput(over)), config());
                assert.strictEqual(h.state, "unhealthy", JSON.stringify(over));
                assert.ok(h.problems.some((p) => expected.test(p)), `${JSON.stringify(over)}: ${h.problems.join(" / ")}`);
            }
        });

        it("a slow answer and a failed unit are warnings, not failures", () => {
            const h = hostStatusFrom("web-1", "a", kvOf(hostOutput({ "root.seconds": "2.5", "unit.complinist@5002.service": "failed" })), config());
            assert.strictEqual(h.state, "ok");
            assert.deepStrictEqual(h.warnings, ["/ took 2.50 s (runbook: under 2 s)", "complinist@5002.service has failed (journalctl -u complinist@5002.service)"]);
        });

        it("names the lock holder only while the lock is held", () => {
            const held = hostStatusFrom("web-1", "a", kvOf(hostOutput({ "lock.held": "yes", "lock.owner": "ci@runner pid 42 since 2025-01-12T09:59:00Z" })), config());
            assert.deepStrictEqual(held.lock, { held: "yes", owner: "ci@runner pid 42 since 2025-01-12T09:59:00Z" });
            assert.deepStrictEqual(hostStatusFrom("web-1", "a", kvOf(hostOutput({ "lock.held": "no", "lock.owner": "stale" })), config()).lock, { held: "no" });
        });

        it("a host still on the single-unit layout (no instances, no proxy) is judged by its health alone", () => {
            const h = hostStatusFrom("web-1", "a", kvOf(hostOutput({ "instance.5001.link": "", "instance.5001.path": "", "instance.5001.active": "inactive", "instance.5002.link": "", "instance.5002.path": "", "instance.5002.active": "inactive", "unit.complinist-proxy.service": "inactive" })), config());
            assert.strictEqual(h.state, "ok");
            assert.deepStrictEqual(h.instances.map((i) => i.role), ["idle", "idle"]);
        });
    });

    describe("a canary in progress", () => {
        const FIGURES = "canary 12s of 60s: new 80 requests 0 errors (0.00%), previous 700 requests 0 errors (0.00%); limit 1.00% (10 x previous, maxErrorRatio); minRequests 20";
        /** 1.1.0 live on 5001, the declared 1.2.0 on 5002 taking a canary share, its activation holding the lock and watching. */
        const canary = (over: Record<string, string> = {}) =>
            kvOf(
                hostOutput({
                    releases: "1.1.0 1.2.0 ",
                    "instance.5002.link": "../releases/1.2.0",
                    "instance.5002.path": "/opt/complinist/releases/1.2.0",
                    "lock.held": "yes",
                    "lock.owner": "ci@runner pid 42 since 2025-01-12T09:59:00Z",
                    canaryVersion: "1.2.0",
                    watch: `phase=canary version=1.2.0 port=5002 verdict=ok ${FIGURES}`,
                    ...over,
                }),
            );

        it("is not a failure: the declared version in its canary while the one before stays live is a warning, and either may answer", () => {
            for (const answered of ["1.1.0", "1.2.0"]) {
                const h = hostStatusFrom("web-1", "a", canary({ "health.body": b64(JSON.stringify({ status: "healthy", version: answered })) }), config("1.2.0"));
                assert.strictEqual(h.state, "ok", `${answered}: ${h.problems.join(" / ")}`);
                assert.deepStrictEqual(h.warnings, ["a canary of 1.2.0 is in progress: it takes a share of new requests; 1.1.0 stays live until the full switch"]);
            }
            const h = hostStatusFrom("web-1", "a", canary(), config("1.2.0"));
            assert.strictEqual(h.canaryVersion, "1.2.0");
            assert.deepStrictEqual(h.instances.map((i) => [i.port, i.version, i.role]), [[5001, "1.1.0", "live"], [5002, "1.2.0", "canary"]]);
            assert.deepStrictEqual(h.watch, { phase: "canary", version: "1.2.0", port: 5002, verdict: "ok", figures: FIGURES });
        });

        it("still names a live release or an answer that is neither the canary nor the live one", () => {
            const other = hostStatusFrom("web-1", "a", canary({ "health.body": b64(JSON.stringify({ status: "healthy", version: "0.9.0" })) }), config("1.2.0"));
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

            const soak = hostStatusFrom("web-1", "a", canary({ canaryVersion: "", watch: "phase=soak version=1.2.0 port=5002 verdict=few soak 3s of 30s: new 4 requests 0 errors (0.00%)" }), config("1.1.0"));
            assert.match(renderStatusTable(config("1.1.0"), [soak]), /\n {2}watch {7}soak of 1\.2\.0 on :5002, too few requests to judge yet: soak 3s of 30s: new 4 requests/);
            assert.strictEqual(soak.canaryVersion, undefined);

            const quiet = renderStatusTable(config(), [hostStatusFrom("web-1", "a", kvOf(hostOutput()), config())]);
            assert.doesNotMatch(quiet, /\n {2}(canary|watch) /);
            assert.ok(!("canaryVersion" in JSON.parse(renderStatusJson(config(), [hostStatusFrom("web-1", "a", kvOf(hostOutput()), config())])).hosts[0]));
        });

        it("reads the host program's watch line by its fields, and warns about one it does not understand", () => {
            assert.deepStrictEqual(parseWatchLine("phase=soak version=1.2.0 port=5002 verdict=trip soak 4s of 30s: new 40 requests 12 errors (30.00%)"), {
                phase: "soak",
                version: "1.2.0",
                port: 5002,
                verdict: "trip",
                figures: "soak 4s of 30s: new 40 requests 12 errors (30.00%)",
            });
            assert.strictEqual(parseWatchLine("phase=canary"), undefined);
            const h = hostStatusFrom("web-1", "a", canary({ watch: "something else" }), config("1.2.0"));
            assert.strictEqual(h.watch, undefined);
            assert.ok(h.warnings.includes("the host program's watch line is not understood: something else"), h.warnings.join(" / "));
        });
    });

    describe("exit codes", () => {
        const ok = hostStatusFrom("web-1", "a", kvOf(hostOutput()), config());
        const bad = hostStatusFrom("web-2", "b", kvOf(hostOutput()), config("1.0.0"));
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
            assert.ok(t1.scripts[0]!.includes("probe health 'http://127.0.0.1:5000/health'"));
            assert.match(out[0]!, /web-1 \(10\.0\.0\.1:22\)  OK/);
            assert.match(out[0]!, /standby     1\.0\.0 on :5002/);
            assert.match(out[0]!, /health      healthy 1\.1\.0, up 3h 12m 5s · HTTP 200 in 0\.004 s/);
            assert.match(out[0]!, /sha256=bbbbbbbbbbbb…  by=ci@runner  outcome=activated previous=1\.0\.0/);
            assert.match(out[0]!, /OK: every host healthy on 1\.1\.0$/);
        });

        it("exits 1 with JSON naming the problem when one host runs another version", async () => {
            const t1 = new FakeTransport("web-1", () => ({ code: 0, stdout: hostOutput(), stderr: "" }));
            const t2 = new FakeTransport("web-2", () => ({ code: 0, stdout: hostOutput({ "current.link": "releases/1.0.0", "current.path": "/opt/complinist/releases/1.0.0" }), stderr: "" }));
            let json = "";
            const code = await runStatus(config(), [{ name: "web-1", address: "a", transport: t1 }, { name: "web-2", address: "b", transport: t2 }], { json: true }, { out: (s) => (json = s) });
            assert.strictEqual(code, STATUS_EXIT.unhealthy);
            const doc = JSON.parse(json) as { exitCode: number; declaredVersion: string; hosts: Array<{ host: string; state: string; problems: string[] }> };
            assert.strictEqual(doc.exitCode, 1);
            assert.strictEqual(doc.declaredVersion, "1.1.0");
            assert.deepStrictEqual(doc.hosts.map((h) => [h.host, h.state]), [["web-1", "ok"], ["web-2", "unhealthy"]]);
            assert.deepStrictEqual(doc.hosts[1]!.problems, ["live release is 1.0.0, declared version is 1.1.0"]);
        });

        it("exits 2 when a host cannot be reached or refuses the script, and still reports the others", async () => {
            const t1 = new FakeTransport("web-1", () => ({ code: 0, stdout: hostOutput(), stderr: "" }));
            const t2 = new FakeTransport("web-2", () => Promise.reject(new Error("cannot reach host web-2 at 10.0.0.2:22 within 15 s")));
            const t3 = new FakeTransport("web-3", () => ({ code: 1, stdout: "", stderr: "sudo: a password is required\n" }));
            const hosts = await collectStatus(config(), [
                { name: "web-1", address: "a", transport: t1 },
                { name: "web-2", address: "b", transport: t2 },
                { name: "web-3", address: "c", transport: t3 },
            ]);
            assert.deepStrictEqual(hosts.map((h) => h.state), ["ok", "unreachable", "unreachable"]);
            assert.strictEqual(statusExit(hosts), STATUS_EXIT.unreachable);
            assert.match(hosts[2]!.error ?? "", /status script failed \(exit 1\): sudo: a password is required/);
            const table = renderStatusTable(config(), hosts);
            assert.match(table, /web-2 \(b\)  UNREACHABLE\n  error       cannot reach host web-2/);
            assert.match(table, /NOT OK: web-2 unreachable, web-3 unreachable\nNext: npm run logs -- --stack staging/);
        });
    });

    it("what a release answers reaches the terminal without a control character or escape sequence, in the table and in --json", async () => {
        const evil = Object.values(HOSTILE).join("");
        const answers = [
            hostOutput({ "health.body": b64(JSON.stringify({ status: `healthy${evil}`, version: `1.1.0${evil}`, uptime: `3 days${evil}` })), "revision.3": `2025-01-12T10:00:00Z\tversion=1.1.0\tby=${evil}\toutcome=failed seen=${evil}` }),
            hostOutput({ "health.code": "503", "health.body": b64(`not json ${evil} tail`) }),
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
