import type { HostLayout } from "./layout";

/**
 * The logrotate policy for the service's logs: daily, 14 kept, compressed one rotation late.
 *
 * - app.log is copied and truncated, never renamed: systemd opened it once with `append:`
 *   for the app's lifetime, so a renamed file would keep receiving every line. The writer's
 *   O_APPEND makes it continue at the new end after the truncate (a few lines written during
 *   the copy can be lost: the documented cost of copytruncate).
 * - deploy.log is renamed and re-created: each host operation opens it anew.
 * - `su root root`: the log directory belongs to the service user, and logrotate refuses to
 *   rotate in a directory a non-root user can write unless `su` is set explicitly.
 *
 * Pure: logDir/logFile/deployLog come from the layout as the host sees them (root "").
 */
export function renderLogrotate(layout: Pick<HostLayout, "logFile" | "deployLog">, user: string): string {
    if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(user)) throw new Error(`service user '${user}' is not a Unix user name`);
    for (const f of [layout.logFile, layout.deployLog]) {
        if (!/^\/[A-Za-z0-9/._-]+$/.test(f)) throw new Error(`log path '${f}' must be absolute, of letters, digits and / . _ -`);
    }
    const common = ["    daily", "    rotate 14", "    compress", "    delaycompress", "    missingok", "    notifempty", "    su root root"];
    return [
        "# Managed by the CompliNist Pulumi stack; overwritten on every deploy.",
        `${layout.logFile} {`,
        ...common,
        "    copytruncate",
        "}",
        "",
        `${layout.deployLog} {`,
        ...common,
        `    create 0640 ${user} ${user}`,
        "}",
        "",
    ].join("\n");
}
