import { hostLayout, instancePorts } from "./layout";

/**
 * The instance firewall: an nftables table of the stack's own, `inet <service>`, that makes the
 * two app instance ports answer on loopback only, whatever address a release binds (the
 * untrusted input rule: a release may bind 0.0.0.0 whatever BIND says). Host-wide rules on the
 * instance ports alone, so the app's own outbound connections (its database, its APIs) are
 * untouched — systemd's IPAddressDeny=/RestrictNetworkInterfaces= would block those too.
 *
 * - input: a packet for an instance port whose destination is not loopback is dropped. Remote
 *   hosts and the host itself (a connection to its own network address arrives on lo with that
 *   address as destination) both go through this hook.
 * - prerouting, at raw priority (before Docker's DNAT): a packet for 127.0.0.0/8 or ::1 on an
 *   instance port that did not arrive on lo is dropped. A neighbour on the segment can route
 *   such a packet to the host, and Docker's DNAT for a port published on 127.0.0.1 forwards it
 *   to the container (moby #45610) before the kernel's martian check would drop it.
 * - forward: a packet for an instance port that the host would forward is dropped. Nothing
 *   legitimate is forwarded to an instance (the proxy and the gate reach it from the host
 *   itself), but Docker accepts forwarded traffic to a published port: a neighbour routing to a
 *   container's bridge address (e.g. 172.17.0.2:5001) would otherwise reach it around the proxy.
 *
 * Loaded by `<service>-firewall.service` (`nft -f`, atomic: the `table {}` + `delete table`
 * idiom replaces the table whole, so a reload is idempotent and never leaves a rule half set).
 */
export function renderFirewallRules(spec: { readonly service: string; readonly port: number }): string {
    const table = firewallTable(spec.service);
    const ports = `{ ${instancePorts(spec.port).join(", ")} }`;
    const match = `meta l4proto { tcp, udp } th dport ${ports}`;
    return [
        `# Managed by the CompliNist Pulumi stack (${spec.service}): the app instance ports answer on loopback only.`,
        `# Loaded by ${spec.service}-firewall.service; see it with: nft list table ${table}`,
        `table ${table} {}`,
        `delete table ${table}`,
        `table ${table} {`,
        "    chain input {",
        "        type filter hook input priority filter - 10; policy accept;",
        `        ${match} ip daddr != 127.0.0.0/8 drop`,
        `        ${match} ip6 daddr != ::1 drop`,
        "    }",
        "    chain prerouting {",
        "        type filter hook prerouting priority raw; policy accept;",
        `        iifname != "lo" ${match} ip daddr 127.0.0.0/8 drop`,
        `        iifname != "lo" ${match} ip6 daddr ::1 drop`,
        "    }",
        "    chain forward {",
        "        type filter hook forward priority filter - 10; policy accept;",
        `        ${match} drop`,
        "    }",
        "}",
        "",
    ].join("\n");
}

/**
 * Only the proxy answers on the service port: packets sent from it by any socket not the
 * `haproxy` user's (the proxy runs as haproxy from its start, so its listeners are haproxy's;
 * preflight never lets the service user be haproxy) are dropped, on both families. A release or
 * any local user that binds the service port — `[::]:port` with IPV6_V6ONLY beside the proxy, or
 * both families while the proxy restarts or at boot — completes no handshake (the SYN-ACK is its
 * listener's packet) and serves nobody. A table of its own, `inet <service>-proxy`, loaded by the
 * proxy unit before it binds (one nft transaction: replaced whole, idempotent) and never unloaded
 * while the stack is installed, so a host that has no proxy yet (its first activation frees the
 * port from a restart-in-place unit) keeps serving until the proxy takes over. Matched by uid, not
 * by cgroup: `socket cgroupv2` resolves the proxy's cgroup to an id when the rule loads, and that
 * id dies with the proxy's next restart.
 */
export function servicePortRules(spec: { readonly service: string; readonly port: number }): string {
    const table = `${firewallTable(spec.service)}-proxy`;
    return (
        `table ${table} {}; delete table ${table}; table ${table} { chain output { type filter hook output priority filter - 10; policy accept; ` +
        `meta l4proto { tcp, udp } th sport ${spec.port} meta skuid != haproxy drop; }; }`
    );
}

/** The service-port rules a rendered proxy unit loads (servicePortRules), for the service apply to load them beside a proxy already running. */
export function servicePortRulesOf(proxyUnitText: string): string | undefined {
    return /^ExecStartPre=\+\/usr\/sbin\/nft "([^"]+)"$/m.exec(proxyUnitText)?.[1];
}

/** `inet <service>`: the table the rules live in (service names are `[a-z][a-z0-9_-]*`, valid nft identifiers). */
export function firewallTable(service: string): string {
    if (!/^[a-z][a-z0-9_-]{0,31}$/.test(service)) throw new Error(`service name '${service}' must match [a-z][a-z0-9_-]{0,31} to name an nftables table`);
    return `inet ${service}`;
}

/**
 * `<service>-firewall.service`: loads the rules at boot, before the network is up and after
 * Debian's nftables.service (whose /etc/nftables.conf begins with `flush ruleset`), reloads them
 * atomically (`systemctl reload`), and deletes the table when stopped (uninstall). The instances
 * want it and refuse to start without the table (their ExecStartPre), but do not stop or restart
 * with it: a restart of the firewall never interrupts the app.
 */
export function renderFirewallUnit(spec: { readonly service: string }): string {
    const l = hostLayout("/", spec.service);
    const table = firewallTable(spec.service);
    return [
        "# Managed by the CompliNist Pulumi stack. Hand edits are reported by `pulumi refresh` and overwritten by `pulumi up`.",
        "[Unit]",
        `Description=CompliNist (${spec.service}) instance ports on loopback only (nftables table ${table})`,
        "DefaultDependencies=no",
        "Wants=network-pre.target",
        "Before=network-pre.target shutdown.target",
        "After=nftables.service",
        "Conflicts=shutdown.target",
        "",
        "[Service]",
        "Type=oneshot",
        "RemainAfterExit=yes",
        `ExecStart=/usr/sbin/nft -f ${l.firewallRules}`,
        `ExecReload=/usr/sbin/nft -f ${l.firewallRules}`,
        `ExecStop=-/usr/sbin/nft delete table ${table}`,
        "ProtectSystem=full",
        "ProtectHome=yes",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ].join("\n");
}

/**
 * The instance units' lines that tie them to the firewall: started after it, and refusing to
 * start while the table is missing (`+`: outside the sandbox, as root; its output kept out of app.log).
 */
export function firewallRequirement(service: string): { readonly unit: string[]; readonly service: string[] } {
    const fw = `${service}-firewall.service`;
    return {
        unit: [`Wants=${fw}`, `After=${fw}`],
        service: [
            `ExecStartPre=+/bin/sh -c '/usr/sbin/nft list table ${firewallTable(service)} >/dev/null 2>&1 || { echo "${service}@%i: refusing to start: the nftables table ${firewallTable(service)} that keeps it on loopback is not loaded (systemctl status ${fw})" >&2; exit 1; }'`,
        ],
    };
}
