/**
 * SSH transport: one pinned-host-key connection per host per process.
 *
 * Everything in this folder is written for Pulumi's closure serializer, which copies the
 * functions a dynamic provider reaches into state and runs them in another process:
 * - npm modules (`ssh2`) and Node built-ins are `require`d inside functions, at call time;
 * - no classes and no module-level mutable state — the connection pool lives on
 *   `globalThis.__complinistSsh` (./pool.ts), so every deserialized copy of these
 *   functions in one process shares it (a module-level Map would be duplicated per provider).
 */
import type { ExecOptions, ExecResult, Transport, UploadKind, UploadResult } from "../transport";
import type { SshConnection } from "./connect";
import { runScript } from "./exec";
import { parseHostKey } from "./hostKeys";
import { upload } from "./upload";

export type { SshConnection } from "./connect";
export { fingerprint, parseHostKey } from "./hostKeys";
export { closeAllConnections, handshakeCount } from "./pool";

/** Transport over the pooled SSH connection for `conn`. Connects lazily, on first use. */
export function sshTransport(conn: SshConnection): Transport {
    // Fail on config errors at construction, before any resource work starts.
    parseHostKey(conn.hostKey, conn.name);
    return {
        host: conn.name,
        root: "",
        systemd: true,
        exec(script: string, options?: ExecOptions): Promise<ExecResult> {
            return runScript(conn, script, options?.stdin, options?.timeoutMs ?? 120000, "script", options?.onStdout);
        },
        upload(localPath: string, remotePath: string, kind?: UploadKind): Promise<UploadResult> {
            return upload(conn, localPath, remotePath, kind);
        },
    };
}
