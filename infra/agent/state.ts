/**
 * `<hostProgram> state [--port N --health-path P]`: everything the providers' reads and
 * `npm run status` need of a host, as the one JSON object the agent prints
 * (agent/internal/cli/status.go, type State and cmdState). Mirrors the Go types field for field,
 * by their JSON names; `?` marks an `omitempty` field, `| null` a pointer without it.
 *
 * The answer is checked before anything reads it (parseAgentState): a host may run another
 * agent, or something else entirely, at that path.
 */
import { AGENT_PROTOCOL, type AgentContainer } from "./protocol";
import { Checker, isObject, type Obj, shown } from "./stateFields";

/** A complete release on the host, from its manifest. */
export interface AgentRelease {
    readonly version: string;
    readonly sha256: string;
    readonly installedAt: string;
    readonly commit: string;
    readonly image?: string;
}

/** One instance slot (instances/<port>). */
export interface AgentInstance {
    readonly port: number;
    /** instances/<port> as written ("" when there is none). */
    readonly link: string;
    /** The link resolved ("" when it resolves to nothing). */
    readonly path: string;
    readonly version: string;
    readonly rev: string;
    /** `systemctl is-active` of <service>@<port>.service. */
    readonly active: string;
    /** Container mode only. */
    readonly container?: AgentContainer;
}

/** One HTTP request through the service port (5 s, at most 64 KiB read). */
export interface AgentProbe {
    /** HTTP status; 0 when nothing answered (then `error` says why). */
    readonly code: number;
    readonly seconds: number;
    readonly error?: string;
    /** The health probe only: the first 8 KiB of the answer, as text. */
    readonly body?: string;
}

/** The error-rate watch in progress (agent/internal/activate WatchNow), rewritten every tick. */
export interface AgentWatchNow {
    readonly phase: string;
    readonly version: string;
    readonly port: number;
    readonly verdict: string;
    readonly figures: string;
}

/** The phase of the activation holding the lock (agent/internal/cli/live.go ActivationNow), for the live view. */
export interface AgentActivationNow {
    readonly id: string;
    /** checking, hook, starting, gate, switching, canary, draining, settling, soak, standby, done, … */
    readonly phase: string;
    /** The deploy log's step that began it (one line). */
    readonly step: string;
    /** When that step was written, UTC to the second. */
    readonly since: string;
}

/** The deploy lock: its holder (the owner file's first line) only while it is held. */
export interface AgentLock {
    readonly held: "yes" | "no" | "unknown";
    readonly owner?: string;
}

export interface AgentState {
    readonly v: typeof AGENT_PROTOCOL;
    readonly agent: { readonly version: string; readonly sha256: string };
    readonly service: string;
    readonly baseDir: string;
    /** process | docker (/etc/<service>/agent.json). */
    readonly runtime: string;
    /** The host's clock, UTC, to the second. */
    readonly now: string;
    /** `current`: the link as written, resolved, and the version it names ("" each when missing or dangling). */
    readonly current: { readonly link: string; readonly path: string; readonly version: string };
    /** Complete releases (with a manifest), the kept ones. */
    readonly releases: readonly AgentRelease[];
    /** Every directory in releases/, sorted. */
    readonly releaseDirs: readonly string[];
    /** The two instance slots of the service port probed. */
    readonly instances: readonly AgentInstance[];
    /** `systemctl is-active` of the umbrella, the proxy and both instance units. */
    readonly units: Readonly<Record<string, string>>;
    readonly proxy: {
        readonly active: boolean;
        /** The instance port the proxy routes to (0: none). */
        readonly live: number;
        /** The instance port taking a canary share (0: none), and its share. */
        readonly canary: number;
        readonly percent: number;
        /**
         * Per instance port: requests and errors the proxy counted, and `rtimeMs`, its average response
         * time of the instance's last 1024 requests, where the proxy reports one.
         */
        readonly counts?: Readonly<Record<string, Readonly<Record<string, number>>>>;
        /** Listeners on the service port outside the proxy's unit, either family (one "pid N (command, uid U, cgroup C)" each). */
        readonly foreign: readonly string[];
    };
    /** The routed instance (port 0, active "inactive": the proxy routes nowhere). */
    readonly live: {
        readonly port: number;
        readonly version: string;
        readonly active: string;
        readonly rev: string;
        readonly image?: string;
        readonly container?: AgentContainer;
    };
    readonly standbyVersion: string;
    readonly canaryVersion: string;
    /** The version the health answer names ("" when none). */
    readonly served: string;
    readonly health?: AgentProbe;
    readonly root?: AgentProbe;
    readonly lock: AgentLock;
    /** Only while the lock is held, and only when there is one. */
    readonly watch: AgentWatchNow | null;
    /** The last revisions.log lines, oldest first. */
    readonly revisions: readonly string[];
    /** Only while the lock is held by an activation. */
    readonly activation?: AgentActivationNow;
    /** The service port and health path the probes used (absent from an agent built before it). */
    readonly probe?: { readonly port: number; readonly healthPath: string };
    /** The failover the host stays on since its last deploy (time, target, outcome line); "" or absent (an older agent) when none. */
    readonly failedOver?: string;
}

/** What the status script prints on a host without the agent (infra/render/status.ts). */
export const NO_AGENT_ANSWER = '{"v":1,"agent":null}';

function parseJson(stdout: string, host: string): Obj {
    let value: unknown;
    try {
        value = JSON.parse(stdout);
    } catch {
        throw new Error(`host ${host}: the agent's state did not answer JSON: ${JSON.stringify(stdout.slice(0, 200))}`);
    }
    if (!isObject(value)) throw new Error(`host ${host}: the agent's state did not answer a JSON object: ${shown(value)}`);
    if (value.v !== AGENT_PROTOCOL) {
        throw new Error(`host ${host}: the agent's state answered protocol version ${shown(value.v)}, not ${AGENT_PROTOCOL}: the host runs another agent than this stack's (pulumi up installs it)`);
    }
    return value;
}

/** The state's every field checked against what the agent prints; an Error names the host and the first field that is not. */
export function parseAgentState(stdout: string, host: string): AgentState {
    return checkState(parseJson(stdout, host), host);
}

function checkState(o: Obj, host: string): AgentState {
    const c = new Checker(host);
    const agent = c.obj(o, "agent", "");
    c.str(agent, "version", "agent.");
    c.str(agent, "sha256", "agent.");
    for (const k of ["service", "baseDir", "runtime", "now", "standbyVersion", "canaryVersion", "served"]) c.str(o, k, "");
    const current = c.obj(o, "current", "");
    for (const k of ["link", "path", "version"]) c.str(current, k, "current.");
    c.objects(o, "releases", "", (r, at) => {
        for (const k of ["version", "sha256", "installedAt", "commit"]) c.str(r, k, at);
        c.optStr(r, "image", at);
    });
    c.strings(o, "releaseDirs", "");
    c.objects(o, "instances", "", (i, at) => {
        c.int(i, "port", at);
        for (const k of ["link", "path", "version", "rev", "active"]) c.str(i, k, at);
        c.container(i, "container", at);
    });
    const units = c.obj(o, "units", "");
    for (const k of Object.keys(units)) c.str(units, k, "units.");
    const proxy = c.obj(o, "proxy", "");
    c.bool(proxy, "active", "proxy.");
    for (const k of ["live", "canary", "percent"]) c.int(proxy, k, "proxy.");
    c.strings(proxy, "foreign", "proxy.");
    if (proxy.counts !== undefined) {
        const counts = c.obj(proxy, "counts", "proxy.");
        for (const port of Object.keys(counts)) {
            const n = c.obj(counts, port, "proxy.counts.");
            for (const k of Object.keys(n)) c.int(n, k, `proxy.counts.${port}.`);
        }
    }
    const live = c.obj(o, "live", "");
    c.int(live, "port", "live.");
    for (const k of ["version", "active", "rev"]) c.str(live, k, "live.");
    c.optStr(live, "image", "live.");
    c.container(live, "container", "live.");
    c.probe(o, "health");
    c.probe(o, "root");
    const lock = c.obj(o, "lock", "");
    const held = c.str(lock, "held", "lock.");
    if (held !== "yes" && held !== "no" && held !== "unknown") c.fail("lock.held", "yes, no or unknown", held);
    c.optStr(lock, "owner", "lock.");
    if (o.watch !== null) {
        const w = c.obj(o, "watch", "");
        for (const k of ["phase", "version", "verdict", "figures"]) c.str(w, k, "watch.");
        c.int(w, "port", "watch.");
    }
    c.strings(o, "revisions", "");
    if (o.activation !== undefined) {
        const a = c.obj(o, "activation", "");
        for (const k of ["id", "phase", "step", "since"]) c.str(a, k, "activation.");
    }
    if (o.probe !== undefined) {
        const p = c.obj(o, "probe", "");
        c.int(p, "port", "probe.");
        c.str(p, "healthPath", "probe.");
    }
    c.optStr(o, "failedOver", "");
    return o as unknown as AgentState;
}

/**
 * The status script's answer: the agent's state, or null when the host has no agent
 * (`{"v":1,"agent":null}`, the script's own answer when nothing is installed at the host program's path).
 */
export function parseStatusAnswer(stdout: string, host: string): AgentState | null {
    const o = parseJson(stdout, host);
    if (o.agent === null) {
        const extra = Object.keys(o).filter((k) => k !== "v" && k !== "agent");
        if (extra.length > 0) throw new Error(`host ${host}: the agent's state answer names no agent but has ${extra.join(", ")}: it is not what the agent or the status script prints`);
        return null;
    }
    return checkState(o, host);
}
