import * as pulumi from "@pulumi/pulumi";
import { keptVersions, StackConfig } from "../stacks/config";
import type { ImageRelease } from "../stacks/schema";
import { ContainerHost } from "./ContainerHost";
import { childOptions } from "./options";
import { deployInBatches, HostStatus, statusByHost } from "./rollout";

export interface ContainerRolloutArgs {
    /** The validated stack config (container mode: every release is `{ image }`). */
    readonly config: StackConfig;
    /** Generated secrets, one env var each (plain keys, secret values). */
    readonly secretEnvironment: Readonly<Record<string, pulumi.Input<string>>>;
}

/**
 * Container mode across all hosts, in batches of `config.batchSize`: every
 * host of batch N+1 (its image pulls included) waits for the containers of
 * batch N, and a container exists only once Docker reports it healthy
 * (`wait`), so a failed health gate stops the rollout with later hosts
 * untouched. Outputs mirror ReleaseRollout.
 */
export class ContainerRollout extends pulumi.ComponentResource {
    public readonly hosts: Record<string, ContainerHost>;
    /** Per host: the version it serves and whether it is healthy. */
    public readonly status: pulumi.Output<Record<string, HostStatus>>;
    /**
     * "" in container mode: the docker provider records no creation time and the
     * program may not put a clock into resource inputs (preview must be stable).
     */
    public readonly deployedAt: pulumi.Output<string>;
    /** "" in container mode, for the same reason (a commit in inputs would replace containers on every commit). */
    public readonly deployedCommit: pulumi.Output<string>;
    public readonly kept: string[];

    constructor(name: string, args: ContainerRolloutArgs, opts?: pulumi.ComponentResourceOptions) {
        super("complinist:deploy:ContainerRollout", name, {}, opts);
        const c = args.config;
        if (c.mode !== "container") throw new pulumi.ResourceError(`ContainerRollout needs complinist:mode container (stack ${c.stack} has ${c.mode})`, this);
        this.kept = keptVersions(c);
        const images: Record<string, string> = {};
        for (const v of this.kept) images[v] = (c.releases[v] as ImageRelease).image;
        // The promotion gate (index.ts) travels down.
        const child = childOptions(this, opts);

        this.hosts = deployInBatches(
            c.hosts,
            c.batchSize,
            (h, after) =>
                new ContainerHost(
                    `${name}-${h.name}`,
                    {
                        host: h,
                        version: c.version,
                        keep: this.kept,
                        images,
                        service: { name: c.service.name, port: c.service.port, environment: c.service.environment },
                        health: c.health,
                        secretEnvironment: args.secretEnvironment,
                        after,
                    },
                    child,
                ),
            (host) => host.container,
        );
        this.status = statusByHost(this.hosts);
        this.deployedAt = pulumi.output("");
        this.deployedCommit = pulumi.output("");
        this.registerOutputs({ status: this.status, deployedAt: this.deployedAt, deployedCommit: this.deployedCommit, kept: this.kept });
    }
}
