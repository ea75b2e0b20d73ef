import * as pulumi from "@pulumi/pulumi";
import { type ActivationArgs, ActivationResource } from "../infra/providers/activation";

/** The provider's inputs, each documented on `ActivationInputs` (infra/providers/activation.ts). */
export type { ActivationArgs };

/**
 * Makes a release live on one host with zero downtime: start it beside the live
 * instance, gate it (status *and* version, plus smoke checks) before it takes a request,
 * switch the proxy, drain the old instance, soak, keep the pinned rollback target warm.
 * Depend it on the Release and the SystemdService it activates.
 */
export class Activation extends pulumi.ComponentResource {
    public readonly version: pulumi.Output<string>;
    /** Whether the live instance, the proxy and `current` agreed on the version at the last activation or refresh. */
    public readonly healthy: pulumi.Output<boolean>;
    public readonly standbyVersion: pulumi.Output<string>;
    /** The error-rate watch's figures of the last activation (canary and soak). */
    public readonly watch: pulumi.Output<string>;
    public readonly activatedAt: pulumi.Output<string>;
    public readonly activatedCommit: pulumi.Output<string>;
    public readonly resource: ActivationResource;

    constructor(name: string, args: ActivationArgs, opts?: pulumi.ComponentResourceOptions) {
        super("complinist:host:Activation", name, {}, opts);
        // Children do not inherit a component's dependsOn; pass it down so the switch waits for its release and unit.
        this.resource = new ActivationResource(`${name}-switch`, args, { parent: this, ...(opts?.dependsOn ? { dependsOn: opts.dependsOn } : {}) });
        this.version = this.resource.activeVersion;
        this.healthy = this.resource.active.apply((a) => a === "active");
        this.standbyVersion = this.resource.standbyVersion;
        this.watch = this.resource.watchResult;
        this.activatedAt = this.resource.activatedAt;
        this.activatedCommit = this.resource.activatedCommit;
        this.registerOutputs({ version: this.version, healthy: this.healthy, standbyVersion: this.standbyVersion, watch: this.watch, activatedAt: this.activatedAt, activatedCommit: this.activatedCommit });
    }
}
