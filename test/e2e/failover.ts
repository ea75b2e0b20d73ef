import type { TestHost } from "../../dev/hosts";

/**
 * The failover tests' faults on a real host (test/e2e/failover.test.ts, test/bench/failover.ts):
 * what breaks the live instance, and waiting, inside the host, for the service port to answer
 * with the standby's version. Times are the host's clock, so the figure is not skewed by docker exec.
 */

export const BASE = "/opt/complinist";
/** Root's directory of test triggers on a host (the agent's lock.FaultsDir). */
export const FAULTS = "/run/complinist-faults";

/** How the live instance fails: its unit stopped, its process hung (SIGSTOP), or /health answering unhealthy. */
export type Fault = "stopped" | "hung" | "unhealthy";

/** The file whose presence turns a flagUnhealthyArtifact release unhealthy (test/integration/artifacts.ts). */
export function unhealthyFlag(version: string): string {
    return `${FAULTS}/unhealthy-${version}`;
}

/** The instance the proxy routes to, as the agent's status says. */
export async function liveInstance(h: TestHost): Promise<{ port: number; version: string }> {
    const kv = Object.fromEntries((await h.run("/usr/local/sbin/complinist status")).split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
    const port = Number(kv.livePort);
    if (!port) throw new Error(`no live instance on ${h.name}: ${JSON.stringify(kv)}`);
    return { port, version: kv.liveVersion ?? "" };
}

/** Breaks the live instance on port; returns the host's time of the fault (seconds). */
export async function breakLive(h: TestHost, fault: Fault, port: number, version: string): Promise<number> {
    const act = {
        stopped: `systemctl stop complinist@${port}.service`,
        hung: `kill -STOP "$(systemctl show -p MainPID --value complinist@${port}.service)"`,
        unhealthy: `mkdir -p ${FAULTS} && touch ${unhealthyFlag(version)}`,
    }[fault];
    return Number(await h.run(`date +%s.%N; ${act} >/dev/null`).then((out) => out.split("\n")[0]));
}

/** Waits (bounded) until the service port answers healthy with version; returns the host's time of that first answer. */
export async function waitServed(h: TestHost, version: string, timeoutSeconds = 90): Promise<number> {
    const want = `"version": ?"${version.replace(/\./g, "\\.")}"`;
    // Within docker exec's own bound (120 s); on a timeout, what the failover watch said and recorded.
    const out = await h.run(
        `end=$(( $(date +%s) + ${timeoutSeconds} )); while [ "$(date +%s)" -lt "$end" ]; do if curl -sS -m 1 http://127.0.0.1:5000/health 2>/dev/null | grep -Eq '${want}'; then date +%s.%N; exit 0; fi; sleep 0.05; done; ` +
            `{ echo "port 5000 did not answer ${version} within ${timeoutSeconds} s; the failover watch:"; journalctl -u complinist-failover -n 15 -o cat; tail -n 4 ${BASE}/revisions.log; } >&2; exit 1`,
    );
    return Number(out);
}

/** The failed-over lines of the host's revisions.log, oldest first. */
export async function failedOverLines(h: TestHost): Promise<string[]> {
    return (await h.run(`grep -P '\\toutcome=failed-over ' ${BASE}/revisions.log || true`)).split("\n").filter((l) => l !== "");
}

/** Waits (bounded) until revisions.log has more than `before` failed-over lines; returns the newest. */
export async function waitRecorded(h: TestHost, before: number): Promise<string> {
    await h.run(`for i in $(seq 1 450); do [ "$(grep -cP '\\toutcome=failed-over ' ${BASE}/revisions.log)" -gt ${before} ] && exit 0; sleep 0.2; done; echo "no new outcome=failed-over in ${BASE}/revisions.log" >&2; exit 1`);
    return (await failedOverLines(h)).pop() as string;
}
