import * as pulumi from "@pulumi/pulumi";
import type { StackConfig } from "./config";

/**
 * The promotion gate: a stack with `promoteFrom` (prod) may only take a version
 * that has already proved itself.
 *
 * The rule (evaluated before any resource of the stack registers):
 *
 *   `version` V passes when
 *     (a) the source stack (staging) reports `deployedVersion` = V AND every host
 *         in its `hosts` output reports `{ version: V, healthy: true }` — the
 *         normal promotion; or
 *     (b) V is what this stack itself recorded at its last successful deployment,
 *         as `deployedVersion` (re-applying what already runs: a health-timeout
 *         change, a replaced host) or as `rollbackVersion` (the pinned rollback
 *         target — an emergency rollback must not be blocked because staging has
 *         moved on, and that version was live on prod before).
 *
 *   `rollbackVersion` R (when set and when the stack has a deploy record) passes
 *   when R is the recorded `deployedVersion` or `rollbackVersion`, or the version
 *   staging runs healthy. Without this, rule (b) would be a two-step bypass: pin
 *   an untested version as the rollback target, then "roll back" to it.
 *
 * Rule (b) needs this stack's previous outputs, which the program reads through a
 * StackReference to its own stack (the last checkpoint: a stack reference reads the
 * stored outputs, not the update in progress). On the first deployment that record
 * is empty: V must then come from staging, and the pin is accepted as written in the
 * stack file (it shows in the preview). Going back further than the pinned version
 * means deploying that version to staging first — prod never runs a version that
 * neither staging nor prod itself has shown healthy.
 *
 * Stack names: `promoteFrom` is passed to StackReference as written. A bare name
 * (`staging`) names a stack of this project in the current organization, both with
 * a DIY (file) backend and with Pulumi Cloud; `org/project/stack` works where the
 * backend supports it (for DIY backends org must be the literal `organization`).
 */

/** A stack's deploy record, as its outputs report it (anything may be missing or malformed). */
export type StackOutputs = Readonly<Record<string, unknown>>;

export interface PromotionInput {
    /** The stack being deployed (prod). */
    readonly stack: string;
    /** The stack it promotes from (staging). */
    readonly source: string;
    readonly version: string;
    readonly rollbackVersion?: string | undefined;
    /** The source stack's current outputs. */
    readonly sourceOutputs: StackOutputs;
    /** This stack's outputs from its last successful deployment ({} before the first). */
    readonly ownOutputs: StackOutputs;
}

export type PromotionDecision = { readonly ok: true; readonly reason: string } | { readonly ok: false; readonly message: string };

interface HostReport {
    readonly name: string;
    readonly version: string;
    readonly healthy: boolean;
}

function str(v: unknown): string | undefined {
    return typeof v === "string" && v !== "" ? v : undefined;
}

function hostReports(outputs: StackOutputs): HostReport[] {
    const hosts = outputs.hosts;
    if (hosts === null || typeof hosts !== "object" || Array.isArray(hosts)) return [];
    return Object.entries(hosts as Record<string, unknown>).map(([name, h]) => {
        const r = (h ?? {}) as { version?: unknown; healthy?: unknown };
        return { name, version: typeof r.version === "string" ? r.version : "unknown", healthy: r.healthy === true };
    });
}

/** One line an operator can read: what the stack says it runs. */
export function describeReport(outputs: StackOutputs): string {
    const deployed = str(outputs.deployedVersion);
    const hosts = hostReports(outputs);
    const hostText = hosts.length === 0 ? "no hosts" : hosts.map((h) => `${h.name} ${h.version} ${h.healthy ? "healthy" : "UNHEALTHY"}`).join(", ");
    return `deployedVersion ${deployed ?? "none"}; hosts: ${hostText}`;
}

/** The source stack deployed `version` and every one of its hosts serves it healthy. */
export function runsHealthy(outputs: StackOutputs, version: string): boolean {
    const hosts = hostReports(outputs);
    return str(outputs.deployedVersion) === version && hosts.length > 0 && hosts.every((h) => h.version === version && h.healthy);
}

/** Pure: decide the gate. See the rule at the top of this file. */
export function evaluatePromotion(i: PromotionInput): PromotionDecision {
    const ownDeployed = str(i.ownOutputs.deployedVersion);
    const ownRollback = str(i.ownOutputs.rollbackVersion);
    const hasRecord = ownDeployed !== undefined;
    const seen = `${i.source} reports ${describeReport(i.sourceOutputs)}`;

    let reason: string;
    if (runsHealthy(i.sourceOutputs, i.version)) {
        reason = `${i.source} runs ${i.version} healthy on every host`;
    } else if (i.version === ownDeployed) {
        reason = `${i.version} is what ${i.stack} already runs (its last deployment)`;
    } else if (i.version === ownRollback) {
        reason = `${i.version} is ${i.stack}'s pinned rollback target (rollback; ${seen})`;
    } else {
        const choices = [
            `deploy ${i.version} to ${i.source} first (pulumi up --stack ${i.source}) and promote it once every host reports it healthy`,
            ...(str(i.sourceOutputs.deployedVersion) ? [`or promote what ${i.source} runs: pulumi config set complinist:version ${str(i.sourceOutputs.deployedVersion)} --stack ${i.stack}`] : []),
            ...(ownRollback ? [`or roll back to the pinned ${ownRollback}: npm run rollback -- --stack ${i.stack}`] : []),
        ];
        return {
            ok: false,
            message:
                `Promotion gate: stack '${i.stack}' refuses version ${i.version}: stack '${i.source}' has not deployed it healthy ` +
                `(${seen}), and it is neither what ${i.stack} runs (${ownDeployed ?? "nothing yet"}) nor its pinned rollback target (${ownRollback ?? "none"}). ` +
                `Nothing was changed. Next: ${choices.join("; ")}.`,
        };
    }

    const r = i.rollbackVersion;
    if (r !== undefined && hasRecord && r !== ownDeployed && r !== ownRollback && !runsHealthy(i.sourceOutputs, r)) {
        return {
            ok: false,
            message:
                `Promotion gate: stack '${i.stack}' refuses rollbackVersion ${r}: a rollback target must be a version ${i.stack} ran ` +
                `(${ownDeployed}${ownRollback ? ` or ${ownRollback}` : ""}) or one '${i.source}' runs healthy (${seen}). Nothing was changed. ` +
                `Next: pulumi config set complinist:rollbackVersion ${ownDeployed} --stack ${i.stack}.`,
        };
    }
    return { ok: true, reason: `Promotion gate: ${i.stack} may take ${i.version}: ${reason}.` };
}

/**
 * A RunError (the language host prints its message without a stack trace) whose
 * message stays as written. Every resource waiting on the gate rejects with this
 * same object, and the SDK's serializer prefixes `error serializing property "x": `
 * to the message of an error passing through it (runtime/rpc.js, in place, to keep
 * the identity the host uses to report an error once): the operator would read the
 * refusal behind a chain of property names. Writes to `message` are ignored.
 */
export class PromotionRefused extends pulumi.RunError {
    constructor(message: string) {
        super(message);
        this.name = "PromotionRefused";
        Object.defineProperty(this, "message", { get: () => message, set: () => undefined, enumerable: false, configurable: true });
    }
}

/**
 * The gate as an Output the stack's resources depend on (pass it as `dependsOn`):
 * it resolves only when the gate passes, so on a refusal no resource registers —
 * `pulumi preview` and `pulumi up` fail with the message and change nothing. Stacks
 * without `promoteFrom` get `[]` and no StackReference.
 */
export function promotionGate(config: Pick<StackConfig, "stack" | "version" | "rollbackVersion" | "promoteFrom">): pulumi.Input<pulumi.Resource[]> {
    const source = config.promoteFrom;
    if (source === undefined) return [];
    const sourceRef = new pulumi.StackReference("promotion-source", { name: source });
    // The stack's own last checkpoint: what it ran and had pinned (rule (b)).
    const ownRef = new pulumi.StackReference("promotion-last-deployment", { name: config.stack });
    return pulumi.all([sourceRef.outputs, ownRef.outputs]).apply(([sourceOutputs, ownOutputs]) => {
        const d = evaluatePromotion({
            stack: config.stack,
            source,
            version: config.version,
            rollbackVersion: config.rollbackVersion,
            sourceOutputs: sourceOutputs ?? {},
            ownOutputs: ownOutputs ?? {},
        });
        if (!d.ok) throw new PromotionRefused(d.message);
        pulumi.log.info(d.reason);
        // The refs still become dependencies (through this Output); nothing else to add.
        return [];
    });
}
