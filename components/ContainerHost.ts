import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";

import { dockerHostUrl, goDuration, healthcheckCommand, pinnedSshOpts, VERSION_ENV } from "../infra/render/container";
import { LOCAL_ADDRESS, type HostConfig } from "../stacks/schema";
import { childOptions } from "./options";

/** Label carrying the version: a plain, readable line in `pulumi preview --diff`. */
export const VERSION_LABEL = "complinist.version";

export interface ContainerHostArgs {
    /** The host and how to reach its engine: `address: local` is this machine's, any other needs its hostKey (plain: shown in preview). */
    readonly host: pulumi.Input<HostConfig>;
    /** The version to run: one of `keep` (plain: names the image the container runs). */
    readonly version: string;
    /** Every version whose image stays on the host: version, pinned rollback, newest others (plain: one RemoteImage each). */
    readonly keep: ReadonlyArray<string>;
    /** Image reference of every kept version, e.g. { "1.1.0": "complinist:1.1.0" }. */
    readonly images: Readonly<Record<string, pulumi.Input<string>>>;
    /** Service settings, defaults applied: name (container name, log dir), port (published as is), environment (plain: one env entry each). */
    readonly service: { readonly name: string; readonly port: number; readonly environment: Readonly<Record<string, string>> };
    /** Health gate, defaults applied: path (/health), timeoutSeconds (60: waitTimeout), intervalMs (1000: probe interval). */
    readonly health: pulumi.Input<{ readonly path: string; readonly timeoutSeconds: number; readonly intervalMs: number }>;
    /**
     * Generated secrets, one env var each. Keys are plain so the other `envs` entries stay
     * readable in preview; every value is wrapped as a secret here whatever the caller passed.
     */
    readonly secretEnvironment: Readonly<Record<string, pulumi.Input<string>>>;
    /** The previous batch's containers: nothing here starts (not even an image pull) before they are healthy. */
    readonly after?: ReadonlyArray<pulumi.Resource>;
}

/**
 * One Docker host in container mode: its engine (a provider pinned to the host
 * key), one RemoteImage per kept version (`keepLocally`, so a rollback pulls
 * nothing and retention never deletes an image a container may still use), a
 * log volume, and the service's container with the /health contract as its
 * healthcheck.
 *
 * Which changes replace the container (stop old, start new: the name and the
 * host port are fixed, so deleteBeforeReplace): `image` (a version change),
 * `envs` (service.environment, secrets, the version), `labels`, `ports`,
 * `volumes` — all ForceNew in the provider — and `healthcheck`, which the
 * provider would "update" in place without changing the container
 * (kreuzwerker/terraform-provider-docker#988), hence replaceOnChanges.
 * In place: `restart` (docker update), `waitTimeout`, `destroyGraceSeconds`
 * (provider-side only).
 */
export class ContainerHost extends pulumi.ComponentResource {
    public readonly provider: docker.Provider;
    public readonly images: Record<string, docker.RemoteImage>;
    public readonly logVolume: docker.Volume;
    public readonly container: docker.Container;
    /** The version this host serves and whether it passed the health gate. */
    public readonly status: pulumi.Output<{ version: string; healthy: boolean }>;

    constructor(name: string, args: ContainerHostArgs, opts?: pulumi.ComponentResourceOptions) {
        super("complinist:container:ContainerHost", name, {}, opts);
        const host = pulumi.output(args.host);
        const health = pulumi.output(args.health);
        const s = args.service;
        const after = [...(args.after ?? [])];

        this.provider = new docker.Provider(
            `${name}-docker`,
            {
                host: host.apply(dockerHostUrl),
                // Remote engines only: the local socket has no host key. The operator's ssh agent/config
                // supplies the client key, so container mode needs no sshPrivateKey.
                sshOpts: host.apply((h) => (h.address === LOCAL_ADDRESS ? [] : pinnedSshOpts(h))),
            },
            // The promotion gate: every other child uses this provider, so none registers before the gate has passed.
            childOptions(this, opts),
        );
        const onEngine = { parent: this, provider: this.provider, dependsOn: after };

        this.images = {};
        for (const v of args.keep) {
            const ref = args.images[v];
            if (ref === undefined) throw new pulumi.ResourceError(`${name}: kept version ${v} has no image (set complinist:releases.${v}.image)`, this);
            // Never protected, even in prod: retention drops versions that fall out of the kept set.
            this.images[v] = new docker.RemoteImage(`${name}-image-${v}`, { name: ref, keepLocally: true }, { ...onEngine, protect: false });
        }
        const current = this.images[args.version];
        if (current === undefined) {
            throw new pulumi.ResourceError(`${name}: version ${args.version} must be among the kept versions (${args.keep.join(", ")})`, this);
        }

        this.logVolume = new docker.Volume(`${name}-logs`, { name: `${s.name}-logs` }, onEngine);

        // Plain entries stay plain and each secret is its own secret element, so a changed
        // LOG_LEVEL is readable in preview while SECRET_KEY never is.
        const envs: pulumi.Input<string>[] = [
            `PORT=${s.port}`,
            ...Object.keys(s.environment)
                .sort()
                .map((k) => `${k}=${s.environment[k]}`),
            `${VERSION_ENV}=${args.version}`,
            ...Object.keys(args.secretEnvironment)
                .sort()
                .map((k) => pulumi.secret(pulumi.interpolate`${k}=${args.secretEnvironment[k] as pulumi.Input<string>}`)),
        ];

        this.container = new docker.Container(
            `${name}-container`,
            {
                name: s.name,
                // The image ID, not the tag: the provider reads the ID back, so a tag would differ after every refresh.
                image: current.imageId,
                envs,
                labels: [{ label: VERSION_LABEL, value: args.version }],
                ports: [{ internal: s.port, external: s.port, ip: "0.0.0.0", protocol: "tcp" }],
                volumes: [{ volumeName: this.logVolume.name, containerPath: `/var/log/${s.name}` }],
                healthcheck: health.apply((h) => ({
                    tests: ["CMD-SHELL", healthcheckCommand(s.port, h.path)],
                    interval: goDuration(h.intervalMs),
                    timeout: "5s",
                    startPeriod: "0s",
                    retries: 3,
                })),
                restart: "unless-stopped",
                mustRun: true,
                // python as PID 1 ignores SIGTERM (no handler; the kernel drops default-action signals
                // to PID 1); SIGINT raises KeyboardInterrupt and server.py exits cleanly.
                stopSignal: "SIGINT",
                // `docker stop` before removal so in-flight requests finish.
                destroyGraceSeconds: 10,
                wait: true,
                waitTimeout: health.apply((h) => h.timeoutSeconds),
            },
            {
                ...onEngine,
                dependsOn: [...after, current, this.logVolume],
                // The name and the published port are fixed: the old container must go before the new one starts.
                deleteBeforeReplace: true,
                replaceOnChanges: ["healthcheck"],
                // Replaced on every version change: protect would turn each prod deploy into an error.
                protect: false,
            },
        );

        this.status = pulumi
            .all([this.container.id, this.container.labels, this.container.wait])
            .apply(([id, labels, wait]) => ({
                version: labels.find((l) => l.label === VERSION_LABEL)?.value ?? args.version,
                // The container exists in state only if `wait` saw it healthy (create fails otherwise).
                healthy: id !== "" && wait === true,
            }));
        this.registerOutputs({ status: this.status });
    }
}
