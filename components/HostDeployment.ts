import * as pulumi from "@pulumi/pulumi";
import { HealthGate } from "../infra/providers/activation";
import { HostTarget, hostKeyFingerprint } from "../infra/providers/host";
import { HostIdentity } from "../infra/providers/hostIdentity";
import type { InstanceRuntime } from "../infra/agent/protocol";
import type { ArtifactRelease } from "../stacks/schema";
import type { ContainerLimits, ImageRelease } from "../stacks/containerSchema";
import type { WatchConfig } from "../stacks/watchSchema";
import { Activation, type ActivationArgs } from "./Activation";
import type { HostStatus } from "./rollout";
import { Release, ReleaseSource } from "./Release";
import { SystemdService } from "./SystemdService";

export interface HostDeploymentArgs {
    /** The host, as configured (plain; shown in preview). */
    readonly host: HostTarget;
    /** SSH private key text (secret). */
    readonly privateKey: pulumi.Input<string>;
    /** Secret HTTP header line for URL downloads (`releaseAuth.header`), "" for none. */
    readonly releaseAuth: pulumi.Input<string>;
    /** `releaseAuth.origins`: the header goes only with a download from one of them ([] for none). */
    readonly releaseAuthOrigins: ReadonlyArray<string>;
    /** `complinist:acknowledgeHostChange`: hosts whose new address or host key may be used (default none). */
    readonly acknowledgeHostChange: ReadonlyArray<string>;
    /** Stack name (for messages). */
    readonly stack: string;
    /** Deployment root on the host. */
    readonly baseDir: string;
    /** The version to activate. */
    readonly version: string;
    /** Every version to keep on the host (includes `version` and the pinned rollback target). */
    readonly keep: ReadonlyArray<string>;
    /** Artifact (release mode) or image (container mode) of every kept version. */
    readonly releases: Readonly<Record<string, ArtifactRelease | ImageRelease>>;
    /** How instances run: `process` (release mode: the release's command) or `docker` (container mode: its image). */
    readonly runtime: InstanceRuntime;
    /** Service settings, defaults applied. */
    readonly service: {
        readonly name: string;
        readonly port: number;
        readonly user: string;
        readonly command: string;
        readonly environment: Readonly<Record<string, string>>;
        readonly standby: boolean;
        /** Container mode's limits, defaults applied. */
        readonly container: ContainerLimits;
    };
    /** Generated secrets for the env file. */
    readonly secretEnvironment: pulumi.Input<Record<string, pulumi.Input<string>>>;
    /** Health gate settings, defaults applied. */
    readonly health: HealthGate;
    /** The pinned rollback target ("" when none): kept warm as the standby. */
    readonly rollbackVersion: string;
    /** The canary after the gate (percent 0: none) and the error-rate watch, defaults applied. */
    readonly canary: { readonly percent: number; readonly seconds: number };
    readonly watch: WatchConfig;
    /** `version` is acknowledged (acknowledgeRolledBack): deployed even where the watch rolled back from it. */
    readonly acknowledged: boolean;
    /** `failover` as the agent's setting: seconds the live instance may fail before the host switches to the standby (0: off). */
    readonly failoverAfterSeconds: number;
    /** hooks.beforeActivate and when it runs, defaults applied. */
    readonly hooks: { readonly beforeActivate?: string | undefined; readonly timeoutSeconds: number; readonly onRollback: boolean };
    /** Whether this host runs the hook (false on later hosts with hooks.once). */
    readonly hookHere: boolean;
    /** hooks.beforeActivate was set with --secret: a secret input of the Activation, [secret] on the host. */
    readonly hookSecret: boolean;
    /** `complinist:allowServiceInterruption`: a new service name or baseDir may stop the service on this host. */
    readonly allowServiceInterruption: boolean;
    /** rollout.onFailure and the other hosts: what a failed activation here does to the fleet (ActivationInputs.fleet). */
    readonly fleet: ActivationArgs["fleet"];
    /** The previous batch's activations: nothing on this host changes until they are healthy. */
    readonly after?: ReadonlyArray<pulumi.Resource>;
}

/**
 * Everything one host runs, in either mode: its kept Releases, the SystemdService,
 * and the Activation of `version`. Container mode differs only in what a release is
 * (an image pinned by ID) and what an instance runs (that image, as a container). With `after` (the previous
 * batch's activations) the whole host waits until they are healthy: a bad
 * release is never even uploaded to a later batch.
 */
export class HostDeployment extends pulumi.ComponentResource {
    public readonly activation: Activation;
    public readonly releases: Record<string, Release>;
    public readonly service: SystemdService;
    /** The machine the host name stands for, as the last apply used it: everything else here waits for its diff. */
    public readonly identity: HostIdentity;
    /** The version this host serves and whether it is healthy. */
    public readonly status: pulumi.Output<HostStatus>;

    constructor(name: string, args: HostDeploymentArgs, opts?: pulumi.ComponentResourceOptions) {
        super("complinist:host:HostDeployment", name, {}, opts);
        if (!args.keep.includes(args.version)) throw new pulumi.ResourceError(`host ${args.host.name}: version ${args.version} must be among the kept releases`, this);
        // Before anything here reaches the host: a changed address or host key is refused in the identity's diff
        // unless acknowledged, and every resource below waits for it — a release created for a new version too.
        const moved = { stack: args.stack, acknowledgeHostChange: args.acknowledgeHostChange };
        this.identity = new HostIdentity(`${name}-identity`, { host: args.host, hostKeyFingerprint: hostKeyFingerprint(args.host.hostKey), ...moved }, { parent: this });
        const after = [...(args.after ?? []), this.identity];
        const child = { parent: this, dependsOn: after };
        const common = { host: args.host, privateKey: args.privateKey, baseDir: args.baseDir, service: args.service.name, ...moved };

        this.releases = {};
        for (const v of args.keep) {
            const r = args.releases[v];
            if (r === undefined) throw new pulumi.ResourceError(`host ${args.host.name}: release ${v} has no artifact in config`, this);
            const source: ReleaseSource =
                "image" in r
                    ? { kind: "image", image: r.image }
                    : { kind: "artifact", sha256: r.sha256, artifact: r.path !== undefined ? { path: r.path } : { url: r.url as string }, auth: args.releaseAuth, authOrigins: args.releaseAuthOrigins };
            // Never protected, even in prod: retention deletes releases that fall out of the kept set,
            // and the provider refuses to remove the one `current` points to.
            this.releases[v] = new Release(`${name}-release-${v}`, { ...common, version: v, source }, { ...child, protect: false });
        }

        this.service = new SystemdService(
            `${name}-service`,
            {
                ...common,
                user: args.service.user,
                command: args.service.command,
                port: args.service.port,
                environment: args.service.environment,
                secretEnvironment: args.secretEnvironment,
                stack: args.stack,
                allowServiceInterruption: args.allowServiceInterruption,
                runtime: args.runtime,
                containerLimits: args.service.container,
            },
            child,
        );

        this.activation = new Activation(
            `${name}-activation`,
            {
                ...common,
                stack: args.stack,
                version: args.version,
                // The artifact's configured sha256, or the image ID the release resolved on the host.
                sha256: (this.releases[args.version] as Release).sha256,
                user: args.service.user,
                port: args.service.port,
                health: args.health,
                rollbackVersion: args.rollbackVersion,
                standby: args.service.standby,
                beforeActivate: args.hooks.beforeActivate ?? "",
                ...(args.hookSecret ? { hookSecret: true as const } : {}),
                hookTimeoutSeconds: args.hooks.timeoutSeconds,
                hookHere: args.hookHere,
                hookOnRollback: args.hooks.onRollback,
                serviceRevision: this.service.revision,
                canary: args.canary,
                watch: args.watch,
                acknowledged: args.acknowledged,
                fleet: args.fleet,
                failoverAfterSeconds: args.failoverAfterSeconds,
            },
            { parent: this, dependsOn: [this.releases[args.version] as Release, this.service, ...after] },
        );
        this.status = pulumi.all([this.activation.version, this.activation.healthy, this.activation.watch]).apply(([version, healthy, watch]) => ({ version, healthy, watch: watch ?? "" }));
        this.registerOutputs({ status: this.status });
    }
}
