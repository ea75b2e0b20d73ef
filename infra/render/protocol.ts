/**
 * The protocol between host scripts and the providers: scripts print `key=value`
 * lines on stdout and exit with one of these codes; the providers parse both.
 * Every script runs under `bash -euo pipefail`.
 */

/** Name of the manifest that marks a release directory complete. */
export const MANIFEST = ".complinist-release";

/** Exit codes the providers turn into operator-facing errors. */
export const EXIT = {
    checksumMismatch: 3,
    incompleteRelease: 4,
    hookFailed: 5,
    healthFailed: 6,
    /** The version was rolled back by the error-rate watch on this host and is not acknowledged. */
    refused: 7,
    locked: 75,
    usage: 64,
} as const;

/**
 * `key=value` lines, each key taken once (its first line): a later line can never override
 * what a script said first. With `known`, every other key is dropped, so a line a script did
 * not mean to write (text a release or a hook printed) cannot become a field.
 */
export function parseKeyValues(stdout: string, known?: readonly string[]): Record<string, string> {
    const allowed = known ? new Set(known) : undefined;
    const out: Record<string, string> = {};
    for (const line of stdout.split("\n")) {
        const i = line.indexOf("=");
        if (i <= 0) continue;
        const key = line.slice(0, i).trim();
        if ((allowed && !allowed.has(key)) || Object.prototype.hasOwnProperty.call(out, key)) continue;
        out[key] = line.slice(i + 1);
    }
    return out;
}
