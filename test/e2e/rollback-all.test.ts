import * as assert from "assert";
import * as http from "http";
import * as path from "path";
import type { AddressInfo } from "net";
import { TestHost, useHosts, hostEntry } from "../../dev/hosts";
import { brokenWhereArtifact } from "../integration/artifacts";
import { buildArtifacts, BuiltArtifact } from "../../scripts/build-artifacts";
import { deploy, DEPLOY_EXIT, type Reporting } from "../../ops/deploy";
import { webhookNotifier } from "../../ops/notify";
import { FakeIo } from "../unit/ops/fakes";
import { ProgramConfig, RealEngine } from "./engine";
import { installLoadgen, type Load, underLoad } from "./load";

/**
 * All hosts or none (rollout.onFailure), on three real hosts in three batches, through the real
 * engine and the deploy helper operators run (ops/deploy.ts, its webhook on a local HTTP server):
 * 2.0.0 is healthy on rb-1 and rb-2 and fails its gate on rb-3 (a marker file there, see
 * brokenWhereArtifact). With rollback-all, rb-1 and rb-2 go back to their warm 1.0.0 under load
 * with no failed request; with halt they keep the new release.
 */

const REPO = path.resolve(__dirname, "..", "..");
const BASE = "/opt/complinist";
const MARKER = "/etc/complinist-e2e-broken";
const OUT = path.join(REPO, ".build", "rollback-all-artifacts");

describe("all hosts or none: three hosts in three batches, the third broken", function () {
    this.timeout(1800000);
    const hosts: TestHost[] = useHosts(3, { names: ["rb-1", "rb-2", "rb-3"] });
    let arts: Record<string, { file: string; sha256: string }>;
    let driver: RealEngine;
    let hook: http.Server;
    const posted: string[] = [];
    let hookUrl = "";

    const h = (i: number) => hosts[i] as TestHost;
    const served = async (i: number) => {
        const body = await h(i).run("curl -sS -m 5 http://127.0.0.1:5000/health || true");
        return /"version": ?"([^"]+)"/.exec(body)?.[1] ?? `nothing (${body})`;
    };
    const servedAll = async () => [await served(0), await served(1), await served(2)];
    const revisions = (i: number, n: number) => h(i).run(`tail -n ${n} ${BASE}/revisions.log`);
    const standby = async (i: number) => /^standbyVersion=(.*)$/m.exec(await h(i).run("/usr/local/sbin/complinist status"))?.[1];

    function config(version: string, rollbackVersion: string | undefined, extra: ProgramConfig = {}): ProgramConfig {
        return {
            "complinist:version": version,
            "complinist:rollbackVersion": rollbackVersion,
            "complinist:keepReleases": "4",
            "complinist:releases": Object.fromEntries(Object.entries(arts).map(([v, a]) => [v, { path: path.relative(REPO, a.file), sha256: a.sha256 }])),
            "complinist:hosts": hosts.map(hostEntry),
            "complinist:sshPrivateKey": h(0).privateKey,
            "complinist:service": { command: "bin/start" },
            "complinist:health": { timeoutSeconds: 8, intervalMs: 300, drainSeconds: 10 },
            "complinist:rollout": { batchSize: 1 },
            ...extra,
        };
    }
    const SECRET = ["complinist:sshPrivateKey"];

    /** `npm run deploy -- --yes` in process, on this stack: its terminal lines, notifications and dotenv record. */
    async function deployHelper(c: ProgramConfig): Promise<{ code: number; io: FakeIo; record: string }> {
        await driver.setConfig(c, SECRET);
        const io = new FakeIo(false);
        const files: Record<string, string> = {};
        const reporting: Reporting = {
            notifier: webhookNotifier(hookUrl, (w) => io.err(w)),
            commit: "e2e0000",
            now: () => new Date().toISOString(),
            writeFile: (f, t) => void (files[f] = t),
        };
        const code = await deploy(await driver.handle(), { yes: true, dotenv: "deploy.env" }, io, reporting);
        return { code, io, record: files["deploy.env"] ?? "" };
    }

    /** Load through the service port of rb-1 and rb-2 at once, for the whole of `step`. */
    async function underLoadOn12<T>(step: () => Promise<T>): Promise<{ result: T; loads: Load[] }> {
        const outer = await underLoad(h(0), "/health", () => underLoad(h(1), "/health", step));
        return { result: outer.result.result, loads: [outer.load, outer.result.load] };
    }

    before(async () => {
        const built = await buildArtifacts(OUT);
        arts = { "1.0.0": built.find((a: BuiltArtifact) => a.version === "1.0.0") as BuiltArtifact };
        arts["2.0.0"] = brokenWhereArtifact(OUT, "2.0.0", MARKER);
        arts["3.0.0"] = brokenWhereArtifact(OUT, "3.0.0", MARKER);
        hook = http.createServer((req, res) => {
            let body = "";
            req.on("data", (c: Buffer) => (body += c.toString("utf8")));
            req.on("end", () => {
                posted.push((JSON.parse(body) as { text: string }).text);
                res.end("ok");
            });
        });
        await new Promise<void>((r) => hook.listen(0, "127.0.0.1", r));
        hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`;
        driver = new RealEngine({ stack: "rollbackall", env: { COMPLINIST_DEPLOYER: "rball" } });
        for (const i of [0, 1]) installLoadgen(h(i));
        await h(2).run(`touch ${MARKER}`);
    });
    after(async () => {
        await driver?.close();
        await new Promise<void>((r) => (hook ? hook.close(() => r()) : r()));
    });

    it("first deploy: 1.0.0 on every host, one batch after the other", async () => {
        const r = await driver.up(config("1.0.0", undefined), SECRET);
        assert.strictEqual(r.error, undefined, r.output);
        assert.deepStrictEqual(await servedAll(), ["1.0.0", "1.0.0", "1.0.0"]);
    });

    it("rollback-all (the default): rb-3 fails its gate, rb-1 and rb-2 go back to their warm 1.0.0 with no failed request, and the error, the notification and the record say the fleet is on 1.0.0", async () => {
        posted.length = 0;
        const { result, loads } = await underLoadOn12(() => deployHelper(config("2.0.0", "1.0.0")));
        const { code, io, record } = result;
        assert.strictEqual(code, DEPLOY_EXIT.upFailed, io.text);
        const text = io.text;
        assert.match(text, /host rb-3: version 2\.0\.0 failed its gate/);
        assert.match(text, /All hosts or none \(rollout\.onFailure: rollback-all\): rb-3 failed, so every host this update switched goes back to its warm standby:/);
        assert.match(text, /rb-1: switched back to 1\.0\.0, its warm standby \(2\.0\.0 stays warm\)/);
        assert.match(text, /rb-2: switched back to 1\.0\.0, its warm standby \(2\.0\.0 stays warm\)/);
        assert.match(text, /rb-3: failed \(health-gate\); 1\.0\.0 serves/);
        assert.match(text, /The fleet is on the previous release 1\.0\.0\. Pulumi's state still records 2\.0\.0 on rb-1, rb-2 until a refresh reads the hosts/);
        assert.match(text, /The fleet is on the previous release 1\.0\.0 \(rollout\.onFailure: rollback-all switched every host back\): the deploy record below is what every host runs:\nDEPLOYED_VERSION=1\.0\.0\n/);
        assert.match(record, /^DEPLOYED_VERSION=1\.0\.0$/m);

        // What users reach on the service port: 1.0.0 everywhere, and nobody failed during either switch on rb-1 and rb-2.
        assert.deepStrictEqual(await servedAll(), ["1.0.0", "1.0.0", "1.0.0"]);
        for (const [i, load] of loads.entries()) {
            assert.deepStrictEqual(load.failedByKind, {}, `rb-${i + 1}: ${JSON.stringify(load)}`);
            assert.ok((load.versions["2.0.0"] ?? 0) > 0 && (load.versions["1.0.0"] ?? 0) > 0, `rb-${i + 1} served both releases in turn: ${JSON.stringify(load)}`);
        }
        // Each host switched back records why, after its activation of 2.0.0; and keeps 2.0.0 warm: no process was started.
        for (const i of [0, 1]) {
            const [activated, back] = (await revisions(i, 2)).split("\n");
            assert.match(activated ?? "", /\tversion=2\.0\.0\t.*\tby=rball@[^\t]*\toutcome=activated previous=1\.0\.0 mode=started/);
            assert.match(back ?? "", /\tversion=2\.0\.0\tsha256=[0-9a-f]{64}\tby=rball@[^\t]*\toutcome=rolled-back reason=rollback-all failed-host=rb-3 to=1\.0\.0 mode=warm-switch /);
            assert.strictEqual(await standby(i), "2.0.0");
            assert.strictEqual(await h(i).run(`readlink ${BASE}/current`), "releases/1.0.0");
        }
        assert.match(await revisions(2, 1), /\tversion=2\.0\.0\t.*outcome=failed reason=health-gate live=1\.0\.0 serving=1\.0\.0/);

        // The channel: the failure, then the fleet's automatic rollback naming the host that failed.
        const fleet = posted.find((p) => p.startsWith("Rolled back automatically"));
        assert.ok(posted.some((p) => p.startsWith("Deployment FAILED: CompliNist 2.0.0")), posted.join("\n"));
        assert.strictEqual(
            fleet?.replace(/ \(commit .*$/, ""),
            "Rolled back automatically: rollbackall from 2.0.0 to 1.0.0 on rb-1, rb-2 because rb-3 failed (rollout.onFailure: rollback-all): the whole fleet is on 1.0.0, the previous release.",
        );
    });

    it("the refresh reports the switched-back hosts as drift, and the next deploy (the marker gone) converges every host on 2.0.0", async () => {
        const drift = await driver.refresh({ previewOnly: true });
        assert.deepStrictEqual(drift.drift.map((d) => d.name).sort(), ["complinist-rb-1-activation-switch", "complinist-rb-2-activation-switch"]);
        for (const d of drift.drift) assert.ok(d.diffs.includes("activeVersion"), `${d.name}: the read names what serves: ${JSON.stringify(d.diffs)}`);
        await h(2).run(`rm -f ${MARKER}`);
        const { code, io } = await deployHelper(config("2.0.0", "1.0.0"));
        assert.strictEqual(code, DEPLOY_EXIT.ok, io.text);
        assert.deepStrictEqual(await servedAll(), ["2.0.0", "2.0.0", "2.0.0"]);
        for (const i of [0, 1]) assert.match(await revisions(i, 1), /\tversion=2\.0\.0\t.*outcome=activated previous=1\.0\.0 mode=warm-switch/);
        assert.deepStrictEqual((await driver.refresh({ previewOnly: true })).drift.map((d) => d.name), []);
    });

    it("halt keeps today's behaviour: rb-3 fails, rb-1 and rb-2 keep the new 3.0.0, and nobody is switched back", async () => {
        await h(2).run(`touch ${MARKER}`);
        const r = await driver.up(config("3.0.0", "2.0.0", { "complinist:rollout": { batchSize: 1, onFailure: "halt" } }), SECRET);
        assert.match(String(r.error), /host rb-3: version 3\.0\.0 failed its gate/);
        assert.doesNotMatch(String(r.error), /All hosts or none/);
        assert.deepStrictEqual(await servedAll(), ["3.0.0", "3.0.0", "2.0.0"]);
        for (const i of [0, 1]) assert.match(await revisions(i, 1), /\tversion=3\.0\.0\t.*outcome=activated previous=2\.0\.0/);
    });
});
