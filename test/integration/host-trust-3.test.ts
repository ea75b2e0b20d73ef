import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { buildArtifacts, type BuiltArtifact } from "../../scripts/build-artifacts";
import { RealEngine, type ProgramConfig } from "../e2e/engine";
import { TestHost, useHosts, hostEntry } from "../../dev/hosts";

/**
 * Host trust, third round, on a real host through the real engine: a baseDir someone else made,
 * a service name that is another unit or a command on root's PATH, a service user that is someone
 * else's, and a listener beside the proxy on the service port (issue 29, findings 2 to 5). Each is
 * refused before the host changes; host state is read through docker exec (TestHost.run).
 */
describe("host trust, round 3, on a real host: baseDir, the service name and user, the service port", function () {
    this.timeout(900000);
    const hosts: TestHost[] = useHosts(1, { names: ["trust3-1"] });
    const h = () => hosts[0] as TestHost;
    const sh = (cmd: string) => h().run(cmd);
    let tmp = "";
    let arts: Record<string, BuiltArtifact> = {};
    let driver: RealEngine;

    function config(over: { service?: Record<string, unknown>; baseDir?: string } = {}): ProgramConfig {
        return {
            "complinist:mode": "release",
            "complinist:version": "1.0.0",
            "complinist:releases": { "1.0.0": { path: (arts["1.0.0"] as BuiltArtifact).file, sha256: (arts["1.0.0"] as BuiltArtifact).sha256 } },
            "complinist:keepReleases": 2,
            "complinist:hosts": [hostEntry(h())],
            "complinist:sshPrivateKey": h().privateKey,
            "complinist:service": { command: "bin/start", ...(over.service ?? {}) },
            "complinist:health": { timeoutSeconds: 10, intervalMs: 300 },
            ...(over.baseDir !== undefined ? { "complinist:baseDir": over.baseDir } : {}),
        };
    }
    const up = (c: ProgramConfig) => driver.up(c, ["complinist:sshPrivateKey"]);
    /**
     * What a refused service apply must leave as it was: every unit file and command root has (name,
     * size, content), and the accounts. (The release may still install beside it: it is no unit.)
     */
    const fingerprint = () => sh("find /etc/systemd/system /usr/local/sbin /usr/local/bin -xdev \\( -type f -o -type l \\) -printf '%p %s\\n' | sort; md5sum /etc/passwd /etc/group /etc/shadow");

    before(async () => {
        tmp = fs.mkdtempSync(path.join(os.tmpdir(), "host-trust-3-"));
        const built = await buildArtifacts(path.join(tmp, "built"));
        arts = Object.fromEntries(built.filter((a) => a.version === "1.0.0").map((a) => [a.version, a]));
        driver = new RealEngine({ stack: "itest-host-trust-3", env: { COMPLINIST_DEPLOYER: "itest" } });
    });
    after(async () => {
        await driver?.close();
        if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    });

    it("finding 2: a baseDir another user created first is refused, naming it and its owner; root writes nothing into it", async () => {
        await sh("install -d -o nobody -g nogroup -m 0755 /srv/made-by-nobody");
        const before = await sh("find /srv -printf '%p %u %m\\n' | sort");
        const r = await up(config({ baseDir: "/srv/made-by-nobody/complinist" }));
        assert.match(String(r.error), /refused: \/srv\/made-by-nobody is owned by nobody \(uid 65534\) with mode 0755/);
        assert.strictEqual(await sh("find /srv -printf '%p %u %m\\n' | sort"), before, "nothing was written under it, no lock file either");
        await sh("rm -rf /srv/made-by-nobody");
    });

    it("finding 5: a service name that is an existing unit, or a command on root's PATH, is refused before anything is written", async () => {
        for (const [name, refusal] of [
            ["nftables", /service\.name nftables: nftables\.service is an existing unit \(\/lib\/systemd\/system\/nftables\.service\) the stack did not create/],
            ["timeout", /service\.name timeout is a command on root's PATH \(\/usr\/bin\/timeout\)/],
        ] as const) {
            const before = await fingerprint();
            const r = await up(config({ service: { name } }));
            assert.match(String(r.error), refusal, name);
            assert.strictEqual(await fingerprint(), before, `${name}: nothing on the host changed`);
            assert.strictEqual(await sh("command -v timeout"), "/usr/bin/timeout");
        }
    });

    it("finding 4: a service user that is a system account the stack did not create, or the SSH user, is refused", async () => {
        for (const [user, refusal] of [
            ["sshd", /service\.user sshd is a system account \(uid \d+\) this stack did not create/],
            [h().user, new RegExp(`service\\.user ${h().user} is the SSH user the deploy logs in as`)],
        ] as const) {
            if (user === "root") continue; // the schema refuses root itself
            const before = await fingerprint();
            const r = await up(config({ service: { user } }));
            assert.match(String(r.error), refusal, user);
            assert.strictEqual(await fingerprint(), before, `${user}: nothing on the host changed`);
        }
    });

    it("finding 3: someone on the service port's IPv6 side before the first deploy: refused before the switch, naming them; then the proxy owns both families", async () => {
        await sh(
            "runuser -u nobody -- python3 -c \"import socket,time; s=socket.socket(socket.AF_INET6); s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1); s.bind(('::', 5000)); s.listen(); time.sleep(600)\" >/dev/null 2>&1 & echo $! > /root/squatter.pid",
        );
        await sh("for i in $(seq 1 50); do ss -Htln 'sport = :5000' | grep -q . && exit 0; sleep 0.1; done; exit 1");
        const r = await up(config());
        // The pid is shown where /proc lets root see another user's fds (a container's root cannot: "?").
        assert.match(String(r.error), /version 1\.0\.0 was not switched to: someone besides the proxy listens on the service port \(the service port 5000 is also held by pid (\d+|\?) \([^,]+, uid 65534, cgroup [^)]+\) - not only by complinist-proxy\.service/);
        assert.match(await sh("tail -n 1 /opt/complinist/revisions.log"), /outcome=failed reason=service-port/);
        await sh("kill $(cat /root/squatter.pid); for i in $(seq 1 50); do ss -Htln 'sport = :5000' | grep -q . || exit 0; sleep 0.1; done; exit 1");
        const ok = await up(config());
        assert.strictEqual(ok.error, undefined, ok.output);
        const listeners = await sh("ss -Htln 'sport = :5000' | awk '{print $4}' | sort");
        assert.deepStrictEqual(listeners.split("\n"), ["0.0.0.0:5000", "[::]:5000"], "the proxy holds both families");
        const late = await sh(
            "runuser -u nobody -- python3 -c \"import socket; s=socket.socket(socket.AF_INET6); s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1); s.bind(('::', 5000))\" 2>&1 || true",
        );
        assert.match(late, /Address already in use/, "nobody can take the IPv6 side afterwards");
    });

    it("finding 3: with the proxy down (a restart, a boot), a local user that takes both families of the service port serves nobody; the proxy takes the port back", async () => {
        const deployed = await up(config());
        assert.strictEqual(deployed.error, undefined, deployed.output);
        // A host deployed before the rules: its proxy unit without them, its proxy running. The next up loads them beside the running proxy.
        await sh("sed -i '/usr\\/sbin\\/nft/d' /etc/systemd/system/complinist-proxy.service && systemctl daemon-reload && nft delete table inet complinist-proxy");
        const pid = await sh("systemctl show -p MainPID --value complinist-proxy");
        await driver.refresh();
        const upgraded = await up(config());
        assert.strictEqual(upgraded.error, undefined, upgraded.output);
        assert.strictEqual(await sh("systemctl show -p MainPID --value complinist-proxy"), pid, "the proxy was not restarted");
        const haproxy = await sh("id -u haproxy");
        assert.match(await sh("nft list table inet complinist-proxy"), new RegExp(`th sport 5000 meta skuid != ${haproxy} drop`), "loaded by the proxy unit");
        await sh("systemctl stop complinist-proxy");
        // An HTTP answer on both families, as the service user's release or anyone could bind them.
        const squat = [
            "import socket, threading",
            "def serve(s):",
            "    s.listen()",
            "    while True:",
            "        c, _ = s.accept(); c.recv(4096); c.sendall(b'HTTP/1.0 200 OK\\r\\n\\r\\n{\"status\":\"healthy\",\"version\":\"squatted\"}'); c.close()",
            "v4 = socket.socket(); v4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); v4.bind(('0.0.0.0', 5000))",
            "v6 = socket.socket(socket.AF_INET6); v6.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)",
            "v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1); v6.bind(('::', 5000))",
            "threading.Thread(target=serve, args=(v6,), daemon=True).start(); serve(v4)",
        ].join("\n");
        await sh(`printf %s ${Buffer.from(squat).toString("base64")} | base64 -d > /tmp/squat.py && chmod 0644 /tmp/squat.py`);
        await sh("runuser -u complinist -- python3 /tmp/squat.py >/tmp/squat.log 2>&1 & echo $! > /root/squatter.pid");
        await sh("for i in $(seq 1 300); do [ $(ss -Htln 'sport = :5000' | wc -l) = 2 ] && exit 0; sleep 0.1; done; cat /tmp/squat.log; ss -Htlnp; exit 1");
        for (const url of ["http://127.0.0.1:5000/health", "http://[::1]:5000/health"]) {
            const got = await sh(`curl -g -s -m 2 ${url}; echo " exit=$?"`);
            assert.match(got, /^\s*exit=28$/, `${url}: the squatter's answer never leaves the host's stack (got ${got})`);
        }
        await sh("kill $(cat /root/squatter.pid); for i in $(seq 1 50); do ss -Htln 'sport = :5000' | grep -q . || exit 0; sleep 0.1; done; exit 1");
        await sh("systemctl start complinist-proxy");
        assert.match(await sh("curl -s -m 5 http://127.0.0.1:5000/health"), /"version":\s*"1\.0\.0"/);
        assert.match(await sh("curl -g -s -m 5 'http://[::1]:5000/health'"), /"version":\s*"1\.0\.0"/);
    });
});
