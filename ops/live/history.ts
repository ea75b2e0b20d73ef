import type { ReleaseFigures } from "./model";

/**
 * The last minutes of each host's per-release figures, for the dashboard's charts and the
 * table's rates. The proxy's counters only grow until it loads its config again (a canary's
 * weights, a switch): a counter that went down started again from zero.
 */

/** The proxy's counters of one release's instance at one answer. */
export interface CounterPoint {
    /** ms (epoch) of the answer. */
    readonly t: number;
    readonly requests: number;
    readonly errors: number;
    readonly rtimeMs?: number;
}

/** One release's figures over a trailing window ending at t. */
export interface RatePoint {
    readonly t: number;
    /** Requests in the window. */
    readonly requests: number;
    readonly errors: number;
    /** errors / requests in the window; null when it had no request. */
    readonly errorRatio: number | null;
    /** Requests per second over the window. */
    readonly rate: number;
    readonly rtimeMs: number | null;
}

/** What happened between two answers: a counter lower than before was reset, and counts from zero. */
function delta(prev: CounterPoint, next: CounterPoint): { requests: number; errors: number } {
    const reset = next.requests < prev.requests || next.errors < prev.errors;
    return reset ? { requests: next.requests, errors: next.errors } : { requests: next.requests - prev.requests, errors: next.errors - prev.errors };
}

/** Pure: counters at each answer → requests, errors and their ratio over the trailing `windowMs` at each answer after the first. */
export function ratePoints(points: readonly CounterPoint[], windowMs: number): RatePoint[] {
    const steps: Array<{ t: number; from: number; requests: number; errors: number; rtimeMs: number | null }> = [];
    for (let i = 1; i < points.length; i++) {
        const a = points[i - 1] as CounterPoint;
        const b = points[i] as CounterPoint;
        steps.push({ t: b.t, from: a.t, ...delta(a, b), rtimeMs: b.rtimeMs ?? null });
    }
    return steps.map((s, i) => {
        let requests = 0;
        let errors = 0;
        let from = s.t;
        for (let j = i; j >= 0; j--) {
            const w = steps[j] as (typeof steps)[number];
            if (s.t - w.from > windowMs && j !== i) break;
            requests += w.requests;
            errors += w.errors;
            from = w.from;
        }
        const span = Math.max(0.001, (s.t - from) / 1000);
        return { t: s.t, requests, errors, errorRatio: requests > 0 ? errors / requests : null, rate: requests / span, rtimeMs: s.rtimeMs };
    });
}

/** Each host's releases' counters, the last `keepMs` of them. */
export class History {
    private readonly hosts = new Map<string, Map<string, CounterPoint[]>>();

    constructor(private readonly keepMs: number) {}

    /** One answer of `host` (an answer already added, by its time, is not added twice). */
    add(host: string, at: number, releases: readonly ReleaseFigures[]): void {
        let byVersion = this.hosts.get(host);
        if (byVersion === undefined) this.hosts.set(host, (byVersion = new Map()));
        for (const r of releases) {
            const points = byVersion.get(r.version) ?? [];
            if (points.length > 0 && (points[points.length - 1] as CounterPoint).t >= at) continue;
            points.push({ t: at, requests: r.requests, errors: r.errors, ...(r.rtimeMs !== undefined ? { rtimeMs: r.rtimeMs } : {}) });
            byVersion.set(r.version, points);
        }
        for (const [version, points] of byVersion) {
            const kept = points.filter((p) => at - p.t <= this.keepMs);
            if (kept.length === 0) byVersion.delete(version);
            else byVersion.set(version, kept);
        }
    }

    /** The counters of each release of `host` seen in the kept time, by version. */
    of(host: string): ReadonlyMap<string, readonly CounterPoint[]> {
        return this.hosts.get(host) ?? new Map();
    }
}
