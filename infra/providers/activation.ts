import * as pulumi from "@pulumi/pulumi";
import { dynamicProps, InputsOf } from "./inputs";
import { activationUnit, renderActivationPoll, renderActivationStart } from "../render/activation";
import { AGENT_PROTOCOL, type ActivateRequest, type ActivationResult, type AgentSettings, parseAgentAnswer } from "../agent/protocol";
import { hostLayout } from "../render/layout";
import { trace } from "../transport/trace";
import { activationOutcome } from "./activationOutcome";
import { configureCredentials, connect, deployer, HostChangeInputs, hostChangeRefusal, HostTarget, run } from "./host";
import { guarded } from "./guard";
import { allOrNone } from "./allOrNone";
import { readHost } from "./activationRead";

/** The health contract an instance must pass before it takes a request. */
export interface HealthGate {
    readonly path: string;
    readonly timeoutSeconds: number;
    readonly intervalMs: number;
    readonly soakSeconds: number;
    readonly drainSeconds: number;
    readonly checks: ReadonlyArray<{ readonly path: string; readonly status: number; readonly maxMs: number }>;
}

/** rollout.onFailure around one host: `peers` go back to their warm standby when its activation fails; `later` were never touched. */
export interface FleetPlan {
    readonly onFailure: "rollback-all" | "halt";
    /** The other hosts this update may already have switched (earlier batches, this batch); none with `halt`. */
    readonly peers: ReadonlyArray<HostTarget>;
    /** The later batches' host names. */
    readonly later: ReadonlyArray<string>;
}

/** The inputs of one host's Activation: which release is live behind the proxy, and how it gets there. */
export interface ActivationInputs extends HostChangeInputs {
    readonly host: HostTarget;
    readonly privateKey: string;
    /** Stack name, for the rollback command in error messages. */
    readonly stack: string;
    readonly baseDir: string;
    readonly service: string;
    readonly user: string;
    readonly version: string;
    readonly sha256: string;
    /** The service port the proxy listens on. */
    readonly port: number;
    readonly health: HealthGate;
    /** The pinned rollback target, kept running as the warm standby when `standby`. */
    readonly rollbackVersion: string;
    readonly standby: boolean;
    /** hooks.beforeActivate ("" for none): a secret input when `hookSecret`. */
    readonly beforeActivate: string;
    /**
     * Present (true) only when hooks.beforeActivate was set with --secret: the command is then a secret
     * input and output, and the host logs it as [secret]. Absent otherwise, so a stack without a secret
     * hook has no new input; its appearance updates the state, which rewrites the command encrypted.
     */
    readonly hookSecret?: true;
    readonly hookTimeoutSeconds: number;
    /** Whether this host runs the hook (false on all but the first host with hooks.once). */
    readonly hookHere: boolean;
    /** Whether a rollback (activating the previous rollback target) runs the hook too. */
    readonly hookOnRollback: boolean;
    /** Hash of the unit and env file: a change starts a new instance through the gate. */
    readonly serviceRevision: string;
    /** After the gate, `percent` of new requests go to the new release for `seconds` (percent 0: no canary). */
    readonly canary: { readonly percent: number; readonly seconds: number };
    /** The error-rate watch of the canary and the soak. */
    readonly watch: { readonly errorRateFactor: number; readonly minRequests: number; readonly maxErrorRatio: number };
    /** `version` is in acknowledgeRolledBack: deployed even if this host's watch rolled back from it. */
    readonly acknowledged: boolean;
    /** What a failed activation here does to the other hosts (used only then: never a diff of its own). */
    readonly fleet: FleetPlan;
    /** The host fails over to the warm standby after the live instance fails its health this long (0: off; `failover`). */
    readonly failoverAfterSeconds: number;
}

export interface ActivationOutputs extends ActivationInputs {
    /** The version answering on the service port (refresh reads it back). */
    readonly activeVersion: string;
    /** "active" when the live instance, the proxy and `current` all agree on `version`; what differs otherwise. */
    readonly active: string;
    /** The warm standby's version ("" when none). */
    readonly standbyVersion: string;
    /** When this version was last activated (set only by an activation, so unchanged stacks show no diff). */
    readonly activatedAt: string;
    /** The commit that shipped the live release (recorded in its manifest at install; COMPLINIST_COMMIT, CI_COMMIT_SHA or git HEAD then). */
    readonly activatedCommit: string;
    /** Container mode: the ID of the live container the activation gated ("" in release mode): another one there is drift. */
    readonly liveContainer: string;
    /** The error-rate watch's figures of the last activation (canary and soak), as the host recorded them. */
    readonly watchResult: string;
}

/** Inputs whose change needs a new instance through the gate; the others converge in place. */
const RESTART_KEYS = ["version", "sha256", "serviceRevision", "baseDir", "service", "port", "health", "user"] as const;
const CONVERGE_KEYS = ["rollbackVersion", "standby", "failoverAfterSeconds"] as const;

/** The host's settings for one activation; a rollback (to the pinned previous release) takes every request at once: no canary. */
function settingsOf(s: ActivationInputs, rollback: boolean): AgentSettings {
    const crypto = require("crypto") as typeof import("crypto");
    const revision = crypto.createHash("sha256").update(JSON.stringify([s.serviceRevision, s.health, s.port, s.user])).digest("hex").slice(0, 16);
    return {
        port: s.port,
        user: s.user,
        healthPath: s.health.path,
        timeoutSeconds: s.health.timeoutSeconds,
        intervalMs: s.health.intervalMs,
        soakSeconds: s.health.soakSeconds,
        drainSeconds: s.health.drainSeconds,
        checks: s.health.checks,
        standby: s.standby,
        rollbackVersion: s.rollbackVersion,
        beforeActivate: s.beforeActivate,
        hookSecret: s.hookSecret === true,
        hookTimeoutSeconds: s.hookTimeoutSeconds,
        canary: rollback ? { percent: 0, seconds: 0 } : s.canary,
        watch: s.watch,
        acknowledged: s.acknowledged,
        revision,
        failoverAfterSeconds: s.failoverAfterSeconds ?? 0,
    };
}

function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms));
}

async function activate(s: ActivationInputs, rollback: boolean): Promise<ActivationOutputs> {
    const t = await connect(s.host, s.privateKey);
    const l = hostLayout(s.baseDir, s.service, t.root);
    const id = `${s.version.replace(/[^A-Za-z0-9]/g, "_")}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    const runHook = s.beforeActivate !== "" && s.hookHere && (!rollback || s.hookOnRollback);
    const h = s.health;
    // Hook, gate of the new instance, canary, switch, drain, soak, gate of the standby, plus the lock wait.
    const budgetSeconds = (runHook ? s.hookTimeoutSeconds : 0) + 2 * h.timeoutSeconds + s.canary.seconds + h.soakSeconds + 2 * h.drainSeconds + 180;
    trace("activate", { host: s.host.name, version: s.version });
    const request: ActivateRequest = { v: AGENT_PROTOCOL, id, version: s.version, sha256: s.sha256, who: deployer(), runHook, budgetSeconds, settings: settingsOf(s, rollback) };
    await run(t, `starting the activation of ${s.version}`, renderActivationStart(l), Buffer.from(JSON.stringify(request), "utf8"));
    // Poll until the host records the outcome. A lost connection is retried: the activation
    // goes on host-side regardless, and its result waits in the file.
    const deadline = Date.now() + (budgetSeconds + 60) * 1000;
    const poll = async (): Promise<ActivationResult> => {
        const r = await t.exec(renderActivationPoll(l, id), { timeoutMs: 30000 });
        if (r.code !== 0) throw new Error(`host ${t.host}: polling the activation failed (exit ${r.code}): ${r.stderr.trim()}`);
        return parseAgentAnswer<ActivationResult>(r.stdout, t.host, "activation-result");
    };
    let kv: ActivationResult | undefined;
    let lastError = "";
    for (;;) {
        try {
            kv = await poll();
            if (kv.done) break;
            if (kv.unit !== "active" && kv.unit !== "activating" && kv.unit !== "" && kv.unit !== undefined) {
                await sleep(1000);
                const again = await poll();
                if (again.done) {
                    kv = again;
                    break;
                }
                throw new Error(`host ${t.host}: the activation unit ${activationUnit(s.service, id)} ended without a result (see journalctl -u ${activationUnit(s.service, id)} and ${l.deployLog})`);
            }
        } catch (e) {
            if (e instanceof Error && e.message.includes("ended without a result")) throw e;
            lastError = e instanceof Error ? e.message : String(e);
        }
        if (Date.now() > deadline) {
            throw new Error(`host ${t.host}: no outcome from the activation of ${s.version} within ${budgetSeconds + 60} s (last error: ${lastError || "none"}); it may still finish on the host: see ${l.revisionsLog}`);
        }
        await sleep(Math.min(1000, Math.max(200, h.intervalMs)));
    }
    if (kv === undefined) throw new Error(`host ${t.host}: the activation of ${s.version} reported nothing`);
    const phases = (kv.phasesMs ?? []).map((p) => `${p.phase}:${p.ms}`).join(",");
    trace("activated", { host: s.host.name, version: s.version, outcome: kv.outcome ?? "", ...(phases ? { phasesMs: phases } : {}) });
    return activationOutcome(s, t.host, l.lockFile, kv);
}

export const activationProvider: pulumi.dynamic.ResourceProvider = {
    configure: configureCredentials,

    async diff(_id: string, olds: ActivationOutputs, news: ActivationInputs) {
        // The activation hands the host its settings (the hook command among them) and starts what it runs.
        const moved = hostChangeRefusal(olds.host, news.host, news);
        if (moved !== undefined) throw new Error(moved);
        const changed: string[] = [];
        for (const k of Object.keys(news) as Array<keyof ActivationInputs>) {
            // An acknowledgement, or the plan for a failure, alone changes nothing on the host.
            if (k === "acknowledgeHostChange" || k === "fleet") continue;
            if (JSON.stringify(olds[k]) !== JSON.stringify(news[k])) changed.push(k);
        }
        // Present only when true, so the loop above misses its removal: the state must stop saying [secret] too.
        if (olds.hookSecret === true && news.hookSecret !== true) changed.push("hookSecret");
        // Drift found by refresh: someone switched the proxy or `current`, or stopped an instance.
        if (olds.activeVersion !== news.version) changed.push("activeVersion");
        if (olds.active !== "active") changed.push("active");
        if (news.standby && news.rollbackVersion !== "" && olds.standbyVersion !== news.rollbackVersion) changed.push("standbyVersion");
        return { changes: changed.length > 0, replaces: [], deleteBeforeReplace: false };
    },

    async create(inputs: ActivationInputs) {
        return { id: `${inputs.host.name}:${inputs.service}:current`, outs: await allOrNone(inputs, () => activate(inputs, false)) };
    },

    async update(_id: string, olds: ActivationOutputs, news: ActivationInputs) {
        const drift = olds.activeVersion !== news.version || olds.active !== "active";
        const restart = drift || RESTART_KEYS.some((k) => JSON.stringify(olds[k]) !== JSON.stringify(news[k]));
        const converge = CONVERGE_KEYS.some((k) => olds[k] !== news[k]) || (news.standby && news.rollbackVersion !== "" && olds.standbyVersion !== news.rollbackVersion);
        if (!restart && !converge) {
            // hookSecret is present only when true: dropped from the inputs, it leaves the state too.
            const kept: Record<string, unknown> = { ...olds };
            delete kept.hookSecret;
            return { outs: { ...kept, ...news, activeVersion: olds.activeVersion, active: olds.active } };
        }
        const outs = await allOrNone(news, () => activate(news, news.version === olds.rollbackVersion));
        // A converge (standby only) is not a new activation of the live release.
        return { outs: restart ? outs : { ...outs, activatedAt: olds.activatedAt, activatedCommit: olds.activatedCommit } };
    },

    async read(id: string, props: ActivationOutputs) {
        return { id, props: { ...props, ...(await readHost(props)) } };
    },

    // Deleting the activation leaves the host serving what it serves; the ServiceUnit's delete stops it.
    async delete() {
        return;
    },
};

/** The Activation's args: its inputs as pulumi.Inputs, but `hookSecret` plain (it decides, at registration, what is secret). */
export type ActivationArgs = InputsOf<Omit<ActivationInputs, "hookSecret">> & Pick<ActivationInputs, "hookSecret">;

/** Dynamic resource for start → gate → switch → drain → soak on one host; see activationProvider. */
export class ActivationResource extends pulumi.dynamic.Resource {
    declare public readonly activeVersion: pulumi.Output<string>;
    declare public readonly active: pulumi.Output<string>;
    declare public readonly standbyVersion: pulumi.Output<string>;
    declare public readonly activatedAt: pulumi.Output<string>;
    declare public readonly activatedCommit: pulumi.Output<string>;
    declare public readonly liveContainer: pulumi.Output<string>;
    declare public readonly watchResult: pulumi.Output<string>;

    constructor(name: string, args: ActivationArgs, opts?: pulumi.CustomResourceOptions) {
        const hookSecret = args.hookSecret === true;
        const inputs = hookSecret ? { ...args, beforeActivate: pulumi.secret(args.beforeActivate) } : args;
        const secrets = ["privateKey", ...(hookSecret ? ["beforeActivate"] : [])];
        const [props, options] = dynamicProps(inputs, ["activeVersion", "active", "standbyVersion", "activatedAt", "activatedCommit", "liveContainer", "watchResult"], opts, secrets);
        super(guarded(activationProvider), name, props, options, "complinist", "Activation");
    }
}
