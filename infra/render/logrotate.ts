import type { HostLayout } from "./layout";

/**
 * The logrotate policy for the service's logs: daily, 14 kept, compressed one rotation late.
 *
 * - app.log is copied and truncated, never renamed: systemd opened it once with `append:`
 *   for the app's lifetime, so a renamed file would keep receiving every line. The writer's
 *   O_APPEND makes it continue at the new end after the truncate (a few lines written during
 *   the copy can be lost: the documented cost of copytruncate). Daily is no bound on size: the
 *   writer (`<host program> log-writer`, the service user's) keeps app.log within APP_LOG_BOUND
 *   between two runs (infra/render/unit.ts), so each rotated copy is within it too.
 * - deploy.log is renamed and re-created root:root 0640, as every host operation leaves it.
 * - No `su`: the log directory is root's (root:root 0750, the privilege rule), so logrotate
 *   rotates there as root without following anything another user could have placed.
 *
 * Pure: logFile/deployLog come from the layout as the host sees them (root "").
 */
export function renderLogrotate(layout: Pick<HostLayout, "logFile" | "deployLog">): string {
    for (const f of [layout.logFile, layout.deployLog]) {
        if (!/^\/[A-Za-z0-9/._-]+$/.test(f)) throw new Error(`log path '${f}' must be absolute, of letters, digits and / . _ -`);
    }
    const common = ["    daily", "    rotate 14", "    compress", "    delaycompress", "    missingok", "    notifempty"];
    return [
        "# Managed by the CompliNist Pulumi stack; overwritten on every deploy.",
        `${layout.logFile} {`,
        ...common,
        "    copytruncate",
        "}",
        "",
        `${layout.deployLog} {`,
        ...common,
        "    create 0640 root root",
        "}",
        "",
    ].join("\n");
}
