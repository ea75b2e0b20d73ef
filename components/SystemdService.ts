import * as pulumi from "@pulumi/pulumi";
import { HostTarget } from "../infra/providers/host";
import { ServiceUnit } from "../infra/providers/service";
import type { InstanceRuntime } from "../infra/agent/protocol";
import { renderFirewallRules, renderFirewallUnit } from "../infra/render/firewall";
import { hostLayout } from "../infra/render/layout";
import { renderLogrotate } from "../infra/render/logrotate";
import { renderAgentConfig } from "../infra/render/service";
import { agentBuild } from "../toolchain/agent";
import type { ContainerLimits } from "../stacks/containerSchema";
import { renderContainerInstanceUnit, renderDockerEnvFile, renderEnvFile, renderInstanceUnit, renderFailoverUnit, renderProxyUnit, renderServiceUnit } from "../infra/render/unit";

export interface SystemdServiceArgs {
    /** The host the unit is installed on. */
    readonly host: pulumi.Input<HostTarget>;
    /** SSH private key text (secret). */
    readonly privateKey: pulumi.Input<string>;
    /** Deployment root on the host; the unit's WorkingDirectory is `<baseDir>/current`. */
    readonly baseDir: string;
    /** Unit name without `.service`; default complinist. */
    readonly service: string;
    /** Unix user the service runs as (created if missing). */
    readonly user: string;
    /** Command run inside `current`, e.g. `bin/start`. */
    readonly command: string;
    /** The service port the proxy listens on. */
    readonly port: number;
    /** Plain environment (the operator's `service.environment`; PORT is set per instance). */
    readonly environment: Readonly<Record<string, string>>;
    /** Generated secrets added to the env file (kept secret in state). */
    readonly secretEnvironment: pulumi.Input<Record<string, pulumi.Input<string>>>;
    /** Stack name, for the acknowledgement command a refused interruption names. */
    readonly stack: string;
    /** `complinist:allowServiceInterruption`: a new service name or baseDir may stop the service (default false: refused in preview). */
    readonly allowServiceInterruption: boolean;
    /** `complinist:acknowledgeHostChange`: hosts whose new address or host key may get the env file (default none: refused in preview). */
    readonly acknowledgeHostChange: ReadonlyArray<string>;
    /** `process`: instances run `command` in their release; `docker`: they run the release's image as a container. */
    readonly runtime: InstanceRuntime;
    /** Container mode: memory, process, /tmp and log limits of each container (ignored in release mode). */
    readonly containerLimits: ContainerLimits;
}

/**
 * The systemd unit (hardened) and its 0600 env file, daemon-reloaded and
 * enabled. Starting and restarting belong to Activation.
 */
export class SystemdService extends pulumi.ComponentResource {
    /** The rendered instance template, as installed. */
    public readonly unitText: string;
    /** Changes whenever the unit or the env file changes (an Activation input: a change restarts through the health gate). */
    public readonly revision: pulumi.Output<string>;
    public readonly unit: ServiceUnit;

    constructor(name: string, args: SystemdServiceArgs, opts?: pulumi.ComponentResourceOptions) {
        super("complinist:host:SystemdService", name, {}, opts);
        const spec = { service: args.service, user: args.user, baseDir: args.baseDir, command: args.command };
        const docker = args.runtime === "docker";
        this.unitText = docker ? renderContainerInstanceUnit({ ...spec, limits: args.containerLimits }) : renderInstanceUnit(spec);
        const serviceUnitText = renderServiceUnit(spec);
        const proxyUnitText = renderProxyUnit({ ...spec, port: args.port });
        const firewallUnitText = renderFirewallUnit(spec);
        const firewallRules = renderFirewallRules({ service: args.service, port: args.port });
        const layout = hostLayout(args.baseDir, args.service);
        const agentConfigText = renderAgentConfig(args.baseDir, args.runtime);
        const logrotateText = renderLogrotate(layout);
        const envText = pulumi.secret(
            pulumi.output(args.secretEnvironment).apply((secrets) => (docker ? renderDockerEnvFile : renderEnvFile)({ ...args.environment, ...(secrets as Record<string, string>) })),
        );
        this.unit = new ServiceUnit(
            `${name}-unit`,
            {
                host: args.host,
                privateKey: args.privateKey,
                baseDir: args.baseDir,
                service: args.service,
                user: args.user,
                unitText: this.unitText,
                serviceUnitText,
                proxyUnitText,
                failoverUnitText: renderFailoverUnit(spec),
                firewallUnitText,
                firewallRules,
                agentConfigText,
                agent: agentBuild(),
                logrotateText,
                envText,
                stack: args.stack,
                allowServiceInterruption: args.allowServiceInterruption,
                acknowledgeHostChange: args.acknowledgeHostChange,
            },
            // Children do not inherit a component's dependsOn: pass it down (rollout batches).
            { parent: this, ...(opts?.dependsOn ? { dependsOn: opts.dependsOn } : {}) },
        );
        const crypto = require("crypto") as typeof import("crypto");
        // A hash, not the text: the activation must restart on a change without carrying the secret env in its
        // inputs. A truncated sha256 of high-entropy secrets reveals nothing, so it is shown in preview.
        this.revision = pulumi.unsecret(envText).apply((env) => crypto.createHash("sha256").update(this.unitText).update("\0").update(proxyUnitText).update("\0").update(env).digest("hex").slice(0, 16));
        this.registerOutputs({ unitText: this.unitText, revision: this.revision });
    }
}
