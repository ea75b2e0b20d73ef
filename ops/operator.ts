import type { ConfigValue } from "@pulumi/pulumi/automation";
import { terminalSafe } from "./terminalText";

/** How a helper talks to the operator (scripts/ wires the terminal; tests record). */
export interface OperatorIo {
    /** A terminal is attached (stdin and stdout are TTYs): confirmation can be asked. */
    readonly interactive: boolean;
    confirm(question: string): Promise<boolean>;
    /** Raw chunks of the CLI's output (preview diff, update progress), passed through as they come. */
    stream(chunk: string): void;
    out(text: string): void;
    err(text: string): void;
}

export class UsageError extends Error {}

export function errorText(e: unknown): string {
    return (e instanceof Error ? e.message : String(e)).trim();
}

/** A config value, or undefined when the key is not set (the CLI exits non-zero for that). */
export async function tryGetConfig(stack: { getConfig(key: string, path?: boolean): Promise<ConfigValue> }, key: string, path?: boolean): Promise<string | undefined> {
    try {
        return (await stack.getConfig(key, path)).value;
    } catch {
        return undefined;
    }
}

/** The `hosts` output as one line: `prod-1 1.1.0 healthy, prod-2 1.1.0 healthy`. */
export function describeHosts(v: unknown): string {
    if (v === null || typeof v !== "object") return "unknown";
    return Object.entries(v as Record<string, { version?: unknown; healthy?: unknown }>)
        .map(([name, h]) => `${name} ${String(h?.version ?? "?")} ${h?.healthy === true ? "healthy" : "UNHEALTHY"}`)
        .join(", ");
}

/**
 * The error-rate watch's figures of each host's last activation, from the `hosts` output
 * (`hosts.<name>.watch`), as job log lines: `  prod-1  10% canary 60s of 60s: new 612 requests …`.
 * None when no host reports any (a stack last updated before the watch existed).
 */
export function describeWatch(v: unknown): string[] {
    if (v === null || typeof v !== "object") return [];
    const rows = Object.entries(v as Record<string, { watch?: unknown }>).flatMap(([name, h]) => (typeof h?.watch === "string" && h.watch !== "" ? [[name, h.watch] as const] : []));
    const width = Math.max(0, ...rows.map(([name]) => name.length));
    return rows.map(([name, watch]) => terminalSafe(`  ${name.padEnd(width)}  ${watch}`));
}

/** The command that undoes a deployment of `stack` (the CI job where there is one). */
export function rollbackCommand(stack: string): string {
    const job = stack === "prod" || stack.endsWith("/prod") ? " (GitLab: the rollback:production job)" : "";
    return `npm run rollback -- --stack ${stack}${job}`;
}

/**
 * How every update and its preview run: refresh first (the hosts are read, so the update also
 * converges what someone changed by hand), running the program for it (`--run-program`): the
 * providers are then configured from the current stack config, so a rotated SSH key with the old
 * one revoked works for the reads too; a plain refresh would hand them the config saved with the
 * last update.
 */
export const CONVERGE = { refresh: true, runProgram: true } as const;
