import { z } from "zod";
import { decimal, integer } from "./fields";

/**
 * The canary and the error-rate watch (stacks/schema.ts's `canary` and `watch`): after the gate,
 * a share of new requests goes to the new release for a while, and the host compares its error
 * ratio with the previous release's, during the canary and the soak (infra/render/host/watch.sh).
 */

/**
 * The shortest canary the watch can judge (the agent's watch.MinCanarySeconds): the host counts a
 * request the new release leaves unanswered for 4 s as failed (watch.HungAfter), so a shorter
 * canary would end before a hanging release shows.
 */
export const CANARY_MIN_SECONDS = 5;

/** `{ percent, seconds }`: absent, the gate is followed by the full switch at once. */
export const canary = z.strictObject({
    percent: integer("the share of new requests the new release takes during the canary, in percent", 1, 50),
    seconds: integer(`how long the canary lasts, in seconds (at least ${CANARY_MIN_SECONDS}: a request unanswered after 4 s counts as failed)`, CANARY_MIN_SECONDS, 3600),
});

export const WATCH_DEFAULTS = { errorRateFactor: 10, minRequests: 20, maxErrorRatio: 0.01 } as const;

/**
 * The watch trips when the new release's error ratio (5xx answers, connection and response
 * errors per request, from the proxy's counters) is above both `errorRateFactor` times the
 * previous release's ratio and `maxErrorRatio`, over at least `minRequests` of its requests.
 */
export const watch = z.strictObject({
    /** The runbook's "error rate spike (>10x normal)". */
    errorRateFactor: decimal("how many times the previous release's error ratio trips the watch", 1, 1000).default(WATCH_DEFAULTS.errorRateFactor),
    /** Fewer requests than this decide nothing (and say so). */
    minRequests: integer("the requests the new release must answer before the watch judges it", 1, 1000000).default(WATCH_DEFAULTS.minRequests),
    /** The absolute limit: what trips the watch when the previous ratio is ~0 (e.g. 0.01 = 1%). */
    maxErrorRatio: decimal("an error ratio (errors per request) such as 0.01 for 1%", 0, 1).default(WATCH_DEFAULTS.maxErrorRatio),
});

export type CanaryConfig = z.output<typeof canary>;
export type WatchConfig = z.output<typeof watch>;
