import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { buildArtifacts, type BuiltArtifact } from "../../scripts/build-artifacts";
import { RealEngine, type ProgramConfig } from "../e2e/engine";
import { installLoadgen, underLoad, underOutsideLoad } from "../e2e/load";
import { TestHost, useHosts, hostEntry } from "../../dev/hosts";
import { hangingArtifact, squattingArtifact, type Artifact } from "./artifacts";

/**
 * Host trust, third round, findings 9 and 10 on a real host through the real engine: the watch
 * judges users' requests only (the host's own, from loopback, go to the proxy's host backend),
 * a release that answers /health and hangs on everything else is tripped by its requests in
 * flight past 4 s, and a listener on the idle instance port is ended when it is the service's
 * own (the live instance gone bad) or refused, named, when it is anyone else's. Users' load comes
 * from outside the host (the test runner, through Docker's bridge: its source is the bridge's
 * gateway, not one of the host's addresses); host state is read through docker exec.
 */
describe("host trust, round 3, on a real host: the watch's judgement and the idle port", function () {
    this.timeout(900000);
    const hosts: TestHost[] = useHosts(1, { names: ["trust3-watch-1"] });
    const h = () => hosts[0] as TestHost;
    const sh = (cmd: string) => h().run(cmd);
    const BASE = "/opt/complinist";
    let tmp = "";
    let arts: Record<string, Artifact> = {};
    let driver: RealEngine;

    function config(version: string, extra: ProgramConfig = {}): ProgramConfig {
        return {
            "complinist:mode": "release",
            "complinist:version": version,
            "complinist:releases": Object.fromEntries(Object.entries(arts).map(([v, a]) => [v, { path: a.file, sha256: a.sha256 }])),
            "complinist:keepReleases": 8,
            "complinist:hosts": [hostEntry(h())],
            "complinist:sshPrivateKey": h().privateKey,
            "complinist:service": { command: "bin/start" },
            "complinist:health": { timeoutSeconds: 20, intervalMs: 200, drainSeconds: 5 },
            ...extra,
        };
    }
    const up = (c: ProgramConfig) => driver.up(c, ["complinist:sshPrivateKey"]);
    const served = () => sh("curl -sS -m 5 http://127.0.0.1:5000/health || true");
    const lastRecord = () => sh(`tail -n 1 ${BASE}/revisions.log`);
    const listenersOn = (port: number) => sh(`ss -Htlnp 'sport = :${port}' || true`);
    async function until(what: string, cond: () => Promise<boolean>): Promise<void> {
        for (let i = 0; i < 300; i++) {
            if (await cond()) return;
            await sh("sleep 0.1");
        }
        assert.fail(`not within 30 s: ${what}`);
    }

    before(async () => {
        tmp = fs.mkdtempSync(path.join(os.tmpdir(), "host-trust-3-watch-"));
        const built = await buildArtifacts(path.join(tmp, "built"));
        const pick = (v: string) => built.find((a) => a.version === v) as BuiltArtifact;
        arts = {
            "1.0.0": pick("1.0.0"),
            "1.1.0": pick("1.1.0"),
            "1.3.0": pick("1.3.0"),
            "1.4.0": pick("1.4.0"),
            "1.9.0-hang": hangingArtifact(path.join(tmp, "own"), "1.9.0-hang"),
            "2.0.0-squat": squattingArtifact(path.join(tmp, "own"), "2.0.0-squat", [5001, 5002]),
        };
        driver = new RealEngine({ stack: "itest-host-trust-3-watch", env: { COMPLINIST_DEPLOYER: "itest" } });
        installLoadgen(h());
        const r = await up(config("1.0.0"));
        assert.strictEqual(r.error, undefined, r.output);
    });
    after(async () => {
        await driver?.close();
        if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    });

    it("finding 9: requests from the host itself (loopback) are served but never judged: a canary under loopback load alone counts 0 requests on either release", async () => {
        const c = config("1.1.0", { "complinist:canary": { percent: 10, seconds: 8 }, "complinist:watch": { minRequests: 3 } });
        const { result: r, load } = await underLoad(h(), "/", () => up(c));
        assert.strictEqual(r.error, undefined, r.output);
        assert.ok(load.ok > 50 && load.failed === 0, `the loopback load was served: ${JSON.stringify(load.failedByKind)} ok ${load.ok}`);
        // Before, these requests counted on both releases (new N requests, previous M requests).
        assert.match(await lastRecord(), /outcome=activated previous=1\.0\.0 .*watch=10% too few requests to judge \(0 of minRequests 3\), nothing decided: canary \d+s of 8s: new 0 requests 0 errors \(0\.00%\), previous 0 requests 0 errors/);
        assert.match(await served(), /"version": ?"1\.1\.0"/);
    });

    it("finding 9: a release that answers /health and hangs on everything else is tripped within its canary by its requests in flight past 4 s, users' load counted", async () => {
        const c = config("1.9.0-hang", { "complinist:canary": { percent: 10, seconds: 30 }, "complinist:watch": { minRequests: 5 } });
        const { result: r } = await underOutsideLoad(h(), "/", () => up(c));
        assert.match(String(r.error), /version 1\.9\.0-hang was ROLLED BACK by the error-rate watch/, r.output);
        const rec = await lastRecord();
        // The outside load is users' (source: Docker's gateway): the live release's requests count (previous N > 0).
        assert.match(rec, /outcome=rolled-back reason=watch live=1\.1\.0 serving=1\.1\.0 seen=canary \d+s of 30s: new \d+ requests \d+ errors \([0-9.]+%\), previous [1-9]\d* requests .*; [1-9]\d* of the new requests unanswered after 4s, counted as errors/);
        assert.match(await served(), /"version": ?"1\.1\.0"/);
    });

    /** The instance port 2.0.0-squat runs on (the other one is idle): the tests run alone (-g) or in order. */
    let squatPort = 0;
    const other = (port: number) => (port === 5001 ? 5002 : 5001);

    it("finding 10: a process of the live instance's unit squatting the idle port is killed before the next release starts there, and that release deploys", async () => {
        const squat = await up(config("2.0.0-squat"));
        assert.strictEqual(squat.error, undefined, squat.output);
        squatPort = (await sh(`readlink ${BASE}/instances/5001 || true`)).endsWith("2.0.0-squat") ? 5001 : 5002;
        const idle = other(squatPort);
        // The squatter's child takes the idle port once the previous release there has stopped.
        await until(`the squatter's child listens on ${idle}`, async () => new RegExp(`:${idle}\\b`).test(await listenersOn(idle)));
        assert.match(await sh(`ss -Htln --cgroup 'sport = :${idle}'`), new RegExp(`cgroup:\\S*/complinist@${squatPort}\\.service`), "held by the live instance's unit");
        const main = (await sh(`systemctl show -p MainPID --value complinist@${squatPort}.service`)).trim();
        // The app's forked child (beside it in the unit: the log writer, the agent's log-writer).
        const pid = (await sh(`ps -o pid=,comm= --ppid ${main} | awk '$2 == "python3" { print $1 }'`)).trim();
        assert.match(pid, /^\d+$/);
        const r = await up(config("1.3.0"));
        // Before, the gate failed: "port N is also held by … complinist@M.service", on this deploy and every later one.
        assert.strictEqual(r.error, undefined, r.output);
        assert.match(await served(), /"version": ?"1\.3\.0"/);
        assert.match(
            await sh("cat /var/log/complinist/deploy.log"),
            new RegExp(`idle port ${idle} reclaimed: killed pid ${pid} \\(python3\\) of complinist@${squatPort}\\.service, which listened on the idle port ${idle}`),
        );
        assert.match(await sh(`ss -Htln --cgroup 'sport = :${idle}'`), new RegExp(`cgroup:\\S*/complinist@${idle}\\.service`), "the new release's own unit holds it now");
    });

    it("finding 10: anyone else's listener on the idle port is refused before anything starts, naming its pid, uid and unit; the live release keeps serving", async () => {
        const live = (await sh(`readlink ${BASE}/instances/5001 || true`)).endsWith("1.3.0") ? 5001 : 5002;
        const idle = other(live);
        await sh(`systemctl stop complinist@${idle}.service; systemd-run --unit=idle-squatter --uid=nobody --quiet python3 -m http.server ${idle} --bind 127.0.0.1`);
        await until(`the foreign squatter listens on ${idle}`, async () => new RegExp(`:${idle}\\b`).test(await listenersOn(idle)));
        const pid = (await sh("systemctl show -p MainPID --value idle-squatter.service")).trim();
        const before = await sh(`ls ${BASE}/instances 2>/dev/null | sort; tail -n 1 ${BASE}/revisions.log | cut -f1-3`);
        const r = await up(config("1.4.0"));
        assert.match(
            String(r.error),
            new RegExp(`version 1\\.4\\.0 was not started: the idle instance port ${idle} is held by pid (${pid} \\(python3|\\? \\(not shown), uid 65534, cgroup \\S*/system\\.slice/idle-squatter\\.service\\) - not this service's own units, so not ended here: stop it, then deploy again`),
            r.output,
        );
        assert.match(await lastRecord(), /outcome=failed reason=idle-port live=1\.3\.0 serving=1\.3\.0/);
        assert.match(await served(), /"version": ?"1\.3\.0"/);
        assert.strictEqual(await sh(`ls ${BASE}/instances 2>/dev/null | sort; tail -n 2 ${BASE}/revisions.log | head -n 1 | cut -f1-3`), before, "no instance started or linked");
        assert.strictEqual((await sh("systemctl is-active idle-squatter.service || true")).trim(), "active", "not the stack's to kill");
        await sh("systemctl stop idle-squatter.service");
    });
});
