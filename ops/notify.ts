/**
 * Notifications for QA and stakeholders, with the runbook's messages: deployment
 * started, completed, failed, rolled back. Each is posted as JSON `{"text": …}` to a
 * Slack-compatible incoming webhook (Slack, Mattermost and Rocket.Chat take the same
 * body). A notification is never worth a failed deploy: every post is bounded by a
 * timeout and any failure becomes one warning line — without the webhook URL, whose
 * path is the secret.
 */
import { type HostOutcome, OUTCOME_MARKER, parseOutcomes } from "../infra/agent/outcome";
import { withoutBidi } from "./terminalText";

export type DeployEvent =
    | { readonly kind: "started"; readonly stack: string; readonly version: string; readonly commit: string; readonly at: string }
    | { readonly kind: "completed"; readonly stack: string; readonly version: string; readonly commit: string; readonly at: string; readonly hosts: string }
    | {
          readonly kind: "failed";
          readonly stack: string;
          readonly version: string;
          readonly commit: string;
          readonly at: string;
          /** Hosts the error names (empty: it stopped before any host, e.g. at the promotion gate). */
          readonly hosts: ReadonlyArray<string>;
          /** What the gate or the health check saw, from the error text. */
          readonly saw: string;
          readonly rollback: string;
      }
    | {
          readonly kind: "rolledBack";
          readonly stack: string;
          readonly from: string;
          readonly to: string;
          readonly commit: string;
          readonly at: string;
          /** Manual: the hosts' status after the rollback; automatic: the hosts that switched back. */
          readonly hosts: string;
          /** Absent: an operator's rollback (npm run rollback). Set: the hosts switched back by themselves. */
          readonly reason?: WatchRollbackReason | FleetRollbackReason;
      };

/** An automatic rollback: a host's error-rate watch tripped and switched back to the previous release. */
export interface WatchRollbackReason {
    readonly by: "watch";
    /** What the watch saw (requests and errors of the new and the previous release, the limit), per host when several. */
    readonly figures: string;
}

/** An automatic rollback of the fleet: a host failed, and every host the update had switched went back (rollout.onFailure: rollback-all). */
export interface FleetRollbackReason {
    readonly by: "rollback-all";
    readonly failedHost: string;
    /** The one release the whole fleet is on now ("" when it is not on one). */
    readonly fleet: string;
}

/**
 * One value as Slack text: `&`, `<` and `>` escaped the way Slack's message formatting asks
 * (`&amp;` `&lt;` `&gt;`), so a health body, a figure or a host name that says `<!channel>` or
 * `<https://…|click>` is shown, never acted on; a line break or other control character becomes a
 * space, so a value cannot start a line that reads as a notice of its own; bidi controls are
 * dropped, so a value reads in the order it is written.
 */
export function slackEscape(value: string): string {
    return withoutBidi(value)
        .replace(/&/g, "&amp;")
        .replace(/</g, "&lt;")
        .replace(/>/g, "&gt;")
        .replace(/[\x00-\x1f\x7f-\x9f\u2028\u2029]/g, " ");
}

/** A message from its fixed words and its fields: every field escaped (slackEscape), the words as written. */
function slack(words: TemplateStringsArray, ...fields: ReadonlyArray<string>): string {
    return words.reduce((text, w, i) => text + w + (i < fields.length ? slackEscape(fields[i] as string) : ""), "");
}

/**
 * The runbook's message for an event. Most fields came from a host or a release (its health body
 * in `saw`, the watch's figures, versions and hosts from an outcome line, the hosts' status): the
 * message is built from the fields, each escaped, never from text that was already joined.
 */
export function notificationText(e: DeployEvent): string {
    switch (e.kind) {
        case "started":
            return slack`Deployment started: CompliNist ${e.version} to ${e.stack} (commit ${e.commit}, ${e.at}). Status: deploying.`;
        case "completed":
            return slack`Deployment completed: CompliNist ${e.version} on ${e.stack} (commit ${e.commit}, deployed at ${e.at}). Status: ${e.hosts}.`;
        case "failed":
            return (
                slack`Deployment FAILED: CompliNist ${e.version} to ${e.stack} (commit ${e.commit}, ${e.at}) on ${e.hosts.length > 0 ? e.hosts.join(", ") : "no host (stopped before any change)"}. ` +
                slack`Saw: ${e.saw} Hosts whose health gate failed switched back by themselves. Roll back: ${e.rollback}`
            );
        case "rolledBack":
            if (e.reason?.by === "rollback-all") {
                const on = e.reason.fleet !== "" ? slack`the whole fleet is on ${e.reason.fleet}, the previous release.` : slack`the fleet is NOT on one release: see the job log.`;
                return slack`Rolled back automatically: ${e.stack} from ${e.from} to ${e.to} on ${e.hosts} because ${e.reason.failedHost} failed (rollout.onFailure: rollback-all): ` + on + slack` (commit ${e.commit}, ${e.at})`;
            }
            if (e.reason !== undefined) {
                return (
                    slack`Rolled back automatically: ${e.stack} from ${e.from} to ${e.to} on ${e.hosts} by the error-rate watch: ${e.reason.figures} (commit ${e.commit}, ${e.at}). ` +
                    slack`${e.from} is refused on ${e.hosts} until the stack acknowledges it (complinist:acknowledgeRolledBack).`
                );
            }
            return (
                slack`Rolled back: ${e.stack} from ${e.from} to ${e.to} (release commit ${e.commit}, ${e.at}). Status: ${e.hosts}. ` +
                slack`Pulumi.${e.stack}.yaml must be committed (the change is in the job log) so the next deploy keeps ${e.to}.`
            );
        default: {
            const never: never = e;
            return never;
        }
    }
}

const MAX_SAW = 600;

/**
 * Pure: what a failure message tells the channel — the hosts it names and what was
 * seen (the promotion gate's refusal, else the lines about a host, else the first line).
 */
export function describeFailure(errorText: string, hostNames: ReadonlyArray<string>): { hosts: string[]; saw: string } {
    const hosts = hostNames.filter((h) => new RegExp(`(^|[^A-Za-z0-9-])${h.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}([^A-Za-z0-9-]|$)`).test(errorText));
    // The outcome lines are data for describeWatchRollback, not words for the channel.
    const lines = errorText.split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.includes(OUTCOME_MARKER));
    const gate = lines.find((l) => l.includes("Promotion gate:"));
    const onHosts = lines.filter((l) => hosts.some((h) => l.includes(h)));
    const saw = gate !== undefined ? gate.slice(gate.indexOf("Promotion gate:")) : onHosts.length > 0 ? [...new Set(onHosts)].join(" ") : lines[0] ?? "no error text";
    return { hosts, saw: saw.length > MAX_SAW ? `${saw.slice(0, MAX_SAW)}…` : saw };
}

/** What a failed update says of the hosts whose error-rate watch switched back by themselves. */
export interface WatchRollback {
    /** The version rolled back from. */
    readonly from: string;
    /** The release the hosts switched back to (several, comma-separated, if the hosts differ). */
    readonly to: string;
    readonly hosts: string[];
    /** The watch's figures; `host: figures; …` when several hosts tripped. */
    readonly figures: string;
}

/**
 * Pure, in describeFailure's style: the hosts whose error-rate watch tripped and switched back at
 * once, read from the outcome lines the Activation's error carries (infra/agent/outcome.ts: the
 * host agent's own fields, never the English around them), each host once. Undefined when no host
 * did: a watch that tripped but could not switch back is a plain failure (outcome `failed`).
 */
export function describeWatchRollback(errorText: string): WatchRollback | undefined {
    const found = parseOutcomes(errorText).filter((o) => o.outcome === "rolled-back" && o.reason === "watch");
    if (found.length === 0) return undefined;
    const hosts = found.map((o) => o.host);
    const figures = hosts.length === 1 ? (found[0] as HostOutcome).seen : found.map((o) => `${o.host}: ${o.seen}`).join("; ");
    return {
        from: [...new Set(found.map((o) => o.version))].join(", "),
        to: [...new Set(found.map((o) => o.previous))].join(", "),
        hosts,
        figures: figures.length > MAX_SAW ? `${figures.slice(0, MAX_SAW)}…` : figures,
    };
}

/** Pure: the hosts a failed update switched back under rollout.onFailure: rollback-all, from the outcome lines; undefined when none did. */
export function describeFleetRollback(errorText: string): (Omit<WatchRollback, "figures"> & FleetRollbackReason) | undefined {
    const found = parseOutcomes(errorText).filter((o) => o.outcome === "rolled-back" && o.reason === "rollback-all");
    const first = found[0];
    if (first === undefined) return undefined;
    return {
        by: "rollback-all",
        from: [...new Set(found.map((o) => o.version))].join(", "),
        to: [...new Set(found.map((o) => o.previous))].join(", "),
        hosts: found.map((o) => o.host),
        failedHost: first.failedHost ?? "unknown",
        fleet: first.fleet ?? "",
    };
}

export interface Notifier {
    /** Never rejects: a failure is reported through the notifier's warning callback. */
    send(event: DeployEvent): Promise<void>;
}

export const NOTIFY_TIMEOUT_MS = 5000;

/** Posts to `webhookUrl` (nothing when undefined); `warn` gets one line per failed post. */
export function webhookNotifier(webhookUrl: string | undefined, warn: (text: string) => void, timeoutMs = NOTIFY_TIMEOUT_MS): Notifier {
    return {
        async send(event) {
            if (webhookUrl === undefined) return;
            let where = "the webhook";
            try {
                where = new URL(webhookUrl).origin;
                const res = await fetch(webhookUrl, {
                    method: "POST",
                    headers: { "content-type": "application/json" },
                    body: JSON.stringify({ text: notificationText(event) }),
                    signal: AbortSignal.timeout(timeoutMs),
                });
                await res.body?.cancel();
                if (!res.ok) throw new Error(`HTTP ${res.status}`);
            } catch (e) {
                const why = e instanceof Error && (e.name === "TimeoutError" || e.name === "AbortError") ? `no answer within ${timeoutMs} ms` : e instanceof Error ? e.message : String(e);
                warn(`warning: the ${event.kind} notification to ${where} failed (${why}); the deployment is not affected.`);
            }
        },
    };
}

/** The webhook from the stack's config (`complinist:notify.webhookUrl`, a secret), or undefined. */
export async function webhookUrlOf(stack: { getConfig(key: string, path?: boolean): Promise<{ value: string }> }): Promise<string | undefined> {
    try {
        const v = (await stack.getConfig("complinist:notify.webhookUrl", true)).value;
        return v === "" ? undefined : v;
    } catch {
        return undefined;
    }
}
