import * as pulumi from "@pulumi/pulumi";
import { hostLayout } from "../render/layout";
import { renderActivate, renderActivationRead } from "../render/activation";
import { EXIT, parseKeyValues } from "../render/protocol";
import { trace } from "../transport/trace";
import { deployCommit } from "../../stacks/source";
import { connect, deployer, HostTarget, run } from "./host";

/** Which release `current` points to on one host, and that the service runs it healthy. */
export interface ActivationState {
    readonly host: HostTarget;
    readonly privateKey: string;
    /** Stack name, for the rollback command in error messages. */
    readonly stack: string;
    readonly baseDir: string;
    readonly service: string;
    readonly version: string;
    readonly sha256: string;
    readonly port: number;
    readonly healthPath: string;
    readonly timeoutSeconds: number;
    readonly intervalMs: number;
    readonly beforeActivate?: string;
    /** Hash of the unit and env file: a change restarts the service through the health gate. */
    readonly serviceRevision: string;
}

export interface ActivationOutputs extends ActivationState {
    /** The version `current` points to on the host (refresh reads it back). */
    readonly activeVersion: string;
    /** `systemctl is-active` on the host. */
    readonly active: string;
    /** When this version was last activated (set only by an activation, so unchanged stacks show no diff). */
    readonly activatedAt: string;
    /** The commit deployed by that activation (CI_COMMIT_SHA or git HEAD). */
    readonly activatedCommit: string;
}

/** Inputs whose change needs a switch + restart; others only update state. */
const RESTART_KEYS = ["version", "sha256", "serviceRevision", "baseDir", "service", "port", "healthPath"] as const;

async function activate(s: ActivationState): Promise<ActivationOutputs> {
    const t = await connect(s.host, s.privateKey);
    const l = hostLayout(s.baseDir, s.service, t.root);
    const script = renderActivate(l, {
        service: s.service,
        version: s.version,
        sha256: s.sha256,
        port: s.port,
        healthPath: s.healthPath,
        timeoutSeconds: s.timeoutSeconds,
        intervalMs: s.intervalMs,
        ...(s.beforeActivate !== undefined ? { beforeActivate: s.beforeActivate } : {}),
        who: deployer(),
        systemd: t.systemd,
    });
    trace("activate", { host: s.host.name, version: s.version });
    // Twice the health timeout: the gate may run once for the new release and once for the undo.
    const r = await t.exec(script, { timeoutMs: (2 * s.timeoutSeconds + 120) * 1000 });
    const kv = parseKeyValues(r.stdout);
    const previous = (kv.previous ?? "").replace(/^releases\//, "");
    const rollback =
        previous && previous !== s.version
            ? `pin the previous release: npm run rollback -- --stack ${s.stack} --to ${previous} (or: pulumi config set complinist:version ${previous} --stack ${s.stack} && pulumi up --stack ${s.stack})`
            : `fix the release and run pulumi up --stack ${s.stack} again`;
    switch (r.code) {
        case 0:
            return { ...s, activeVersion: s.version, active: "active", activatedAt: new Date().toISOString(), activatedCommit: deployCommit() };
        case EXIT.locked:
            throw new Error(`host ${t.host}: another activation holds the deploy lock (${kv.holder ?? "unknown"}); wait for it to finish, or remove ${l.lockFile}.owner only if that process is gone`);
        case EXIT.incompleteRelease:
            throw new Error(`host ${t.host}: release ${s.version} is not complete on the host (no manifest); run pulumi refresh then pulumi up --stack ${s.stack}`);
        case EXIT.hookFailed:
            throw new Error(`host ${t.host}: hooks.beforeActivate failed in release ${s.version}; nothing was switched (still on ${previous || "no release"}). Output: ${kv.hook ?? ""}`);
        case EXIT.healthFailed:
            throw new Error(
                `host ${t.host}: version ${s.version} failed its health check (GET http://127.0.0.1:${s.port}${s.healthPath} within ${s.timeoutSeconds}s, ` +
                    `wanted 200 {"status":"healthy","version":"${s.version}"}; saw: ${kv.seen ?? "nothing"}). ` +
                    `Switched back: ${kv.restored ?? "unknown"}. Later batches were not touched. To roll back the stack: ${rollback}`,
            );
        default:
            throw new Error(`host ${t.host}: activation of ${s.version} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().slice(-800)}`);
    }
}

export const activationProvider: pulumi.dynamic.ResourceProvider = {
    async diff(_id: string, olds: ActivationOutputs, news: ActivationState) {
        const changed: string[] = [];
        for (const k of Object.keys(news) as Array<keyof ActivationState>) {
            if (k === "privateKey") continue;
            if (JSON.stringify(olds[k]) !== JSON.stringify(news[k])) changed.push(k);
        }
        // Drift found by refresh: someone switched `current` or stopped the service.
        if (olds.activeVersion !== news.version) changed.push("activeVersion");
        if (olds.active !== "active") changed.push("active");
        return { changes: changed.length > 0, replaces: [], deleteBeforeReplace: false };
    },

    async create(inputs: ActivationState) {
        return { id: `${inputs.host.name}:${inputs.service}:current`, outs: await activate(inputs) };
    },

    async update(_id: string, olds: ActivationOutputs, news: ActivationState) {
        const restart =
            olds.activeVersion !== news.version || olds.active !== "active" || RESTART_KEYS.some((k) => JSON.stringify(olds[k]) !== JSON.stringify(news[k]));
        if (!restart) {
            return { outs: { ...news, activeVersion: olds.activeVersion, active: olds.active, activatedAt: olds.activatedAt, activatedCommit: olds.activatedCommit } };
        }
        return { outs: await activate(news) };
    },

    async read(id: string, props: ActivationOutputs) {
        const t = await connect(props.host, props.privateKey);
        const l = hostLayout(props.baseDir, props.service, t.root);
        const kv = parseKeyValues((await run(t, "reading the current release", renderActivationRead(l, props.service, t.systemd))).stdout);
        const target = kv.target ?? "";
        const activeVersion = target.startsWith("releases/") ? target.slice("releases/".length) : target;
        return { id, props: { ...props, activeVersion, active: kv.active ?? "" } };
    },

    // Deleting the activation leaves the host serving what it serves; the ServiceUnit's delete stops it.
    async delete() {
        return;
    },
};

export type ActivationArgs = { readonly [K in keyof ActivationState]: pulumi.Input<ActivationState[K]> };

/** Dynamic resource for the switch + restart + health gate; see activationProvider. */
export class ActivationResource extends pulumi.dynamic.Resource {
    declare public readonly activeVersion: pulumi.Output<string>;
    declare public readonly active: pulumi.Output<string>;
    declare public readonly activatedAt: pulumi.Output<string>;
    declare public readonly activatedCommit: pulumi.Output<string>;

    constructor(name: string, args: ActivationArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            activationProvider,
            name,
            { ...args, activeVersion: undefined, active: undefined, activatedAt: undefined, activatedCommit: undefined },
            { ...opts, additionalSecretOutputs: ["privateKey"] },
            "complinist",
            "Activation",
        );
    }
}
