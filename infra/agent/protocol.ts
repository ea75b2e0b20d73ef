/**
 * The typed contract between the providers and the host agent (agent/internal/protocol): one JSON
 * request in, one JSON answer out, versioned; the agent refuses unknown fields. Mirrors the Go
 * types field for field.
 */

/** The protocol version every request and answer carries. */
export const AGENT_PROTOCOL = 1;

/** What the gate, the canary, the watch and the switch need per activation. */
export interface AgentSettings {
    readonly port: number;
    readonly user: string;
    readonly healthPath: string;
    readonly timeoutSeconds: number;
    readonly intervalMs: number;
    readonly soakSeconds: number;
    readonly drainSeconds: number;
    readonly checks: ReadonlyArray<{ readonly path: string; readonly status: number; readonly maxMs: number }>;
    readonly standby: boolean;
    readonly rollbackVersion: string;
    readonly beforeActivate: string;
    /** The stack holds beforeActivate as a secret: the agent logs it as [secret] and hands it to bash on stdin. */
    readonly hookSecret: boolean;
    readonly hookTimeoutSeconds: number;
    /** After the gate, this share of new requests goes to the new release for `seconds` (percent 0: no canary). */
    readonly canary: { readonly percent: number; readonly seconds: number };
    readonly watch: { readonly errorRateFactor: number; readonly minRequests: number; readonly maxErrorRatio: number };
    /** The stack acknowledges this version although the watch rolled back from it (acknowledgeRolledBack). */
    readonly acknowledged: boolean;
    /** Identity of the unit, env and gate: an instance started with another one is not reused. */
    readonly revision: string;
    /** The failover watch switches to the warm standby when the live instance fails its health this long (0: off). */
    readonly failoverAfterSeconds: number;
}

/** `agent start-activation`'s stdin. */
export interface ActivateRequest {
    readonly v: typeof AGENT_PROTOCOL;
    readonly id: string;
    readonly version: string;
    readonly sha256: string;
    readonly who: string;
    readonly runHook: boolean;
    readonly budgetSeconds: number;
    readonly settings: AgentSettings;
}

/** One phase of the error-rate watch, as the host counted it. */
export interface WatchPhase {
    readonly phase: string;
    readonly seconds: number;
    readonly elapsed: number;
    /** ok | few | trip | undecided */
    readonly verdict: string;
    readonly newRequests: number;
    readonly newErrors: number;
    readonly prevRequests: number;
    readonly prevErrors: number;
    readonly text: string;
}

/** A slot's container as Docker sees it (container mode). */
export interface AgentContainer {
    readonly state: string;
    readonly id: string;
    readonly image: string;
}

/** What an activation reports (`agent activation-result`). */
export interface ActivationResult {
    readonly v: number;
    readonly done: boolean;
    /** activated | converged | failed | failed-rolled-back | rolled-back | refused | locked */
    readonly outcome?: string;
    /** The stable code of a failure: release-incomplete, beforeActivate-hook, health-gate, canary, switch, soak, watch, watch-rolled-back, interrupted. */
    readonly reason?: string;
    readonly exit: number;
    readonly previous: string;
    readonly liveHealthy: boolean;
    readonly serving?: string;
    readonly seen?: string;
    readonly hook?: string;
    readonly standby: string;
    readonly standbyProblem?: string;
    readonly live?: number;
    readonly commit?: string;
    readonly container?: AgentContainer;
    readonly holder?: string;
    readonly watch?: string;
    readonly watchPhases?: readonly WatchPhase[];
    readonly trippedAt?: number;
    readonly switchedBackAt?: number;
    /** Milliseconds each phase took on the host (recheck or gate, switch, config, drain, soak, standby, total), in order. */
    readonly phasesMs?: ReadonlyArray<{ readonly phase: string; readonly ms: number }>;
    /** The transient activation unit's state, from the poll. */
    readonly unit?: string;
    /** The host failed over to its standby since its last deploy: the failover's time, target and revisions.log outcome. */
    readonly failedOver?: string;
}

/** An agent answer parsed as JSON, its protocol version checked: the message names the host and the command. */
export function parseAgentAnswer<T extends { readonly v: number }>(stdout: string, host: string, command: string): T {
    let value: unknown;
    try {
        value = JSON.parse(stdout);
    } catch {
        throw new Error(`host ${host}: the agent's ${command} did not answer JSON: ${JSON.stringify(stdout.slice(0, 200))}`);
    }
    if (typeof value !== "object" || value === null || (value as { v?: unknown }).v !== AGENT_PROTOCOL) {
        throw new Error(`host ${host}: the agent's ${command} answered protocol version ${JSON.stringify((value as { v?: unknown } | null)?.v)}, not ${AGENT_PROTOCOL}: the host runs another agent than this stack's (pulumi up installs it)`);
    }
    return value as T;
}

/** How app instances run (agent.json `runtime`): release mode's processes, or container mode's containers. */
export type InstanceRuntime = "process" | "docker";
