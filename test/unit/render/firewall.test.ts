import * as assert from "assert";
import * as cp from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { firewallTable, renderFirewallRules, renderFirewallUnit, servicePortRules } from "../../../infra/render/firewall";
import { renderContainerInstanceUnit, renderInstanceUnit, renderProxyUnit } from "../../../infra/render/unit";
import { requireTool, runBash } from "./bash";
import { CONTAINER_DEFAULTS } from "../../../stacks/containerSchema";

const spec = { service: "complinist", user: "complinist", baseDir: "/opt/complinist", command: "bin/start" };
const rules = renderFirewallRules({ service: "complinist", port: 5000 });
const lines = (u: string) => u.split("\n");

/** A scratch network namespace (unshare -n: only lo) to load the rules in for real; the host's own ruleset is never touched. */
function needScratchNetns(ctx: Mocha.Context): void {
    requireTool(ctx, "nft", ["--version"], "apt-get install nftables");
    if (cp.spawnSync("unshare", ["-n", "true"]).status !== 0) {
        if (process.env.CI) assert.fail("unshare -n (a scratch network namespace) is required in CI: run the tests as root");
        ctx.skip();
    }
}

describe("renderFirewallRules (the instance firewall, nftables table inet <service>)", () => {
    it("drops what reaches an instance port on any address but loopback, and loopback packets that did not come from lo", () => {
        assert.match(rules, /^table inet complinist \{\}\ndelete table inet complinist\ntable inet complinist \{$/m, "replaces the table whole: reloading is idempotent");
        assert.match(rules, /^ {8}meta l4proto \{ tcp, udp \} th dport \{ 5001, 5002 \} ip daddr != 127\.0\.0\.0\/8 drop$/m);
        assert.match(rules, /^ {8}meta l4proto \{ tcp, udp \} th dport \{ 5001, 5002 \} ip6 daddr != ::1 drop$/m);
        assert.match(rules, /^ {8}type filter hook prerouting priority raw; policy accept;$/m, "before Docker's DNAT (moby #45610)");
        assert.match(rules, /chain forward \{\n {8}type filter hook forward priority filter - 10; policy accept;\n {8}meta l4proto \{ tcp, udp \} th dport \{ 5001, 5002 \} drop\n/, "nothing forwarded reaches an instance");
        assert.match(rules, /^ {8}iifname != "lo" meta l4proto \{ tcp, udp \} th dport \{ 5001, 5002 \} ip daddr 127\.0\.0\.0\/8 drop$/m);
        assert.ok(!/\b5000\b/.test(rules.split("\n").filter((l) => !l.startsWith("#")).join("\n")), "the service port (the proxy) stays reachable");
        assert.ok(!/policy drop/.test(rules), "nothing else on the host is filtered");
    });

    it("names the table after the service and refuses a name nft would read otherwise", () => {
        assert.strictEqual(firewallTable("complinist-api_2"), "inet complinist-api_2");
        assert.throws(() => firewallTable("x; flush ruleset"), /must match/);
    });

    it("loads (twice: idempotent) and lists back as the same table in a scratch network namespace", async function () {
        needScratchNetns(this);
        const r = await runBash(`unshare -n bash -euo pipefail -c 'nft -f - <<<"$1"; a=$(nft -s list table inet complinist); nft -f - <<<"$1"; b=$(nft -s list table inet complinist); [ "$a" = "$b" ]; nft list tables' _ "$RULES"`, { env: { RULES: rules } });
        assert.strictEqual(r.code, 0, r.stderr);
        assert.strictEqual(r.stdout.trim(), "table inet complinist", "one table, loaded once");
    });

    it("a release bound to 0.0.0.0 answers on 127.0.0.1, not on the host's own address; the service port answers on both", async function () {
        needScratchNetns(this);
        // The host's own address on lo: same-host traffic to it arrives on lo with that address as destination.
        const py = [
            "import socket, sys",
            "servers = []",
            "for port in (5000, 5001):",
            "    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', port)); s.listen(); servers.append(s)",
            "for addr, port in (('127.0.0.1', 5001), ('10.9.9.9', 5001), ('10.9.9.9', 5000)):",
            "    c = socket.socket(); c.settimeout(1)",
            "    try:",
            "        c.connect((addr, port)); print(addr, port, 'answers')",
            "    except OSError as e:",
            "        print(addr, port, 'no answer', type(e).__name__)",
            "    c.close()",
        ].join("\n");
        const r = await runBash(`unshare -n bash -euo pipefail -c 'ip link set lo up; ip addr add 10.9.9.9/32 dev lo; nft -f - <<<"$1"; python3 -c "$2"' _ "$RULES" "$PY"`, { env: { RULES: rules, PY: py } });
        assert.strictEqual(r.code, 0, r.stderr);
        assert.deepStrictEqual(r.stdout.trim().split("\n"), ["127.0.0.1 5001 answers", "10.9.9.9 5001 no answer TimeoutError", "10.9.9.9 5000 answers"]);
    });
});

describe("servicePortRules (only the proxy answers on the service port: table inet <service>-proxy)", () => {
    const proxyUnit = renderProxyUnit({ service: "complinist", baseDir: "/opt/complinist", port: 5000 });
    /** The nft command line the proxy unit runs before it binds, as systemd hands it to nft (one argument). */
    const fromUnit = /^ExecStartPre=\+\/usr\/sbin\/nft "([^"]+)"$/m.exec(proxyUnit)?.[1];

    it("the proxy unit loads it as root before haproxy binds, replacing the table whole", () => {
        assert.strictEqual(fromUnit, servicePortRules({ service: "complinist", port: 5000 }));
        assert.ok(proxyUnit.indexOf("ExecStartPre=+/usr/sbin/nft") < proxyUnit.indexOf("ExecStart=/usr/sbin/haproxy"));
        assert.match(fromUnit!, /^table inet complinist-proxy \{\}; delete table inet complinist-proxy; table inet complinist-proxy \{ chain output \{/);
        assert.match(fromUnit!, /meta l4proto \{ tcp, udp \} th sport 5000 meta skuid != haproxy drop;/);
    });

    it("nobody but haproxy answers on the service port, on either family, whatever it binds (loaded twice: idempotent)", async function () {
        needScratchNetns(this);
        requireTool(this, "haproxy", ["-v"], "apt-get install haproxy (it brings the haproxy user)");
        const py = [
            "import socket, sys",
            "v6 = sys.argv[1] == 'v6'",
            "s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET)",
            "if v6: s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)",
            "s.bind(('::' if v6 else '0.0.0.0', 5000)); s.listen()",
            "c = socket.socket(s.family); c.settimeout(1)",
            "try:",
            "    c.connect(('::1' if v6 else '127.0.0.1', 5000)); print(sys.argv[1], 'answers')",
            "except OSError as e:",
            "    print(sys.argv[1], 'no answer', type(e).__name__)",
        ].join("\n");
        const r = await runBash(
            `unshare -n bash -euo pipefail -c 'ip link set lo up; nft "$1"; nft "$1"; [ "$(nft list tables)" = "table inet complinist-proxy" ]; for fam in v4 v6; do runuser -u nobody -- python3 -c "$2" $fam; python3 -c "$2" $fam; runuser -u haproxy -- python3 -c "$2" $fam; done' _ "$RULES" "$PY"`,
            { env: { RULES: fromUnit!, PY: py } },
        );
        assert.strictEqual(r.code, 0, r.stderr);
        assert.deepStrictEqual(r.stdout.trim().split("\n"), [
            "v4 no answer TimeoutError", "v4 no answer TimeoutError", "v4 answers",
            "v6 no answer TimeoutError", "v6 no answer TimeoutError", "v6 answers",
        ]);
    });
});

describe("renderFirewallUnit (complinist-firewall.service)", () => {
    const u = renderFirewallUnit({ service: "complinist" });

    it("loads the rules at boot after Debian's nftables.service (its config flushes the ruleset), reloads atomically, deletes the table when stopped", () => {
        for (const line of [
            "Type=oneshot",
            "RemainAfterExit=yes",
            "After=nftables.service",
            "Before=network-pre.target shutdown.target",
            "ExecStart=/usr/sbin/nft -f /etc/complinist/firewall.nft",
            "ExecReload=/usr/sbin/nft -f /etc/complinist/firewall.nft",
            "ExecStop=-/usr/sbin/nft delete table inet complinist",
            "WantedBy=multi-user.target",
        ]) {
            assert.ok(lines(u).includes(line), `missing ${line}`);
        }
    });

    it("passes systemd-analyze verify", function () {
        requireTool(this, "systemd-analyze", ["--version"], "apt-get install systemd");
        requireTool(this, "nft", ["--version"], "apt-get install nftables");
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "unit-"));
        fs.writeFileSync(path.join(dir, "complinist-firewall.service"), u);
        const r = cp.spawnSync("systemd-analyze", ["verify", path.join(dir, "complinist-firewall.service")], { encoding: "utf8", cwd: dir });
        assert.strictEqual(r.status, 0, r.stderr);
        assert.strictEqual(r.stderr.trim(), "", r.stderr);
    });
});

describe("the instance units and the firewall", () => {
    for (const [what, u] of [
        ["release mode's instance", renderInstanceUnit(spec)],
        ["container mode's instance", renderContainerInstanceUnit({ ...spec, limits: CONTAINER_DEFAULTS })],
    ] as const) {
        it(`${what} starts after the firewall and refuses to start without its table, but never stops with it`, () => {
            assert.ok(lines(u).includes("Wants=complinist-firewall.service"));
            assert.ok(lines(u).includes("After=complinist-firewall.service"));
            assert.ok(!/^(Requires|BindsTo|PartOf)=complinist-firewall/m.test(u), "a restart of the firewall must not restart the app");
            assert.match(u, /^ExecStartPre=\+\/bin\/sh -c '\/usr\/sbin\/nft list table inet complinist >\/dev\/null 2>&1 \|\| \{ echo "complinist@%i: refusing to start/m);
        });
    }

    it("release mode's instance is asked to bind loopback (BIND=127.0.0.1), before the env file", () => {
        const u = renderInstanceUnit(spec);
        assert.ok(lines(u).includes("Environment=BIND=127.0.0.1"));
        assert.ok(lines(u).indexOf("Environment=BIND=127.0.0.1") < lines(u).indexOf("EnvironmentFile=/etc/complinist/instance-%i.env"));
    });
});
