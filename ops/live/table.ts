import { terminalSafe } from "../terminalText";
import { ratePoints, type History } from "./history";
import type { LiveHost, LiveView, ReleaseFigures } from "./model";

/**
 * The live view's table (`npm run status -- --watch`): one row per host, one line per release
 * under it with what the proxy counted, then the watch's verdict and any problem. Pure; every
 * line passes through terminalSafe (host text) and is cut to the terminal's width, so a redraw
 * never wraps.
 */

/** The window of the table's request rate and the dashboard's error ratio. */
export const RATE_WINDOW_MS = 5000;

const COLUMNS: Array<[string, number]> = [["HOST", 16], ["PHASE", 18], ["LIVE", 16], ["STANDBY", 16], ["CANARY", 20], ["LOCK", 0]];

function cells(values: string[]): string {
    return values.map((v, i) => (COLUMNS[i]?.[1] ? v.padEnd((COLUMNS[i] as [string, number])[1] - 1).slice(0, (COLUMNS[i] as [string, number])[1] - 1) + " " : v)).join("");
}

const at = (r: { version: string; port: number } | undefined) => (r === undefined ? "-" : `${r.version} :${r.port}`);

export function percent(ratio: number): string {
    return `${(100 * ratio).toFixed(2)}%`;
}

/** `1.1.0 :5002 canary   120 req    3 err  2.50%   4 ms   6.0 req/s`. */
function releaseLine(r: ReleaseFigures, rate: number | undefined): string {
    const ratio = r.requests > 0 ? percent(r.errors / r.requests) : "-";
    const rt = r.rtimeMs !== undefined ? `${r.rtimeMs} ms` : "- ms";
    const perSecond = rate !== undefined ? `${rate.toFixed(1)} req/s` : "";
    return `    ${`${r.version} :${r.port}`.padEnd(20)} ${r.role.padEnd(8)} ${String(r.requests).padStart(8)} req ${String(r.errors).padStart(6)} err ${ratio.padStart(7)}  ${rt.padStart(7)}  ${perSecond}`;
}

function phaseText(h: LiveHost): string {
    return h.phaseSeconds !== undefined ? `${h.phase} ${h.phaseSeconds}s` : h.phase;
}

function hostLines(h: LiveHost, history: History | undefined): string[] {
    const title = h.stale ? `${h.host} STALE ${h.ageSeconds !== undefined ? `${h.ageSeconds}s` : ""}`.trim() : h.state === "ok" ? h.host : `${h.host} ${h.state.toUpperCase()}`;
    if (h.state === "waiting") return [cells([h.host, "waiting for the first answer"])];
    const lines = [cells([title, phaseText(h), at(h.live), at(h.standby), h.canary ? `${at(h.canary)} ${h.canary.percent}%` : "-", h.lock])];
    for (const r of h.releases) {
        const rates = history ? ratePoints(history.of(h.host).get(r.version) ?? [], RATE_WINDOW_MS) : [];
        lines.push(releaseLine(r, rates[rates.length - 1]?.rate));
    }
    if (h.watch !== undefined) lines.push(`    watch    ${h.watch}`);
    if (h.error !== undefined) lines.push(`    ${h.stale ? "no answer" : "error"}  ${h.error}${h.ageSeconds !== undefined ? ` (last answer ${h.ageSeconds}s ago)` : ""}`);
    for (const p of h.problems) lines.push(`    PROBLEM  ${p}`);
    return lines;
}

/** Pure: the view → the screen's lines, none wider than `width`. */
export function renderLiveTable(v: LiveView, opts: { readonly width: number; readonly history?: History; readonly intervalMs: number }): string[] {
    const when = new Date(v.at).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
    const lines = [
        `stack ${v.stack} · declared ${v.declaredVersion} at start · ${when} · every ${opts.intervalMs / 1000} s · Ctrl-C to quit`,
        "",
        cells(COLUMNS.map(([name]) => name)),
        ...v.hosts.flatMap((h) => hostLines(h, opts.history)),
    ];
    const width = Math.max(20, opts.width);
    return lines.map((l) => {
        const safe = terminalSafe(l).replace(/\t/g, " ");
        return safe.length > width ? `${safe.slice(0, width - 1)}…` : safe;
    });
}
