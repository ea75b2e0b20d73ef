import { countLines, ProviderLine } from "./driver";

/** Uploads reported by the providers' trace lines (infra/transport/trace.ts), in order. */
export function uploads(log: readonly ProviderLine[]): Array<{ host: string; bytes: number }> {
    return log
        .map((l) => /\[complinist\] upload host=(\S+) bytes=(\d+)/.exec(l.line))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => ({ host: m[1] as string, bytes: Number(m[2]) }));
}

/** SSH handshakes reported by the providers' trace lines. */
export function handshakes(log: readonly ProviderLine[]): number {
    return countLines(log, /\[complinist\] ssh-handshake host=\S+/);
}
