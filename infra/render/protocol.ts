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
    locked: 75,
    usage: 64,
} as const;

export function parseKeyValues(stdout: string): Record<string, string> {
    const out: Record<string, string> = {};
    for (const line of stdout.split("\n")) {
        const i = line.indexOf("=");
        if (i > 0) out[line.slice(0, i).trim()] = line.slice(i + 1);
    }
    return out;
}
