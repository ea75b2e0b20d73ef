import { z } from "zod";
import { integer } from "./fields";

/**
 * `failover` (stacks/schema.ts): the host switches from a live instance that fails its health
 * (status and its release's version) for `afterSeconds` to the warm standby, without the
 * deployer (the agent's failover watch, agent/internal/failover). `false` turns it off; it only
 * ever acts where `service.standby` keeps a standby running.
 */
export const FAILOVER_DEFAULTS = { afterSeconds: 10 } as const;

const ACCEPTED = "must be false (no failover) or { afterSeconds } (how long the live instance may fail its health before the host switches to the warm standby: a whole number of seconds from 3 to 3600, default 10)";

export const failover = z.preprocess(
    (v) => (v === "false" ? false : v),
    z.union([z.literal(false), z.strictObject({ afterSeconds: integer("how long the live instance may fail its health before the host switches to the warm standby, in seconds", 3, 3600).default(FAILOVER_DEFAULTS.afterSeconds) })], { error: ACCEPTED }),
);

export type FailoverConfig = z.output<typeof failover>;

/** The agent's setting (protocol Settings.failoverAfterSeconds): 0 is off, as is a host without a standby. */
export function failoverAfterSeconds(f: FailoverConfig, standby: boolean): number {
    return f === false || !standby ? 0 : f.afterSeconds;
}
