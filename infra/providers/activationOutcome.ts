import { failoverProblem } from "../agent/failover";
import { deployCommit } from "../../stacks/source";
import type { ActivationResult, AgentContainer } from "../agent/protocol";
import { outcomeLine } from "../agent/outcome";
import type { ActivationInputs, ActivationOutputs } from "./activation";

/**
 * What the host agent's activation result means for the engine: the Activation's outputs when
 * the release is live, else the operator-facing error — which host, what was seen, what serves
 * now and what to run next — ending with the outcome's fields as one JSON line (agent/outcome.ts)
 * for the deploy notification. Pure: infra/providers/activation.ts polls the result and hands it here.
 */

/** The outputs of an activation the host reports as live, or the error that says why not. */
export function activationOutcome(s: ActivationInputs, host: string, lockFile: string, kv: ActivationResult): ActivationOutputs {
    const previous = kv.previous ?? "";
    const fail = (message: string): Error => {
        const ms = kv.trippedAt && kv.switchedBackAt ? kv.switchedBackAt - kv.trippedAt : undefined;
        return new Error(
            `${message}${kv.failedOver ? ` ${failoverProblem(kv.failedOver, s.version)}: ${s.version} did not come back healthy, so the host stays on the release it failed over to.` : ""}\n${outcomeLine({ v: 1, host, version: s.version, outcome: kv.outcome ?? "failed", reason: kv.reason ?? "", previous, seen: kv.seen ?? "", ...(ms !== undefined && ms >= 0 ? { switchBackMs: ms } : {}) })}`,
        );
    };
    const rollback =
        previous && previous !== s.version
            ? `pin the previous release: npm run rollback -- --stack ${s.stack} --to ${previous} (or: pulumi config set complinist:version ${previous} --stack ${s.stack} && pulumi up --stack ${s.stack})`
            : `fix the release and run pulumi up --stack ${s.stack} again`;
    // What answers on the service port after the failure, as the host checked it; without that
    // line (a result cut short), what the proxy routed to before.
    const serving = kv.serving
        ? kv.serving === "none"
            ? `nothing answers on port ${s.port}${previous ? ` (the proxy still routes to ${previous}, which does not answer)` : ""}`
            : `${kv.serving} serves`
        : previous
          ? `${previous} keeps serving`
          : "nothing was serving before, so nothing serves";
    switch (kv.outcome) {
        case "activated":
        case "converged":
            return {
                ...s,
                activeVersion: s.version,
                active: "active",
                standbyVersion: kv.standby ?? "",
                activatedAt: new Date().toISOString(),
                // The commit that shipped the release now live (its manifest), not the one running this deploy:
                // after a rollback the record names the code that runs.
                activatedCommit: kv.commit || deployCommit(),
                liveContainer: kv.container?.id ?? "",
                watchResult: kv.watch ?? "",
            };
        case "locked":
            throw fail(`host ${host}: the deploy lock ${lockFile} is held by ${kv.holder ?? "unknown"}; it frees itself when that process ends. Run pulumi up --stack ${s.stack} again then`);
        default:
            break;
    }
    const seen = kv.seen ?? "nothing";
    if (kv.outcome === "refused") {
        throw fail(
            `host ${host}: version ${s.version} is refused: the error-rate watch rolled it back on this host (${seen}). Nothing was changed (${serving}). ` +
                `Deploy another version, or, to try ${s.version} on users again on purpose: pulumi config set --path 'complinist:acknowledgeRolledBack[0]' ${s.version} --stack ${s.stack}`,
        );
    }
    if (kv.reason === "watch") {
        const back = kv.outcome === "rolled-back" ? `Switched back at once to ${previous}, the warm previous release${switchBackTime(kv)}; the new instance was stopped: ${serving}.` : `Could not switch back: ${serving}.`;
        throw fail(
            `host ${host}: version ${s.version} was ROLLED BACK by the error-rate watch (${seen}). ${back} ` +
                `Later batches were not touched. The next pulumi up with ${s.version} is refused until the version changes or the stack acknowledges it (complinist:acknowledgeRolledBack).`,
        );
    }
    if (kv.reason === "release-incomplete") {
        throw fail(`host ${host}: release ${s.version} is not complete on the host (no manifest); run pulumi refresh then pulumi up --stack ${s.stack}`);
    }
    if (kv.reason === "service-port") {
        throw fail(
            `host ${host}: version ${s.version} was not switched to: someone besides the proxy listens on the service port (${seen}). Nothing was switched (${serving}). ` +
                `Stop that process (it answers users on IPv6 or another address), then run pulumi up --stack ${s.stack} again. Later batches were not touched.`,
        );
    }
    if (kv.reason === "idle-port") {
        throw fail(`host ${host}: version ${s.version} was not started: ${seen}. Nothing was changed (${serving}); later batches were not touched.`);
    }
    if (kv.reason === "beforeActivate-hook") {
        throw fail(`host ${host}: ${seen}; nothing was switched (${serving}).`);
    }
    const back = kv.reason === "switch" ? "Routed back to what was live" : kv.outcome === "failed-rolled-back" ? "Switched back at once" : "Could not switch back (what was live does not answer)";
    const after: Record<string, string> = {
        soak: `the ${s.health.soakSeconds}s soak through the proxy`,
        switch: "the proxy switch",
        canary: `the ${s.canary.percent}% canary of ${s.canary.seconds}s`,
    };
    const what =
        kv.reason !== undefined && kv.reason in after
            ? `failed after the switch (${after[kv.reason]}; saw: ${seen}). ${back}: ${serving}.`
            : `failed its gate (GET ${s.health.path} on the new instance within ${s.health.timeoutSeconds}s, ` +
              `wanted 200 {"status":"healthy","version":"${s.version}"}${s.health.checks.length ? " and the configured checks" : ""}; saw: ${seen}). ` +
              `It never took a request: ${serving}.`;
    throw fail(`host ${host}: version ${s.version} ${what} Later batches were not touched. To roll back the stack: ${rollback}`);
}

/** " (N ms after the watch tripped)", from the host's own clock (trippedAt, switchedBackAt in epoch ms). */
function switchBackTime(kv: ActivationResult): string {
    const ms = (kv.switchedBackAt ?? 0) - (kv.trippedAt ?? 0);
    return kv.trippedAt && kv.switchedBackAt && ms >= 0 ? ` (${ms} ms after the watch tripped)` : "";
}

/** A slot's container as the agent reports it, "missing" when it reports none. */
export function containerOf(c: AgentContainer | null | undefined): AgentContainer {
    return c ?? { state: "missing", id: "", image: "" };
}
