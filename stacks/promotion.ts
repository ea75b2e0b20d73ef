import * as pulumi from "@pulumi/pulumi";
import type { StackConfig } from "./config";
import { imageDigestParts } from "../infra/render/image";
import { describeReport, nextHistory, recordedDigest, recordedHistory, recordedImages, runsHealthy, str, type StackOutputs } from "./record";

/**
 * The promotion gate: a stack with `promoteFrom` (prod) may only take a version
 * that has already proved itself, and never silently one it rolled back from.
 *
 * The rule (evaluated before any resource of the stack registers):
 *
 *   `version` V is refused when V is in this stack's `rolledBackFrom` record and
 *   `acknowledgeRolledBack` does not list it — a rollback sticks: the next pipeline
 *   that still carries V cannot roll forward to it by accident. Otherwise V passes when
 *     (a) the source stack (staging) reports `deployedVersion` = V AND every host
 *         in its `hosts` output reports `{ version: V, healthy: true }` — the
 *         normal promotion; or
 *     (b) V is what this stack recorded at its last successful deployment, as
 *         `deployedVersion` (re-applying what already runs) or as `rollbackVersion`
 *         (the pinned target: an emergency rollback is never blocked because staging
 *         has moved on); or
 *     (c) V is in this stack's `history` (versions it ran healthy on every host) —
 *         retrying an older pipeline's deploy job (rollback method 2) deploys its version.
 *
 *   Container mode compares content, not only names: with `images` (this stack's version →
 *   image pinned by digest), (a) also needs the source's `images` output to record the same
 *   digest for V (a source that records none does not vouch for it), and (b)/(c) need this
 *   stack's own record, where it has a digest for V, to hold the same one. A re-pushed image
 *   under an old version, or a digest edited in prod's stack file, is refused.
 *
 *   `rollbackVersion` R (when set and when the stack has a deploy record) passes
 *   when R is in that record (deployed, pinned or history) or staging runs it
 *   healthy. Without this, rule (b) would be a two-step bypass: pin an untested
 *   version as the rollback target, then "roll back" to it.
 *
 * The record comes from this stack's previous outputs, read through a StackReference
 * to its own stack (the last checkpoint: a stack reference reads the stored outputs,
 * not the update in progress); the program exports the next record (deployHistory,
 * computed by stacks/record.ts). On the first deployment that record is empty: V must
 * come from staging, and the pin is accepted as written in the stack file (it shows in
 * the preview).
 *
 * Stack names: `promoteFrom` is passed to StackReference as written. A bare name
 * (`staging`) names a stack of this project in the current organization, both with
 * a DIY (file) backend and with Pulumi Cloud; `org/project/stack` works where the
 * backend supports it (for DIY backends org must be the literal `organization`).
 */

export type { StackOutputs } from "./record";

export interface PromotionInput {
    /** The stack being deployed (prod). */
    readonly stack: string;
    /** The stack it promotes from (staging). */
    readonly source: string;
    readonly version: string;
    readonly rollbackVersion?: string | undefined;
    /** Versions the stack config acknowledges deploying again although the stack rolled back from them. */
    readonly acknowledged?: ReadonlyArray<string> | undefined;
    /** The source stack's current outputs. */
    readonly sourceOutputs: StackOutputs;
    /** This stack's outputs from its last successful deployment ({} before the first). */
    readonly ownOutputs: StackOutputs;
    /** Container mode: this stack's version → image pinned by digest (config); undefined in release mode. */
    readonly images?: Readonly<Record<string, string>> | undefined;
}

export type PromotionDecision =
    | { readonly ok: true; readonly reason: string; readonly warnings: ReadonlyArray<string> }
    | { readonly ok: false; readonly message: string };

const ACK_KEY = "complinist:acknowledgeRolledBack";

function list(versions: ReadonlyArray<string>): string {
    return versions.length === 0 ? "none" : versions.join(", ");
}

/** Pure: decide the gate. See the rule at the top of this file. */
export function evaluatePromotion(i: PromotionInput): PromotionDecision {
    const ownDeployed = str(i.ownOutputs.deployedVersion);
    const ownRollback = str(i.ownOutputs.rollbackVersion);
    const { history, rolledBackFrom } = recordedHistory(i.ownOutputs);
    const acknowledged = i.acknowledged ?? [];
    const seen = `${i.source} reports ${describeReport(i.sourceOutputs)}`;

    if (rolledBackFrom.includes(i.version) && !acknowledged.includes(i.version)) {
        return {
            ok: false,
            message:
                `Promotion gate: stack '${i.stack}' refuses version ${i.version}: ${i.stack} rolled back from ${i.version} ` +
                `(its rolledBackFrom output: ${list(rolledBackFrom)}; it runs ${ownDeployed ?? "nothing"}), so deploying it again needs an explicit acknowledgement in Pulumi.${i.stack}.yaml. ` +
                `Nothing was changed. Next: release a fixed version (npm run release) and promote it through ${i.source}; ` +
                `or, to deploy ${i.version} again on purpose: pulumi config set --path '${ACK_KEY}[${acknowledged.length}]' ${i.version} --stack ${i.stack}, ` +
                `commit Pulumi.${i.stack}.yaml and deploy.`,
        };
    }

    // Container mode: a record vouches for a version only with the same image digest as this stack's config.
    const want = (v: string): string | undefined => (i.images?.[v] === undefined ? undefined : imageDigestParts(i.images[v]).digest);
    const sameImage = (outputs: StackOutputs, v: string, required: boolean): boolean => {
        if (i.images === undefined) return true;
        const seen = recordedDigest(outputs, v);
        return seen === undefined ? !required : seen === want(v);
    };
    const fromSource = (v: string) => runsHealthy(i.sourceOutputs, v) && sameImage(i.sourceOutputs, v, true);
    const ownRecord = (v: string) => v === ownDeployed || v === ownRollback || history.includes(v);
    const fromOwn = (v: string) => ownRecord(v) && sameImage(i.ownOutputs, v, false);

    let reason: string;
    if (fromSource(i.version)) {
        reason = `${i.source} runs ${i.version} healthy on every host${i.images ? ` from the same image (${want(i.version)})` : ""}`;
    } else if (fromOwn(i.version) && i.version === ownDeployed) {
        reason = `${i.version} is what ${i.stack} already runs (its last deployment)`;
    } else if (fromOwn(i.version) && i.version === ownRollback) {
        reason = `${i.version} is ${i.stack}'s pinned rollback target (rollback; ${seen})`;
    } else if (fromOwn(i.version)) {
        reason = `${i.version} ran healthy on ${i.stack} before (its history: ${list(history)}; ${seen})`;
    } else if (i.images !== undefined && (runsHealthy(i.sourceOutputs, i.version) || ownRecord(i.version))) {
        return { ok: false, message: imageRefusal(i, i.version, "version", want(i.version)) };
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
                `(${seen}), and it is neither what ${i.stack} runs (${ownDeployed ?? "nothing yet"}) nor its pinned rollback target (${ownRollback ?? "none"}), ` +
                `nor a version ${i.stack} ran healthy before (history: ${list(history)}). Nothing was changed. Next: ${choices.join("; ")}.`,
        };
    }

    const r = i.rollbackVersion;
    const proven = (v: string) => fromOwn(v) || fromSource(v);
    if (r !== undefined && ownDeployed !== undefined && !proven(r)) {
        if (i.images !== undefined && (runsHealthy(i.sourceOutputs, r) || ownRecord(r))) return { ok: false, message: imageRefusal(i, r, "rollbackVersion", want(r)) };
        return {
            ok: false,
            message:
                `Promotion gate: stack '${i.stack}' refuses rollbackVersion ${r}: a rollback target must be a version ${i.stack} ran ` +
                `(history: ${list(history)}) or one '${i.source}' runs healthy (${seen}). Nothing was changed. ` +
                `Next: pulumi config set complinist:rollbackVersion ${ownDeployed} --stack ${i.stack}.`,
        };
    }
    // A stale acknowledgement would let a later rollback from that version be undone silently. The one
    // for the version deployed now is in use while it does not run yet: it may be a host's error-rate
    // watch that rolled it back, which prod's record does not show (the host refuses it otherwise).
    const warnings = acknowledged
        .filter((v) => !rolledBackFrom.includes(v) && (v !== i.version || ownDeployed === v))
        .map(
            (v) =>
                `${ACK_KEY} lists ${v}, which ${i.stack} has not rolled back from (rolledBackFrom: ${list(rolledBackFrom)}): ` +
                `remove it from Pulumi.${i.stack}.yaml so a future rollback from ${v} sticks.`,
        );
    return { ok: true, reason: `Promotion gate: ${i.stack} may take ${i.version}: ${reason}.`, warnings };
}

/** The refusal of a version whose name is vouched for, but not with this stack's image digest. */
function imageRefusal(i: PromotionInput, v: string, key: "version" | "rollbackVersion", digest: string | undefined): string {
    const ref = i.images?.[v] ?? "none";
    const sourceRef = recordedImages(i.sourceOutputs)[v];
    const ownRef = recordedImages(i.ownOutputs)[v];
    const records = [
        `'${i.source}' ${runsHealthy(i.sourceOutputs, v) ? `runs ${v} healthy from ${sourceRef ?? "an image it recorded no digest for (its images output lacks it)"}` : `does not run ${v}`}`,
        `${i.stack} recorded ${ownRef ?? "no image"} for ${v}`,
    ];
    const next = sourceRef
        ? `pin the image ${i.source} ran: pulumi config set --path 'complinist:releases.${v}.image' ${sourceRef} --stack ${i.stack}; or publish a new version and promote it through ${i.source}`
        : `deploy ${v} to ${i.source} from ${ref} first (its images output then records the digest), or publish a new version and promote it through ${i.source}`;
    return (
        `Promotion gate: stack '${i.stack}' refuses ${key} ${v}: releases.${v}.image ${ref} (digest ${digest ?? "none"}) is not the image that proved itself as ${v} ` +
        `(${records.join("; ")}): the same version must be the same image on every stack. Nothing was changed. Next: ${next}.`
    );
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

type GateConfig = Pick<StackConfig, "stack" | "version" | "rollbackVersion" | "promoteFrom"> &
    Partial<Pick<StackConfig, "mode" | "releases">> & { readonly acknowledgeRolledBack?: ReadonlyArray<string> };

/** Container mode: version → image reference pinned by digest, from config (undefined in release mode). */
export function configImages(config: GateConfig): Record<string, string> | undefined {
    if (config.mode !== "container" || config.releases === undefined) return undefined;
    return Object.fromEntries(Object.entries(config.releases).flatMap(([v, r]) => ("image" in r ? [[v, r.image]] : [])));
}

/**
 * This stack's own last checkpoint, read once per program run: the gate and the
 * record exported by deployHistory share one StackReference (a second one would be
 * a second read of the same stack under another name).
 */
const ownReferences = new WeakMap<object, pulumi.StackReference>();
function ownReference(config: GateConfig): pulumi.StackReference {
    let ref = ownReferences.get(config);
    if (ref === undefined) {
        ref = new pulumi.StackReference("promotion-last-deployment", { name: config.stack });
        ownReferences.set(config, ref);
    }
    return ref;
}

/**
 * The gate as an Output the stack's resources depend on (pass it as `dependsOn`):
 * it resolves only when the gate passes, so on a refusal no resource registers —
 * `pulumi preview` and `pulumi up` fail with the message and change nothing. Stacks
 * without `promoteFrom` get `[]` and no StackReference.
 */
export function promotionGate(config: GateConfig): pulumi.Input<pulumi.Resource[]> {
    const source = config.promoteFrom;
    if (source === undefined) return [];
    const sourceRef = new pulumi.StackReference("promotion-source", { name: source });
    return pulumi.all([sourceRef.outputs, ownReference(config).outputs]).apply(([sourceOutputs, ownOutputs]) => {
        const d = evaluatePromotion({
            stack: config.stack,
            source,
            version: config.version,
            rollbackVersion: config.rollbackVersion,
            acknowledged: config.acknowledgeRolledBack,
            sourceOutputs: sourceOutputs ?? {},
            ownOutputs: ownOutputs ?? {},
            images: configImages(config),
        });
        if (!d.ok) throw new PromotionRefused(d.message);
        pulumi.log.info(d.reason);
        for (const w of d.warnings) pulumi.log.warn(w);
        // The refs still become dependencies (through this Output); nothing else to add.
        return [];
    });
}

/**
 * The stack outputs `history` and `rolledBackFrom` of a gated stack (prod), computed
 * from its previous record and the `hosts` output of this deployment (stacks/record.ts
 * nextHistory). The program exports both:
 *
 *     export const { history, rolledBackFrom } = deployHistory(config, hosts);
 *
 * Stacks without `promoteFrom` record nothing (both undefined: no output).
 */
export function deployHistory(
    config: GateConfig,
    hosts: pulumi.Input<Record<string, { version: string; healthy: boolean }>>,
): { history: pulumi.Output<string[]> | undefined; rolledBackFrom: pulumi.Output<string[]> | undefined } {
    if (config.promoteFrom === undefined) return { history: undefined, rolledBackFrom: undefined };
    const next = pulumi.all([ownReference(config).outputs, hosts]).apply(([own, h]) => nextHistory(own ?? {}, config.version, h));
    return { history: next.apply((n) => n.history), rolledBackFrom: next.apply((n) => n.rolledBackFrom) };
}

/**
 * The stack output `images` in container mode (undefined in release mode): version → the image
 * reference pinned by digest, for every kept version (what the hosts checked and run), and for a
 * gated stack (prod) also the ones its previous record holds for versions still in its history,
 * so the gate can compare digests when it vouches for a version from prod's own record.
 *
 *     export const images = deployImages(config, rollout.kept, history);
 */
export function deployImages(config: GateConfig, kept: ReadonlyArray<string>, history: pulumi.Output<string[]> | undefined): pulumi.Output<Record<string, string>> | undefined {
    const all = configImages(config);
    if (all === undefined) return undefined;
    const current = Object.fromEntries(kept.flatMap((v) => (all[v] === undefined ? [] : [[v, all[v]]])));
    if (config.promoteFrom === undefined || history === undefined) return pulumi.output(current);
    return pulumi.all([ownReference(config).outputs, history]).apply(([own, h]) => {
        const previous = recordedImages(own ?? {});
        return { ...Object.fromEntries(h.flatMap((v) => (previous[v] === undefined ? [] : [[v, previous[v]]]))), ...current };
    });
}
