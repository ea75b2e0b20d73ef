import { NO_AGENT_ANSWER } from "../agent/state";
import type { HostLayout } from "./layout";
import { q } from "./shell";

/** What a status probe needs to know beyond the layout. */
export interface StatusProbe {
    readonly service: string;
    /** The service port: the proxy (or, before zero-downtime activation, the app itself). */
    readonly port: number;
    readonly healthPath: string;
}

/**
 * Seconds the agent's `state` may take on the host: its two probes of the service port (5 s
 * each), a few `systemctl is-active` and file reads. A hung host must not hang the operator's status.
 */
export const HOST_STATE_TIMEOUT_S = 20;

/**
 * A read-only look at one host: the host agent's `state`, one JSON object (infra/agent/state.ts,
 * agent/internal/cli/status.go) — releases, instances, units, the proxy's route and canary, the
 * health and / probes through the service port, the deploy lock and its holder, the watch in
 * progress, the last revisions. The agent reads every one of them; this script only finds it.
 * A host it was never installed on answers {"v":1,"agent":null} instead.
 * Nothing on the host changes: `state` is read-only (it never creates the lock file).
 */
export function renderStatusScript(l: HostLayout, p: StatusProbe): string {
    const agent = q(l.hostProgram);
    return [
        `if [ -x ${agent} ]; then`,
        `  exec /usr/bin/timeout ${HOST_STATE_TIMEOUT_S} ${agent} state --port ${q(p.port)} --health-path ${q(p.healthPath)}`,
        `else`,
        `  printf '%s\\n' ${q(NO_AGENT_ANSWER)}`,
        `fi`,
        "",
    ].join("\n");
}
