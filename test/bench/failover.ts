/**
 * `npm run bench -- failover`: what users see when the live instance dies between deploys and the
 * host fails over to its warm standby by itself (complinist:failover, the agent's failover watch).
 * One fresh test host, release mode, applied by the real engine (test/e2e/engine.ts), under load
 * from the generator inside the host (dev/loadgen.py: 8 workers, a new connection per request to
 * /health). The default `failover: { afterSeconds: 10 }`. For each fault — the live instance's unit
 * stopped, its process hung (SIGSTOP), its /health answering unhealthy — the row gives the failed
 * requests the generator saw from the fault until the standby answered, and the seconds from the
 * fault to the standby's first answer on the service port (both the host's clock: date +%s.%N
 * around the fault, a curl loop inside the host for the answer), and the `failing=` the watch
 * recorded (how long it saw the live instance fail before it switched). Between rows the declared
 * release is brought back by refresh + up. Printed, never asserted.
 */
import * as path from "path";
import { startHosts, stopHosts, TestHost, hostEntry } from "../../dev/hosts";
import { Artifact, flagUnhealthyArtifact } from "../integration/artifacts";
import { ProgramConfig, RealEngine } from "../e2e/engine";
import { breakLive, failedOverLines, FAULTS, Fault, liveInstance, unhealthyFlag, waitRecorded, waitServed } from "../e2e/failover";
import { installLoadgen, underLoad } from "../e2e/load";
import { count, markdownTable } from "./table";

const REPO = path.resolve(__dirname, "..", "..");
const DECLARED = "4.1.0";
const STANDBY = "4.0.0";
const SECRETS = ["complinist:sshPrivateKey"];
const AFTER_SECONDS = 10;

export async function failoverBench(): Promise<void> {
    const dir = path.join(REPO, ".build", "bench-failover-artifacts");
    const arts: Record<string, Artifact> = Object.fromEntries([STANDBY, DECLARED].map((v) => [v, flagUnhealthyArtifact(dir, v, unhealthyFlag(v))]));
    const [h] = (await startHosts(1, { names: ["bench-failover-1"] })) as [TestHost];
    const engine = new RealEngine({ stack: "bench-failover", env: { COMPLINIST_DEPLOYER: "bench" } });
    const cfg = (version: string, rollbackVersion: string | undefined): ProgramConfig => ({
        "complinist:version": version,
        "complinist:rollbackVersion": rollbackVersion,
        "complinist:releases": Object.fromEntries(Object.entries(arts).map(([v, a]) => [v, { path: path.relative(REPO, a.file), sha256: a.sha256 }])),
        "complinist:hosts": [hostEntry(h)],
        "complinist:sshPrivateKey": h.privateKey,
        "complinist:service": { command: "bin/start" },
        "complinist:health": { timeoutSeconds: 30, intervalMs: 300, drainSeconds: 5 },
    });
    const up = async (version: string, rollbackVersion: string | undefined, what: string) => {
        const r = await engine.up(cfg(version, rollbackVersion), SECRETS);
        if (r.error) throw new Error(`bench failover: ${what} failed: ${r.error}`);
    };
    const rows: string[][] = [];
    try {
        installLoadgen(h);
        await h.run(`mkdir -p ${FAULTS}`);
        await up(STANDBY, undefined, `the first deploy of ${STANDBY}`);
        await up(DECLARED, STANDBY, `the deploy of ${DECLARED} with ${STANDBY} as the standby`);
        for (const fault of ["stopped", "hung", "unhealthy"] as Fault[]) {
            const live = await liveInstance(h);
            const recorded = (await failedOverLines(h)).length;
            let brokeAt = 0;
            let answeredAt = 0;
            const { load } = await underLoad(h, "/health", async () => {
                brokeAt = await breakLive(h, fault, live.port, DECLARED);
                answeredAt = await waitServed(h, STANDBY);
            });
            const failing = /\toutcome=failed-over .*failing=([0-9.]+)s/.exec(await waitRecorded(h, recorded))?.[1] ?? "?";
            rows.push([fault, count(load.ok + load.failed), count(load.failed), JSON.stringify(load.failedByKind), (answeredAt - brokeAt).toFixed(1), failing]);
            await h.run(`rm -f ${unhealthyFlag(DECLARED)}`);
            await engine.refresh();
            await up(DECLARED, STANDBY, `bringing ${DECLARED} back after the ${fault} row`);
        }
        console.log(`\n## Failover to the warm standby (failover.afterSeconds ${AFTER_SECONDS}, load on /health, 8 workers)\n`);
        console.log(markdownTable(["live instance", "requests", "failed", "failed by kind", "fault → standby answers (s)", "watch's failing= (s)"], rows));
    } finally {
        await engine.close();
        await stopHosts([h]);
    }
}
