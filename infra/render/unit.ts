import { firewallRequirement, servicePortRules } from "./firewall";
import type { ContainerLimits } from "../../stacks/containerSchema";
import { hostLayout } from "./layout";
import { systemdQuote } from "./shell";

export interface UnitSpec {
    readonly service: string;
    readonly user: string;
    readonly baseDir: string;
    /** Shell command run inside the instance's release directory, e.g. `bin/start`. */
    readonly command: string;
}

/** The sandbox every unit the stack writes shares (scored by `systemd-analyze security`). */
function hardening(readWritePaths: string, addressFamilies: string): string[] {
    return [
        "# Hardening",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        ...(readWritePaths ? [`ReadWritePaths=${readWritePaths}`] : []),
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "DevicePolicy=closed",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "ProtectProc=invisible",
        "ProcSubset=pid",
        "RestrictNamespaces=yes",
        "RestrictRealtime=yes",
        "RestrictSUIDSGID=yes",
        "LockPersonality=yes",
        "RemoveIPC=yes",
        "KeyringMode=private",
        "UMask=0027",
        "CapabilityBoundingSet=",
        "AmbientCapabilities=",
        `RestrictAddressFamilies=${addressFamilies}`,
        "SystemCallArchitectures=native",
        "SystemCallFilter=@system-service",
        "SystemCallFilter=~@privileged @resources",
        "SystemCallErrorNumber=EPERM",
    ];
}

/**
 * app.log's bound (issue 29, finding 8): the writer (`<host program> log-writer`, the service
 * user's process, never root's) empties the file in place when it would pass this, so a flood
 * between two of logrotate's daily runs cannot fill the disk, nor root's reserved blocks.
 */
export const APP_LOG_BOUND = "64m";

const MANAGED = "# Managed by the CompliNist Pulumi stack. Hand edits are reported by `pulumi refresh` and overwritten by `pulumi up`.";

/**
 * One app instance, `<service>@<port>.service`: the release `instances/<port>` links to,
 * listening on the private loopback port PORT=<port> (BIND=127.0.0.1; the instance firewall,
 * infra/render/firewall.ts, drops what reaches the port on any other address), with the env it
 * was started with.
 * Hardened so `systemd-analyze security` scores it OK (≤ 2.0). `PrivateUsers=` is left
 * out on purpose: it needs user namespaces, which the container-based test hosts lack
 * (217/USER). `MemoryDenyWriteExecute=` is left out: it breaks JIT runtimes the app may use.
 */
export function renderInstanceUnit(spec: UnitSpec): string {
    const l = hostLayout(spec.baseDir, spec.service);
    const fw = firewallRequirement(spec.service);
    return [
        MANAGED,
        "[Unit]",
        `Description=CompliNist (${spec.service}) instance on 127.0.0.1:%i`,
        "After=network-online.target",
        "Wants=network-online.target",
        ...fw.unit,
        `PartOf=${spec.service}.service`,
        "",
        "[Service]",
        "Type=simple",
        `User=${spec.user}`,
        `Group=${spec.user}`,
        `WorkingDirectory=${l.instancesDir}/%i`,
        // Set before the env file is read, and the schema refuses PORT and BIND in service.environment.
        // BIND is the address the app is asked to listen on; the firewall holds it to loopback whatever it binds.
        "Environment=PORT=%i",
        "Environment=BIND=127.0.0.1",
        ...fw.service,
        `EnvironmentFile=${l.envDir}/instance-%i.env`,
        // The host program (as the service user: User=) starts the bounded log writer on a pipe, then
        // execs the command: the app is still the main process, and its output reaches app.log
        // only through the writer.
        `ExecStart=${l.hostProgram.replace(/%/g, "%%")} log-pipe ${APP_LOG_BOUND} /bin/sh -c ${systemdQuote(`exec ${spec.command}`)}`,
        "Restart=on-failure",
        "RestartSec=2",
        "TimeoutStopSec=20",
        // systemd (root) opens app.log and hands it to the writer; the app itself may write only in
        // shared/, never in the log directory, so it cannot plant a link there for root to follow
        // (privilege rule).
        `StandardOutput=append:${l.logFile}`,
        `StandardError=append:${l.logFile}`,
        "",
        ...hardening(l.sharedDir, "AF_INET AF_INET6 AF_UNIX"),
        "",
    ].join("\n");
}

/**
 * Container mode's app instance, `<service>@<port>.service`: the same slot as release mode's
 * (started, gated, switched and drained by the same activation), running the image the release
 * `instances/<port>` links to pins by ID, as the container `<service>-<port>` published on
 * 127.0.0.1:<port> (`<host program> container-run`). The unit runs the docker CLI as root (the
 * engine's socket is root's); the app runs as the service user's uid:gid (resolved on the host
 * at each start, never the image's USER), with no capabilities, a read-only root and `limits`.
 * User and limits are arguments of ExecStart, so a change of either changes this text: the
 * service revision, hence a new container through the gate (and a text diff in preview). The CLI
 * stays attached, so systemd sees the container's life; its output reaches app.log only through
 * the bounded log writer, which container-run starts as the service user (root's docker CLI never
 * writes app.log: it could take root's reserved blocks). A stop by hand (`docker stop`:
 * SIGINT/SIGTERM exit) stays stopped, as Docker's `unless-stopped` would; a crash restarts it.
 */
export function renderContainerInstanceUnit(spec: Pick<UnitSpec, "service" | "baseDir" | "user"> & { readonly limits: ContainerLimits }): string {
    const l = hostLayout(spec.baseDir, spec.service);
    const name = `${spec.service}-%i`;
    const fw = firewallRequirement(spec.service);
    const m = spec.limits;
    // Every value is schema-checked (a user name, digits and one unit letter): nothing systemd would expand.
    const run = [`--user ${spec.user}`, `--memory ${m.memory}`, `--pids ${m.pids}`, `--tmp-size ${m.tmpSize}`, `--log-max-size ${m.logMaxSize}`, `--log-max-files ${m.logMaxFiles}`, `--app-log-bound ${APP_LOG_BOUND}`];
    return [
        MANAGED,
        "[Unit]",
        `Description=CompliNist (${spec.service}) container ${name} on 127.0.0.1:%i`,
        "After=docker.service network-online.target",
        "Requires=docker.service",
        "Wants=network-online.target",
        ...fw.unit,
        `PartOf=${spec.service}.service`,
        "",
        "[Service]",
        "Type=simple",
        ...fw.service,
        `ExecStartPre=-/usr/bin/docker rm -f ${name}`,
        `ExecStart=${l.hostProgram.replace(/%/g, "%%")} container-run %i ${run.join(" ")}`,
        // Also run after the container exited on its own (then it is gone: --rm): its failure is no failure of the unit.
        `ExecStop=-/usr/bin/docker stop --time 20 ${name}`,
        `ExecStopPost=-/usr/bin/docker rm -f ${name}`,
        "Restart=on-failure",
        "RestartSec=2",
        "SuccessExitStatus=130 143",
        "TimeoutStopSec=30",
        `StandardOutput=append:${l.logFile}`,
        `StandardError=append:${l.logFile}`,
        "",
        "# Hardening of the docker CLI (the container has its own: service user, no capabilities, no-new-privileges, read-only root, limits)",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=read-only",
        "PrivateTmp=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectControlGroups=yes",
        "RestrictAddressFamilies=AF_UNIX",
        "LockPersonality=yes",
        "RestrictRealtime=yes",
        "UMask=0077",
        "",
    ].join("\n");
}

/**
 * `<service>.service`: what the runbook's `systemctl stop|start|status <service>` acts on.
 * Starting it starts the proxy and the instances the activation marked wanted; the
 * instances and the proxy are PartOf= it, so stopping it stops them.
 * Its start first runs `<host program> check-current` (unsandboxed: `+`, it reads root's
 * files): after the runbook's hand rollback (`ln -sfn <previous> current && systemctl
 * restart <service>`) the start fails, naming `<service> rollback`, instead of exiting 0
 * while the proxy keeps serving the release it routes to.
 */
export function renderServiceUnit(spec: Pick<UnitSpec, "service">): string {
    const hostProgram = hostLayout("/", spec.service).hostProgram;
    return [
        MANAGED,
        "[Unit]",
        `Description=CompliNist (${spec.service}): the proxy on the service port and the app instances behind it`,
        `Wants=${spec.service}-proxy.service ${spec.service}-failover.service`,
        `After=${spec.service}-proxy.service`,
        "",
        "[Service]",
        "Type=oneshot",
        "RemainAfterExit=yes",
        `ExecStartPre=+${hostProgram} check-current`,
        "ExecStart=/bin/true",
        "DynamicUser=yes",
        "PrivateNetwork=yes",
        "IPAddressDeny=any",
        ...hardening("", "AF_UNIX"),
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ].join("\n");
}

/**
 * `<service>-proxy.service`: HAProxy in master-worker mode on the service port, reloaded
 * (not restarted) on every switch so the listening socket never closes. Runs as the
 * `haproxy` user from Debian's package; binding a port below 1024 is the one capability
 * it may get.
 */
export function renderProxyUnit(spec: Pick<UnitSpec, "service" | "baseDir"> & { readonly port: number }): string {
    const l = hostLayout(spec.baseDir, spec.service);
    const lowPort = spec.port < 1024;
    return [
        MANAGED,
        "[Unit]",
        `Description=CompliNist (${spec.service}) proxy on port ${spec.port}`,
        "After=network-online.target",
        "Wants=network-online.target",
        `PartOf=${spec.service}.service`,
        "",
        "[Service]",
        "Type=notify",
        "User=haproxy",
        "Group=haproxy",
        `RuntimeDirectory=${spec.service}-proxy`,
        // Only the proxy and root (the host program, the status tool) use the stats socket in it.
        "RuntimeDirectoryMode=0750",
        "RuntimeDirectoryPreserve=restart",
        `ExecStartPre=/usr/sbin/haproxy -c -q -f ${l.proxyConfig}`,
        // As root (+), before the bind: nobody but the proxy answers on the service port (firewall.ts).
        `ExecStartPre=+/usr/sbin/nft "${servicePortRules(spec)}"`,
        `ExecStart=/usr/sbin/haproxy -Ws -f ${l.proxyConfig} -p ${l.proxyRunDir}/haproxy.pid`,
        `ExecReload=/usr/sbin/haproxy -c -q -f ${l.proxyConfig}`,
        "ExecReload=/bin/kill -USR2 $MAINPID",
        "KillMode=mixed",
        "Restart=always",
        "RestartSec=1",
        "",
        ...hardening("", "AF_INET AF_INET6 AF_UNIX").map((line) =>
            lowPort && line === "CapabilityBoundingSet=" ? "CapabilityBoundingSet=CAP_NET_BIND_SERVICE" : lowPort && line === "AmbientCapabilities=" ? "AmbientCapabilities=CAP_NET_BIND_SERVICE" : line,
        ),
        "",
    ].join("\n");
}

/**
 * `<service>-failover.service`: the host agent's failover watch (`<host program> failover-watch`),
 * started with the service (the umbrella Wants= it) and stopped with it. Every second it probes
 * the live instance; when it fails its health for the last deploy's `failover.afterSeconds`, it
 * switches to the warm standby under the host lock, as the emergency rollback does. Root, like
 * the activation's transient unit: it takes the lock, writes the proxy config and revisions.log,
 * and starts and stops instance units.
 */
export function renderFailoverUnit(spec: Pick<UnitSpec, "service">): string {
    const hostProgram = hostLayout("/", spec.service).hostProgram;
    return [
        MANAGED,
        "[Unit]",
        `Description=CompliNist (${spec.service}) failover to the warm standby when the live instance fails its health`,
        `After=${spec.service}-proxy.service`,
        `PartOf=${spec.service}.service`,
        "",
        "[Service]",
        `ExecStart=${hostProgram} failover-watch`,
        "Restart=always",
        "RestartSec=2",
        "",
    ].join("\n");
}

/** An env file's lines, after the names and values are checked: `line` writes one entry in the reader's form. */
function envFile(header: string, vars: Readonly<Record<string, string>>, line: (k: string, v: string) => string): string {
    const lines = [header];
    for (const [k, v] of Object.entries(vars)) {
        if (!/^[A-Z_][A-Z0-9_]*$/.test(k)) throw new Error(`environment name '${k}' must be UPPER_SNAKE_CASE`);
        if (/[\n\r\0]/.test(v)) throw new Error(`environment value of ${k} must be a single line`);
        lines.push(line(k, v));
    }
    return lines.join("\n") + "\n";
}

/** The env file: PORT, the operator's environment, then generated secrets. Values are single-line (schema). */
export function renderEnvFile(vars: Readonly<Record<string, string>>): string {
    // EnvironmentFile= expands neither % nor $, only backslash escapes inside double quotes.
    return envFile("# Managed by the CompliNist Pulumi stack (mode 0600).", vars, (k, v) => `${k}="${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`);
}

/**
 * Container mode's env file, in `docker run --env-file` form: `KEY=value` taken literally (no
 * quotes, no escapes). PORT and COMPLINIST_VERSION are set per container by the host program.
 */
export function renderDockerEnvFile(vars: Readonly<Record<string, string>>): string {
    return envFile("# Managed by the CompliNist Pulumi stack (mode 0600): docker run --env-file.", vars, (k, v) => `${k}=${v}`);
}
