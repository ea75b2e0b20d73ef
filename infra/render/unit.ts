import { hostLayout } from "./layout";
import { systemdQuote } from "./shell";

export interface UnitSpec {
    readonly service: string;
    readonly user: string;
    readonly baseDir: string;
    /** Shell command run inside `<baseDir>/current`, e.g. `bin/start`. */
    readonly command: string;
}

/**
 * The systemd unit. Hardened so `systemd-analyze security` scores it OK
 * (≤ 2.0): own user, read-only system, no capabilities, a syscall allow-list.
 * `PrivateUsers=` is left out on purpose: it needs user namespaces, which the
 * container-based test hosts lack (the service fails with 217/USER).
 * `MemoryDenyWriteExecute=` is left out: it breaks JIT runtimes the app may use.
 */
export function renderUnit(spec: UnitSpec): string {
    const l = hostLayout(spec.baseDir, spec.service);
    return [
        "# Managed by the CompliNist Pulumi stack. Hand edits are reported by `pulumi refresh` and overwritten by `pulumi up`.",
        "[Unit]",
        `Description=CompliNist (${spec.service})`,
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        `User=${spec.user}`,
        `Group=${spec.user}`,
        `WorkingDirectory=${l.current}`,
        `EnvironmentFile=${l.envFile}`,
        `ExecStart=/bin/sh -c ${systemdQuote(`exec ${spec.command}`)}`,
        "Restart=on-failure",
        "RestartSec=2",
        "TimeoutStopSec=20",
        `StandardOutput=append:${l.logFile}`,
        `StandardError=append:${l.logFile}`,
        "",
        "# Hardening",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        `ReadWritePaths=${l.logDir} ${l.sharedDir}`,
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
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "SystemCallArchitectures=native",
        "SystemCallFilter=@system-service",
        "SystemCallFilter=~@privileged @resources",
        "SystemCallErrorNumber=EPERM",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ].join("\n");
}

/** The env file: PORT, the operator's environment, then generated secrets. Values are single-line (schema). */
export function renderEnvFile(vars: Readonly<Record<string, string>>): string {
    const lines = ["# Managed by the CompliNist Pulumi stack (mode 0600)."];
    for (const [k, v] of Object.entries(vars)) {
        if (!/^[A-Z_][A-Z0-9_]*$/.test(k)) throw new Error(`environment name '${k}' must be UPPER_SNAKE_CASE`);
        if (/[\n\r\0]/.test(v)) throw new Error(`environment value of ${k} must be a single line`);
        // EnvironmentFile= expands neither % nor $, only backslash escapes inside double quotes.
        lines.push(`${k}="${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`);
    }
    return lines.join("\n") + "\n";
}
