/**
 * One line per traced event (SSH handshake, upload, activation) when COMPLINIST_TRACE is
 * set: on the provider's stderr for `1` (the engine shows it as diagnostics), appended to
 * the file for an absolute path (the end-to-end tests and the benchmark read it back: the
 * engine starts the provider processes, so their stderr is not the test's to read).
 *
 * The line is `[complinist] <event> key=value ...`: the one place its format is
 * written and read. A value stays bare when it is a plain token and is
 * JSON-quoted otherwise (spaces, quotes, `=`), so every value reads back as written.
 */
const TRACE_PREFIX = "[complinist]";

export type TraceFields = { readonly [key: string]: string | number | boolean };

export interface TraceEvent {
    event: string;
    /** Values as text, as they were traced (numbers and booleans stringified). */
    fields: { [key: string]: string };
}

/** `event` and keys are identifiers written in code: no spaces and no `=`. */
export function formatTraceLine(event: string, fields: TraceFields = {}): string {
    const parts = [TRACE_PREFIX, event];
    for (const [key, value] of Object.entries(fields)) {
        const text = String(value);
        parts.push(`${key}=${/^[^\s"=]+$/.test(text) ? text : JSON.stringify(text)}`);
    }
    return parts.join(" ");
}

export function trace(event: string, fields: TraceFields = {}): void {
    const to = process.env.COMPLINIST_TRACE;
    if (!to) return;
    // `at` (epoch ms) orders events across the processes that write one file (npm script, providers).
    const line = `${formatTraceLine(event, { ...fields, at: Date.now() })}\n`;
    if (to.startsWith("/")) (require("fs") as typeof import("fs")).appendFileSync(to, line);
    else process.stderr.write(line);
}

/** The event a trace line carries, or undefined when the line is not one. */
export function parseTraceLine(line: string): TraceEvent | undefined {
    // Anywhere in the line, not only at its start: output without a newline may precede it.
    const at = line.indexOf(`${TRACE_PREFIX} `);
    if (at < 0) return undefined;
    const rest = line.slice(at + TRACE_PREFIX.length + 1).trimEnd();
    const event = /^[^\s=]+/.exec(rest)?.[0];
    if (event === undefined) return undefined;
    const field = / +([^\s=]+)=("(?:[^"\\]|\\.)*"|[^\s"]*)/y;
    const fields: { [key: string]: string } = {};
    for (let pos = event.length; pos < rest.length; pos = field.lastIndex) {
        field.lastIndex = pos;
        const m = field.exec(rest);
        if (!m) return undefined;
        const [, key, raw] = m as unknown as [string, string, string];
        try {
            fields[key] = raw.startsWith('"') ? (JSON.parse(raw) as string) : raw;
        } catch {
            return undefined;
        }
    }
    return { event, fields };
}
