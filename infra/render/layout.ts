import * as path from "path";

/**
 * Where everything lives on a host, the contract every provider and host script shares:
 *
 *   <baseDir>/releases/<version>/       one extracted artifact per version, never modified after
 *   <baseDir>/current -> releases/<v>   the live release, switched atomically
 *   <baseDir>/shared/                   persistent data linked into each release
 *   <baseDir>/revisions.log             append-only record of every deploy
 *   /etc/<service>/<service>.env        secrets, mode 0600
 *   /var/log/<service>/app.log
 *
 * Derived from baseDir and the service name alone, so two deploys can never disagree on it.
 */
export interface HostLayout {
    readonly baseDir: string;
    readonly releasesDir: string;
    readonly current: string;
    readonly sharedDir: string;
    readonly revisionsLog: string;
    readonly lockFile: string;
    readonly unitFile: string;
    readonly envDir: string;
    readonly envFile: string;
    readonly logDir: string;
    readonly logFile: string;
}

/**
 * `root` prefixes every path (the local transport's temp root in tests); the
 * unit file is always rendered from the un-rooted layout, as the host sees it.
 */
export function hostLayout(baseDir: string, service: string, root = ""): HostLayout {
    const r = (p: string) => root + p;
    return {
        baseDir: r(baseDir),
        releasesDir: r(path.posix.join(baseDir, "releases")),
        current: r(path.posix.join(baseDir, "current")),
        sharedDir: r(path.posix.join(baseDir, "shared")),
        revisionsLog: r(path.posix.join(baseDir, "revisions.log")),
        lockFile: r(path.posix.join(baseDir, ".deploy.lock")),
        unitFile: r(`/etc/systemd/system/${service}.service`),
        envDir: r(`/etc/${service}`),
        envFile: r(`/etc/${service}/${service}.env`),
        logDir: r(`/var/log/${service}`),
        logFile: r(`/var/log/${service}/app.log`),
    };
}

export function releaseDir(layout: HostLayout, version: string): string {
    return path.posix.join(layout.releasesDir, version);
}
