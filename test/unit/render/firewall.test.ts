import * as assert from "assert";
import * as cp from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { firewallTable, renderFirewallRules, renderFirewallUnit } from "../../../infra/render/firewall";
import { renderContainerInstanceUnit, renderInstanceUnit } from "../../../infra/render/unit";
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
