import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { pinnedSampleImages } from "../../dev/images";
import { TestHost, useHosts, hostEntry } from "../../dev/hosts";
import { buildArtifacts, BuiltArtifact } from "../../scripts/build-artifacts";
import { RealEngine, type ProgramConfig } from "../e2e/engine";
import { Artifact, pack } from "./artifacts";

/**
 * An instance answers only on loopback, enforced by the host, not by the app (the untrusted
 * input rule), and the gate trusts only its own unit's listener. Two real hosts on the same
 * Docker network: the target, and a peer standing for "another machine on the segment".
 * Host state is observed through docker exec, never through the transport under test.
 */

const REPO = path.resolve(__dirname, "..", "..");
const BASE = "/opt/complinist";
const OUT = path.join(REPO, ".build", "loopback-artifacts");

/**
 * A release that binds 0.0.0.0 whatever BIND says, serves the health contract, and at
 * /outbound opens a TCP connection to $PEER (host:port) and returns the first line it reads:
 * the app's own outbound traffic.
 */
function wildcardArtifact(version: string): Artifact {
    const src = fs.mkdtempSync(path.join(os.tmpdir(), "artifact-"));
    fs.mkdirSync(path.join(src, "bin"));
    const server = [
        "#!/usr/bin/env python3",
        "import json, os, socket",
        "from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer",
        "class H(BaseHTTPRequestHandler):",
        "    def do_GET(self):",
        "        if self.path == '/outbound':",
        "            host, port = os.environ['PEER'].rsplit(':', 1)",
        "            try:",
        "                with socket.create_connection((host, int(port)), timeout=5) as c:",
        "                    body = c.makefile('rb').readline().decode().strip()",
        "            except OSError as e:",
        "                body = 'outbound failed: %s' % e",
        "        else:",
        `            body = json.dumps({"status": "healthy", "version": "${version}"})`,
        "        self.send_response(200)",
        "        self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body.encode())",
        "    def log_message(self, *a): pass",
        "ThreadingHTTPServer(('0.0.0.0', int(os.environ['PORT'])), H).serve_forever()",
        "",
    ].join("\n");
    fs.writeFileSync(path.join(src, "bin", "start"), server, { mode: 0o755 });
    return pack(src, OUT, version);
}

/**
 * Sends one TCP SYN as a raw Ethernet frame (AF_PACKET) from the peer to DST_IP:PORT through
 * the target's MAC, and prints "answered" if a SYN-ACK comes back within 3 s (resent each
 * second), else "no answer". With DST_IP 127.0.0.1 that is moby #45610's reproduction: the
 * peer's own kernel would never route a packet for 127.0.0.1 out of eth0.
 */
const RAW_SYN = `
import random, socket, struct, sys, time
iface, dst_mac, src_ip, dst_ip, dport = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
s.bind((iface, 0x0800))
src_mac = s.getsockname()[4]
def csum(b):
    if len(b) % 2: b += b"\\0"
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b)); t = (t >> 16) + (t & 0xffff); t += t >> 16
    return ~t & 0xffff
sport = random.randint(40000, 60000)
tcp = struct.pack("!HHIIBBHHH", sport, dport, random.randint(0, 2**32 - 1), 0, 5 << 4, 0x02, 64240, 0, 0)
pseudo = socket.inet_aton(src_ip) + socket.inet_aton(dst_ip) + struct.pack("!BBH", 0, 6, len(tcp))
tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), random.randint(0, 65535), 0, 64, 6, 0, socket.inet_aton(src_ip), socket.inet_aton(dst_ip))
ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
frame = bytes.fromhex(dst_mac.replace(":", "")) + src_mac + struct.pack("!H", 0x0800) + ip + tcp
s.settimeout(0.2)
deadline, resend = time.time() + 3, 0
while time.time() < deadline:
    if time.time() >= resend:
        s.send(frame); resend = time.time() + 1
    try:
        p = s.recv(65535)
    except socket.timeout:
        continue
    if p[12:14] != b"\\x08\\x00" or p[23] != 6: continue
    t = p[14 + (p[14] & 0xf) * 4:]
    sp, dp = struct.unpack("!HH", t[:4])
    if sp == dport and dp == sport and t[13] & 0x12 == 0x12:
        print("answered"); sys.exit(0)
print("no answer")
`;

const sh = (h: TestHost, cmd: string) => h.run(cmd);
/** The host's address on the Docker network the hosts share. */
const addressOf = (h: TestHost) => sh(h, "ip -4 -o addr show eth0 | awk '{ print $4 }' | cut -d/ -f1");
/** `curl` from H: the body, or "no answer (curl exit N)". */
const fetch = (h: TestHost, url: string) => sh(h, `curl -sS -m 3 ${url} 2>/dev/null || echo "no answer (curl exit $?)"`);

describe("release mode: instances answer on loopback only, enforced by the host", function () {
    this.timeout(900000);
    const hosts: TestHost[] = useHosts(2, { names: ["lb-1", "lb-peer"] });
    const target = () => hosts[0] as TestHost;
    const peer = () => hosts[1] as TestHost;
    let arts: Record<string, Artifact>;
    let driver: RealEngine;
    let targetIp = "";
    let peerIp = "";

    function config(version: string, rollbackVersion: string | undefined): ProgramConfig {
        const h = target();
        return {
            "complinist:mode": "release",
            "complinist:version": version,
            "complinist:rollbackVersion": rollbackVersion,
            "complinist:keepReleases": "3",
            "complinist:releases": Object.fromEntries(Object.entries(arts).map(([v, a]) => [v, { path: path.relative(REPO, a.file), sha256: a.sha256 }])),
            "complinist:hosts": [hostEntry(h)],
            "complinist:sshPrivateKey": h.privateKey,
            "complinist:service": { command: "bin/start", environment: { PEER: `${peerIp}:22` } },
            "complinist:health": { timeoutSeconds: 10, intervalMs: 300, drainSeconds: 5 },
        };
    }
    const up = (c: ProgramConfig) => driver.up(c, ["complinist:sshPrivateKey"]);
    const served = () => fetch(target(), "http://127.0.0.1:5000/health");
    /** The instance port the proxy routes to, and the other one. */
    const ports = async () => {
        const live = await sh(target(), "sed -n 's/^    server i\\([0-9]*\\) 127.0.0.1:[0-9]*$/\\1/p' /etc/complinist/haproxy.cfg | head -n 1");
        return { live, idle: live === "5001" ? "5002" : "5001" };
    };

    before(async () => {
        const built = await buildArtifacts(OUT);
        arts = { "1.0.0": built.find((a: BuiltArtifact) => a.version === "1.0.0") as BuiltArtifact, "2.0.0": wildcardArtifact("2.0.0") };
        driver = new RealEngine({ stack: "loopback", env: { COMPLINIST_DEPLOYER: "loopback" } });
        targetIp = await addressOf(target());
        peerIp = await addressOf(peer());
    });
    after(async () => {
        await driver?.close();
    });

    it("a release bound to 0.0.0.0 answers on 127.0.0.1, not on the host's network address: neither from the host itself nor from another machine", async () => {
        const r = await up(config("2.0.0", undefined));
        assert.strictEqual(r.error, undefined);
        const { live } = await ports();
        assert.match(await sh(target(), `ss -Htln 'sport = :${live}'`), new RegExp(`0\\.0\\.0\\.0:${live} `), "the release really listens on every interface");
        assert.match(await fetch(target(), `http://127.0.0.1:${live}/health`), /"version": "2\.0\.0"/);
        assert.match(await fetch(target(), `http://${targetIp}:${live}/health`), /^no answer/, "the host itself, to its own address");
        assert.match(await fetch(peer(), `http://${targetIp}:${live}/health`), /^no answer/, "another machine on the segment");
        // The proxy's port is the one meant for users: the peer reaches the same release there.
        assert.match(await fetch(peer(), `http://${targetIp}:5000/health`), /"version": "2\.0\.0"/);
        assert.match(await sh(target(), "nft list table inet complinist"), new RegExp(`th dport \\{ 5001, 5002 \\} ip daddr != 127\\.0\\.0\\.0/8 drop`));
    });

    it("the instance's own outbound connections still work (here: the peer's sshd banner)", async () => {
        assert.match(await fetch(target(), "http://127.0.0.1:5000/outbound"), /^SSH-2\.0-OpenSSH/);
    });

    it("the unit asks for loopback (BIND=127.0.0.1), and the warm standby is held to loopback too", async () => {
        const r = await up(config("1.0.0", "2.0.0"));
        assert.strictEqual(r.error, undefined);
        const { live, idle } = await ports();
        // The sample app honours BIND; the standby 2.0.0 does not, and the host holds it anyway.
        assert.match(await sh(target(), `ss -Htln 'sport = :${live}'`), new RegExp(`127\\.0\\.0\\.1:${live} `));
        assert.match(await sh(target(), "/usr/local/sbin/complinist status"), /standbyVersion=2\.0\.0/);
        assert.match(await sh(target(), `ss -Htln 'sport = :${idle}'`), new RegExp(`0\\.0\\.0\\.0:${idle} `));
        assert.match(await fetch(target(), `http://127.0.0.1:${idle}/health`), /"version": "2\.0\.0"/);
        assert.match(await fetch(peer(), `http://${targetIp}:${idle}/health`), /^no answer/);
    });

    it("the firewall deleted by hand: an instance refuses to start, refresh reports it, the next up restores it", async () => {
        const { idle } = await ports();
        await sh(target(), "nft delete table inet complinist");
        const restart = await target().exec(`systemctl restart complinist@${idle}`);
        assert.notStrictEqual(restart.code, 0, "the standby must not start unprotected");
        assert.match(await sh(target(), "tail -n 5 /var/log/complinist/app.log"), new RegExp(`complinist@${idle}: refusing to start: the nftables table inet complinist .* is not loaded`));
        const drift = await driver.refresh({ previewOnly: true });
        const unit = drift.drift.find((d) => d.name === "complinist-lb-1-service-unit");
        assert.ok(unit?.diffs.includes("firewall"), JSON.stringify(drift.drift));
        await driver.refresh();
        assert.strictEqual((await up(config("1.0.0", "2.0.0"))).error, undefined);
        assert.match(await sh(target(), "nft list table inet complinist"), /ip daddr != 127\.0\.0\.0\/8 drop/);
        assert.match(await sh(target(), "/usr/local/sbin/complinist status"), /standbyVersion=2\.0\.0/);
        assert.deepStrictEqual((await driver.refresh({ previewOnly: true })).drift.map((d) => d.name), [], "no drift after converging");
    });

    it("the service user holding the idle port first, in its own user slice named like the unit: refused before anything starts, the live release keeps serving", async () => {
        const h = target();
        // No standby: the idle port is free for the squatter.
        assert.strictEqual((await up(config("1.0.0", undefined))).error, undefined);
        const { idle } = await ports();
        const uid = await sh(h, "id -u complinist");
        // Answers healthy with the version about to be deployed, on every path: what a compromised app would run.
        const squatter = `import http.server, json, sys\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        b = json.dumps({"status": "healthy", "version": "2.0.0"}).encode()\n        self.send_response(200); self.send_header("Content-Length", str(len(b))); self.end_headers(); self.wfile.write(b)\n    def log_message(self, *a): pass\nhttp.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()\n`;
        // The service user's own systemd (user@UID.service); the image has no pam_systemd to set XDG_RUNTIME_DIR for it.
        await sh(h, [
            `echo ${Buffer.from(squatter).toString("base64")} | base64 -d > /usr/local/share/squatter.py`,
            "mkdir -p /etc/systemd/system/user@.service.d",
            "printf '[Service]\\nEnvironment=XDG_RUNTIME_DIR=/run/user/%%i\\n' > /etc/systemd/system/user@.service.d/test-runtime-dir.conf",
            "systemctl daemon-reload",
            `systemctl start user@${uid}.service`,
            `runuser -u complinist -- env XDG_RUNTIME_DIR=/run/user/${uid} systemd-run --user --unit=complinist@${idle} --collect --quiet python3 /usr/local/share/squatter.py ${idle}`,
        ].join(" && "));
        try {
            // The squatter holds the port (its socket, in its own cgroup) and answers, before the deploy starts.
            const held = await h.exec(
                `for i in $(seq 1 100); do ss -Htln --cgroup 'sport = :${idle}' | grep -q 'user@${uid}\\.service/app\\.slice/.*complinist@${idle}\\.service' && curl -fsS -m 1 http://127.0.0.1:${idle}/health 2>/dev/null | grep -q 2.0.0 && exit 0; sleep 0.1; done; ss -Htln --cgroup; exit 1`,
            );
            assert.strictEqual(held.code, 0, `the squatter never held port ${idle}: ${held.stdout}`);
            const r = await up(config("2.0.0", undefined));
            assert.match(
                String(r.error),
                // Found before anything starts (issue 29 finding 10): a unit named like the instance in a user slice is not the service's own.
                new RegExp(`version 2\\.0\\.0 was not started: the idle instance port ${idle} is held by pid .*uid ${uid}, cgroup \\S*/user@${uid}\\.service/app\\.slice/\\S*complinist@${idle}\\.service\\) - not this service's own units, so not ended here`),
            );
            assert.match(await served(), /"version": ?"1\.0\.0"/);
            assert.match(await sh(h, `tail -n 1 ${BASE}/revisions.log`), /version=2\.0\.0.*outcome=failed reason=idle-port live=1\.0\.0/);
        } finally {
            await sh(h, `systemctl stop user@${uid}.service; rm -rf /etc/systemd/system/user@.service.d /usr/local/share/squatter.py; systemctl daemon-reload`);
        }
    });

    it("destroy removes the firewall: no table, no unit, no rules file", async () => {
        const r = await driver.destroy();
        assert.strictEqual(r.error, undefined);
        assert.strictEqual(await sh(target(), "nft list tables"), "");
        assert.strictEqual(await sh(target(), "ls /etc/systemd/system/complinist-firewall.service /etc/complinist/firewall.nft 2>/dev/null || true"), "");
    });
});

describe("container mode: a packet for 127.0.0.1 sent from the segment (moby #45610) is not answered", function () {
    this.timeout(900000);
    const engines: TestHost[] = useHosts(1, { names: ["lbc-1"], dockerEngine: true });
    const peers: TestHost[] = useHosts(1, { names: ["lbc-peer"] });
    const target = () => engines[0] as TestHost;
    const peer = () => peers[0] as TestHost;
    let driver: RealEngine;
    /** complinist:1.0.0 pinned by the digest the host's registry gave it (container mode takes digests only). */
    let image = "";

    /** A raw SYN from the peer to DST:PORT, through the target's MAC: "answered" or "no answer". */
    async function rawSyn(dst: string, port: number): Promise<string> {
        const [mac, peerIp] = [await sh(target(), "cat /sys/class/net/eth0/address"), await addressOf(peer())];
        return sh(peer(), `echo ${Buffer.from(RAW_SYN).toString("base64")} | base64 -d > /tmp/rawsyn.py && python3 /tmp/rawsyn.py eth0 ${mac} ${peerIp} ${dst} ${port}`);
    }

    before(async () => {
        image = (await pinnedSampleImages(target(), ["1.0.0"])).pinned["complinist:1.0.0"] as string;
        driver = new RealEngine({ stack: "loopback-cm", env: { COMPLINIST_DEPLOYER: "loopback" } });
    });
    after(async () => {
        await driver?.close();
    });

    it("the container published on 127.0.0.1:5001 answers there on the host, and a neighbour's SYN for 127.0.0.1:5001 gets no answer", async () => {
        const h = target();
        const r = await driver.up(
            {
                "complinist:mode": "container",
                "complinist:version": "1.0.0",
                "complinist:releases": { "1.0.0": { image } },
                "complinist:hosts": [hostEntry(h)],
                "complinist:sshPrivateKey": h.privateKey,
                "complinist:service": { command: "bin/start" },
                "complinist:health": { timeoutSeconds: 15, intervalMs: 300, drainSeconds: 5 },
            },
            ["complinist:sshPrivateKey"],
        );
        assert.strictEqual(r.error, undefined);
        assert.strictEqual(await sh(h, "docker port complinist-5001"), "5001/tcp -> 127.0.0.1:5001");
        assert.match(await fetch(h, "http://127.0.0.1:5001/health"), /"version": ?"1\.0\.0"/);
        // The probe itself works: the host's sshd on its own address answers the same raw SYN.
        assert.strictEqual(await rawSyn(await addressOf(h), 22), "answered");
        assert.strictEqual(await rawSyn("127.0.0.1", 5001), "no answer");
        // And it sees what the rule closes: without the table, Docker's DNAT answers the neighbour.
        await sh(h, "nft delete table inet complinist");
        try {
            assert.strictEqual(await rawSyn("127.0.0.1", 5001), "answered", "moby #45610 reproduces on this engine without the rule");
        } finally {
            await sh(h, "systemctl reload complinist-firewall");
        }
        assert.strictEqual(await rawSyn("127.0.0.1", 5001), "no answer");
    });

    it("a neighbour routing to the container's bridge address gets no answer on the instance port (Docker forwards to published ports)", async () => {
        const h = target();
        const bridge = await sh(h, "docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' complinist-5001");
        assert.match(bridge, /^\d+\.\d+\.\d+\.\d+$/);
        assert.strictEqual(await rawSyn(bridge, 5001), "no answer");
        // The probe sees what the rule closes: without the table, the container answers the neighbour.
        await sh(h, "nft delete table inet complinist");
        try {
            assert.strictEqual(await rawSyn(bridge, 5001), "answered", "Docker forwards a neighbour's packet to the published port without the rule");
        } finally {
            await sh(h, "systemctl reload complinist-firewall");
        }
        assert.strictEqual(await rawSyn(bridge, 5001), "no answer");
        assert.match(await fetch(h, "http://127.0.0.1:5001/health"), /"version": ?"1\.0\.0"/);
    });
});
