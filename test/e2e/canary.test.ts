import * as assert from "assert";
import * as path from "path";
import { TestHost, useHosts, hostEntry } from "../../dev/hosts";
import { pinnedSampleImages } from "../../dev/images";
import { buildArtifacts, BuiltArtifact } from "../../scripts/build-artifacts";
import { describeWatchRollback } from "../../ops/notify";
import { ProgramConfig, RealEngine } from "./engine";
import { installLoadgen, underOutsideLoad as runUnderLoad } from "./load";

/**
 * The canary and the error-rate watch on a real host, applied by the real Pulumi CLI with the
 * program inline: HAProxy's weights and its own counters (runtime API `show stat`), under load
 * from a generator outside the host, as users' requests come (dev/loadgen.py on the test runner,
 * through Docker's bridge, 8 workers, a new connection per request to a page, not /health): the
 * host's own requests, from loopback, are never judged (issue 29 finding 9). The bad release is 1.5.0-flaky: its /health is healthy (it passes the
 * gate), but 3 of every 10 other requests answer 500.
 */

const REPO = path.resolve(__dirname, "..", "..");
const BASE = "/opt/complinist";

/** "new N requests E errors (...), previous M requests ..." as the host wrote them. */
function figures(text: string): { newRequests: number; newErrors: number; previousRequests: number } {
    const m = /new (\d+) requests (\d+) errors \([0-9.]+%\), previous (\d+) requests/.exec(text);
    assert.ok(m, `no watch figures in: ${text}`);
    return { newRequests: Number(m[1]), newErrors: Number(m[2]), previousRequests: Number(m[3]) };
}

describe("canary and error-rate watch on a real host, under load", function () {
    this.timeout(900000);
    const hosts: TestHost[] = useHosts(1, { names: ["canary-1"] });
    let arts: Record<string, BuiltArtifact>;
    let driver: RealEngine;

    const host = () => hosts[0] as TestHost;
    const sh = (cmd: string) => host().run(cmd);
    const served = () => sh("curl -sS -m 5 http://127.0.0.1:5000/health || true");
    const lastRecord = () => sh(`tail -n 1 ${BASE}/revisions.log`);
    const hostStatus = async () => Object.fromEntries((await sh("/usr/local/sbin/complinist status")).split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));

    function config(version: string, extra: ProgramConfig = {}): ProgramConfig {
        const h = host();
        return {
            "complinist:version": version,
            "complinist:keepReleases": "6",
            "complinist:releases": Object.fromEntries(Object.entries(arts).map(([v, a]) => [v, { path: path.relative(REPO, a.file), sha256: a.sha256 }])),
            "complinist:hosts": [hostEntry(h)],
            "complinist:sshPrivateKey": h.privateKey,
            "complinist:service": { command: "bin/start" },
            "complinist:health": { timeoutSeconds: 20, intervalMs: 200, drainSeconds: 10 },
            ...extra,
        };
    }
    const up = (c: ProgramConfig) => driver.up(c, ["complinist:sshPrivateKey"]);
    const underLoad = <T>(step: () => Promise<T>) => runUnderLoad(host(), "/", step);

    before(async () => {
        const built = await buildArtifacts(path.join(REPO, ".build", "canary-artifacts"));
        arts = Object.fromEntries(["1.0.0", "1.1.0", "1.3.0", "1.5.0-flaky"].map((v) => [v, built.find((a) => a.version === v) as BuiltArtifact]));
        driver = new RealEngine({ stack: "canary", env: { COMPLINIST_DEPLOYER: "canary" } });
        installLoadgen(host());
    });
    after(async () => {
        await driver?.close();
    });

    it("first deploy with a canary configured: nothing live to share requests with, so no canary, and it says so", async () => {
        const r = await up(config("1.0.0", { "complinist:canary": { percent: 10, seconds: 60 } }));
        assert.strictEqual(r.error, undefined, r.output);
        assert.match(await served(), /"version": ?"1\.0\.0"/);
        assert.match(await lastRecord(), /outcome=activated previous=none .*watch=no canary: no healthy live release to share requests with/);
    });

    it("a good release under load: 10% canary while status shows it and the watch's live figures, then the full switch, 0 failed requests", async () => {
        const c = config("1.1.0", { "complinist:canary": { percent: 10, seconds: 8 } });
        let seenStatus: Record<string, string> | undefined;
        const { result, load } = await underLoad(async () => {
            const running = up(c);
            // While the canary runs, the host program's status names it and the watch's figures.
            for (let i = 0; i < 600 && seenStatus === undefined; i++) {
                const s = await hostStatus();
                if (s.canaryVersion === "1.1.0" && /^phase=canary version=1\.1\.0 .*verdict=ok canary \d+s of 8s: new \d+ requests 0 errors/.test(s.watch ?? "")) seenStatus = s;
                else await new Promise((r) => setTimeout(r, 100));
            }
            return running;
        });
        assert.strictEqual(result.error, undefined, result.output);
        assert.ok(seenStatus, "status showed the canary in progress");
        assert.strictEqual(seenStatus.liveVersion, "1.0.0", "during the canary the live release is still 1.0.0");
        assert.deepStrictEqual(load.failedByKind, {}, JSON.stringify(load));
        const record = await lastRecord();
        assert.match(record, /version=1\.1\.0\t.*outcome=activated previous=1\.0\.0 mode=started watch=10% canary \d+s of 8s: new \d+ requests 0 errors \(0\.00%\), previous \d+ requests 0 errors/);
        const f = figures(record);
        const share = f.newRequests / (f.newRequests + f.previousRequests);
        console.log(`      good canary: ${f.newRequests} of ${f.newRequests + f.previousRequests} requests went to 1.1.0 (${(100 * share).toFixed(1)}%), ${load.ok} answered, 0 failed`);
        assert.ok(f.newRequests >= 20 && share > 0.05 && share < 0.15, `the canary's share: ${JSON.stringify(f)}`);
        assert.match(JSON.stringify(result.outputs.hosts), /"watch":"10% canary \d+s of 8s: new \d+ requests 0 errors/);
        const after = await hostStatus();
        assert.deepStrictEqual([after.liveVersion, after.canaryVersion, after.watch, after.standbyVersion], ["1.1.0", "", "", ""]);
    });

    it("a release failing 30% of its pages is rolled back during the canary: the warm 1.1.0 takes everything back at once, users saw at most percent × ratio × the window", async () => {
        const c = config("1.5.0-flaky", { "complinist:canary": { percent: 10, seconds: 60 } });
        // `pulumi preview --diff` shows the plan before anything happens: the activation's canary and watch.
        const preview = await driver.preview(c, ["complinist:sshPrivateKey"]);
        assert.strictEqual(preview.error, undefined, preview.output);
        assert.match(preview.output, /~ canary +: \{\n +percent: 10\n +~ seconds: 8 => 60\n/);
        assert.match(preview.output, / watch +: \{\n +errorRateFactor: 10\n +maxErrorRatio +: 0\.01\n +minRequests +: 20\n/);
        const started = Date.now();
        const { result, load } = await underLoad(() => up(c));
        const seconds = (Date.now() - started) / 1000;
        assert.match(
            String(result.error),
            /host canary-1: version 1\.5\.0-flaky was ROLLED BACK by the error-rate watch \(canary \d+s of 60s: new \d+ requests \d+ errors \((2\d|3\d)\.\d\d%\), previous \d+ requests 0 errors \(0\.00%\); limit 1\.00%.*\)\. Switched back at once to 1\.1\.0, the warm previous release \(\d+ ms after the watch tripped\); the new instance was stopped: 1\.1\.0 serves\./,
        );
        assert.match(String(result.error), /The next pulumi up with 1\.5\.0-flaky is refused until the version changes or the stack acknowledges it/);
        // What the deploy helper's rollback notification reads from this very error.
        const notified = describeWatchRollback(String(result.error));
        assert.deepStrictEqual([notified?.hosts, notified?.from, notified?.to], [["canary-1"], "1.5.0-flaky", "1.1.0"]);
        assert.match(notified?.figures ?? "", /^canary \d+s of 60s: new \d+ requests \d+ errors/);
        assert.match(await served(), /"version": ?"1\.1\.0"/);
        const record = await lastRecord();
        assert.match(record, /version=1\.5\.0-flaky\t.*outcome=rolled-back reason=watch live=1\.1\.0 serving=1\.1\.0 seen=canary \d+s of 60s: new/);
        assert.strictEqual(await sh("systemctl is-active complinist@5001 complinist@5002 | sort | tr '\\n' ' '"), "active inactive");
        assert.strictEqual(await sh(`readlink ${BASE}/current`), "releases/1.1.0");
        const proxyConfig = await sh("cat /etc/complinist/haproxy.cfg");
        assert.ok(!proxyConfig.includes("weight"), "no canary left in the proxy's config");

        // What users saw: only the 500s of the bad release's share, bounded by percent × its ratio × the requests of the
        // window it took a share of (from the canary's config to the switch back, as the proxy counted them).
        const f = figures(record);
        const exposed = /exposed from its first request to the switch back \((\d+)s\): (\d+) requests (\d+) errors of (\d+) in all/.exec(record);
        assert.ok(exposed, record);
        const [windowSeconds, exposedRequests, exposedErrors, windowRequests] = exposed.slice(1).map(Number) as [number, number, number, number];
        const bound = Math.ceil(windowRequests * 0.1 * 0.3) + 3;
        const switchBack = /(\d+) ms after the watch tripped/.exec(String(result.error))?.[1];
        console.log(
            `      flaky canary: users saw ${load.failed} failed of ${load.ok + load.failed} requests; in the ${windowSeconds}s window the proxy sent 1.5.0-flaky ${exposedRequests} of ${windowRequests} requests ` +
                `(${exposedErrors} errors; the watch tripped at ${f.newRequests} requests ${f.newErrors} errors); bound 10% × 30% × ${windowRequests} (+3) = ${bound}; ` +
                `switched back ${switchBack} ms after the trip; the whole up took ${seconds.toFixed(1)} s of a 60 s canary`,
        );
        assert.deepStrictEqual(Object.keys(load.failedByKind), ["http-500"], JSON.stringify(load));
        assert.ok(load.failed > 0, "the generator saw the bad release's errors: the proof it looks");
        assert.ok(load.failed <= bound, `${load.failed} failed requests > bound ${bound}`);
        assert.ok(seconds < 60, "tripped long before the canary's end");
    });

    it("the next up with the same version is refused, naming the watch's verdict, and changes nothing", async () => {
        const r = await up(config("1.5.0-flaky", { "complinist:canary": { percent: 10, seconds: 60 } }));
        assert.match(String(r.error), /version 1\.5\.0-flaky is refused: the error-rate watch rolled it back on this host \(\d{4}-\d\d-\d\dT[0-9:]+Z live=1\.1\.0 serving=1\.1\.0 seen=canary \d+s of 60s: new \d+ requests \d+ errors/);
        assert.match(String(r.error), /pulumi config set --path 'complinist:acknowledgeRolledBack\[0\]' 1\.5\.0-flaky --stack canary/);
        assert.match(await lastRecord(), /version=1\.5\.0-flaky\t.*outcome=refused reason=watch-rolled-back$/);
        assert.match(await served(), /"version": ?"1\.1\.0"/);
        assert.strictEqual(await sh("systemctl is-active complinist@5001 complinist@5002 | sort | tr '\\n' ' '"), "active inactive", "nothing started");
    });

    it("a canary and a soak with too few requests say so in the record and the outputs, decide nothing, and go on; the soak's own probes never count", async () => {
        const c = config("1.3.0", { "complinist:canary": { percent: 10, seconds: 5 }, "complinist:watch": { minRequests: 3 } });
        (c["complinist:health"] as Record<string, unknown>).soakSeconds = 4;
        const r = await up(c);
        assert.strictEqual(r.error, undefined, r.output);
        assert.match(await served(), /"version": ?"1\.3\.0"/);
        assert.match(
            await lastRecord(),
            /version=1\.3\.0\t.*outcome=activated previous=1\.1\.0 .*watch=10% too few requests to judge \(0 of minRequests 3\), nothing decided: canary \d+s of 5s: .*; too few requests to judge \(0 of minRequests 3\), nothing decided: soak \d+s of 4s/,
        );
        assert.match(JSON.stringify(r.outputs.hosts), /too few requests to judge/);
    });
});

describe("canary and error-rate watch in container mode (the same activation), under load", function () {
    this.timeout(900000);
    const hosts: TestHost[] = useHosts(1, { names: ["canary-cm-1"], dockerEngine: true });
    const VERSIONS = ["1.0.0", "1.1.0", "1.5.0-flaky"];
    let pinned: Record<string, string> = {};
    let driver: RealEngine;

    const host = () => hosts[0] as TestHost;
    const sh = (cmd: string) => host().run(cmd);
    function config(version: string, extra: ProgramConfig = {}): ProgramConfig {
        const h = host();
        return {
            "complinist:mode": "container",
            "complinist:version": version,
            "complinist:releases": Object.fromEntries(VERSIONS.map((v) => [v, { image: pinned[`complinist:${v}`] }])),
            "complinist:hosts": [hostEntry(h)],
            "complinist:sshPrivateKey": h.privateKey,
            "complinist:service": { command: "bin/start" },
            "complinist:health": { timeoutSeconds: 20, intervalMs: 200, drainSeconds: 5 },
            "complinist:canary": { percent: 10, seconds: 6 },
            ...extra,
        };
    }
    const up = (c: ProgramConfig) => driver.up(c, ["complinist:sshPrivateKey"]);

    before(async () => {
        await buildArtifacts(path.join(REPO, ".build", "artifacts"));
        pinned = (await pinnedSampleImages(host(), VERSIONS)).pinned;
        installLoadgen(host());
        driver = new RealEngine({ stack: "canary-cm", env: { COMPLINIST_DEPLOYER: "canary-cm" } });
    });
    after(async () => {
        await driver?.close();
    });

    it("a good image passes its canary with 0 failed requests; a flaky one is rolled back to the running previous container, and refused next time", async () => {
        assert.strictEqual((await up(config("1.0.0"))).error, undefined);
        const good = await runUnderLoad(host(), "/", () => up(config("1.1.0")));
        assert.strictEqual(good.result.error, undefined, good.result.output);
        assert.deepStrictEqual(good.load.failedByKind, {}, JSON.stringify(good.load));
        assert.match(await sh(`tail -n 1 ${BASE}/revisions.log`), /version=1\.1\.0\t.*outcome=activated previous=1\.0\.0 .*watch=10% canary \d+s of 6s: new \d+ requests 0 errors/);

        const bad = await runUnderLoad(host(), "/", () => up(config("1.5.0-flaky", { "complinist:canary": { percent: 10, seconds: 60 } })));
        assert.match(String(bad.result.error), /version 1\.5\.0-flaky was ROLLED BACK by the error-rate watch \(canary \d+s of 60s: new \d+ requests \d+ errors/);
        assert.deepStrictEqual(Object.keys(bad.load.failedByKind), ["http-500"], JSON.stringify(bad.load));
        assert.match(await sh("curl -sS -m 5 http://127.0.0.1:5000/health"), /"version": ?"1\.1\.0"/);
        assert.strictEqual(await sh("docker ps --filter label=complinist.service=complinist --format '{{.Names}}' | wc -l"), "1", "the flaky container was stopped");
        const record = await sh(`tail -n 1 ${BASE}/revisions.log`);
        assert.match(record, /version=1\.5\.0-flaky\t.*outcome=rolled-back reason=watch live=1\.1\.0 serving=1\.1\.0/);
        console.log(`      container flaky canary: users saw ${bad.load.failed} failed of ${bad.load.ok + bad.load.failed}; ${/exposed [^;]*$/.exec(record)?.[0] ?? ""}`);

        const again = await up(config("1.5.0-flaky"));
        assert.match(String(again.error), /version 1\.5\.0-flaky is refused: the error-rate watch rolled it back on this host/);
    });
});
