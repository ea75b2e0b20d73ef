import { failoverProblem } from "../agent/failover";
import { LEGACY_HOST_PROGRAM, renderAgentState } from "../render/activation";
import { parseKeyValues } from "../render/protocol";
import { type AgentState, parseAgentState } from "../agent/state";
import { hostLayout } from "../render/layout";
import { containerOf } from "./activationOutcome";
import { connectForRead, run } from "./host";
import { readHostOnce } from "./hostRead";
import type { ActivationOutputs } from "./activation";

/**
 * An Activation's Read: what the host really serves (the proxy's live instance, `current`, the
 * service port's answer, the standby, a failover), judged against what the stack declared.
 */

/**
 * The agent's state as the host's one read has it (shared with the host's other resources), or
 * its own read when that one probed another port or health path than this activation's (or the
 * agent does not say which).
 */
async function stateOf(props: ActivationOutputs): Promise<{ host: string; out: string }> {
    const shared = await readHostOnce(props);
    if (shared.state.code !== 0) throw new Error(`host ${shared.host}: reading the live release failed (exit ${shared.state.code}): ${(shared.state.stderr || shared.state.stdout).trim().slice(-800)}`);
    const out = shared.state.stdout;
    if (out.startsWith(`${LEGACY_HOST_PROGRAM}\n`)) return { host: shared.host, out };
    const probe = parseAgentState(out, shared.host).probe;
    if (probe?.port === props.port && probe.healthPath === props.health.path) return { host: shared.host, out };
    const t = await connectForRead(props.host, props.privateKey);
    const l = hostLayout(props.baseDir, props.service, t.root);
    return { host: t.host, out: (await run(t, "reading the live release", renderAgentState(l, props.port, props.health.path))).stdout };
}

export async function readHost(props: ActivationOutputs): Promise<Pick<ActivationOutputs, "activeVersion" | "active" | "standbyVersion">> {
    const { host, out } = await stateOf(props);
    const st = out.startsWith(`${LEGACY_HOST_PROGRAM}\n`) ? legacyState(parseKeyValues(out)) : parseAgentState(out, host);
    if (st.agent === null) return { activeVersion: "", active: "the host agent is not installed", standbyVersion: "" };
    const served = st.served;
    const live = st.live;
    const problems: string[] = [];
    if ("failedOver" in st && st.failedOver) problems.push(failoverProblem(st.failedOver, props.version));
    if (!st.proxy.active) problems.push(`proxy ${st.units[`${props.service}-proxy.service`] || "inactive"}`);
    if (live.active !== "active") problems.push(`live instance ${live.active || "missing"}`);
    if (live.version !== props.version) problems.push(`live instance runs ${live.version || "nothing"}`);
    if (st.current.version !== props.version) problems.push(`current -> ${st.current.version || "nothing"}`);
    if (served !== props.version) problems.push(`port ${props.port} answers ${served || "nothing"}`);
    // Anyone beside the proxy on the service port (on IPv6, or another address) answers users too.
    if ("foreign" in st.proxy && st.proxy.foreign !== undefined && st.proxy.foreign.length > 0) problems.push(`port ${props.port} is also held by ${st.proxy.foreign.join("; ")}`);
    // Container mode: the container behind the live slot, as Docker sees it.
    if (st.runtime === "docker" && live.port !== 0) {
        const c = containerOf(live.container);
        const name = `${props.service}-${live.port}`;
        if (c.state === "missing") problems.push(`live container ${name} missing`);
        else if (c.state !== "running") problems.push(`live container ${name} ${c.state}`);
        else if (live.image && c.image !== live.image) problems.push(`live container ${name} runs image ${c.image.slice(0, 19)}, not the release's ${live.image.slice(0, 19)}`);
        else if (props.liveContainer && c.id !== props.liveContainer) problems.push(`live container ${name} is ${c.id.slice(0, 12)}, not ${props.liveContainer.slice(0, 12)} that the activation gated (replaced or restarted outside an activation)`);
    }
    return { activeVersion: served, active: problems.length ? problems.join(", ") : "active", standbyVersion: st.standbyVersion };
}

/**
 * What the bash host program's `status` said, in the agent's state's terms: only the read before
 * the first service apply with the agent (which installs it) meets one.
 */
function legacyState(kv: Record<string, string>): Pick<AgentState, "agent" | "served" | "runtime" | "standbyVersion" | "current" | "units"> & {
    live: Pick<AgentState["live"], "port" | "version" | "active" | "image" | "container">;
    proxy: Pick<AgentState["proxy"], "active">;
} {
    const [state = "", id = "", image = ""] = (kv.liveContainer ?? "").trim().split(/\s+/);
    return {
        agent: { version: "bash host program", sha256: "" },
        served: kv.served ?? "",
        runtime: kv.liveContainer !== undefined ? "docker" : "process",
        standbyVersion: kv.standbyVersion ?? "",
        current: { link: "", path: "", version: kv.current ?? "" },
        units: {},
        proxy: { active: kv.proxyActive === "active" },
        live: { port: Number(kv.livePort) || 0, version: kv.liveVersion ?? "", active: kv.liveActive ?? "", image: kv.liveImage ?? "", ...(state ? { container: { state, id, image } } : {}) },
    };
}
