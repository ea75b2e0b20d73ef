import { terminalSafe } from "../terminalText";
import { ratePoints, type History } from "../live/history";
import type { LiveHost, LiveView, ReleaseRole } from "../live/model";
import { RATE_WINDOW_MS } from "../live/table";

/**
 * The dashboard's data: the live view and each host's last minutes, shaped for the page so
 * that the page only draws (ops/dashboard/page.ts): chart lines come as SVG point lists in a
 * fixed viewBox. Pure. Host text stays text here; the page sets it with textContent only.
 */

/** The charts' viewBox. */
export const CHART = { width: 600, height: 120 } as const;
/** The charts' time span: the last five minutes. */
export const CHART_WINDOW_MS = 5 * 60 * 1000;
/** The shortest span drawn: the first answers do not fill the whole width. */
const MIN_SPAN_MS = 30 * 1000;

export interface ChartLine {
    readonly version: string;
    /** The release's role now; gone: no longer in an instance slot (a canary rolled back). */
    readonly role: ReleaseRole | "gone";
    /** "x,y x,y …" in the viewBox. */
    readonly points: string;
    /** Points drawn: grows while the release takes requests. */
    readonly count: number;
    /** The newest value drawn (a ratio, or ms); null when none. */
    readonly last: number | null;
}

export interface ChartPanel {
    readonly title: string;
    readonly unit: "%" | "ms";
    /** Seconds the panel spans, up to CHART_WINDOW_MS: less while the dashboard has not seen that long yet. */
    readonly seconds: number;
    /** The value at the top of the panel. */
    readonly max: number;
    readonly lines: readonly ChartLine[];
}

export interface DashboardHost extends LiveHost {
    readonly charts: readonly [ChartPanel, ChartPanel];
}

export interface DashboardData {
    readonly stack: string;
    readonly declaredVersion: string;
    /** ISO time of the view. */
    readonly at: string;
    readonly windowSeconds: number;
    readonly hosts: readonly DashboardHost[];
}

const round = (n: number) => Math.round(n * 10) / 10;

/** The smallest of 1, 2 or 5 × 10^k not below `n` (at least `floor`): a panel's top. */
export function niceMax(n: number, floor: number): number {
    const v = Math.max(n, floor);
    const p = 10 ** Math.floor(Math.log10(v));
    return ([1, 2, 5, 10].map((m) => m * p).find((m) => m >= v - 1e-12) ?? 10 * p);
}

function line(version: string, role: ChartLine["role"], values: ReadonlyArray<{ t: number; v: number | null }>, from: number, now: number, max: number): ChartLine {
    const span = now - from;
    const drawn = values.filter((p): p is { t: number; v: number } => p.v !== null && p.t >= from);
    const points = drawn.map((p) => `${round(((p.t - from) / span) * CHART.width)},${round(CHART.height - (Math.min(p.v, max) / max) * CHART.height)}`).join(" ");
    return { version, role, points, count: drawn.length, last: drawn.length > 0 ? (drawn[drawn.length - 1] as { v: number }).v : null };
}

/** Pure: one host's row and history → its two charts (error ratio, response time), a line per release. */
export function hostCharts(h: LiveHost, history: History, now: number): [ChartPanel, ChartPanel] {
    const series = [...history.of(h.host)].map(([version, points]) => ({ version, rates: ratePoints(points, RATE_WINDOW_MS) }));
    const roleOf = (v: string): ChartLine["role"] => h.releases.find((r) => r.version === v)?.role ?? "gone";
    // From the first answer seen, up to the window: a dashboard started a minute ago fills its charts.
    const first = Math.min(now, ...[...history.of(h.host).values()].flatMap((p) => p.map((x) => x.t)));
    const from = Math.max(now - CHART_WINDOW_MS, Math.min(first, now - MIN_SPAN_MS));
    const seconds = Math.round((now - from) / 1000);
    const inWindow = (t: number) => t >= from;
    const ratios = series.flatMap((s) => s.rates.filter((r) => inWindow(r.t)).map((r) => r.errorRatio ?? 0));
    const times = series.flatMap((s) => s.rates.filter((r) => inWindow(r.t)).map((r) => r.rtimeMs ?? 0));
    const errorMax = niceMax(Math.max(0, ...ratios), 0.01);
    const rtMax = niceMax(Math.max(0, ...times), 10);
    return [
        { title: "error ratio", unit: "%", seconds, max: errorMax, lines: series.map((s) => line(s.version, roleOf(s.version), s.rates.map((r) => ({ t: r.t, v: r.errorRatio })), from, now, errorMax)) },
        { title: "response time", unit: "ms", seconds, max: rtMax, lines: series.map((s) => line(s.version, roleOf(s.version), s.rates.map((r) => ({ t: r.t, v: r.rtimeMs })), from, now, rtMax)) },
    ];
}

/** Every string, at any depth, as terminalSafe makes it: no escape, control or bidi character (text shown in another order). */
function safeText<T>(x: T): T {
    if (typeof x === "string") return terminalSafe(x) as T;
    if (Array.isArray(x)) return x.map(safeText) as T;
    if (x !== null && typeof x === "object") return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, safeText(v)])) as T;
    return x;
}

/** Pure: the view and the history → the page's data. */
export function dashboardData(v: LiveView, history: History): DashboardData {
    return safeText({
        stack: v.stack,
        declaredVersion: v.declaredVersion,
        at: new Date(v.at).toISOString(),
        windowSeconds: CHART_WINDOW_MS / 1000,
        hosts: v.hosts.map((h) => ({ ...h, charts: hostCharts(h, history, v.at) })),
    });
}
