import * as pulumi from "@pulumi/pulumi";
import { ActivationResource } from "../infra/providers/activation";
import { HostTarget } from "../infra/providers/host";

export interface ActivationArgs {
    /** The host whose `current` link is switched. */
    readonly host: pulumi.Input<HostTarget>;
    /** SSH private key text (secret). */
    readonly privateKey: pulumi.Input<string>;
    /** Stack name, quoted in the rollback command of a failure message. */
    readonly stack: string;
    /** Deployment root on the host. */
    readonly baseDir: string;
    /** Unit name without `.service`. */
    readonly service: string;
    /** The version to make current. */
    readonly version: string;
    /** sha256 of that version's artifact (recorded in revisions.log). */
    readonly sha256: string;
    /** Port the health endpoint listens on (127.0.0.1). */
    readonly port: number;
    /** Health path; default /health. */
    readonly healthPath: string;
    /** How long the new release has to report healthy; default 60. */
    readonly timeoutSeconds: number;
    /** Pause between health probes; default 1000. */
    readonly intervalMs: number;
    /** Command run in the new release directory before the switch; its failure stops the activation. */
    readonly beforeActivate?: string;
    /** SystemdService.revision: a unit or env change restarts through the health gate. */
    readonly serviceRevision: pulumi.Input<string>;
}

/**
 * Makes a release current: lock, hook, atomic switch, restart, health gate
 * (status *and* version), automatic switch-back on failure. Depend it on the
 * Release and the SystemdService it activates.
 */
export class Activation extends pulumi.ComponentResource {
    public readonly version: pulumi.Output<string>;
    /** Whether the host's service was active at the last activation or refresh. */
    public readonly healthy: pulumi.Output<boolean>;
    public readonly activatedAt: pulumi.Output<string>;
    public readonly activatedCommit: pulumi.Output<string>;
    public readonly resource: ActivationResource;

    constructor(name: string, args: ActivationArgs, opts?: pulumi.ComponentResourceOptions) {
        super("complinist:host:Activation", name, {}, opts);
        // Children do not inherit a component's dependsOn; pass it down so the switch waits for its release and unit.
        this.resource = new ActivationResource(`${name}-switch`, { ...args }, { parent: this, ...(opts?.dependsOn ? { dependsOn: opts.dependsOn } : {}) });
        this.version = this.resource.activeVersion;
        this.healthy = this.resource.active.apply((a) => a === "active");
        this.activatedAt = this.resource.activatedAt;
        this.activatedCommit = this.resource.activatedCommit;
        this.registerOutputs({ version: this.version, healthy: this.healthy, activatedAt: this.activatedAt, activatedCommit: this.activatedCommit });
    }
}
