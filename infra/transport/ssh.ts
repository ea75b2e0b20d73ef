/**
 * SSH transport: one pinned-host-key connection per host per process.
 *
 * Everything here is written for Pulumi's closure serializer, which copies the
 * functions a dynamic provider reaches into state and runs them in another process:
 * - npm modules (`ssh2`) and Node built-ins are `require`d inside functions, at call time;
 * - no classes and no module-level mutable state — the connection pool lives on
 *   `globalThis.__complinistSsh`, so every deserialized copy of these functions in one
 *   process shares it (a module-level Map would be duplicated per provider).
 */
import type { Client, ClientChannel, ConnectConfig } from "ssh2";
import type { Readable } from "stream";
import { trace } from "./trace";
import type { Connection, ExecOptions, ExecResult, Transport, UploadResult } from "./transport";

export type SshConnection = Extract<Connection, { kind: "ssh" }>;

interface PoolEntry {
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

/** OpenSSH-style fingerprint ("SHA256:<base64 without padding>") of a key blob. */
export function fingerprint(blob: Buffer): string {
    const crypto = require("crypto") as typeof import("crypto");
    return "SHA256:" + crypto.createHash("sha256").update(blob).digest("base64").replace(/=+$/, "");
}

/**
 * Splits "ssh-ed25519 AAAA… [comment]" into type and blob, and checks the blob really is
 * a key of that type — a pasted key with a wrong prefix would otherwise only show up as a
 * confusing mismatch at connect time.
 */
export function parseHostKey(hostKey: string, hostName: string): { type: string; blob: Buffer } {
    const fields = (hostKey ?? "").trim().split(/\s+/);
    const fail = (why: string): never => {
        throw new Error(
            `hostKey of host ${hostName} is not an OpenSSH public key (${why}); ` +
                `expected e.g. "ssh-ed25519 AAAAC3Nza…", as printed by ` +
                `\`ssh-keyscan -t ed25519 <host>\` or found in /etc/ssh/ssh_host_ed25519_key.pub`,
        );
    };
    if (fields.length < 2) fail("need \"<type> <base64>\"");
    const [type, b64] = fields as [string, string];
    if (!/^[A-Za-z0-9+/]+=*$/.test(b64)) fail("key data is not base64");
    const blob = Buffer.from(b64, "base64");
    if (blob.length < 4) fail("key data too short");
    const len = blob.readUInt32BE(0);
    if (4 + len > blob.length || blob.subarray(4, 4 + len).toString("latin1") !== type) {
        fail(`key data does not hold a ${type} key`);
    }
    return { type, blob };
}

/**
 * Host-key algorithms to offer: only the pinned key's type. Otherwise the server could
 * pick e.g. its ECDSA key and a correctly pinned ed25519 key would look like a mismatch.
 */
function hostKeyAlgorithms(type: string): string[] {
    if (type === "ssh-rsa") return ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"];
    return [type];
}

function poolKey(conn: SshConnection): string {
    const crypto = require("crypto") as typeof import("crypto");
    // The private key is part of the identity so a different credential never rides on a
    // connection authenticated with another one.
    const keyId = crypto.createHash("sha256").update(conn.privateKey ?? "").digest("hex").slice(0, 16);
    return [conn.name, conn.address, conn.port, conn.user, (conn.hostKey ?? "").trim(), keyId].join("|");
}

function where(conn: SshConnection): string {
    return `host ${conn.name} at ${conn.address}:${conn.port}`;
}

/** "15 s", "2.5 s": how timeouts read in messages. */
function secs(ms: number): string {
    const s = ms / 1000;
    return `${Number.isInteger(s) ? s : s.toFixed(1)} s`;
}

function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms));
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
                done(new Error(`${where(conn)} refused key authentication for user ${conn.user} (${clientKeyFingerprint(conn)}): ` +
                    `is the matching public key in ~${conn.user}/.ssh/authorized_keys?`));
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
            privateKey: conn.privateKey,
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

function clientKeyFingerprint(conn: SshConnection): string {
    const ssh2 = require("ssh2") as typeof import("ssh2");
    const parsed = ssh2.utils.parseKey(conn.privateKey);
    if (parsed instanceof Error) return "unparseable key";
    const key = Array.isArray(parsed) ? parsed[0] : parsed;
    return `key ${fingerprint(key.getPublicSSH())}`;
}

/** Connects, retrying "not there yet" failures until `timeoutMs` has passed in total. */
async function connect(conn: SshConnection): Promise<Client> {
    const ssh2 = require("ssh2") as typeof import("ssh2");
    const timeoutMs = conn.timeoutMs ?? 15000;
    const expected = parseHostKey(conn.hostKey, conn.name);
    const parsed = ssh2.utils.parseKey(conn.privateKey);
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
            const client = await connectOnce(conn, remaining, expected);
            const state = sshState();
            state.handshakes.set(conn.name, (state.handshakes.get(conn.name) ?? 0) + 1);
            trace("ssh-handshake", { host: conn.name });
            return client;
        } catch (e) {
            const err = e as Error & { retryable?: boolean; timeout?: boolean };
            last = err;
            if (err.timeout) break;
            if (!err.retryable) throw err;
            await sleep(Math.min(250, Math.max(0, deadline - Date.now())));
        }
    }
    throw new Error(
        `cannot reach host ${conn.name} at ${conn.address}:${conn.port} within ${secs(timeoutMs)}` +
            ` (last error: ${last?.message ?? "none"}); check that the host is up, sshd listens on that port ` +
            `and nothing filters it, or raise the connection timeout`,
    );
}

/** The pooled entry for a host, creating (or re-creating after a drop) the connection. */
function entryFor(conn: SshConnection): PoolEntry {
    const state = sshState();
    const key = poolKey(conn);
    const existing = state.pool.get(key);
    if (existing && !existing.closed) return existing;
    const entry: PoolEntry = { client: Promise.resolve(undefined as unknown as Client), busy: 0, channels: 0, waiters: [], closed: false };
    entry.client = connect(conn).then(
        (client) => {
            const forget = (): void => {
                entry.closed = true;
                if (state.pool.get(key) === entry) state.pool.delete(key);
                // Queued callers retry on a fresh connection instead of waiting forever.
                for (const wake of entry.waiters.splice(0)) wake();
            };
            client.on("close", forget);
            client.on("end", forget);
            // Errors after the handshake surface through the channels using the client;
            // without a listener an 'error' event would crash the process.
            client.on("error", forget);
            setIdle(client, entry);
            return client;
        },
        (err: unknown) => {
            entry.closed = true;
            if (state.pool.get(key) === entry) state.pool.delete(key);
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

/**
 * Opens an exec channel on the pooled connection. A connection that dropped since it was
 * pooled is replaced once; a failure after that is the host's answer.
 */
interface OpenedChannel {
    channel: ClientChannel;
    /** Filled from the channel's 'exit' event, which may fire before the caller attaches. */
    exit: { code?: number; signal?: string };
    release: () => void;
}

async function openChannel(conn: SshConnection, command: string): Promise<OpenedChannel> {
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
                c.exec(command, (err, ch) => {
                    if (err) {
                        reject(Object.assign(err, { dropped: entry.closed || /Not connected|No response/.test(err.message) }));
                        return;
                    }
                    // Synchronously: for a short command the exit status arrives in the same
                    // TCP read as the exec reply and is emitted before any await resumes.
                    ch.on("exit", (c: number | null, sig?: string) => {
                        if (typeof c === "number") exit.code = c;
                        if (sig) exit.signal = sig;
                    });
                    resolve(ch);
                });
            });
            return { channel, exit, release };
        } catch (e) {
            release();
            const err = e as Error & { dropped?: boolean };
            if (err.dropped && attempt === 0) {
                entry.closed = true;
                const state = sshState();
                if (state.pool.get(poolKey(conn)) === entry) state.pool.delete(poolKey(conn));
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

/** POSIX single-quoting for values interpolated into remote command lines. */
function shq(s: string): string {
    return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * Runs `script` under bash on the host, feeding `input` (bytes or a stream) to its stdin.
 *
 * The script travels base64-encoded in the command line, not on stdin, so the script's
 * own stdin is exactly `input` — an upload's bytes can never be parsed as shell. The
 * host-side `timeout` makes sure a script whose channel we abandon does not live on.
 */
function runScript(
    conn: SshConnection,
    script: string,
    input: Buffer | Readable | undefined,
    timeoutMs: number,
    what: string,
): Promise<ExecResult> {
    const b64 = Buffer.from(script, "utf8").toString("base64");
    // The host enforces the timeout itself: OpenSSH refuses "signal" channel requests
    // for these sessions ("session signalling requires privilege separation"), and
    // closing a non-pty channel does not stop the script, so only a host-side `timeout`
    // reliably kills the whole process group. The local timer is a fallback for a host
    // that stops answering altogether.
    const hostTimeoutS = (Math.max(1, timeoutMs) / 1000).toFixed(3);
    const timeoutMessage = `${what} on ${where(conn)} did not finish within ${secs(timeoutMs)}; it was killed`;
    const startedAt = Date.now();
    // Host state (/etc, systemctl, the service user) needs root: a non-root deploy user
    // runs every script through passwordless sudo (-n: fail at once, never prompt).
    const elevate = conn.user === "root" ? "" : "sudo -n ";
    const command =
        `${elevate}timeout --kill-after=2 ${hostTimeoutS} ` +
        // --norc: bash started under sshd sources /etc/bash.bashrc even when
        // non-interactive, and that file trips over `set -u` (unbound PS1).
        `bash --norc --noprofile -euo pipefail -c "$(printf %s ${shq(b64)} | base64 -d)" complinist-script`;
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
                channel.on("data", (d: Buffer) => out.push(d));
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

/** Transport over the pooled SSH connection for `conn`. Connects lazily, on first use. */
export function sshTransport(conn: SshConnection): Transport {
    // Fail on config errors at construction, before any resource work starts.
    parseHostKey(conn.hostKey, conn.name);
    return {
        host: conn.name,
        root: "",
        exec(script: string, options?: ExecOptions): Promise<ExecResult> {
            return runScript(conn, script, options?.stdin, options?.timeoutMs ?? 120000, "script");
        },
        async upload(localPath: string, remotePath: string): Promise<UploadResult> {
            const fs = require("fs") as typeof import("fs");
            const path = require("path") as typeof import("path");
            const { size } = await fs.promises.stat(localPath);
            const dir = path.posix.dirname(remotePath);
            // Written under a temporary name and renamed, so a reader (or a retried
            // deployment) never sees a half-written file at remotePath.
            const script = [
                `dest=${shq(remotePath)}`,
                `mkdir -p ${shq(dir)}`,
                `tmp="$(mktemp ${shq(dir + "/.upload.XXXXXX")})"`,
                `trap 'rm -f "$tmp"' EXIT`,
                `cat >"$tmp"`,
                `got="$(stat -c %s "$tmp")"`,
                `if [ "$got" != ${size} ]; then echo "received $got of ${size} bytes" >&2; exit 3; fi`,
                `chmod 0644 "$tmp"`,
                `mv -f "$tmp" "$dest"`,
                `trap - EXIT`,
                `sha256sum "$dest" | cut -d' ' -f1`,
            ].join("\n");
            // Sized to a slow link: a minute plus one per 10 MB.
            const timeoutMs = 60000 + Math.ceil(size / 10_000_000) * 60000;
            const res = await runScript(conn, script, fs.createReadStream(localPath), timeoutMs, `upload of ${localPath}`);
            if (res.code !== 0) {
                throw new Error(`upload of ${localPath} to ${conn.name}:${remotePath} failed (exit ${res.code}): ${res.stderr.trim()}`);
            }
            const sha256 = res.stdout.trim();
            if (!/^[0-9a-f]{64}$/.test(sha256)) {
                throw new Error(`upload to ${conn.name}:${remotePath}: unexpected sha256sum output ${JSON.stringify(res.stdout)}`);
            }
            trace("upload", { host: conn.name, bytes: size });
            return { bytes: size, sha256 };
        },
    };
}

/** Async alias so callers can treat every transport factory alike. */
export async function getSshTransport(conn: SshConnection): Promise<Transport> {
    return sshTransport(conn);
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
