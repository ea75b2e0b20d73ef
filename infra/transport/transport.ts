/**
 * The one way host state is touched: run a bash script, upload a file.
 * Implemented by the local transport (this machine, optionally under a root
 * prefix for tests) and the SSH transport (a pinned-host-key connection).
 *
 * Providers are serialized into state by Pulumi's closure serializer, so
 * implementations must `require` npm modules inside functions and keep
 * process-wide caches on `globalThis` (a module-level Map would be copied
 * into every serialized provider and never shared).
 */
import type { HostConfig } from "../../stacks/schema";
import type { Readable } from "stream";

export interface ExecResult {
    /** Exit status of the script (non-zero is not thrown; callers decide). */
    readonly code: number;
    readonly stdout: string;
    readonly stderr: string;
}

export interface ExecOptions {
    /**
     * Fed to the script's standard input (the script itself never travels on stdin): bytes, or
     * a stream piped through, so the script's stdin stays open until the caller ends the stream
     * (how `npm run logs -- --follow` tells the host side to stop).
     */
    readonly stdin?: Buffer | Readable;
    /** Receives stdout as it arrives instead of collecting it (the result's stdout is then ""): a follow may run for hours. */
    readonly onStdout?: (chunk: Buffer) => void;
    /** Kill the script and reject after this many milliseconds. Default 120000. */
    readonly timeoutMs?: number;
}

/** What an upload carries: a release's artifact, or the host agent's binary. */
export type UploadKind = "artifact" | "agent";

export interface UploadResult {
    /** Bytes sent to the host. */
    readonly bytes: number;
    /** sha256 of the file as computed on the host after the upload. */
    readonly sha256: string;
}

export interface Transport {
    /** Host name used in every error message. */
    readonly host: string;
    /**
     * Prefix joined in front of every absolute host path ("" on real hosts).
     * Lets the local transport act on a temp directory as if it were `/`.
     */
    readonly root: string;
    /**
     * Whether scripts may call systemctl: true on real hosts, false for the local
     * transport acting on a temp root, where there is no systemd to talk to.
     */
    readonly systemd: boolean;
    /** Run `script` with `bash -euo pipefail` on the host. */
    exec(script: string, options?: ExecOptions): Promise<ExecResult>;
    /** Copy a local file to `remotePath` (already root-prefixed) and return its size and host-side sha256; `kind` names it in the trace. */
    upload(localPath: string, remotePath: string, kind?: UploadKind): Promise<UploadResult>;
}

/**
 * A configured host reached over SSH: every field present, the host key ("ssh-ed25519
 * AAAA…", verified on every connect) included: the schema requires it for every host
 * but container mode's `local`.
 */
export type HostTarget = { readonly [K in keyof HostConfig]-?: NonNullable<HostConfig[K]> };

/**
 * How a provider reaches a host, built from the resource inputs (the key is a secret).
 * Tests that act on this machine instead inject a transport (see useTransportFactory).
 */
export type Connection = HostTarget & {
    readonly kind: "ssh";
    /** PEM/OpenSSH private key text (secret); "" when `agent` authenticates instead. */
    readonly privateKey: string;
    /** An ssh-agent's socket (`SSH_AUTH_SOCK`) offering the keys to authenticate with (operator tools; the stack itself never uses one). */
    readonly agent?: string;
    /** Connect, handshake and session-open timeout in ms. Default 15000. */
    readonly timeoutMs?: number;
};
