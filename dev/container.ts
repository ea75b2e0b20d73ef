/**
 * The Docker side of a Debian + systemd + sshd host container (image from
 * scripts/build-test-image.sh): the `docker run` flags systemd needs as PID 1 and the wait
 * until it has booted. Shared by the disposable hosts (dev/hosts.ts) and the dev host of
 * `npm run up` (scripts/up.ts).
 */
import * as net from "net";
import { runProcess } from "../infra/transport/local";
import type { ExecResult } from "../infra/transport/transport";

export function docker(args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<ExecResult> {
    const timeoutMs = opts.timeoutMs ?? 60000;
    return runProcess("docker", args, opts.input ?? "", timeoutMs, `docker ${args.join(" ")} did not finish within ${timeoutMs} ms`);
}

export async function dockerOk(args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<string> {
    const res = await docker(args, opts);
    if (res.code !== 0) throw new Error(`docker ${args.join(" ")} failed (${res.code}): ${res.stderr.trim()}`);
    return res.stdout;
}

function sleep(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms));
}

/** Resolves once sshd answers with its banner through the published port. */
function sshBanner(port: number, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
        const sock = net.connect({ host: "127.0.0.1", port });
        let buf = "";
        const done = (ok: boolean): void => {
            clearTimeout(timer);
            sock.destroy();
            resolve(ok);
        };
        const timer = setTimeout(() => done(false), timeoutMs);
        sock.on("data", (d) => {
            buf += d.toString("latin1");
            if (buf.includes("SSH-2.0-")) done(true);
        });
        sock.on("error", () => done(false));
        sock.on("close", () => done(false));
    });
}

/**
 * `docker run` flags that make systemd work as PID 1 on these machines (--privileged fails here); also used by the dev host.
 *
 * The host's cgroup tree stays mounted read-write (with the host's cgroup namespace), for the demo
 * host too, because systemd as PID 1 cannot run without a cgroup tree it can write: it moves itself
 * into init.scope and makes a cgroup per slice and unit (with the units' limits) at boot, and fails
 * to start on a read-only one; and what is tested here depends on those cgroups (the agent names a
 * listener's owner by its cgroup against the unit's ControlGroup, the instance firewall matches
 * `socket cgroupv2`). These machines mount cgroup v1 (a tmpfs of per-controller hierarchies, plus
 * name=systemd and unified), where Docker has no private cgroup namespace to hand a writable subtree
 * from. Narrower mounts (`:ro`, only name=systemd read-write, `--cgroupns=private`) are untried: no
 * Docker engine was free to measure them when this was written.
 * What it costs: root in such a container can write the host's cgroups (on v1 with CAP_SYS_ADMIN that
 * includes a hierarchy's release_agent, which the kernel runs as the host's root), so only the user
 * who set up the checkout may be root there: the demo host and the test hosts authorize only their
 * checkout's own 0600 key (dev/sshKeys.ts), and publish SSH on 127.0.0.1 only.
 */
export const SYSTEMD_HOST_FLAGS: readonly string[] = [
    "--cap-add", "SYS_ADMIN",
    "--security-opt", "seccomp=unconfined",
    "--cgroupns=host",
    "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--tmpfs", "/run",
    "--tmpfs", "/run/lock",
    "-e", "container=docker",
    // Root on a real host loads nftables rules (the instance firewall, infra/render/firewall.ts); here it needs NET_ADMIN.
    "--cap-add", "NET_ADMIN",
    // IPv6 on, ::1 included, as on a real Debian host (Docker turns it off in a container): the proxy serves both families.
    "--sysctl", "net.ipv6.conf.all.disable_ipv6=0",
    // As on a real host, root sees every process's sockets in /proc (the agent names and, when it is
    // the service's own, ends a listener on the idle port: issue 29 finding 10); Docker drops it by default.
    "--cap-add", "SYS_PTRACE",
    // systemd halts cleanly on SIGRTMIN+3; on docker's default SIGTERM it would just
    // re-execute itself and `docker stop` would wait out its 10 s before killing.
    "--stop-signal", "SIGRTMIN+3",
];

/**
 * Extra `docker run` flags for a host running its own Docker engine (docker-in-docker): an
 * anonymous volume at /var/lib/docker so the inner overlay2 is not on overlay (dockerd's
 * iptables/bridge use the NET_ADMIN every host has). --privileged and --cap-add ALL fail here
 * ("unable to apply caps").
 */
export const DOCKER_ENGINE_FLAGS: readonly string[] = ["-v", "/var/lib/docker"];

/** Waits until systemd reports running/degraded and sshd answers on the published port; throws with what it saw. */
export async function waitReady(container: string, port: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let state = "";
    while (Date.now() < deadline) {
        const res = await docker(["exec", container, "systemctl", "is-system-running"], { timeoutMs: 15000 });
        state = res.stdout.trim();
        if (state === "running" || state === "degraded") break;
        await sleep(200);
    }
    if (state !== "running" && state !== "degraded") {
        const failed = await docker(["exec", container, "systemctl", "--failed", "--no-legend"]).catch(() => undefined);
        throw new Error(`test host ${container} did not boot within ${timeoutMs} ms (systemd state "${state}"; failed units: ${failed?.stdout.trim() || "none"})`);
    }
    while (Date.now() < deadline) {
        if (await sshBanner(port, 2000)) return;
        await sleep(200);
    }
    throw new Error(`test host ${container}: sshd did not answer on 127.0.0.1:${port} within ${timeoutMs} ms`);
}

/** Polls `docker info` inside the container until its own engine answers; throws with the last error and the engine's journal. */
export async function waitEngine(container: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = "";
    while (Date.now() < deadline) {
        const res = await docker(["exec", container, "docker", "info", "--format", "{{.ServerVersion}}"], { timeoutMs: 15000 });
        if (res.code === 0) return;
        last = (res.stderr || res.stdout).trim();
        await sleep(200);
    }
    const journal = await docker(["exec", container, "journalctl", "-u", "containerd", "-u", "docker", "-n", "20", "--no-pager"]).catch(() => undefined);
    throw new Error(`test host ${container}: its docker engine did not answer within ${timeoutMs} ms (last: ${last}); journal:\n${journal?.stdout.trim() ?? ""}`);
}
