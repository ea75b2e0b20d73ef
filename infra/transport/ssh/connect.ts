/**
 * Opening one authenticated SSH connection with the pinned host key, retrying while the
 * host is not there yet. Pooling is ./pool.ts's business.
 */
import type { Client, ConnectConfig } from "ssh2";
import type { Connection } from "../transport";
import { clientKeyFingerprint, fingerprint, hostKeyAlgorithms, parseHostKey } from "./hostKeys";

export type SshConnection = Extract<Connection, { kind: "ssh" }>;

/** Connect, handshake and channel-open timeout when the connection sets none. */
export const DEFAULT_TIMEOUT_MS = 15000;

export function where(conn: SshConnection): string {
    return `host ${conn.name} at ${conn.address}:${conn.port}`;
}

/** "15 s", "2.5 s": how timeouts read in messages. */
export function secs(ms: number): string {
    const s = ms / 1000;
    return `${Number.isInteger(s) ? s : s.toFixed(1)} s`;
}

export function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms));
}

/** What authenticates, for messages: the key's fingerprint, the agent's socket, or both. */
function credentials(conn: SshConnection): string {
    const key = conn.privateKey !== "" ? clientKeyFingerprint(conn.privateKey) : undefined;
    const agent = conn.agent !== undefined ? `the keys of the ssh-agent at ${conn.agent}` : undefined;
    return [key, agent].filter((x) => x !== undefined).join(", then ");
}

/**
 * One connect + handshake attempt. Resolves with a ready client or rejects with an error
 * tagged `retryable` when the host simply was not there (yet): refused, reset, closed
 * before the SSH banner — what a host that is booting or restarting sshd looks like.
 */
function connectOnce(conn: SshConnection, timeoutMs: number, expected: { type: string; blob: Buffer }): Promise<Client> {
    const ssh2 = require("ssh2") as typeof import("ssh2");
    const net = require("net") as typeof import("net");
    return new Promise<Client>((resolve, reject) => {
        const client = new ssh2.Client();
        // Our own socket, so an idle pooled connection can be unref'd (see PoolEntry.busy)
        // and dead peers are noticed through TCP keepalive without ssh2's interval timer,
        // which would keep the process alive.
        const sock = new net.Socket();
        sock.setKeepAlive(true, 15000);
        let seenKey: Buffer | undefined;
        let settled = false;
        const done = (err: Error | undefined): void => {
            if (settled) return;
            settled = true;
            if (err) {
                client.removeAllListeners("ready");
                client.on("error", () => undefined);
                client.end();
                sock.destroy();
                reject(err);
            } else {
                resolve(client);
            }
        };
        client.once("ready", () => done(undefined));
        client.on("error", (e: Error & { level?: string; code?: string }) => {
            if (settled) return;
            if (seenKey && !seenKey.equals(expected.blob)) {
                done(
                    new Error(
                        `host key mismatch for ${where(conn)}: expected ${expected.type} ${fingerprint(expected.blob)}, ` +
                            `host presented ${fingerprint(seenKey)}. Refusing to connect. If the host was ` +
                            `rebuilt on purpose, put its new key (/etc/ssh/ssh_host_ed25519_key.pub) into the ` +
                            `hosts[].hostKey of the stack config.`,
                    ),
                );
                return;
            }
            if (e.level === "client-authentication") {
                done(new Error(`${where(conn)} refused key authentication for user ${conn.user} (${credentials(conn)}): ` +
                    `is the matching public key in ~${conn.user}/.ssh/authorized_keys?`));
                return;
            }
            if (e.level === "agent") {
                done(new Error(`cannot use the ssh-agent at ${conn.agent ?? "?"} to log in to ${where(conn)}: ${e.message} (is the agent running, and SSH_AUTH_SOCK current?)`));
                return;
            }
            if (e.level === "client-timeout") {
                done(Object.assign(new Error(`no SSH handshake within ${timeoutMs} ms (${e.message})`), { retryable: false, timeout: true }));
                return;
            }
            const retryable =
                e.level === "client-socket" ||
                /Connection lost before handshake|ECONNRESET|ECONNREFUSED|EPIPE/.test(`${e.message} ${e.code ?? ""}`);
            done(Object.assign(new Error(e.message), { retryable }));
        });
        client.once("close", () => done(Object.assign(new Error("connection closed during handshake"), { retryable: true })));

        const config: ConnectConfig = {
            sock,
            username: conn.user,
            ...(conn.privateKey !== "" ? { privateKey: conn.privateKey } : {}),
            ...(conn.agent !== undefined ? { agent: conn.agent } : {}),
            readyTimeout: timeoutMs,
            algorithms: { serverHostKey: hostKeyAlgorithms(expected.type) as never },
            // Compare the raw key blob: no hashing, no known_hosts, no trust on first use.
            hostVerifier: (key: Buffer) => {
                seenKey = Buffer.from(key);
                return seenKey.equals(expected.blob);
            },
        };
        sock.connect({ host: conn.address, port: conn.port });
        client.connect(config);
    });
}

/** Connects, retrying "not there yet" failures until the connection's timeout has passed in total. */
export async function connect(conn: SshConnection): Promise<Client> {
    const ssh2 = require("ssh2") as typeof import("ssh2");
    const timeoutMs = conn.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const expected = parseHostKey(conn.hostKey, conn.name);
    if (conn.privateKey === "" && conn.agent === undefined) {
        throw new Error(`no SSH credentials for host ${conn.name}: neither a private key nor an ssh-agent socket was given`);
    }
    const parsed = conn.privateKey === "" ? undefined : ssh2.utils.parseKey(conn.privateKey);
    if (parsed instanceof Error) {
        throw new Error(`the SSH private key for host ${conn.name} cannot be parsed: ${parsed.message} ` +
            `(expected OpenSSH or PEM private key text, without passphrase)`);
    }
    const deadline = Date.now() + timeoutMs;
    let last: Error | undefined;
    for (;;) {
        const remaining = deadline - Date.now();
        if (remaining <= 0) break;
        try {
            return await connectOnce(conn, remaining, expected);
        } catch (e) {
            const err = e as Error & { retryable?: boolean; timeout?: boolean };
            last = err;
            if (err.timeout) break;
            if (!err.retryable) throw err;
            await sleep(Math.min(250, Math.max(0, deadline - Date.now())));
        }
    }
    throw new Error(
        `cannot reach ${where(conn)} within ${secs(timeoutMs)}` +
            ` (last error: ${last?.message ?? "none"}); check that the host is up, sshd listens on that port ` +
            `and nothing filters it, or raise the connection timeout`,
    );
}
