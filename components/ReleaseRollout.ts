import * as pulumi from "@pulumi/pulumi";
import { keptVersions, StackConfig, batches } from "../stacks/config";
import type { ArtifactRelease } from "../stacks/schema";
import { HostDeployment } from "./HostDeployment";

export interface ReleaseRolloutArgs {
    /** The validated stack config (release mode). */
    readonly config: StackConfig;
    /** SSH private key text (secret). */
    readonly privateKey: pulumi.Input<string>;
    /** Generated secrets for every host's env file. */
    readonly secretEnvironment: pulumi.Input<Record<string, pulumi.Input<string>>>;
}

/**
 * Release mode across all hosts, in batches of `config.batchSize`: every host
 * of batch N+1 waits for the activations of batch N, so a failed health gate
 * stops the rollout with later hosts untouched.
 */
export class ReleaseRollout extends pulumi.ComponentResource {
    public readonly hosts: Record<string, HostDeployment>;
    /** Per host: the version it serves and whether it is healthy. */
    public readonly status: pulumi.Output<Record<string, { version: string; healthy: boolean }>>;
    public readonly deployedAt: pulumi.Output<string>;
    public readonly deployedCommit: pulumi.Output<string>;
    public readonly kept: string[];

    constructor(name: string, args: ReleaseRolloutArgs, opts?: pulumi.ComponentResourceOptions) {
        super("complinist:deploy:ReleaseRollout", name, {}, opts);
        const c = args.config;
        this.kept = keptVersions(c);
        const releases: Record<string, ArtifactRelease> = {};
        for (const v of this.kept) releases[v] = c.releases[v] as ArtifactRelease;

        this.hosts = {};
        let previous: pulumi.Resource[] = [];
        for (const batch of batches(c.hosts, c.batchSize)) {
            const current: pulumi.Resource[] = [];
            for (const h of batch) {
                const d = new HostDeployment(
                    `${name}-${h.name}`,
                    {
                        // The schema requires hostKey for every SSH host (only container mode's `local` has none).
                        host: { name: h.name, address: h.address, port: h.port, user: h.user, hostKey: h.hostKey as string },
                        privateKey: args.privateKey,
                        stack: c.stack,
                        baseDir: c.baseDir,
                        version: c.version,
                        keep: this.kept,
                        releases,
                        service: c.service,
                        secretEnvironment: args.secretEnvironment,
                        health: c.health,
                        ...(c.hooks.beforeActivate !== undefined ? { beforeActivate: c.hooks.beforeActivate } : {}),
                        after: previous,
                    },
                    { parent: this },
                );
                this.hosts[h.name] = d;
                current.push(d.activation.resource);
            }
            previous = current;
        }
        const names = Object.keys(this.hosts);
        this.status = pulumi.all(names.map((n) => (this.hosts[n] as HostDeployment).status)).apply((s) => Object.fromEntries(names.map((n, i) => [n, s[i]])));
        this.deployedAt = pulumi
            .all(names.map((n) => (this.hosts[n] as HostDeployment).activation.activatedAt))
            .apply((ts) => ts.filter((t): t is string => typeof t === "string" && t !== "").sort().pop() ?? "");
        const activations = names.map((n) => (this.hosts[n] as HostDeployment).activation);
        this.deployedCommit = pulumi
            .all(activations.map((a) => pulumi.all([a.activatedAt, a.activatedCommit])))
            .apply((pairs) => pairs.filter(([t]) => typeof t === "string" && t !== "").sort(([a], [b]) => a.localeCompare(b)).pop()?.[1] ?? "");
        this.registerOutputs({ status: this.status, deployedAt: this.deployedAt, deployedCommit: this.deployedCommit, kept: this.kept });
    }
}
