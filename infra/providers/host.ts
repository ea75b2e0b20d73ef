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

/** The target as the current config names it (address, port, user, host key), else as the state has it. */
function currentTarget(target: HostTarget): HostTarget {
    const configured = (globalThis as { __complinistCredentials?: ConfiguredCredentials }).__complinistCredentials;
    const h = configured?.hosts[target.name];
    return {
        ...target,
        ...(h?.address !== undefined ? { address: h.address } : {}),
        ...(h?.port !== undefined ? { port: Number(h.port) } : {}),
        ...(h?.user !== undefined ? { user: h.user } : {}),
        ...(h?.hostKey !== undefined ? { hostKey: h.hostKey } : {}),
    };
}

/** user@address:port of the machine a target reaches now: the key of its reads shared in this process (infra/providers/hostRead.ts). */
export function machineKey(target: HostTarget): string {
    const t = currentTarget(target);
    return `${t.user}@${t.address}:${t.port}`;
}

/**
 * The reads of one operation shared per machine (infra/providers/hostRead.ts), by machineKey and
 * layout. On globalThis: every dynamic provider of the stack runs in the one `pulumi-nodejs`
 * provider process, but each is deserialized with its own copy of this module.
 */
export function sharedReads(): Map<string, { readonly machine: string; readonly read: Promise<unknown> }> {
    const g = globalThis as { __complinistHostReads?: Map<string, { readonly machine: string; readonly read: Promise<unknown> }> };
    if (g.__complinistHostReads === undefined) g.__complinistHostReads = new Map();
    return g.__complinistHostReads;
}

/** Drops every shared read of the machine: what this process writes there makes them stale. */
export function forgetReads(machine: string): void {
    const reads = sharedReads();
    for (const [k, v] of reads) if (v.machine === machine) reads.delete(k);
}

/** The transport as the current config reaches the host, without touching the shared reads (a read). */
export async function connectForRead(target: HostTarget, privateKey: string): Promise<Transport> {
    const configured = (globalThis as { __complinistCredentials?: ConfiguredCredentials }).__complinistCredentials;
    const conn = connectionOf(currentTarget(target), configured?.privateKey ?? privateKey);
    return openTransport(configured?.timeoutMs !== undefined ? { ...conn, timeoutMs: configured.timeoutMs } : conn);
}

/**
 * The transport for a provider's own scripts and uploads. Each may change the host, so the
 * machine's shared reads are dropped before it starts and again when it ends (a read that
 * started meanwhile may have seen it half done).
 */
export async function connect(target: HostTarget, privateKey: string): Promise<Transport> {
    const t = await connectForRead(target, privateKey);
    const machine = machineKey(target);
    const writing = async <R>(work: () => Promise<R>): Promise<R> => {
        forgetReads(machine);
        try {
            return await work();
        } finally {
            forgetReads(machine);
        }
    };
    return {
        host: t.host,
        root: t.root,
        systemd: t.systemd,
        exec: (script, options) => writing(() => t.exec(script, options)),
        upload: (local, remote, kind) => writing(() => t.upload(local, remote, kind)),
    };
}

/**
 * What every provider with a `host` input takes to refuse a moved host (hostChangeRefusal): the
 * stack, named in the acknowledgement command, and `complinist:acknowledgeHostChange`.
 */
export interface HostChangeInputs {
    /** The stack, for the acknowledgement command a refused host change names. */
    readonly stack: string;
    /** `complinist:acknowledgeHostChange`: hosts whose new address or host key may be used (default none: refused in preview). */
    readonly acknowledgeHostChange: ReadonlyArray<string>;
}

/** "ssh-ed25519 SHA256:…" of a host key line, as `ssh-keygen -lf` prints it; the line itself when it is no key. */
export function hostKeyFingerprint(hostKey: string): string {
    const crypto = require("crypto") as typeof import("crypto");
    const [type, b64] = (hostKey ?? "").trim().split(/\s+/);
    if (type === undefined || b64 === undefined || !/^[A-Za-z0-9+/]+=*$/.test(b64)) return hostKey;
    return `${type} SHA256:${crypto.createHash("sha256").update(Buffer.from(b64, "base64")).digest("base64").replace(/=+$/, "")}`;
}

/**
 * Why a host's new address or host key under the name it had is refused, or undefined: the next
 * apply would send that machine what the stack sends this host — the env file with the app's
 * secrets (ServiceUnit), releaseAuth (ReleaseDir), the release and its settings. Called in diff,
 * which runs in preview, so nothing has reached the new machine when it refuses.
 */
export function hostChangeRefusal(
    olds: Pick<HostTarget, "name" | "address" | "hostKey"> | undefined,
    news: Pick<HostTarget, "name" | "address" | "port" | "hostKey">,
    ack: Partial<HostChangeInputs>,
): string | undefined {
    if (olds === undefined || (olds.address === news.address && olds.hostKey === news.hostKey)) return undefined;
    if ((ack.acknowledgeHostChange ?? []).includes(news.name)) return undefined;
    const stack = ack.stack || "<your stack>";
    const [was, now] = [hostKeyFingerprint(olds.hostKey), hostKeyFingerprint(news.hostKey)];
    const changes = [
        ...(olds.address !== news.address ? [`its address from ${olds.address} to ${news.address}`] : []),
        ...(olds.hostKey !== news.hostKey ? [`its host key from ${was} to ${now}`] : []),
    ];
    const kept = olds.address === news.address ? ` (address ${news.address} unchanged)` : olds.hostKey === news.hostKey ? ` (host key ${now} unchanged)` : "";
    return (
        `host ${news.name}: the config changes ${changes.join(" and ")}${kept} under the same name, so the next apply would send that machine ` +
        `everything this stack sends the host: its env file with the app's secrets, releaseAuth and every release. ` +
        `Refused without an acknowledgement. If the host really moved, check that the new machine's key is the one configured ` +
        `(ssh-keyscan -p ${news.port} ${news.address} | ssh-keygen -lf - lists ${now.split(" ").pop() ?? now}), ` +
        `then: pulumi config set complinist:acknowledgeHostChange '["${news.name}"]' --stack ${stack} (list every host that moved), run pulumi up again, ` +
        `and remove it after with pulumi config rm complinist:acknowledgeHostChange --stack ${stack}.`
    );
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
