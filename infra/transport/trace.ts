/**
 * One line on the provider's stderr per traced event (SSH handshake, upload,
 * activation) when COMPLINIST_TRACE is set; the engine shows provider stderr as
 * diagnostics, and tests and the benchmark count these lines.
 */
export function trace(line: string): void {
    if (process.env.COMPLINIST_TRACE) process.stderr.write(`[complinist] ${line}\n`);
}
