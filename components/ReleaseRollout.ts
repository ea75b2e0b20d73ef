import * as pulumi from "@pulumi/pulumi";
import { keptVersions, StackConfig } from "../stacks/config";
import type { ArtifactRelease } from "../stacks/schema";
import { CONTAINER_DEFAULTS, type ImageRelease } from "../stacks/containerSchema";
import { failoverAfterSeconds } from "../stacks/failoverSchema";
import { HostDeployment } from "./HostDeployment";
import { deployInBatches, fleetAround, HostStatus, statusByHost } from "./rollout";

export interface ReleaseRolloutArgs {
    /** The validated stack config, either mode. */
    readonly config: StackConfig;
    /** SSH private key text (secret). */
    readonly privateKey: pulumi.Input<string>;
    /** Secret HTTP header line for URL downloads (`releaseAuth.header`), "" for none; its origins come from `config`. */
    readonly releaseAuth: pulumi.Input<string>;
    /** Generated secrets for every host's env file. */
    readonly secretEnvironment: pulumi.Input<Record<string, pulumi.Input<string>>>;
}

/**
 * Every host, in batches of `config.batchSize`: every host of batch N+1 waits for
 * the activations of batch N, so a failed health gate stops the rollout with later
 * hosts untouched. Both modes take this one path: in container mode a release is an
 * image pinned by ID and an instance runs it as a container; the proxy, the gate, the
 * switch, the standby and the record are the same.
 */
export class ReleaseRollout extends pulumi.ComponentResource {
    public readonly hosts: Record<string, HostDeployment>;
    /** Per host: the version it serves and whether it is healthy. */
    public readonly status: pulumi.Output<Record<string, HostStatus>>;
    public readonly deployedAt: pulumi.Output<string>;
    public readonly deployedCommit: pulumi.Output<string>;
    public readonly kept: string[];

    constructor(name: string, args: ReleaseRolloutArgs, opts?: pulumi.ComponentResourceOptions) {
        super("complinist:deploy:ReleaseRollout", name, {}, opts);
        const c = args.config;
        this.kept = keptVersions(c);
        const releases: Record<string, ArtifactRelease | ImageRelease> = {};
        for (const v of this.kept) releases[v] = c.releases[v] as ArtifactRelease | ImageRelease;

        this.hosts = deployInBatches(
            c.hosts,
            c.batchSize,
            (h, after) =>
                new HostDeployment(
                    `${name}-${h.name}`,
                    {
                        // The schema requires hostKey for every host.
                        host: { ...h, hostKey: h.hostKey as string },
                        privateKey: args.privateKey,
                        releaseAuth: args.releaseAuth,
                        releaseAuthOrigins: c.releaseAuth?.origins ?? [],
                        acknowledgeHostChange: c.acknowledgeHostChange,
                        stack: c.stack,
                        baseDir: c.baseDir,
                        version: c.version,
                        keep: this.kept,
                        releases,
                        runtime: c.mode === "container" ? "docker" : "process",
                        service: { ...c.service, container: c.service.container ?? CONTAINER_DEFAULTS },
                        secretEnvironment: args.secretEnvironment,
                        health: c.health,
                        rollbackVersion: c.rollbackVersion ?? "",
                        canary: c.canary ?? { percent: 0, seconds: 0 },
                        watch: c.watch,
                        acknowledged: c.acknowledgeRolledBack.includes(c.version),
                        failoverAfterSeconds: failoverAfterSeconds(c.failover, c.service.standby && (c.rollbackVersion ?? "") !== ""),
                        hooks: c.hooks,
                        // hooks.once: a migration or backup runs on the first host of the first batch only.
                        hookHere: !c.hooks.once || h.name === c.hosts[0]?.name,
                        hookSecret: c.secretKeys.includes("hooks"),
                        allowServiceInterruption: c.allowServiceInterruption,
                        fleet: fleetAround(c.hosts, c.batchSize, h.name, c.rollout.onFailure),
                        after,
                    },
                    { parent: this },
                ),
            (d) => d.activation.resource,
        );
        this.status = statusByHost(this.hosts);
        // The latest activation on any host: when it happened and which commit it deployed.
        const latest = pulumi
            .all(Object.values(this.hosts).map((d) => pulumi.all([d.activation.activatedAt, d.activation.activatedCommit])))
            .apply((pairs) => pairs.filter(([t]) => typeof t === "string" && t !== "").sort(([a], [b]) => a.localeCompare(b)).pop());
        this.deployedAt = latest.apply((p) => p?.[0] ?? "");
        this.deployedCommit = latest.apply((p) => p?.[1] ?? "");
        this.registerOutputs({ status: this.status, deployedAt: this.deployedAt, deployedCommit: this.deployedCommit, kept: this.kept });
    }
}
