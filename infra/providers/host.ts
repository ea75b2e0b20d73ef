import type * as pulumi from "@pulumi/pulumi";
import type { Connection, ExecResult, HostTarget, Transport } from "../transport/transport";
import { openTransport } from "../transport";

/** How a resource names its host: plain, shown in preview. The private key travels separately as a secret. */
export type { HostTarget };

export function connectionOf(target: HostTarget, privateKey: string): Connection {
    return { kind: "ssh", ...target, privateKey };
}

interface ConfiguredCredentials {
    readonly privateKey?: string;
    /** complinist:sshTimeoutSeconds, in ms. */
    readonly timeoutMs?: number;
    readonly hosts: Readonly<Record<string, Partial<HostTarget>>>;
}

/**
 * The dynamic providers' configure(): the engine hands it the stack's current config, so
 * the SSH key and host keys used by every operation — refresh's read and retention's
 * delete included, which otherwise only see the state's old copy — are the current ones.
 * A rotated key with the old one revoked keeps working. Kept on globalThis: providers are
 * serialized, module state is not shared.
 */
export async function configureCredentials(req: pulumi.dynamic.ConfigureRequest): Promise<void> {
    const fs = require("fs") as typeof import("fs");
    const path = require("path") as typeof import("path");
    let privateKey = req.config.get("complinist:sshPrivateKey");
    const keyPath = req.config.get("complinist:sshPrivateKeyPath");
    if (privateKey === undefined && keyPath !== undefined && fs.existsSync(path.resolve(keyPath))) privateKey = fs.readFileSync(path.resolve(keyPath), "utf8");
    const hosts: Record<string, Partial<HostTarget>> = {};
    try {
        for (const h of JSON.parse(req.config.get("complinist:hosts") ?? "[]") as Array<Partial<HostTarget>>) {
            if (typeof h.name === "string") hosts[h.name] = h;
        }
    } catch {
        // Unparseable hosts are the program's to report (schema); the state's copy is used meanwhile.
    }
    const timeout = Number(req.config.get("complinist:sshTimeoutSeconds"));
    (globalThis as { __complinistCredentials?: ConfiguredCredentials }).__complinistCredentials = {
        ...(privateKey !== undefined ? { privateKey } : {}),
        ...(Number.isInteger(timeout) && timeout > 0 ? { timeoutMs: timeout * 1000 } : {}),
        hosts,
    };
}

export async function connect(target: HostTarget, privateKey: string): Promise<Transport> {
    const configured = (globalThis as { __complinistCredentials?: ConfiguredCredentials }).__complinistCredentials;
    const h = configured?.hosts[target.name];
    const current: HostTarget = {
        ...target,
        ...(h?.address !== undefined ? { address: h.address } : {}),
        ...(h?.port !== undefined ? { port: Number(h.port) } : {}),
        ...(h?.user !== undefined ? { user: h.user } : {}),
        ...(h?.hostKey !== undefined ? { hostKey: h.hostKey } : {}),
    };
    const conn = connectionOf(current, configured?.privateKey ?? privateKey);
    return openTransport(configured?.timeoutMs !== undefined ? { ...conn, timeoutMs: configured.timeoutMs } : conn);
}

/** A script that takes the host lock may wait for it (LOCK_WAIT, 120 s) before its own work. */
export const LOCKED_SCRIPT_TIMEOUT_MS = 300000;

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
