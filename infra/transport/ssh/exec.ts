import { trace } from "../trace";
import type { Readable } from "stream";
import * as zlib from "zlib";
import { q } from "../../render/shell";
import type { ExecResult } from "../transport";
import { secs, where, type SshConnection } from "./connect";
import { openChannel } from "./pool";

/**
 * Runs `script` under bash on the host, feeding `input` (bytes or a stream) to its stdin.
 *
 * The script travels gzipped and base64-encoded in the command line, not on stdin, so the
 * script's own stdin is exactly `input` — an upload's bytes can never be parsed as shell. The
 * command line is one argument of the login shell, and the script one argument of bash -c:
 * Linux caps each at 128 KiB (MAX_ARG_STRLEN), which the service apply (it carries the host
 * program) passed in base64 alone; gzip (Essential on Debian) keeps the command a third of
 * that (MAX_SCRIPT_BYTES bounds the script). The host-side `timeout` makes sure a script
 * whose channel we abandon does not live on.
 */
/** The largest script bash -c takes as one argument (Linux's MAX_ARG_STRLEN, 128 KiB, less its terminating NUL). */
export const MAX_SCRIPT_BYTES = 128 * 1024 - 1;

export function runScript(
    conn: SshConnection,
    script: string,
    input: Buffer | Readable | undefined,
    timeoutMs: number,
    what: string,
    onStdout?: (chunk: Buffer) => void,
): Promise<ExecResult> {
    const bytes = Buffer.byteLength(script, "utf8");
    if (bytes > MAX_SCRIPT_BYTES) return Promise.reject(new Error(`${what}: the script is ${bytes} bytes, over the ${MAX_SCRIPT_BYTES} bytes bash -c takes as one argument`));
    const b64 = zlib.gzipSync(Buffer.from(script, "utf8"), { level: 9 }).toString("base64");
    // The host enforces the timeout itself: OpenSSH refuses "signal" channel requests
    // for these sessions ("session signalling requires privilege separation"), and
    // closing a non-pty channel does not stop the script, so only a host-side `timeout`
    // reliably kills the whole process group. The local timer is a fallback for a host
    // that stops answering altogether.
    const hostTimeoutS = (Math.max(1, timeoutMs) / 1000).toFixed(3);
    const timeoutMessage = `${what} on ${where(conn)} did not finish within ${secs(timeoutMs)}; it was killed`;
    const startedAt = Date.now();
    trace("ssh-exec", { host: conn.name, what });
    const command = remoteCommand(conn.user, hostTimeoutS, b64);
    return openChannel(conn, command).then(
        ({ channel, exit, release }) =>
            new Promise<ExecResult>((resolve, reject) => {
                const out: Buffer[] = [];
                const err: Buffer[] = [];
                let finished = false;
                // Declared before `finish` uses it: Pulumi's closure analysis rejects a
                // reference to a const declared later in the same scope.
                let timer: ReturnType<typeof setTimeout> | undefined = undefined;
                const finish = (e: Error | undefined): void => {
                    if (finished) return;
                    finished = true;
                    clearTimeout(timer);
                    release();
                    if (e) reject(e);
                    else
                        resolve({
                            code: exit.code ?? (exit.signal ? 128 : 255),
                            stdout: Buffer.concat(out).toString("utf8"),
                            stderr: Buffer.concat(err).toString("utf8") + (exit.signal ? `\n(killed by signal ${exit.signal})` : ""),
                        });
                };
                timer = setTimeout(() => {
                    channel.close();
                    finish(new Error(`${timeoutMessage} (host did not report back)`));
                }, timeoutMs + 10000);
                channel.on("data", (d: Buffer) => (onStdout ? onStdout(d) : out.push(d)));
                channel.stderr.on("data", (d: Buffer) => err.push(d));
                channel.on("close", () => {
                    if (exit.code === undefined && exit.signal === undefined) {
                        finish(new Error(`connection to ${where(conn)} was lost while running ${what}`));
                    } else if ((exit.code === 124 || exit.code === 137) && Date.now() - startedAt >= timeoutMs) {
                        // 124/137: `timeout` ended the script (TERM, then KILL after 2 s).
                        finish(new Error(timeoutMessage));
                    } else {
                        finish(undefined);
                    }
                });
                channel.on("error", (e: Error) => finish(new Error(`${what} on ${where(conn)} failed: ${e.message}`)));
                if (input === undefined) {
                    channel.end();
                } else if (Buffer.isBuffer(input)) {
                    channel.end(input);
                } else {
                    input.on("error", (e: Error) => {
                        channel.close();
                        finish(new Error(`reading local input for ${what} on ${conn.name} failed: ${e.message}`));
                    });
                    input.pipe(channel);
                }
            }),
    );
}

/** The PATH every host script runs with: system directories only (a command of the service's name in /usr/local/sbin never shadows a tool). */
export const SCRIPT_PATH = "/usr/sbin:/usr/bin:/sbin:/bin";

/**
 * The SSH command line of one script: every tool by its absolute path and the script's PATH fixed,
 * so nothing on the login's or root's PATH (a service named `timeout` or `bash` installs
 * /usr/local/sbin/<name>, first on root's PATH) runs instead.
 */
export function remoteCommand(user: string, hostTimeoutS: string, b64: string): string {
    // Host state (/etc, systemctl, the service user) needs root: a non-root deploy user
    // runs every script through passwordless sudo (-n: fail at once, never prompt).
    const elevate = user === "root" ? "" : "/usr/bin/sudo -n ";
    return (
        `${elevate}/usr/bin/env PATH=${SCRIPT_PATH} /usr/bin/timeout --kill-after=2 ${hostTimeoutS} ` +
        // --norc: bash started under sshd sources /etc/bash.bashrc even when
        // non-interactive, and that file trips over `set -u` (unbound PS1).
        `/bin/bash --norc --noprofile -euo pipefail -c "$(printf %s ${q(b64)} | /usr/bin/base64 -d | /bin/gunzip)" complinist-script`
    );
}
