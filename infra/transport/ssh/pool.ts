/**
 * The connection pool: one connection per host and credential per process, shared by
 * every transport object, with channel slots below sshd's session limit and an idle
 * connection that never keeps the process alive.
 *
 * The pool lives on `globalThis.__complinistSsh` so every deserialized copy of these
 * functions in one process shares it (see ./index.ts).
 */
import type { Client, ClientChannel } from "ssh2";
import { trace } from "../trace";
import { connect, DEFAULT_TIMEOUT_MS, secs, sleep, where, type SshConnection } from "./connect";

interface PoolEntry {
    /** The pool key this entry was stored under. */
    key: string;
    /** Resolves to a connected, authenticated client; replaced after a drop. */
    client: Promise<Client>;
    /** Channels in flight. The socket is unref'd at 0 so an idle pool never keeps a process alive. */
    busy: number;
    /** Open channels, capped below sshd's MaxSessions (default 10). */
    channels: number;
    /** Callers waiting for a channel slot. */
    waiters: Array<() => void>;
    closed: boolean;
}

/**
 * OpenSSH refuses the 11th concurrent session on one connection ("open failed"), and
 * Pulumi happily runs many resources of one host in parallel: queue above this instead.
 * Half of MaxSessions, because sessions we already saw close still count on the server
 * until its main loop collects them.
 */
const MAX_CHANNELS_PER_CONNECTION = 5;

interface SshState {
    pool: Map<string, PoolEntry>;
    handshakes: Map<string, number>;
}

function sshState(): SshState {
    const g = globalThis as unknown as { __complinistSsh?: SshState };
    if (!g.__complinistSsh) {
        g.__complinistSsh = { pool: new Map(), handshakes: new Map() };
    }
    return g.__complinistSsh;
}

function poolKey(conn: SshConnection): string {
    const crypto = require("crypto") as typeof import("crypto");
    // The private key is part of the identity so a different credential never rides on a
    // connection authenticated with another one.
    const keyId = crypto.createHash("sha256").update(conn.privateKey ?? "").digest("hex").slice(0, 16);
    return [conn.name, conn.address, conn.port, conn.user, (conn.hostKey ?? "").trim(), keyId, conn.agent ?? ""].join("|");
}

/** Takes `entry` out of the pool so the next caller connects afresh. */
function drop(entry: PoolEntry): void {
    entry.closed = true;
    const state = sshState();
    if (state.pool.get(entry.key) === entry) state.pool.delete(entry.key);
    // Queued callers retry on a fresh connection instead of waiting forever.
    for (const wake of entry.waiters.splice(0)) wake();
}

/** The pooled entry for a host, creating (or re-creating after a drop) the connection. */
function entryFor(conn: SshConnection): PoolEntry {
    const state = sshState();
    const key = poolKey(conn);
    const existing = state.pool.get(key);
    if (existing && !existing.closed) return existing;
    const entry: PoolEntry = { key, client: Promise.resolve(undefined as unknown as Client), busy: 0, channels: 0, waiters: [], closed: false };
    entry.client = connect(conn).then(
        (client) => {
            state.handshakes.set(conn.name, (state.handshakes.get(conn.name) ?? 0) + 1);
            trace("ssh-handshake", { host: conn.name });
            const forget = (): void => drop(entry);
            client.on("close", forget);
            client.on("end", forget);
            // Errors after the handshake surface through the channels using the client;
            // without a listener an 'error' event would crash the process.
            client.on("error", forget);
            setIdle(client, entry);
            return client;
        },
        (err: unknown) => {
            drop(entry);
            throw err;
        },
    );
    state.pool.set(key, entry);
    return entry;
}

function socketOf(client: Client): import("net").Socket | undefined {
    return (client as unknown as { _sock?: import("net").Socket })._sock;
}

function setIdle(client: Client, entry: PoolEntry): void {
    const sock = socketOf(client);
    if (!sock) return;
    if (entry.busy > 0) sock.ref();
    else sock.unref();
}

export interface OpenedChannel {
    channel: ClientChannel;
    /** Filled from the channel's 'exit' event, which may fire before the caller attaches. */
    exit: { code?: number; signal?: string };
    /** Gives the channel slot back; call once the channel has closed. */
    release: () => void;
}

/**
 * Opens an exec channel on the pooled connection. A connection that dropped since it was
 * pooled is replaced once; a failure after that is the host's answer. A connection that
 * does not answer the channel request within the connection timeout is half-open (host
 * frozen, NAT entry gone): it is dropped so the next call reconnects, and this call fails.
 */
export async function openChannel(conn: SshConnection, command: string): Promise<OpenedChannel> {
    const openTimeoutMs = conn.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    let refusals = 0;
    for (let attempt = 0; ; attempt++) {
        const entry = entryFor(conn);
        // Counted as busy from here on, not only once the channel is open: while we wait
        // for the server to confirm the channel nothing else may keep the event loop alive,
        // and an unref'd socket would let the process exit mid-request.
        entry.busy++;
        let released = false;
        let slot = false;
        let client: Client | undefined;
        const release = (): void => {
            if (released) return;
            released = true;
            entry.busy--;
            if (slot) {
                entry.channels--;
                entry.waiters.shift()?.();
            }
            if (client) setIdle(client, entry);
        };
        try {
            client = await entry.client;
        } catch (e) {
            release();
            throw e;
        }
        setIdle(client, entry);
        while (entry.channels >= MAX_CHANNELS_PER_CONNECTION && !entry.closed) {
            await new Promise<void>((resolve) => entry.waiters.push(resolve));
        }
        entry.channels++;
        slot = true;
        try {
            const c = client;
            const exit: OpenedChannel["exit"] = {};
            const channel = await new Promise<ClientChannel>((resolve, reject) => {
                if (entry.closed) {
                    reject(Object.assign(new Error("connection closed"), { dropped: true }));
                    return;
                }
                let answered = false;
                const timer = setTimeout(() => {
                    answered = true;
                    drop(entry);
                    // Also fails the other channels waiting on this connection at once,
                    // instead of each waiting out its own timer.
                    c.destroy();
                    reject(new Error(`the host did not answer the session request within ${secs(openTimeoutMs)}; ` +
                        `the connection was dropped and the next command reconnects (check the host's load and sshd)`));
                }, openTimeoutMs);
                try {
                    c.exec(command, (err, ch) => {
                        if (answered) return;
                        answered = true;
                        clearTimeout(timer);
                        if (err) {
                            reject(Object.assign(err, { dropped: entry.closed || /Not connected|No response/.test(err.message) }));
                            return;
                        }
                        // Synchronously: for a short command the exit status arrives in the same
                        // TCP read as the exec reply and is emitted before any await resumes.
                        ch.on("exit", (code: number | null, sig?: string) => {
                            if (typeof code === "number") exit.code = code;
                            if (sig) exit.signal = sig;
                        });
                        resolve(ch);
                    });
                } catch (e) {
                    clearTimeout(timer);
                    throw e;
                }
            });
            return { channel, exit, release };
        } catch (e) {
            release();
            const err = e as Error & { dropped?: boolean };
            if (err.dropped && attempt === 0) {
                drop(entry);
                continue;
            }
            // sshd frees a finished session only after its main loop has drained input, so
            // a burst of new channels right after closes can briefly exceed MaxSessions.
            // Nothing ran yet, so trying again is safe.
            if (/open failed/i.test(err.message) && refusals++ < 20) {
                await sleep(50 * refusals);
                attempt--;
                continue;
            }
            throw new Error(`cannot open a session on ${where(conn)}: ${err.message}`);
        }
    }
}

/** Completed SSH handshakes in this process, for one host or all of them. */
export function handshakeCount(hostName?: string): number {
    const { handshakes } = sshState();
    if (hostName !== undefined) return handshakes.get(hostName) ?? 0;
    let total = 0;
    for (const n of handshakes.values()) total += n;
    return total;
}

/** Closes every pooled connection and resets the handshake counters (tests). */
export async function closeAllConnections(): Promise<void> {
    const state = sshState();
    const entries = [...state.pool.values()];
    state.pool.clear();
    state.handshakes.clear();
    await Promise.all(
        entries.map(async (entry) => {
            entry.closed = true;
            for (const wake of entry.waiters.splice(0)) wake();
            try {
                const client = await entry.client;
                await new Promise<void>((resolve) => {
                    client.once("close", () => resolve());
                    client.end();
                    setTimeout(resolve, 1000).unref();
                });
            } catch {
                /* never connected: nothing to close */
            }
        }),
    );
}
