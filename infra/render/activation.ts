import { HostLayout } from "./layout";
import { q } from "./shell";

/**
 * The provider's side of an activation: invoke the host agent. The activation itself is the
 * agent's `activate`, started by `start-activation` as a transient systemd unit so it runs to
 * its end, and records its outcome, even when the deploy process or its SSH connection dies.
 * The provider hands the request on stdin (JSON) and polls for the result (JSON).
 */

export function activationUnit(service: string, id: string): string {
    return `${service}-activate-${id}`;
}

/** Shell lines: run the agent with ARGS, or say that it is missing (the service was never applied). */
function agent(l: HostLayout, args: string): string {
    return [`if [ ! -x ${q(l.hostProgram)} ]; then echo "the host agent ${l.hostProgram} is missing: the service was not installed" >&2; exit 1; fi`, `exec ${q(l.hostProgram)} ${args}`, ""].join("\n");
}

/** The request arrives on stdin; the unit is started and left running. */
export function renderActivationStart(l: HostLayout): string {
    return agent(l, "start-activation");
}

/** The result so far and the unit's state; `done` ends the polling. */
export function renderActivationPoll(l: HostLayout, id: string): string {
    return agent(l, `activation-result --id ${q(id)}`);
}

/** The first line of the read's answer when the host still runs the bash host program (until the next service apply installs the agent). */
export const LEGACY_HOST_PROGRAM = "legacy-host-program=1";

/**
 * The Read of an Activation: the host's whole state, one exec (`agent state`), probing `port` and
 * `healthPath` — without them, what the host's last deploy settings name (the host read's, which
 * reports the ones it used). A host the bash host program deployed answers its own `status`
 * (key=value lines) after LEGACY_HOST_PROGRAM, so the refresh before the upgrade reads it as it is
 * instead of failing.
 */
export function renderAgentState(l: HostLayout, port?: number, healthPath?: string): string {
    const p = q(l.hostProgram);
    const flags = port !== undefined && healthPath !== undefined ? ` --port ${q(port)} --health-path ${q(healthPath)}` : "";
    return agent(l, `state${flags}`).replace(`exec ${p} state`, `if ! ${p} version >/dev/null 2>&1; then echo ${q(LEGACY_HOST_PROGRAM)}; exec ${p} status; fi\nexec ${p} state`);
}

/**
 * A fleet's switch back on one host (rollout.onFailure: rollback-all): the agent's `rollback-all`
 * takes the warm standby back when `from` is live, under the host lock, and prints its outcome as
 * one JSON line.
 */
export function renderRollbackAll(l: HostLayout, from: string, failedHost: string, who: string): string {
    return agent(l, `rollback-all --from ${q(from)} --failed-host ${q(failedHost)} --who ${q(who)}`);
}
