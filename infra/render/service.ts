import * as path from "path";
import { HostLayout } from "./layout";
import { renderLocked } from "./lock";
import { firewallTable, servicePortRulesOf } from "./firewall";
import { q } from "./shell";

const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64");

/** Host scripts of the systemd unit and its env file: apply, read, delete. */

/** What a ServiceUnit installs; unit texts are inputs shown whole in preview, so a change reads as a text diff. */
export interface ServiceFiles {
    /** Unit name without `.service`. */
    readonly service: string;
    /** Unix user the app instances run as (created if missing). */
    readonly user: string;
    /** `<service>@.service`, the app instance template. */
    readonly unitText: string;
    /** `<service>.service`, the umbrella the runbook's systemctl commands act on. */
    readonly serviceUnitText: string;
    /** `<service>-proxy.service`. */
    readonly proxyUnitText: string;
    /** `<service>-failover.service`: the agent's failover watch (infra/render/unit.ts renderFailoverUnit). */
    readonly failoverUnitText: string;
    /** `<service>-firewall.service`: loads the instance firewall (infra/render/firewall.ts). */
    readonly firewallUnitText: string;
    /** `/etc/<service>/firewall.nft`: the instance ports answer on loopback only. */
    readonly firewallRules: string;
    /** `/etc/<service>/agent.json`: where the agent's service lives, as data (agentConfigText). */
    readonly agentConfigText: string;
    /** `/etc/logrotate.d/<service>`: app.log and deploy.log rotation. */
    readonly logrotateText: string;
    /** Who applies (the lock's owner line). */
    readonly who: string;
}

/** The files ServiceUnit owns, with their modes: unit texts are shown whole in preview. */
function files(l: HostLayout, s: ServiceFiles): Array<[string, string, string]> {
    return [
        [l.instanceUnitFile, s.unitText, "0644"],
        [l.unitFile, s.serviceUnitText, "0644"],
        [l.proxyUnitFile, s.proxyUnitText, "0644"],
        [l.failoverUnitFile, s.failoverUnitText, "0644"],
        [l.firewallUnitFile, s.firewallUnitText, "0644"],
        [l.firewallRules, s.firewallRules, "0644"],
        [l.agentConfig, s.agentConfigText, "0600"],
        [l.logrotateFile, s.logrotateText, "0644"],
    ];
}

/** How the apply gets the agent: an uploaded binary (its sha256 checked again on the host) to install, or the one already installed. */
export type AgentInstall = { readonly upload: string; readonly sha256: string } | { readonly installed: string };

/** The agent's configuration file (agent.json): where its service lives, and how instances run. */
export function renderAgentConfig(baseDir: string, runtime: "process" | "docker"): string {
    return `${JSON.stringify({ v: 1, baseDir, runtime })}\n`;
}

/**
 * Under the host lock: install HAProxy and nftables when missing, check that the kernel takes
 * the instance firewall (before anything is written: a host that cannot hold the instances on
 * loopback is refused whole), create the service user and directories, write the units, the
 * host program and (from stdin, so secrets never appear in a command line) the env file with
 * mode 0600, then daemon-reload, enable, and load the firewall (start, or an atomic reload).
 * Each file is written to a temp name and renamed. Running instances keep the unit and
 * env they started with; the next activation starts one with these.
 */
export function renderServiceApply(l: HostLayout, s: ServiceFiles, systemd: boolean, agent: AgentInstall, sshUser = "root"): string {
    // Under a temp root (tests) the user is not created and files keep the caller's owner.
    const owner = systemd ? `-o "$user" -g "$user" ` : "";
    const binary = "upload" in agent ? q(agent.upload) : q(l.hostProgram);
    return [
        ...("upload" in agent
            ? [
                  `upload=${q(agent.upload)}`,
                  `trap 'rm -f "$upload"' EXIT`,
                  `if [ "$(sha256sum < "$upload" | cut -d' ' -f1)" != ${q(agent.sha256)} ]; then echo "the uploaded host agent is not the one built (sha256 ${agent.sha256}): nothing was changed" >&2; exit 1; fi`,
                  `chmod 0700 "$upload"`,
              ]
            : []),
        // Before the lock (which lives in baseDir): root writes nothing under a baseDir that anyone but root could have made or can write.
        ...(systemd
            ? [
                  `${binary} trust-check ${q(path.posix.dirname(l.lockFile))} || exit 1`,
                  // A service name or user that is someone else's (a system unit, a command on root's PATH, a system account, the SSH user, another stack's user).
                  `mark=$(${binary} preflight --service ${q(s.service)} --user ${q(s.user)} --ssh-user ${q(sshUser)} --base-dir ${q(path.posix.dirname(l.lockFile))}) || exit 1`,
              ]
            : []),
        renderLocked(l, s.service, s.who),
        `user=${q(s.user)}`,
        ...(systemd
            ? [
                  `if ! command -v haproxy >/dev/null 2>&1; then`,
                  `  DEBIAN_FRONTEND=noninteractive apt-get install -y -q haproxy >/dev/null 2>&1 || { echo "haproxy is missing and apt-get install haproxy failed: install it on the host" >&2; exit 1; }`,
                  `fi`,
                  `if ! command -v nft >/dev/null 2>&1; then`,
                  `  DEBIAN_FRONTEND=noninteractive apt-get install -y -q nftables >/dev/null 2>&1 || { echo "nft is missing and apt-get install nftables failed: install it on the host" >&2; exit 1; }`,
                  `fi`,
                  // nft -c runs the whole transaction in the kernel and rolls it back: nothing changes yet.
                  `if ! out=$(printf %s ${q(b64(s.firewallRules))} | base64 -d | nft -c -f - 2>&1); then`,
                  `  echo "the kernel refused the instance firewall (nftables table ${firewallTable(s.service)}, which keeps the app instance ports on loopback): $(printf '%s' "$out" | tr '\\n' ' ' | cut -c1-300)- nothing was changed. Root must be able to load nftables rules (CAP_NET_ADMIN; a container host needs --cap-add NET_ADMIN)." >&2`,
                  `  exit 1`,
                  `fi`,
                  // Marked as the stack's own, so a later apply (and another stack's) can tell it from an account it did not create.
                  `if ! id -u "$user" >/dev/null 2>&1; then useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --comment ${q(`CompliNist service user (${s.service})`)} "$user" >/dev/null; fi`,
                  `if [ "$mark" = mark-user ]; then usermod --comment ${q(`CompliNist service user (${s.service})`)} "$user"; fi`,
              ]
            : [`: "$user"`]),
        `install -d -m 0755 ${q(l.baseDir)} ${q(l.releasesDir)} ${q(l.instancesDir)} ${q(path.posix.dirname(l.unitFile))} ${q(`${l.unitFile}.wants`)} ${q(path.posix.dirname(l.hostProgram))} ${q(path.posix.dirname(l.logrotateFile))}`,
        `install -d -m 0700 ${q(l.activationsDir)}`,
        // The app's own writable place; root never writes inside it (the log directory is root's: renderLogFiles).
        `install -d -m 0750 ${owner}${q(l.sharedDir)}`,
        // Traversable, not listable: the proxy (user haproxy) reads haproxy.cfg; everything else in it is 0600.
        `install -d -m 0711 ${q(l.envDir)}`,
        `umask 077`,
        `tmp_env=${q(l.envFile)}.tmp.$$`,
        `cat > "$tmp_env"`,
        `chmod 0600 "$tmp_env"`,
        `mv -f "$tmp_env" ${q(l.envFile)}`,
        ...files(l, s).flatMap(([file, text, mode]) => [
            `printf %s ${q(b64(text))} | base64 -d > ${q(file)}.tmp.$$`,
            `chmod ${mode} ${q(file)}.tmp.$$`,
            `mv -f ${q(file)}.tmp.$$ ${q(file)}`,
        ]),
        ...("upload" in agent ? [`chmod 0755 "$upload"`, `mv -f "$upload" ${q(l.hostProgram)}`, `trap - EXIT`] : []),
        ...(systemd
            ? [
                  `systemctl daemon-reload`,
                  `if ! out=$(systemctl enable ${q(`${s.service}.service`)} 2>&1); then echo "systemctl enable ${s.service}.service failed: $out" >&2; exit 1; fi`,
                  // The failover watch runs the agent just installed, with the service; the next activation starts it with the umbrella otherwise.
                  `if systemctl is-active --quiet ${q(`${s.service}.service`)}; then systemctl restart ${q(`${s.service}-failover.service`)} || { echo "starting ${s.service}-failover.service failed: $(journalctl -u ${q(`${s.service}-failover.service`)} -n 3 --no-pager -o cat 2>/dev/null | tr '\\n' ' ')" >&2; exit 1; }; fi`,
                  // A start, never a restart, when inactive: the instances keep running either way.
                  `fw=${q(`${s.service}-firewall.service`)}`,
                  `if ! out=$(systemctl enable "$fw" 2>&1 && if systemctl is-active --quiet "$fw"; then systemctl reload "$fw" 2>&1; else systemctl start "$fw" 2>&1; fi); then`,
                  `  echo "loading the instance firewall ($fw) failed: $out $(journalctl -u "$fw" -n 3 --no-pager -o cat 2>/dev/null | tr '\\n' ' ')" >&2`,
                  `  exit 1`,
                  `fi`,
                  // A proxy started before its unit loaded the service-port rules gets them now, not at its next restart.
                  ...portRules(s),
              ]
            : []),
        `step ${q(`service ${s.service}: units, env file and host program applied`)}`,
        `echo "applied=true"`,
        "",
    ].join("\n");
}

function portRules(s: ServiceFiles): string[] {
    const rules = servicePortRulesOf(s.proxyUnitText);
    if (rules === undefined) return [];
    return [
        `if systemctl is-active --quiet ${q(`${s.service}-proxy.service`)} && ! out=$(nft ${q(rules)} 2>&1); then`,
        `  echo "loading the service port's rules (only the proxy answers on it) failed: $(printf '%s' "$out" | tr '\\n' ' ' | cut -c1-300)" >&2`,
        `  exit 1`,
        `fi`,
    ];
}

/**
 * The Read of a ServiceUnit: every file it owns (base64), the env file hash and mode, enablement,
 * and `firewall`: `loaded` when the live table is exactly what `rules` (the rules last applied;
 * without them the host's rules file, whose text the read compares whole beside) loads to — compared in a scratch network namespace, so reading changes nothing — and its unit
 * is enabled for boot; otherwise what is wrong.
 */
export function renderServiceRead(l: HostLayout, service: string, systemd: boolean, rules?: string): string {
    const read = (key: string, file: string) => `if [ -f ${q(file)} ]; then echo "${key}=$(base64 -w0 < ${q(file)})"; else echo "${key}="; fi`;
    const table = firewallTable(service);
    return [
        read("unit", l.instanceUnitFile),
        read("serviceUnit", l.unitFile),
        read("proxyUnit", l.proxyUnitFile),
        read("failoverUnit", l.failoverUnitFile),
        read("firewallUnit", l.firewallUnitFile),
        read("firewallRules", l.firewallRules),
        read("agentConfig", l.agentConfig),
        `echo "arch=$(uname -m)"`,
        `if [ -f ${q(l.hostProgram)} ]; then echo "agentSha256=$(sha256sum < ${q(l.hostProgram)} | cut -d' ' -f1)"; else echo "agentSha256="; fi`,
        read("logrotate", l.logrotateFile),
        `if [ -f ${q(l.envFile)} ]; then echo "envSha256=$(sha256sum < ${q(l.envFile)} | cut -d' ' -f1)"; echo "envMode=$(stat -c %a ${q(l.envFile)})"; else echo "envSha256="; echo "envMode="; fi`,
        systemd ? `echo "enabled=$(systemctl is-enabled ${q(`${service}.service`)} 2>/dev/null || true)"` : `echo "enabled=enabled"`,
        ...(systemd
            ? [
                  `live=$(nft -s list table ${table} 2>/dev/null || true)`,
                  rules === undefined
                      ? `want=$(unshare --net sh -c 'nft -f - && nft -s list table ${table}' 2>/dev/null < ${q(l.firewallRules)} || true)`
                      : `want=$(printf %s ${q(b64(rules))} | base64 -d | unshare --net sh -c 'nft -f - && nft -s list table ${table}' 2>/dev/null || true)`,
                  `if [ -z "$live" ]; then echo "firewall=missing: no table ${table}"`,
                  `elif [ "$live" != "$want" ]; then echo "firewall=changed: table ${table} is not the rules the stack applied"`,
                  `elif [ "$(systemctl is-enabled ${q(`${service}-firewall.service`)} 2>/dev/null || true)" != enabled ]; then echo "firewall=not loaded at boot: ${service}-firewall.service is not enabled"`,
                  `else echo "firewall=loaded"; fi`,
              ]
            : [`echo "firewall=loaded"`]),
        "",
    ].join("\n");
}

/**
 * Under the host lock of the layout being removed (its baseDir: the one an activation or an
 * emergency rollback there takes), so the service never stops in the middle of one.
 */
export function renderServiceDelete(l: HostLayout, service: string, systemd: boolean, who: string): string {
    return [
        renderLocked(l, service, who, false),
        ...(systemd
            ? [
                  `systemctl disable --now ${q(`${service}.service`)} >/dev/null 2>&1 || true`,
                  // After the instances stopped with the umbrella: its ExecStop deletes the table.
                  `systemctl disable --now ${q(`${service}-firewall.service`)} >/dev/null 2>&1 || true`,
                  ...[firewallTable(service), `${firewallTable(service)}-proxy`].map(
                      (table) => `if command -v nft >/dev/null 2>&1 && nft list table ${table} >/dev/null 2>&1; then nft delete table ${table}; fi`,
                  ),
              ]
            : []),
        `rm -f ${q(l.unitFile)} ${q(l.instanceUnitFile)} ${q(l.proxyUnitFile)} ${q(l.failoverUnitFile)} ${q(l.firewallUnitFile)} ${q(l.firewallRules)} ${q(l.hostProgram)} ${q(l.logrotateFile)} ${q(l.envFile)} ${q(l.deployConfig)} ${q(l.deploySettings)} ${q(l.proxyState)} ${q(l.agentConfig)} ${q(l.proxyConfig)}`,
        `rm -rf ${q(`${path.posix.dirname(l.unitFile)}/${service}.service.wants`)}`,
        // Each instance's copy of the env file (instances.sh), then the directory if nothing else is in it.
        `rm -f -- ${q(l.envDir)}/instance-*.env`,
        `rmdir -- ${q(l.envDir)} 2>/dev/null || true`,
        ...(systemd ? [`systemctl daemon-reload`] : []),
        `step ${q(`service ${service}: stopped and removed`)}`,
        `echo "deleted=true"`,
        "",
    ].join("\n");
}
