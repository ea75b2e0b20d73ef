/**
 * What a host's activation outcome says, as data that travels inside the engine's error text: the
 * operator reads the message, and `npm run deploy`'s notification reads this line's JSON fields,
 * never the English around it.
 */

/** The start of the one line that carries a host's outcome in a provider error. */
export const OUTCOME_MARKER = "complinist-outcome: ";

export interface HostOutcome {
    readonly v: 1;
    readonly host: string;
    readonly version: string;
    /** The agent's outcome (rolled-back, failed-rolled-back, failed, refused, locked). */
    readonly outcome: string;
    readonly reason: string;
    /** What was live before (the switch back's target). */
    readonly previous: string;
    /** What the watch saw, as the host recorded it. */
    readonly seen: string;
    /** Milliseconds from the watch's trip to the switch back, when it switched back. */
    readonly switchBackMs?: number;
    /** rollback-all: the host whose failure switched this one back. */
    readonly failedHost?: string;
    /** rollback-all: the one release the whole fleet is on after the switch back ("" when it is not on one). */
    readonly fleet?: string;
}

/** The line to append to an error message. */
export function outcomeLine(o: HostOutcome): string {
    return OUTCOME_MARKER + JSON.stringify(o);
}

/** Every host outcome line in an error text (the CLI may print a diagnostic more than once: each host once, the first kept). */
export function parseOutcomes(text: string): HostOutcome[] {
    const found = new Map<string, HostOutcome>();
    for (const line of text.split(/\r?\n/)) {
        const at = line.indexOf(OUTCOME_MARKER);
        if (at < 0) continue;
        try {
            const o = JSON.parse(line.slice(at + OUTCOME_MARKER.length)) as Partial<HostOutcome>;
            if (o.v === 1 && typeof o.host === "string" && typeof o.version === "string" && typeof o.outcome === "string" && !found.has(o.host)) {
                found.set(o.host, {
                    v: 1,
                    host: o.host,
                    version: o.version,
                    outcome: o.outcome,
                    reason: typeof o.reason === "string" ? o.reason : "",
                    previous: typeof o.previous === "string" ? o.previous : "",
                    seen: typeof o.seen === "string" ? o.seen : "",
                    ...(typeof o.switchBackMs === "number" ? { switchBackMs: o.switchBackMs } : {}),
                    ...(typeof o.failedHost === "string" ? { failedHost: o.failedHost } : {}),
                    ...(typeof o.fleet === "string" ? { fleet: o.fleet } : {}),
                });
            }
        } catch {
            // Not a line the provider wrote whole (cut by the CLI's wrapping): nothing to read.
        }
    }
    return [...found.values()];
}
