import * as path from "path";

/**
 * Where everything lives on a host, the contract every provider and host script shares
 * (owner:group and mode; README "Host layout" has the same table for operators):
 *
 *   <baseDir>/                           root:root 0755
 *   <baseDir>/releases/<version>/        root:root 0755 (files 0644/0755), one verified artifact per version, never modified after
 *   <baseDir>/current -> releases/<v>    the live release, switched atomically
 *   <baseDir>/shared/                    <user>:<user> 0750, the app's data; root never writes inside it
 *   <baseDir>/revisions.log              root:root 0640, append-only record of every deploy
 *   <baseDir>/.deploy.lock(.owner)       root:root 0640, the host lock and its holder
 *   <baseDir>/instances/<port> -> ../releases/<v>   the release each app instance runs from (+ <port>.rev)
 *   <baseDir>/.activations/              root:root 0700, one settings + result file per host-side activation
 *   /etc/<service>/                      root:root 0711 (the proxy reads haproxy.cfg in it)
 *   /etc/<service>/<service>.env         0600, the staged env; each instance starts from a 0600 copy, instance-<port>.env
 *   /etc/<service>/agent.json            0600, where the agent's service lives (baseDir, runtime): data the agent reads
 *   /etc/<service>/deploy.json           0600, the last successful activation's settings (health, checks, soak, standby), JSON
 *   /etc/<service>/deploy.conf           0600, the same as bash the old host program sourced: read as data by the agent until the first activation replaces it
 *   /etc/<service>/proxy.json            0600, the route the agent last wrote (live, canary): the routing is read from it or the runtime API
 *   /etc/<service>/haproxy.cfg           the local proxy on the service port
 *   /etc/<service>/firewall.nft          0644, the instance ports' loopback-only rules (nftables table inet <service>)
 *   /etc/systemd/system/<service>.service         0644, the umbrella unit: `systemctl stop|start <service>` (+ .wants/ 0755)
 *   /etc/systemd/system/<service>@.service        0644, one app instance per private loopback port
 *   /etc/systemd/system/<service>-proxy.service   0644, HAProxy on the service port
 *   /etc/systemd/system/<service>-firewall.service   0644, loads firewall.nft (boot, reload), deletes the table when stopped
 *   /usr/local/sbin/<service>            0755, the host agent (agent/, Go): activate, rollback, status, releases, state
 *   /etc/logrotate.d/<service>           0644
 *   /var/log/<service>/                  root:root 0750: app.log (opened by systemd for the app), deploy.log, both 0640
 *   /run/<service>-proxy/                haproxy:haproxy 0750 (RuntimeDirectoryMode=)
 *
 * Privilege rule: root never opens, appends to, chmods or chowns a path inside a directory
 * the service user can write (only shared/), and never follows a link there.
 * Derived from baseDir and the service name alone, so two deploys can never disagree on it.
 */
export interface HostLayout {
    /** The prefix in front of every path ("" on a host; a local transport's temp root in tests). */
    readonly root: string;
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
    readonly deployLog: string;
    readonly instancesDir: string;
    readonly activationsDir: string;
    readonly instanceUnitFile: string;
    readonly proxyUnitFile: string;
    /** `<service>-failover.service`: the agent's failover watch. */
    readonly failoverUnitFile: string;
    readonly proxyConfig: string;
    /** The instance firewall's unit and its nftables rules (infra/render/firewall.ts). */
    readonly firewallUnitFile: string;
    readonly firewallRules: string;
    readonly deployConfig: string;
    readonly deploySettings: string;
    readonly proxyState: string;
    readonly agentConfig: string;
    /** The host agent (agent/): the host program at /usr/local/sbin/<service>. */
    readonly hostProgram: string;
    /** Where a new agent binary is uploaded before the service apply installs it (root's directory). */
    readonly agentUpload: string;
    /** The proxy's read-only stats endpoint (HTTP over a unix socket: `curl --unix-socket`). */
    readonly proxyStatsSocket: string;
    readonly proxyRunDir: string;
    /** The logrotate policy for app.log and deploy.log. */
    readonly logrotateFile: string;
}

/**
 * `root` prefixes every path (the local transport's temp root in tests); the
 * unit file is always rendered from the un-rooted layout, as the host sees it.
 */
export function hostLayout(baseDir: string, service: string, root = ""): HostLayout {
    const r = (p: string) => root + p;
    return {
        root,
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
        deployLog: r(`/var/log/${service}/deploy.log`),
        instancesDir: r(path.posix.join(baseDir, "instances")),
        activationsDir: r(path.posix.join(baseDir, ".activations")),
        instanceUnitFile: r(`/etc/systemd/system/${service}@.service`),
        proxyUnitFile: r(`/etc/systemd/system/${service}-proxy.service`),
        failoverUnitFile: r(`/etc/systemd/system/${service}-failover.service`),
        proxyConfig: r(`/etc/${service}/haproxy.cfg`),
        firewallUnitFile: r(`/etc/systemd/system/${service}-firewall.service`),
        firewallRules: r(`/etc/${service}/firewall.nft`),
        deployConfig: r(`/etc/${service}/deploy.conf`),
        deploySettings: r(`/etc/${service}/deploy.json`),
        proxyState: r(`/etc/${service}/proxy.json`),
        agentConfig: r(`/etc/${service}/agent.json`),
        hostProgram: r(`/usr/local/sbin/${service}`),
        agentUpload: r(`/usr/local/sbin/.${service}-agent.upload`),
        proxyStatsSocket: r(`/run/${service}-proxy/stats.sock`),
        proxyRunDir: r(`/run/${service}-proxy`),
        logrotateFile: r(`/etc/logrotate.d/${service}`),
    };
}

export function releaseDir(layout: HostLayout, version: string): string {
    return path.posix.join(layout.releasesDir, version);
}

/**
 * The two private loopback ports app instances run on, behind the proxy on `port`:
 * the live one and the idle/standby one. Fixed offsets, so they are known without state.
 */
export function instancePorts(port: number): readonly [number, number] {
    return [port + 1, port + 2];
}
