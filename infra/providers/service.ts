import * as pulumi from "@pulumi/pulumi";
import { dynamicProps, InputsOf } from "./inputs";
import { hostLayout } from "../render/layout";
import { parseKeyValues } from "../render/protocol";
import { q } from "../render/shell";
import { AgentInstall, renderServiceApply, renderServiceDelete, ServiceFiles } from "../render/service";
import { readHostOnce } from "./hostRead";
import { AGENT_ARCHES, agentBinaryBySha, type AgentBuild } from "../../toolchain/agent";
import { configureCredentials, connect, deployer, HostChangeInputs, hostChangeRefusal, HostTarget, LOCKED_SCRIPT_TIMEOUT_MS, run, sha256Hex } from "./host";
import { guarded } from "./guard";

/** The systemd unit, its env file (0600) and its enablement on one host. */
/** The files on one host (declared once, with the renderer: ServiceFiles) plus how to reach it and the env file. */
export interface ServiceUnitState extends Omit<ServiceFiles, "who">, HostChangeInputs {
    readonly host: HostTarget;
    readonly privateKey: string;
    readonly baseDir: string;
    /** The env file (secret). */
    readonly envText: string;
    /** The stack, named in a refusal's acknowledgement command. */
    readonly stack: string;
    /** `complinist:allowServiceInterruption`: a replacement (new service name or baseDir) may stop the service. */
    readonly allowServiceInterruption: boolean;
    /** The host agent installed as `/usr/local/sbin/<service>`: its version and each architecture's sha256 (shown in preview instead of its bytes). */
    readonly agent: AgentBuild;
}

export interface ServiceUnitOutputs extends ServiceUnitState {
    /** sha256 of the env file on the host (refresh compares it instead of the secret). */
    readonly envSha256: string;
    /** Octal mode of the env file on the host; anything but 600 is drift. */
    readonly envMode: string;
    /** `systemctl is-enabled` on the host. */
    readonly enabled: string;
    /** `loaded` when the host's instance firewall is the applied rules and loads at boot; otherwise what differs (drift). */
    readonly firewall: string;
    /** The host's architecture (`uname -m`), which picks the agent binary. */
    readonly arch: string;
    /** sha256 of the agent installed on the host: another one than the build's for its architecture is drift. */
    readonly agentSha256: string;
}

/** Files on the host compared whole: a hand edit of any of them is drift. */
const FILE_KEYS = ["unitText", "serviceUnitText", "proxyUnitText", "failoverUnitText", "firewallUnitText", "firewallRules", "agentConfigText", "logrotateText"] as const;

/** The build's sha256 for a host of this `uname -m`, or the error naming what is supported. */
function agentShaFor(host: string, agent: AgentBuild, arch: string): string {
    const goarch = (AGENT_ARCHES as Record<string, "amd64" | "arm64" | undefined>)[arch];
    if (goarch === undefined) throw new Error(`host ${host}: architecture ${arch || "unknown"} (uname -m) is not one the host agent is built for (${Object.keys(AGENT_ARCHES).join(", ")})`);
    return agent.sha256[goarch];
}

/** Whether two builds are the same (state gives objects back with their keys in another order). */
function sameAgent(a: AgentBuild | undefined, b: AgentBuild): boolean {
    return a !== undefined && a.version === b.version && a.sha256?.amd64 === b.sha256.amd64 && a.sha256?.arm64 === b.sha256.arm64;
}

async function apply(s: ServiceUnitState): Promise<ServiceUnitOutputs> {
    const t = await connect(s.host, s.privateKey);
    const l = hostLayout(s.baseDir, s.service, t.root);
    const probe = (await run(t, "reading the host agent", `uname -m; if [ -f ${q(l.hostProgram)} ]; then sha256sum < ${q(l.hostProgram)} | cut -d' ' -f1; fi`)).stdout.trim().split("\n");
    const arch = probe[0] ?? "";
    const want = agentShaFor(t.host, s.agent, arch);
    let agent: AgentInstall = { installed: want };
    // Only a changed agent travels: about 5 MB, once per agent build.
    if (probe[1] !== want) {
        const up = await t.upload(agentBinaryBySha(want), l.agentUpload, "agent");
        if (up.sha256 !== want) throw new Error(`host ${t.host}: the uploaded host agent has sha256 ${up.sha256}, not ${want}`);
        agent = { upload: l.agentUpload, sha256: want };
    }
    await run(t, `installing unit ${s.service}.service`, renderServiceApply(l, { ...s, who: deployer() }, t.systemd, agent, s.host.user), Buffer.from(s.envText, "utf8"), LOCKED_SCRIPT_TIMEOUT_MS);
    return { ...s, envSha256: sha256Hex(s.envText), envMode: "600", enabled: "enabled", firewall: "loaded", arch, agentSha256: want };
}

export const serviceUnitProvider: pulumi.dynamic.ResourceProvider = {
    configure: configureCredentials,

    async diff(_id: string, olds: ServiceUnitOutputs, news: ServiceUnitState) {
        // First: an update or a replacement would send the env file (the app's secrets) to the new machine.
        const moved = hostChangeRefusal(olds.host, news.host, news);
        if (moved !== undefined) throw new Error(moved);
        const replaces = (["service", "baseDir"] as const).filter((k) => olds[k] !== news[k]);
        // diff runs in preview, so the interruption is named there and nothing has been touched yet.
        if (replaces.length > 0 && news.allowServiceInterruption !== true) throw new Error(interruptionRefusal(olds, news));
        const changed: string[] = FILE_KEYS.filter((k) => olds[k] !== news[k]);
        if (olds.user !== news.user) changed.push("user");
        if (olds.envSha256 !== sha256Hex(news.envText)) changed.push("envText");
        if (olds.envMode !== "600") changed.push("envMode");
        if (olds.enabled !== "enabled") changed.push("enabled");
        if (olds.firewall !== "loaded") changed.push("firewall");
        // A new build, or another agent found on the host by refresh (replaced by hand, or still the bash host program).
        if (!sameAgent(olds.agent, news.agent)) changed.push("agent");
        else if (olds.arch !== undefined && olds.agentSha256 !== agentShaFor(olds.host.name, news.agent, olds.arch)) changed.push("agentSha256");
        if (JSON.stringify(olds.host) !== JSON.stringify(news.host)) changed.push("host");
        // A rotated key reaches state, so later reads and deletes never fall back to a revoked one.
        if (olds.privateKey !== news.privateKey) changed.push("privateKey");
        return { changes: replaces.length + changed.length > 0, replaces, deleteBeforeReplace: true };
    },

    async create(inputs: ServiceUnitState) {
        return { id: `${inputs.host.name}:${inputs.service}`, outs: await apply(inputs) };
    },

    async update(_id: string, _olds: ServiceUnitOutputs, news: ServiceUnitState) {
        return { outs: await apply(news) };
    },

    // From the host's one read (shared with its other resources); the firewall is compared with the host's rules file.
    async read(id: string, props: ServiceUnitOutputs) {
        const kv = parseKeyValues((await readHostOnce(props)).service);
        const text = (k: string) => Buffer.from(kv[k] ?? "", "base64").toString("utf8");
        return {
            id,
            props: {
                ...props,
                unitText: text("unit"),
                serviceUnitText: text("serviceUnit"),
                proxyUnitText: text("proxyUnit"),
                failoverUnitText: text("failoverUnit"),
                firewallUnitText: text("firewallUnit"),
                firewallRules: text("firewallRules"),
                agentConfigText: text("agentConfig"),
                arch: kv.arch ?? "",
                agentSha256: kv.agentSha256 ?? "",
                logrotateText: text("logrotate"),
                envSha256: kv.envSha256 ?? "",
                envMode: kv.envMode ?? "",
                enabled: kv.enabled ?? "",
                firewall: kv.firewall ?? "",
            },
        };
    },

    async delete(_id: string, props: ServiceUnitOutputs) {
        const t = await connect(props.host, props.privateKey);
        const l = hostLayout(props.baseDir, props.service, t.root);
        // The old layout's lock: an activation or emergency rollback running there finishes before its service stops.
        await run(t, `removing unit ${props.service}.service`, renderServiceDelete(l, props.service, t.systemd, deployer()), undefined, LOCKED_SCRIPT_TIMEOUT_MS);
    },
};

/**
 * Why a replacement is refused, for the operator: which host, what changes, what stops and
 * for how long, and the exact command that acknowledges it.
 */
export function interruptionRefusal(olds: Pick<ServiceUnitState, "host" | "service" | "baseDir">, news: Pick<ServiceUnitState, "service" | "baseDir" | "stack">): string {
    const changes = [
        ...(olds.service !== news.service ? [`service.name from '${olds.service}' to '${news.service}'`] : []),
        ...(olds.baseDir !== news.baseDir ? [`baseDir from '${olds.baseDir}' to '${news.baseDir}'`] : []),
    ];
    const stack = news.stack || "<your stack>";
    return (
        `host ${olds.host.name}: changing ${changes.join(" and ")} replaces the service on this host, and that interrupts it: ` +
        `the old ${olds.service}.service is stopped and removed first — every app instance and the proxy on the service port stop — ` +
        `and nothing serves on this host until the new release has booted and passed its health gate under ${news.service}.service in ${news.baseDir}. ` +
        `Refused without an acknowledgement. To accept the interruption: pulumi config set complinist:allowServiceInterruption true --stack ${stack}, ` +
        `run pulumi up again, then set it back with pulumi config set complinist:allowServiceInterruption false --stack ${stack}.`
    );
}

export type ServiceUnitArgs = InputsOf<ServiceUnitState>;

/** Dynamic resource for the unit + env file; see serviceUnitProvider. */
export class ServiceUnit extends pulumi.dynamic.Resource {
    declare public readonly unitText: pulumi.Output<string>;
    declare public readonly envSha256: pulumi.Output<string>;
    declare public readonly enabled: pulumi.Output<string>;

    constructor(name: string, args: ServiceUnitArgs, opts?: pulumi.CustomResourceOptions) {
        const [props, options] = dynamicProps(args, ["envSha256", "envMode", "enabled", "firewall", "arch", "agentSha256"], opts, ["privateKey", "envText"]);
        super(guarded(serviceUnitProvider), name, props, options, "complinist", "ServiceUnit");
    }
}
