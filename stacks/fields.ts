import { z } from "zod";

/** Field types the config schema's files share (stacks/schema.ts, stacks/containerSchema.ts). */

/** Config values arrive as strings; numbers written in YAML come through as "5000". */
export const integer = (what: string, min: number, max: number) =>
    z.preprocess(
        (v) => (typeof v === "string" && /^-?[0-9]+$/.test(v) ? Number(v) : v),
        z
            .number({ error: `must be ${what}: a whole number from ${min} to ${max}` })
            .int(`must be ${what}: a whole number from ${min} to ${max}`)
            .min(min, `must be ${what}: a whole number from ${min} to ${max}`)
            .max(max, `must be ${what}: a whole number from ${min} to ${max}`),
    );

/** A decimal number (config values arrive as strings: "0.05"). */
export const decimal = (what: string, min: number, max: number) =>
    z.preprocess(
        (v) => (typeof v === "string" && /^[0-9]+(\.[0-9]+)?$/.test(v) ? Number(v) : v),
        z
            .number({ error: `must be ${what}: a number from ${min} to ${max}` })
            .min(min, `must be ${what}: a number from ${min} to ${max}`)
            .max(max, `must be ${what}: a number from ${min} to ${max}`),
    );
