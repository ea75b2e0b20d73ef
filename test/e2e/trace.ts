// Reading the provider log: the trace lines the providers write (infra/transport/trace.ts),
// collected per operation by test/e2e/engine.ts, parsed back into events.
import { parseTraceLine, TraceEvent, TraceFields } from "../../infra/transport/trace";
import type { ProviderLine } from "./engine";

/** Number of provider output lines matching a pattern (e.g. /^\[toy\] create/). */
export function countLines(lines: readonly ProviderLine[], pattern: RegExp | string): number {
    return lines.filter((l) => (typeof pattern === "string" ? l.line.includes(pattern) : pattern.test(l.line))).length;
}

/** The trace events in a provider log, in order; `event` keeps only that kind. */
export function traced(log: readonly ProviderLine[], event?: string): TraceEvent[] {
    return log.map((l) => parseTraceLine(l.line)).filter((t): t is TraceEvent => t !== undefined && (event === undefined || t.event === event));
}

/** Matches a provider output line tracing `event` with at least these field values. */
export function isTrace(event: string, fields: TraceFields = {}): (line: string) => boolean {
    return (line) => {
        const t = parseTraceLine(line);
        return t?.event === event && Object.entries(fields).every(([k, v]) => t.fields[k] === String(v));
    };
}

/** Uploads of `kind` (default: releases' artifacts) reported by the providers' trace lines, in order. */
export function uploads(log: readonly ProviderLine[], kind: "artifact" | "agent" = "artifact"): Array<{ host: string; bytes: number }> {
    return traced(log, "upload")
        .filter((t) => t.fields.host !== undefined && t.fields.bytes !== undefined && t.fields.kind === kind)
        .map((t) => ({ host: t.fields.host as string, bytes: Number(t.fields.bytes) }));
}

/** SSH handshakes reported by the providers' trace lines. */
export function handshakes(log: readonly ProviderLine[]): number {
    return traced(log, "ssh-handshake").filter((t) => t.fields.host !== undefined).length;
}
