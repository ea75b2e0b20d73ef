/**
 * Disposable target hosts for the integration tests and `npm run bench`: Debian bookworm
 * containers with systemd as PID 1 and sshd (image from scripts/build-test-image.sh),
 * reachable only through a port published on 127.0.0.1. With `dockerEngine` they also run
 * a Docker engine of their own (image from scripts/build-docker-host-image.sh), for
 * container mode (dev/images.ts loads images into it).
 *
 * Every container carries the label complinist-testhost=1 and a per-run name prefix, and
 * is removed by stopHosts, by useHosts' `after` hook (also when `before` failed) and, as a
 * last resort, by an exit/SIGINT/SIGTERM handler — so an aborted run leaves nothing behind.
 */
import { execFileSync } from "child_process";
import * as crypto from "crypto";
import * as net from "net";
import type { ExecResult } from "../infra/transport/transport";
import { docker, DOCKER_ENGINE_FLAGS, dockerOk, SYSTEMD_HOST_FLAGS, waitEngine, waitReady } from "./container";
import { testKeyPair } from "./sshKeys";

export interface TestHost {
    /** Logical host name (what a stack's hosts[].name would be). */
    name: string;
    /** Docker container name. */
    container: string;
    address: "127.0.0.1";
    /** Published SSH port on 127.0.0.1; stays the same across stop()/start(). */
    sshPort: number;
    user: "root";
    /** The host's own public key, "ssh-ed25519 AAAA…", for pinning. */
    hostKey: string;
    /** Private key text authorized for root on every test host. */
    privateKey: string;
    /** Runs `cmd` with bash via `docker exec` — an observation channel independent of SSH. */
    exec(cmd: string): Promise<ExecResult>;
    /** `exec` of a command that must succeed: its stdout, trimmed; any other exit rejects, naming the host, the command, the status, stdout and stderr. */
    run(cmd: string): Promise<string>;
    /** `docker stop`: the host goes away, sshd with it. */
    stop(): Promise<void>;
    /** `docker start` and wait until systemd and sshd are up again. */
    start(): Promise<void>;
}

/** A test host as a stack's `complinist:hosts` entry: reached on its published SSH port, its key pinned. */
export function hostEntry(h: TestHost): { name: string; address: string; port: number; user: string; hostKey: string } {
    return { name: h.name, address: h.address, port: h.sshPort, user: h.user, hostKey: h.hostKey };
}

export interface StartHostsOptions {
    /**
     * Image to run; default $COMPLINIST_TESTHOST_IMAGE or complinist-testhost:latest, with
     * `dockerEngine` $COMPLINIST_DOCKERHOST_IMAGE or complinist-dockerhost:latest.
     */
    image?: string;
    /**
     * Docker-in-docker: the host runs its own dockerd (started by systemd), so containers
     * publish ports on the host's own 127.0.0.1. Adds an anonymous volume at
     * /var/lib/docker (overlay2 does not work on overlay; NET_ADMIN for docker's NAT every host has);
     * startHosts returns once `docker info` answers inside.
     */
    dockerEngine?: boolean;
    /** Host names; default host-1 … host-N. */
    names?: string[];
    /** How long one host may take to boot; default 90 s (2 shared cores, several hosts at once). */
    bootTimeoutMs?: number;
}

const LABEL = "complinist-testhost=1";

function defaultImage(dockerEngine = false): string {
    return dockerEngine
        ? (process.env.COMPLINIST_DOCKERHOST_IMAGE ?? "complinist-dockerhost:latest")
        : (process.env.COMPLINIST_TESTHOST_IMAGE ?? "complinist-testhost:latest");
}

/** Containers started by this process and not yet removed (for the exit handler). */
const live = new Set<string>();
/** The subset of `live` that runs its own Docker engine. */
const engineHosts = new Set<string>();
const runPrefix = `complinist-test-${process.pid}-${crypto.randomBytes(3).toString("hex")}`;
let counter = 0;
let cleanupInstalled = false;

function installCleanup(): void {
    if (cleanupInstalled) return;
    cleanupInstalled = true;
    // Synchronous on purpose: 'exit' handlers cannot await, and a signal handler that
    // returns before the containers are gone would race the process exit.
    const removeAll = (): void => {
        if (live.size === 0) return;
        try {
            execFileSync("docker", ["rm", "-f", "-v", ...live], { stdio: "ignore", timeout: 30000 });
        } catch {
            /* best effort on the way out */
        }
        live.clear();
        engineHosts.clear();
    };
    process.on("exit", removeAll);
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
        process.once(sig, () => {
            removeAll();
            process.exit(sig === "SIGINT" ? 130 : 143);
        });
    }
}

/** True when a Docker engine answers and the test-host image exists. */
export function hostsAvailable(image: string = defaultImage()): boolean {
    try {
        execFileSync("docker", ["image", "inspect", image], { stdio: "ignore", timeout: 15000 });
        return true;
    } catch {
        return false;
    }
}

/**
 * Skips the calling suite when hosts are unavailable on a developer machine; in CI
 * (process.env.CI set) missing hosts are a setup failure and must not hide as skips.
 */
export function requireHosts(ctx: Mocha.Context, image: string = defaultImage()): void {
    if (hostsAvailable(image)) return;
    const why = `test hosts unavailable: docker is not reachable or image ${image} is missing (run: bash scripts/ci-setup.sh)`;
    if (process.env.CI) throw new Error(`${why}; CI is set, so this fails instead of skipping`);
    ctx.skip();
}

/**
 * Free ports on 127.0.0.1, held open together so one call never returns a duplicate.
 * We choose the port (instead of `-p 127.0.0.1::22`) so it survives stop()/start():
 * Docker would hand out a new ephemeral port on every start, and a test's pinned
 * Connection would then point at nothing.
 */
async function freePorts(n: number): Promise<number[]> {
    const servers = await Promise.all(
        Array.from({ length: n }, () =>
            new Promise<net.Server>((resolve, reject) => {
                const s = net.createServer();
                s.once("error", reject);
                s.listen(0, "127.0.0.1", () => resolve(s));
            }),
        ),
    );
    const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    return ports;
}

async function startOne(
    name: string,
    port: number,
    image: string,
    dockerEngine: boolean,
    publicKey: string,
    privateKey: string,
    bootTimeoutMs: number,
): Promise<TestHost> {
    const container = `${runPrefix}-${++counter}-${name}`.replace(/[^a-zA-Z0-9_.-]/g, "-");
    live.add(container);
    if (dockerEngine) engineHosts.add(container);
    const run = await docker([
        "run", "-d",
        "--name", container,
        "--hostname", name.replace(/[^a-zA-Z0-9-]/g, "-").slice(0, 63),
        "--label", LABEL,
        "--label", `complinist-testhost-run=${runPrefix}`,
        ...SYSTEMD_HOST_FLAGS,
        ...(dockerEngine ? DOCKER_ENGINE_FLAGS : []),
        "-p", `127.0.0.1:${port}:22`,
        image,
        "/sbin/init",
    ]);
    if (run.code !== 0) {
        throw Object.assign(new Error(`docker run for test host ${name} failed: ${run.stderr.trim()}`), {
            portInUse: /port is already allocated|address already in use/i.test(run.stderr),
        });
    }
    const bootStart = Date.now();
    await waitReady(container, port, bootTimeoutMs);
    if (dockerEngine) await waitEngine(container, Math.max(bootTimeoutMs - (Date.now() - bootStart), 5000));
    await dockerOk(
        ["exec", "-i", container, "sh", "-c", "install -d -m 0700 /root/.ssh && cat >>/root/.ssh/authorized_keys && chmod 0600 /root/.ssh/authorized_keys"],
        { input: `${publicKey}\n` },
    );
    const hostKey = (await dockerOk(["exec", container, "cat", "/etc/ssh/ssh_host_ed25519_key.pub"])).trim().split(/\s+/).slice(0, 2).join(" ");

    const host: TestHost = {
        name,
        container,
        address: "127.0.0.1",
        sshPort: port,
        user: "root",
        hostKey,
        privateKey,
        async exec(cmd: string): Promise<ExecResult> {
            return docker(["exec", container, "bash", "-c", cmd], { timeoutMs: 120000 });
        },
        async run(cmd: string): Promise<string> {
            const r = await host.exec(cmd);
            if (r.code !== 0) throw new Error(`${name}: ${cmd} failed (exit ${r.code})\n${r.stdout}\n${r.stderr}`);
            return r.stdout.trim();
        },
        async stop(): Promise<void> {
            await dockerOk(["stop", "-t", "10", container], { timeoutMs: 60000 });
        },
        async start(): Promise<void> {
            await dockerOk(["start", container]);
            const startedAt = Date.now();
            await waitReady(container, port, bootTimeoutMs);
            if (dockerEngine) await waitEngine(container, Math.max(bootTimeoutMs - (Date.now() - startedAt), 5000));
        },
    };
    return host;
}

async function removeContainers(containers: string[]): Promise<void> {
    if (containers.length === 0) return;
    // Inner containers killed with their host leave their cgroup directories behind on this
    // machine (the hosts share its cgroup tree); removing them first lets runc clean up.
    await Promise.all(
        containers
            .filter((c) => engineHosts.has(c))
            .map((c) => docker(["exec", c, "sh", "-c", "ids=$(docker ps -aq) && if [ -n \"$ids\" ]; then docker rm -f -v $ids; fi"], { timeoutMs: 30000 }).catch(() => undefined)),
    );
    await docker(["rm", "-f", "-v", ...containers], { timeoutMs: 60000 });
    for (const c of containers) {
        live.delete(c);
        engineHosts.delete(c);
    }
}

/**
 * Starts `count` hosts in parallel (boot time dominates, and it overlaps well). If any
 * host fails to come up, the others are removed too and the first error is thrown.
 */
export async function startHosts(count: number, opts: StartHostsOptions = {}): Promise<TestHost[]> {
    installCleanup();
    const dockerEngine = opts.dockerEngine ?? false;
    const image = opts.image ?? defaultImage(dockerEngine);
    const names = opts.names ?? Array.from({ length: count }, (_, i) => `host-${i + 1}`);
    if (names.length !== count) throw new Error(`startHosts: ${count} hosts requested but ${names.length} names given`);
    const bootTimeoutMs = opts.bootTimeoutMs ?? 90000;
    const { publicKey, privateKey } = testKeyPair();
    const ports = await freePorts(count);
    const before = new Set(live);

    const results = await Promise.allSettled(
        names.map(async (name, i) => {
            // A port freed by freePorts can be taken by someone else before docker binds
            // it; retry with a fresh one rather than fail the suite.
            for (let attempt = 0; ; attempt++) {
                try {
                    return await startOne(name, ports[i]!, image, dockerEngine, publicKey, privateKey, bootTimeoutMs);
                } catch (e) {
                    if (!(e as { portInUse?: boolean }).portInUse || attempt >= 3) throw e;
                    const stale = [...live].filter((c) => !before.has(c) && c.endsWith(`-${name}`));
                    await removeContainers(stale);
                    ports[i] = (await freePorts(1))[0]!;
                }
            }
        }),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) {
        await removeContainers([...live].filter((c) => !before.has(c)));
        throw failed.reason;
    }
    return results.map((r) => (r as PromiseFulfilledResult<TestHost>).value);
}

/** Removes the hosts' containers (not just stops them). */
export async function stopHosts(hosts: readonly TestHost[]): Promise<void> {
    await removeContainers(hosts.map((h) => h.container));
}

/**
 * Mocha helper: hosts started in `before`, removed in `after` (which mocha runs even when
 * `before` failed). The returned array is filled in by `before`; read it inside tests.
 */
export function useHosts(count: number, opts: StartHostsOptions = {}): TestHost[] {
    const hosts: TestHost[] = [];
    before(async function () {
        this.timeout((opts.bootTimeoutMs ?? 90000) + 60000);
        requireHosts(this, opts.image ?? defaultImage(opts.dockerEngine));
        hosts.push(...(await startHosts(count, opts)));
    });
    after(async function () {
        this.timeout(60000);
        const started = hosts.splice(0);
        await stopHosts(started);
    });
    return hosts;
}
