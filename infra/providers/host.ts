import type { Connection, ExecResult, HostTarget, Transport } from "../transport/transport";
import { openTransport } from "../transport";

/** How a resource names its host: plain, shown in preview. The private key travels separately as a secret. */
export type { HostTarget };

export function connectionOf(target: HostTarget, privateKey: string): Connection {
    return { kind: "ssh", ...target, privateKey };
}

export async function connect(target: HostTarget, privateKey: string): Promise<Transport> {
    return openTransport(connectionOf(target, privateKey));
}

/** Run a script; a non-zero exit becomes an error naming the host and the step. */
export async function run(t: Transport, what: string, script: string, stdin?: Buffer, timeoutMs?: number): Promise<ExecResult> {
    const r = await t.exec(script, { ...(stdin ? { stdin } : {}), ...(timeoutMs ? { timeoutMs } : {}) });
    if (r.code !== 0) {
        throw new Error(`host ${t.host}: ${what} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().slice(-800)}`);
    }
    return r;
}

/** Who deploys, for revisions.log: CI user, else the operator's login. Read at apply time, never an input. */
export function deployer(): string {
    const os = require("os") as typeof import("os");
    const who = process.env.COMPLINIST_DEPLOYER ?? process.env.GITLAB_USER_LOGIN ?? process.env.USER ?? os.userInfo().username;
    return `${who}@${os.hostname()}`.replace(/[^A-Za-z0-9@._-]/g, "_");
}

export function sha256Hex(text: string): string {
    const crypto = require("crypto") as typeof import("crypto");
    return crypto.createHash("sha256").update(text, "utf8").digest("hex");
}
