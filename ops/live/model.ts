import type { StackConfig } from "../../stacks/config";
import type { AgentState } from "../../infra/agent/state";
import { hostStatusFrom, type HostStatus } from "../status";

/**
 * What the live view (`npm run status -- --watch`, `npm run dashboard`) shows of one host, from
 * its last `state` answer: pure, so the table and the page read the same figures.
 */

/** One host's last answer as the poller keeps it. */
export interface HostSample {
    /** ms (epoch) the answer arrived. */
    readonly at: number;
    /** The agent's state; null: no agent on the host. */
    readonly state: AgentState | null;
    readonly status: HostStatus;
}

/** What the poller knows of a host: its last answer, and whether it is still being asked. */
export interface HostPoll {
    readonly host: string;
    readonly address: string;
    readonly last?: HostSample;
    /** The last attempt's failure (unreachable, refused, not the agent's answer), cleared by an answer. */
    readonly error?: string;
    /** ms (epoch) the last failure happened. */
    readonly errorAt?: number;
}

export type ReleaseRole = "live" | "canary" | "standby" | "idle";

/** One release on a host, with what the proxy counted for its instance since it last loaded its config. */
export interface ReleaseFigures {
    readonly version: string;
    readonly port: number;
    readonly role: ReleaseRole;
    readonly requests: number;
    readonly errors: number;
    /** The proxy's average response time of the instance's last 1024 requests; undefined when it reports none. */
    readonly rtimeMs?: number;
}

export interface LiveHost {
    readonly host: string;
    readonly address: string;
    /** waiting: no answer yet. */
    readonly state: "ok" | "unhealthy" | "unreachable" | "waiting";
    /** Seconds since the last answer (undefined before the first). */
    readonly ageSeconds?: number;
    /** The last answer is older than the staleness bound: the host is slow or gone, its row is what it was. */
    readonly stale: boolean;
    readonly error?: string;
    /** idle, locked, an activation's phase (gate, canary, soak, …). */
    readonly phase: string;
    /** Seconds in that phase, by the host's clock. */
    readonly phaseSeconds?: number;
    readonly live?: { readonly version: string; readonly port: number };
    readonly standby?: { readonly version: string; readonly port: number };
    readonly canary?: { readonly version: string; readonly port: number; readonly percent: number };
    readonly releases: readonly ReleaseFigures[];
    /** free, unknown, or the holder. */
    readonly lock: string;
    /** The error-rate watch's verdict and figures so far, while it watches. */
    readonly watch?: string;
    readonly revisions: readonly string[];
    readonly problems: readonly string[];
}

/** A host whose last answer is older than this (ms) is shown stale, with its age. */
export const STALE_MS = 3000;

const seconds = (a: string, b: string): number | undefined => {
    const d = (Date.parse(b) - Date.parse(a)) / 1000;
    return Number.isFinite(d) && d >= 0 ? Math.round(d) : undefined;
};

function phaseOf(s: AgentState | null, st: HostStatus): { phase: string; phaseSeconds?: number } {
    if (s === null) return { phase: "no agent" };
    // The watch's phase is the finer one (canary or soak, rewritten every tick); else the activation's step.
    const d = s.activation !== undefined ? seconds(s.activation.since, s.now) : undefined;
    const since = d !== undefined ? { phaseSeconds: d } : {};
    if (st.watch !== undefined) return { phase: st.watch.phase, ...since };
    if (s.activation !== undefined) return { phase: s.activation.phase, ...since };
    if (s.lock.held === "yes") return { phase: "locked" };
    return { phase: "idle" };
}

/** The releases running in an instance slot, each with the proxy's figures for its port. */
function releasesOf(s: AgentState | null, st: HostStatus): ReleaseFigures[] {
    if (s === null) return [];
    const out: ReleaseFigures[] = [];
    for (const i of st.instances) {
        if (i.version === undefined || (i.role === "idle" && i.active !== "active")) continue;
        const c = s.proxy.counts?.[String(i.port)] ?? {};
        out.push({
            version: i.version,
            port: i.port,
            role: i.role,
            requests: c.requests ?? 0,
            errors: c.errors ?? 0,
            ...(c.rtimeMs !== undefined ? { rtimeMs: c.rtimeMs } : {}),
        });
    }
    const rank: Record<ReleaseRole, number> = { live: 0, canary: 1, standby: 2, idle: 3 };
    return out.sort((a, b) => rank[a.role] - rank[b.role] || a.port - b.port);
}

/** Pure: what the poller knows of a host → its row, at `now` (ms). */
export function liveHost(p: HostPoll, now: number): LiveHost {
    const base = { host: p.host, address: p.address };
    const last = p.last;
    const ageSeconds = last !== undefined ? Math.max(0, Math.round((now - last.at) / 1000)) : undefined;
    // A failure newer than the last answer wins: the row says why, and keeps what was known.
    const failing = p.error !== undefined && (last === undefined || (p.errorAt ?? 0) >= last.at);
    if (last === undefined) {
        return { ...base, state: failing ? "unreachable" : "waiting", stale: false, ...(failing ? { error: p.error } : {}), phase: "-", releases: [], lock: "unknown", revisions: [], problems: [] };
    }
    const st = last.status;
    const s = last.state;
    const stale = now - last.at > STALE_MS || failing;
    const by = (role: ReleaseRole) => st.instances.find((i) => i.role === role && i.version !== undefined);
    const live = by("live");
    const standby = by("standby");
    const canary = by("canary");
    const lock = st.lock === undefined ? "unknown" : st.lock.held === "yes" ? (st.lock.owner ?? "unknown") : st.lock.held === "no" ? "free" : "unknown";
    return {
        ...base,
        state: failing ? "unreachable" : st.state,
        ...(ageSeconds !== undefined ? { ageSeconds } : {}),
        stale,
        ...(failing ? { error: p.error } : st.error !== undefined ? { error: st.error } : {}),
        ...phaseOf(s, st),
        ...(live?.version !== undefined ? { live: { version: live.version, port: live.port } } : {}),
        ...(standby?.version !== undefined ? { standby: { version: standby.version, port: standby.port } } : {}),
        ...(canary?.version !== undefined ? { canary: { version: canary.version, port: canary.port, percent: s?.proxy.percent ?? 0 } } : {}),
        releases: releasesOf(s, st),
        lock,
        ...(st.watch !== undefined ? { watch: `${st.watch.verdict}: ${st.watch.figures}` } : {}),
        revisions: st.revisions,
        problems: st.problems,
    };
}

/** The whole view at `now`. */
export interface LiveView {
    readonly stack: string;
    readonly declaredVersion: string;
    /** ms (epoch). */
    readonly at: number;
    readonly hosts: readonly LiveHost[];
}

export function liveView(c: Pick<StackConfig, "stack" | "version">, polls: readonly HostPoll[], now: number): LiveView {
    return { stack: c.stack, declaredVersion: c.version, at: now, hosts: polls.map((p) => liveHost(p, now)) };
}

/** A host's answer → its sample (hostStatusFrom judges it, as `npm run status` does). */
export function sampleOf(host: string, address: string, state: AgentState | null, c: Pick<StackConfig, "baseDir" | "service" | "health" | "version">, at: number): HostSample {
    return { at, state, status: hostStatusFrom(host, address, state, c) };
}
