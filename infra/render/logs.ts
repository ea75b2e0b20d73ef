import { HostLayout } from "./layout";
import { q } from "./shell";

/** The logs an operator reads on a host, in the order they are shown. */
export const LOG_SOURCES = ["app.log", "deploy.log", "journal"] as const;
export type LogSource = (typeof LOG_SOURCES)[number];

export interface LogRequest {
    readonly service: string;
    /** Lines of history per source (with follow: before following). */
    readonly lines: number;
    /** Keep streaming new lines until the script's stdin reaches end of file. */
    readonly follow: boolean;
}

/**
 * One log source of a host, read-only: the last `lines` lines of app.log or deploy.log, or of
 * the journal of every `<service>*` unit (umbrella, instances, proxy). stderr joins stdout so a
 * missing file or journal error reaches the operator in place.
 *
 * Followed, the reader runs in the background and the script waits for its own stdin to
 * close: the operator's Ctrl-C ends that stream, and a dropped connection closes it too, so
 * no tail or journalctl is left behind on the host. (Closing an SSH channel does not signal
 * the command, and a reader on a quiet log would only notice at its next write.)
 */
export function renderLogSource(l: HostLayout, source: LogSource, r: LogRequest): string {
    if (!Number.isInteger(r.lines) || r.lines < 0) throw new Error(`lines must be a whole number >= 0, got ${r.lines}`);
    const n = String(r.lines);
    let reader: string;
    let once: string;
    switch (source) {
        case "app.log":
        case "deploy.log": {
            const file = q(source === "app.log" ? l.logFile : l.deployLog);
            reader = `tail -n ${n} -F -- ${file}`;
            once = `if [ -e ${file} ]; then tail -n ${n} -- ${file}; else echo "(no file "${file}")"; fi`;
            break;
        }
        case "journal": {
            const journal = `journalctl -u ${q(`${r.service}*`)} -n ${n} --no-pager -o short-iso`;
            reader = `${journal} -f`;
            once = journal;
            break;
        }
        default: {
            const never: never = source;
            throw new Error(`unknown log source ${String(never)}`);
        }
    }
    if (!r.follow) return [`exec 2>&1`, once, ""].join("\n");
    return [
        `exec 2>&1`,
        `${reader} &`,
        `reader=$!`,
        `cat >/dev/null || true`,
        `kill "$reader" 2>/dev/null || true`,
        `wait "$reader" 2>/dev/null || true`,
        "",
    ].join("\n");
}
