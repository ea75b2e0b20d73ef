import type { ActivationResult } from "../agent/protocol";
import { outcomeLine, parseOutcomes } from "../agent/outcome";
import { renderRollbackAll } from "../render/activation";
import { hostLayout } from "../render/layout";
import { trace } from "../transport/trace";
import type { ActivationInputs } from "./activation";
import { connect, deployer, type HostTarget } from "./host";

/**
 * All hosts or none (`rollout.onFailure: rollback-all`). When this host's activation fails, the
 * hosts this update may already have switched (earlier batches, and this batch's others) go back
 * to their warm standby before the engine hears of the failure: the agent's `rollback-all` on
 * each, in parallel, the same gated and recorded switch as a pinned rollback (no upload, no
 * process start). The update then fails with every host's outcome.
 *
 * Why here: within one update, the engine has already recorded the earlier batches' Activations
 * as successful, and only the resource that fails still runs. Their state keeps saying the new
 * release until a refresh reads the hosts: the message says so, the Activation's read reports
 * the switch back as drift, and the next update that refreshes first (npm run deploy, CONVERGE)
 * switches them forward again.
 */

/** One host's part in a failed update. */
export interface FleetOutcome {
    readonly host: string;
    /** switched-back: took its warm standby back; failed: this host's own failure; not-switched: could not go back; unchanged: was not on the new release; never-touched: a later batch. */
    readonly outcome: "switched-back" | "failed" | "not-switched" | "unchanged" | "never-touched";
    /** What answers there now ("" when unknown). */
    readonly serving: string;
    readonly detail: string;
}

/** Pure: a peer's `rollback-all` answer (or the error reaching it) as its outcome. */
export function peerOutcome(host: string, version: string, answer: ActivationResult | Error): FleetOutcome {
    if (answer instanceof Error) return { host, outcome: "not-switched", serving: "", detail: `could not be reached to switch back: ${answer.message.split("\n")[0]}` };
    const seen = answer.seen ?? "";
    switch (answer.outcome) {
        case "rolled-back":
            return { host, outcome: "switched-back", serving: answer.serving ?? "", detail: `switched back to ${answer.serving ?? "?"}, its warm standby (${version} stays warm)` };
        case "unchanged":
            return { host, outcome: "unchanged", serving: answer.serving === "none" ? "" : answer.serving ?? "", detail: `left as it was: ${seen}` };
        case "locked":
            return { host, outcome: "not-switched", serving: version, detail: `NOT switched back: the deploy lock is held by ${answer.holder ?? "unknown"}` };
        default:
            return { host, outcome: "not-switched", serving: answer.serving === "none" ? "" : answer.serving ?? "", detail: `NOT switched back (${answer.reason ?? "failed"}): ${seen}` };
    }
}

/** Pure: the failed host's own outcome, from its error (the outcome line when the host answered). */
export function failedOutcome(host: string, error: Error): FleetOutcome {
    const own = parseOutcomes(error.message).find((o) => o.host === host);
    if (own === undefined) return { host, outcome: "failed", serving: "", detail: `failed: ${error.message.split("\n")[0]}` };
    return { host, outcome: "failed", serving: own.previous, detail: `failed (${own.reason || own.outcome})${own.previous ? `; ${own.previous} serves` : ""}` };
}

/** Pure: the message that ends the update: the host's own error, then every host's outcome, then what the fleet runs. */
export function fleetReport(s: Pick<ActivationInputs, "version" | "stack" | "host">, error: Error, outcomes: ReadonlyArray<FleetOutcome>): string {
    const touched = outcomes.filter((o) => o.outcome !== "never-touched");
    const serving = [...new Set(touched.map((o) => o.serving))];
    const stuck = outcomes.filter((o) => o.outcome === "not-switched");
    const back = outcomes.filter((o) => o.outcome === "switched-back");
    const one = serving.length === 1 && serving[0] !== "" && serving[0] !== s.version ? serving[0] : undefined;
    const fleet =
        one !== undefined
            ? `The fleet is on the previous release ${one}.`
            : `The fleet is NOT on one previous release (${touched.map((o) => `${o.host} ${o.serving || "unknown"}`).join(", ")})${stuck.length ? `: ${stuck.map((o) => o.host).join(", ")} could not switch back` : ""}.`;
    const state =
        back.length > 0
            ? ` Pulumi's state still records ${s.version} on ${back.map((o) => o.host).join(", ")} until a refresh reads the hosts: npm run deploy refreshes first; with pulumi up, run pulumi refresh --stack ${s.stack} before it.`
            : "";
    const lines = outcomes.map((o) => `  ${o.host}: ${o.detail}`);
    const data = back.map((o) =>
        outcomeLine({ v: 1, host: o.host, version: s.version, outcome: "rolled-back", reason: "rollback-all", previous: o.serving, seen: o.detail, failedHost: s.host.name, fleet: one ?? "" }),
    );
    return [error.message, `All hosts or none (rollout.onFailure: rollback-all): ${s.host.name} failed, so every host this update switched goes back to its warm standby:`, ...lines, `${fleet}${state}`, ...data].join("\n");
}

/** Hook, gate, soak and drains of the switch back, plus the agent's lock wait (120 s). */
function budgetMs(s: ActivationInputs): number {
    return (s.health.timeoutSeconds + s.health.soakSeconds + 2 * s.health.drainSeconds + 120 + 60) * 1000;
}

async function switchBack(s: ActivationInputs, peer: HostTarget): Promise<FleetOutcome> {
    try {
        const t = await connect(peer, s.privateKey);
        const l = hostLayout(s.baseDir, s.service, t.root);
        trace("rollback-all", { host: peer.name, from: s.version });
        const r = await t.exec(renderRollbackAll(l, s.version, s.host.name, deployer()), { timeoutMs: budgetMs(s) });
        const last = r.stdout.trim().split("\n").pop() ?? "";
        let answer: ActivationResult | Error;
        try {
            answer = JSON.parse(last) as ActivationResult;
        } catch {
            answer = new Error(`rollback-all answered exit ${r.code}: ${(r.stderr || r.stdout).trim().slice(-300)}`);
        }
        return peerOutcome(peer.name, s.version, answer);
    } catch (e) {
        return peerOutcome(peer.name, s.version, e instanceof Error ? e : new Error(String(e)));
    }
}

/** Runs `activation`; when it fails under `rollback-all`, switches the peers back and fails with every host's outcome. */
export async function allOrNone<T>(s: ActivationInputs, activation: () => Promise<T>): Promise<T> {
    try {
        return await activation();
    } catch (e) {
        const error = e instanceof Error ? e : new Error(String(e));
        if (s.fleet.onFailure !== "rollback-all" || (s.fleet.peers.length === 0 && s.fleet.later.length === 0)) throw error;
        const peers = await Promise.all(s.fleet.peers.map((p) => switchBack(s, p)));
        const later = s.fleet.later.map((host): FleetOutcome => ({ host, outcome: "never-touched", serving: "", detail: "never touched" }));
        throw new Error(fleetReport(s, error, [...peers, failedOutcome(s.host.name, error), ...later]));
    }
}
