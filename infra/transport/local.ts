import { trace } from "./trace";
import type { ExecOptions, ExecResult, Transport, UploadKind, UploadResult } from "./transport";

export interface LocalTransportOptions {
    /** Host name used in messages. */
    readonly name: string;
    /** Absolute directory acting as `/`; "" for the real root. */
    readonly root: string;
    /** Whether this machine's systemd may be driven (never under a temp root). */
    readonly systemd: boolean;
}

/**
 * Runs a program on this machine with `input` on its stdin and collects its output; a
 * non-zero exit is a result, not an error. After `timeoutMs` it is killed and the
 * promise rejects with `timeoutMessage`. Also how dev/ drives the docker CLI.
 */
export function runProcess(
    command: string,
    args: readonly string[],
    input: Buffer | string,
    timeoutMs: number,
    timeoutMessage: string,
    env?: Readonly<Record<string, string>>,
): Promise<ExecResult> {
    const cp = require("child_process") as typeof import("child_process");
    return new Promise((resolve, reject) => {
        const child = cp.spawn(command, args, { stdio: ["pipe", "pipe", "pipe"], ...(env ? { env: { ...process.env, ...env } } : {}) });
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        const timer = setTimeout(() => {
            child.kill("SIGKILL");
            reject(new Error(timeoutMessage));
        }, timeoutMs);
        child.stdout.on("data", (d: Buffer) => out.push(d));
        child.stderr.on("data", (d: Buffer) => err.push(d));
        child.on("error", (e) => {
            clearTimeout(timer);
            reject(e);
        });
        child.on("close", (code) => {
            clearTimeout(timer);
            resolve({ code: code ?? 1, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") });
        });
        // A script that exits without reading its stdin must not turn into an EPIPE crash.
        child.stdin.on("error", () => undefined);
        child.stdin.end(input);
    });
}

/**
 * Runs scripts on this machine. With a `root`, every host path the providers
 * compute is prefixed by it, so tests act on a temp directory as if it were `/`.
 * npm and node modules are required inside functions: this module is
 * serialized with the providers (see transport.ts).
 */
export function localTransport(conn: LocalTransportOptions): Transport {
    return {
        host: conn.name,
        root: conn.root,
        systemd: conn.systemd,
        exec(script: string, options?: ExecOptions): Promise<ExecResult> {
            const timeoutMs = options?.timeoutMs ?? 120000;
            const cp = require("child_process") as typeof import("child_process");
            return new Promise((resolve, reject) => {
                // The script travels as an argument so stdin stays free for data (e.g. an env file with secrets).
                const child = cp.spawn("bash", ["-euo", "pipefail", "-c", script], { stdio: ["pipe", "pipe", "pipe"] });
                const out: Buffer[] = [];
                const err: Buffer[] = [];
                const timer = setTimeout(() => {
                    child.kill("SIGKILL");
                    reject(new Error(`host ${conn.name}: command timed out after ${timeoutMs} ms`));
                }, timeoutMs);
                child.stdout.on("data", (d: Buffer) => (options?.onStdout ? options.onStdout(d) : out.push(d)));
                child.stderr.on("data", (d: Buffer) => err.push(d));
                child.on("error", (e: Error) => {
                    clearTimeout(timer);
                    reject(e);
                });
                child.on("close", (code: number | null) => {
                    clearTimeout(timer);
                    resolve({ code: code ?? 1, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") });
                });
                child.stdin.on("error", () => undefined);
                const input = options?.stdin;
                if (input === undefined || Buffer.isBuffer(input)) child.stdin.end(input ?? Buffer.alloc(0));
                else input.pipe(child.stdin);
            });
        },
        async upload(localPath: string, remotePath: string, kind: UploadKind = "artifact"): Promise<UploadResult> {
            const fs = require("fs") as typeof import("fs");
            const path = require("path") as typeof import("path");
            const crypto = require("crypto") as typeof import("crypto");
            await fs.promises.mkdir(path.dirname(remotePath), { recursive: true });
            await fs.promises.copyFile(localPath, remotePath);
            const data = await fs.promises.readFile(remotePath);
            trace("upload", { host: conn.name, bytes: data.length, kind });
            return { bytes: data.length, sha256: crypto.createHash("sha256").update(data).digest("hex") };
        },
    };
}
