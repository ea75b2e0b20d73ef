import * as assert from "assert";
import * as crypto from "crypto";
import { spawn } from "child_process";
import * as path from "path";
import { TestHost, useHosts, hostEntry } from "../../dev/hosts";
import { Artifact, flagUnhealthyArtifact } from "../integration/artifacts";
import { ProgramConfig, RealEngine } from "./engine";
import { installLoadgen, underLoad as runUnderLoad } from "./load";
import { BASE, breakLive, failedOverLines, FAULTS, Fault, liveInstance, unhealthyFlag, waitRecorded, waitServed } from "./failover";

/**
 * Failover to the warm standby on a real host, without the deployer, under load (dev/loadgen.py
 * inside the host): the live instance is stopped, hung (SIGSTOP) or answers unhealthy; the host's
 * failover watch (complinist-failover.service) switches the proxy to the standby after
 * failover.afterSeconds, records outcome=failed-over, moves `current`; refresh reports the drift,
 * npm run status names the failover, and the next up brings the declared release back (or fails
 * naming the failover while the release is still unhealthy). With the standby unhealthy too, the
 * host stays and records the refusal. Deploys go through the real Pulumi CLI (test/e2e/engine.ts).
 */

const REPO = path.resolve(__dirname, "..", "..");
const DECLARED = "4.1.0";
const STANDBY = "4.0.0";

describe("failover to the warm standby on a real host, under load", function () {
    this.timeout(1200000);
    const hosts: TestHost[] = useHosts(1, { names: ["fo-1"] });
    const stack = `e2e-failover-${crypto.randomBytes(3).toString("hex")}`;
    let arts: Record<string, Artifact>;
    let driver: RealEngine;

    const host = () => hosts[0] as TestHost;
    const sh = (cmd: string) => host().run(cmd);
    const served = () => sh("curl -sS -m 5 http://127.0.0.1:5000/health || true");
    const revisions = () => sh(`cat ${BASE}/revisions.log`);
    const countOf = (text: string, re: RegExp) => text.split("\n").filter((l) => re.test(l)).length;

    function config(version: string, rollbackVersion: string | undefined): ProgramConfig {
        const h = host();
        return {
            "complinist:version": version,
            "complinist:rollbackVersion": rollbackVersion,
            "complinist:keepReleases": "3",
            "complinist:releases": Object.fromEntries(Object.entries(arts).map(([v, a]) => [v, { path: path.relative(REPO, a.file), sha256: a.sha256 }])),
            "complinist:hosts": [hostEntry(h)],
            "complinist:sshPrivateKey": h.privateKey,
            "complinist:service": { command: "bin/start" },
            "complinist:health": { timeoutSeconds: 20, intervalMs: 300, drainSeconds: 5 },
            "complinist:failover": { afterSeconds: 3 },
        };
    }
    const declared = () => config(DECLARED, STANDBY);
    const up = (c: ProgramConfig) => driver.up(c, ["complinist:sshPrivateKey"]);

    /** `npm run status -- --stack <stack>`, as an operator runs it. */
    function npmStatus(): Promise<{ code: number; out: string }> {
        return new Promise((resolve, reject) => {
            const p = spawn("npm", ["run", "-s", "status", "--", "--stack", stack], { cwd: REPO, env: { ...process.env, ...driver.scriptEnv() }, stdio: ["ignore", "pipe", "pipe"] });
            let out = "";
            p.stdout.on("data", (d: Buffer) => (out += d.toString()));
            p.stderr.on("data", (d: Buffer) => (out += d.toString()));
            p.on("error", reject);
            p.on("close", (code) => resolve({ code: code ?? -1, out }));
        });
    }

    /** Back on the declared release: a refresh (which sees the failover) and an up, then the standby is warm again. */
    async function backToDeclared(): Promise<void> {
        await driver.refresh();
        const r = await up(declared());
        assert.strictEqual(r.error, undefined, r.output);
        assert.match(await served(), new RegExp(`"version": ?"${DECLARED.replace(/\./g, "\\.")}"`));
        assert.match(await sh("/usr/local/sbin/complinist status"), new RegExp(`standbyVersion=${STANDBY.replace(/\./g, "\\.")}`));
        assert.match(await sh(`tail -n 1 ${BASE}/revisions.log`), new RegExp(`version=${DECLARED.replace(/\./g, "\\.")}\t.*outcome=activated`));
    }

    /**
     * Under the load: break the live instance, wait until the service port answers with the
     * standby's version and the failover is recorded (the old proxy worker and the failed
     * instance are gone by then), then the port answers the standby five times in a row.
     */
    async function failOver(fault: Fault, port: number): Promise<void> {
        const recorded = (await failedOverLines(host())).length;
        await breakLive(host(), fault, port, DECLARED);
        await waitServed(host(), STANDBY);
        await waitRecorded(host(), recorded);
        for (let i = 0; i < 5; i++) assert.match(await served(), new RegExp(`"status": ?"healthy".*"version": ?"${STANDBY.replace(/\./g, "\\.")}"`));
    }

    before(async () => {
        const dir = path.join(REPO, ".build", "failover-artifacts");
        arts = Object.fromEntries([STANDBY, DECLARED].map((v) => [v, flagUnhealthyArtifact(dir, v, unhealthyFlag(v))]));
        driver = new RealEngine({ stack, inProject: true, env: { COMPLINIST_DEPLOYER: "failover" } });
        installLoadgen(host());
        await sh(`mkdir -p ${FAULTS}`);
        assert.strictEqual((await up(config(STANDBY, undefined))).error, undefined);
        const r = await up(declared());
        assert.strictEqual(r.error, undefined, r.output);
        assert.match(await sh("/usr/local/sbin/complinist status"), new RegExp(`standbyVersion=${STANDBY.replace(/\./g, "\\.")}`));
        assert.strictEqual(await sh("systemctl is-active complinist-failover.service"), "active");
    });
    after(async () => {
        await driver?.close();
    });

    for (const [fault, reason] of [
        ["stopped", "live-down"],
        ["hung", "live-hung"],
    ] as ReadonlyArray<[Fault, string]>) {
        it(`live instance ${fault}: the port keeps answering, from the standby ${STANDBY}; recorded, current follows, refresh and status show it; the next up brings ${DECLARED} back`, async () => {
            const live = await liveInstance(host());
            const { load } = await runUnderLoad(host(), "/health", () => failOver(fault, live.port));
            console.log(`      ${fault}: users saw ${load.failed} failed of ${load.ok + load.failed} requests ${JSON.stringify(load.failedByKind)}`);
            assert.ok(load.ok > 0, JSON.stringify(load));
            const last = await sh(`grep -P '\\toutcome=failed-over ' ${BASE}/revisions.log | tail -n 1`);
            assert.match(last, new RegExp(`version=${STANDBY.replace(/\./g, "\\.")}\t.*\tby=failover@.*outcome=failed-over reason=${reason} live=${DECLARED.replace(/\./g, "\\.")}@${live.port} standby=${STANDBY.replace(/\./g, "\\.")}@\\d+ failing=[0-9.]+s after=3s seen=.* previous=${DECLARED.replace(/\./g, "\\.")} mode=warm-switch`));
            assert.strictEqual(await sh(`readlink ${BASE}/current`), `releases/${STANDBY}`);
            // Once failed over, the host stays: nothing switches back to the broken instance.
            assert.strictEqual(countOf(await revisions(), /\toutcome=failed-over /), fault === "stopped" ? 1 : 2);

            const drift = await driver.refresh({ previewOnly: true });
            const activation = drift.drift.find((d) => d.name.endsWith("-activation-switch"));
            assert.ok(activation && activation.diffs.includes("active") && activation.diffs.includes("activeVersion"), JSON.stringify(drift.drift));
            const status = await npmStatus();
            assert.notStrictEqual(status.code, 0, status.out);
            assert.match(status.out, /failed over to its warm standby by itself \(\S+ to 4\.0\.0: outcome=failed-over reason=/, status.out);

            await backToDeclared();
        });
    }

    it("live and standby both unhealthy: the host stays on the live instance and records the refusal once", async () => {
        const before = await revisions();
        await sh(`touch ${unhealthyFlag(STANDBY)} ${unhealthyFlag(DECLARED)}`);
        try {
            await sh(`for i in $(seq 1 600); do grep -q 'outcome=failover-refused reason=standby-unhealthy' ${BASE}/revisions.log && break; sleep 0.2; done`);
            const after = await revisions();
            const added = after.slice(before.length);
            assert.match(added, new RegExp(`version=${DECLARED.replace(/\./g, "\\.")}\t.*outcome=failover-refused reason=standby-unhealthy live=${DECLARED.replace(/\./g, "\\.")}@\\d+ standby=${STANDBY.replace(/\./g, "\\.")}@\\d+ .*standbySeen=.*unhealthy`), added);
            assert.strictEqual(countOf(added, /outcome=failed-over/), 0, added);
            assert.match(await served(), new RegExp(`"version": ?"${DECLARED.replace(/\./g, "\\.")}"`), "still routed to the live instance");
            assert.strictEqual(await sh(`readlink ${BASE}/current`), `releases/${DECLARED}`);
            // Recorded once for this failure, not once a tick: the watch keeps ticking while the operator looks.
            const status = await npmStatus();
            assert.notStrictEqual(status.code, 0, status.out);
            assert.match(status.out, /status unhealthy/, status.out);
            assert.strictEqual(countOf(await revisions(), /outcome=failover-refused/), 1);
        } finally {
            await sh(`rm -f ${unhealthyFlag(STANDBY)} ${unhealthyFlag(DECLARED)}`);
        }
    });

    it(`live instance answering unhealthy: fails over; an up while ${DECLARED} is still unhealthy fails naming the failover, and brings it back once healthy`, async () => {
        const live = await liveInstance(host());
        const { load } = await runUnderLoad(host(), "/health", () => failOver("unhealthy", live.port));
        console.log(`      unhealthy: users saw ${load.failed} failed of ${load.ok + load.failed} requests ${JSON.stringify(load.failedByKind)}`);
        assert.ok((load.versions[STANDBY] ?? 0) > 0, JSON.stringify(load));
        assert.match(await sh(`tail -n 1 ${BASE}/revisions.log`), /version=4\.0\.0\t.*outcome=failed-over reason=live-unhealthy live=4\.1\.0@\d+ .*seen=.*unhealthy/);
        assert.strictEqual(await sh(`readlink ${BASE}/current`), `releases/${STANDBY}`);
        const drift = await driver.refresh({ previewOnly: true });
        assert.ok(drift.drift.some((d) => d.diffs.includes("activeVersion")), JSON.stringify(drift.drift));

        try {
            await driver.refresh();
            const r = await up(declared());
            assert.match(String(r.error), /version 4\.1\.0 failed its gate.* the host failed over to its warm standby by itself \(\S+ to 4\.0\.0: outcome=failed-over reason=live-unhealthy.*4\.1\.0 did not come back healthy/s);
            assert.match(await served(), /"version": ?"4\.0\.0"/, "the standby keeps serving");
        } finally {
            await sh(`rm -f ${unhealthyFlag(DECLARED)}`);
        }
        await backToDeclared();
    });
});
