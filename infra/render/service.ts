import * as path from "path";
import { HostLayout } from "./layout";
import { q } from "./shell";

/** Host scripts of the systemd unit and its env file: apply, read, delete. */

export interface ServiceFiles {
    readonly service: string;
    readonly user: string;
    readonly unitText: string;
}

/**
 * Create the service user and directories, write the unit and (from stdin, so
 * secrets never appear in a command line) the env file with mode 0600, then
 * daemon-reload and enable. Each file is written to a temp name and renamed.
 */
export function renderServiceApply(l: HostLayout, s: ServiceFiles, systemd: boolean): string {
    const unitB64 = Buffer.from(s.unitText, "utf8").toString("base64");
    // Under a temp root (tests) the user is not created and files keep the caller's owner.
    const owner = systemd ? `-o "$user" -g "$user" ` : "";
    return [
        `user=${q(s.user)}`,
        ...(systemd
            ? [`if ! id -u "$user" >/dev/null 2>&1; then useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$user" >/dev/null; fi`]
            : [`: "$user"`]),
        `install -d -m 0755 ${q(l.baseDir)} ${q(l.releasesDir)} ${q(path.posix.dirname(l.unitFile))}`,
        `install -d -m 0750 ${owner}${q(l.sharedDir)} ${q(l.logDir)}`,
        `install -d -m 0700 ${q(l.envDir)}`,
        `touch ${q(l.logFile)} && chmod 0640 ${q(l.logFile)}`,
        ...(systemd ? [`chown "$user:$user" ${q(l.logFile)}`] : []),
        `umask 077`,
        `cat > ${q(l.envFile + ".tmp")}`,
        `chmod 0600 ${q(l.envFile + ".tmp")}`,
        `mv -f ${q(l.envFile + ".tmp")} ${q(l.envFile)}`,
        `printf %s ${q(unitB64)} | base64 -d > ${q(l.unitFile + ".tmp")}`,
        `chmod 0644 ${q(l.unitFile + ".tmp")}`,
        `mv -f ${q(l.unitFile + ".tmp")} ${q(l.unitFile)}`,
        ...(systemd ? [`systemctl daemon-reload`, `systemctl enable ${q(s.service)} >/dev/null 2>&1`] : []),
        `echo "applied=true"`,
        "",
    ].join("\n");
}

/** Report the unit text (base64), env file hash and mode, and enablement, as the host has them. */
export function renderServiceRead(l: HostLayout, service: string, systemd: boolean): string {
    return [
        `if [ -f ${q(l.unitFile)} ]; then echo "unit=$(base64 -w0 < ${q(l.unitFile)})"; else echo "unit="; fi`,
        `if [ -f ${q(l.envFile)} ]; then echo "envSha256=$(sha256sum < ${q(l.envFile)} | cut -d' ' -f1)"; echo "envMode=$(stat -c %a ${q(l.envFile)})"; else echo "envSha256="; echo "envMode="; fi`,
        systemd ? `echo "enabled=$(systemctl is-enabled ${q(service)} 2>/dev/null || true)"` : `echo "enabled=enabled"`,
        "",
    ].join("\n");
}

export function renderServiceDelete(l: HostLayout, service: string, systemd: boolean): string {
    return [
        ...(systemd ? [`systemctl disable --now ${q(service)} >/dev/null 2>&1 || true`] : []),
        `rm -f ${q(l.unitFile)} ${q(l.envFile)}`,
        ...(systemd ? [`systemctl daemon-reload`] : []),
        `echo "deleted=true"`,
        "",
    ].join("\n");
}
