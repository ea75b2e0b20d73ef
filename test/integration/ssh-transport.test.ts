import * as assert from "assert";
import { execFileSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { buildArtifacts } from "../../scripts/build-artifacts";
import { q } from "../../infra/render/shell";
import { closeAllConnections, handshakeCount, sshTransport, type SshConnection } from "../../infra/transport/ssh";
import { useHosts, type TestHost } from "../../dev/hosts";

function connectionTo(host: TestHost, overrides: Partial<SshConnection> = {}): SshConnection {
    return {
        kind: "ssh",
        name: host.name,
        address: host.address,
        port: host.sshPort,
        user: host.user,
        hostKey: host.hostKey,
        privateKey: host.privateKey,
        timeoutMs: 10000,
        ...overrides,
    };
}

async function rejection(p: Promise<unknown>): Promise<Error> {
    try {
        await p;
    } catch (e) {
        return e as Error;
    }
    throw new Error("expected the promise to reject, but it resolved");
}

describe("SSH transport against real hosts", function () {
    const hosts = useHosts(2);
    let tmp: string;

    before(function () {
        tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ssh-transport-test-"));
        execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(tmp, "deploy_key")]);
    });
    after(async function () {
        await closeAllConnections();
        // Unset when the suite was skipped before this file's own `before` ran.
        if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    });
    afterEach(async function () {
        await closeAllConnections();
    });

    it("runs a script and reports its exit code, stdout and stderr without throwing", async function () {
        const t = sshTransport(connectionTo(hosts[0]!));
        const res = await t.exec('echo "on $(hostname)"; echo oops >&2; exit 3');
        assert.strictEqual(res.code, 3);
        assert.strictEqual(res.stdout, `on ${hosts[0]!.name}\n`);
        assert.strictEqual(res.stderr, "oops\n");
    });

    it("runs scripts with -euo pipefail semantics", async function () {
        const t = sshTransport(connectionTo(hosts[0]!));
        const res = await t.exec("false | true\necho not reached");
        assert.notStrictEqual(res.code, 0);
        assert.strictEqual(res.stdout, "");
    });

    it("feeds stdin bytes to the script, never executing them as shell", async function () {
        const t = sshTransport(connectionTo(hosts[0]!));
        const data = Buffer.from("touch /tmp/pwned\n\u0000binary\xff", "latin1");
        const res = await t.exec("cat | sha256sum | cut -d' ' -f1", { stdin: data });
        assert.strictEqual(res.code, 0, res.stderr);
        assert.strictEqual(res.stdout.trim(), crypto.createHash("sha256").update(data).digest("hex"));
        const pwned = await hosts[0]!.exec("test -e /tmp/pwned");
        assert.notStrictEqual(pwned.code, 0, "stdin data was executed as part of the script");
    });

    it("uploads an artifact that the host itself hashes to the same sha256", async function () {
        const [artifact] = await buildArtifacts(path.join(tmp, "artifacts"));
        const t = sshTransport(connectionTo(hosts[0]!));
        const remote = "/opt/complinist/incoming/it's here/complinist-1.0.0.tar.gz";
        const res = await t.upload(artifact!.file, remote);
        assert.deepStrictEqual(res, { bytes: artifact!.size, sha256: artifact!.sha256 });
        const seen = await hosts[0]!.exec(`sha256sum "/opt/complinist/incoming/it's here/complinist-1.0.0.tar.gz"`);
        assert.strictEqual(seen.stdout.split(" ")[0], artifact!.sha256);
        const leftovers = await hosts[0]!.exec(`ls -A "/opt/complinist/incoming/it's here"`);
        assert.strictEqual(leftovers.stdout.trim(), "complinist-1.0.0.tar.gz", "temporary upload file left behind");
    });

    it("sees systemd running as PID 1 on the host", async function () {
        const t = sshTransport(connectionTo(hosts[0]!));
        const res = await t.exec("systemctl is-system-running || true");
        assert.match(res.stdout.trim(), /^(running|degraded)$/);
    });

    it("refuses a host whose key differs from the pinned one, naming both fingerprints", async function () {
        const [a, b] = [hosts[0]!, hosts[1]!];
        const t = sshTransport(connectionTo(a, { hostKey: b.hostKey }));
        const err = await rejection(t.exec("true"));
        assert.match(err.message, new RegExp(`host key mismatch for host ${a.name} at 127\\.0\\.0\\.1:${a.sshPort}`));
        assert.match(err.message, /expected ssh-ed25519 SHA256:[A-Za-z0-9+/]{43}, host presented SHA256:[A-Za-z0-9+/]{43}/);
        assert.strictEqual(handshakeCount(a.name), 0);
    });

    it("rejects an unparseable host key before connecting", function () {
        assert.throws(
            () => sshTransport(connectionTo(hosts[0]!, { hostKey: "ssh-ed25519 not-base64!" })),
            /hostKey of host host-1 is not an OpenSSH public key/,
        );
        assert.throws(
            () => sshTransport(connectionTo(hosts[0]!, { hostKey: hosts[0]!.hostKey.replace("ssh-ed25519", "ssh-rsa") })),
            /does not hold a ssh-rsa key/,
        );
    });

    it("reports refused key authentication clearly", async function () {
        const keyFile = path.join(tmp, "other_key");
        execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", keyFile]);
        const t = sshTransport(connectionTo(hosts[0]!, { privateKey: fs.readFileSync(keyFile, "utf8") }));
        const err = await rejection(t.exec("true"));
        assert.match(err.message, /host host-1 at 127\.0\.0\.1:\d+ refused key authentication for user root \(key SHA256:/);
    });

    it("runs scripts as root through passwordless sudo for a non-root deploy user", async function () {
        const h = hosts[0]!;
        const pub = execFileSync("ssh-keygen", ["-y", "-f", path.join(tmp, "deploy_key")], { encoding: "utf8" }).trim();
        for (const cmd of [
            "id -u deploy >/dev/null 2>&1 || useradd --create-home --shell /bin/bash deploy",
            `install -d -m 700 -o deploy -g deploy /home/deploy/.ssh && echo ${q(pub)} > /home/deploy/.ssh/authorized_keys && chown deploy: /home/deploy/.ssh/authorized_keys`,
            "echo 'deploy ALL=(root) NOPASSWD: ALL' > /etc/sudoers.d/deploy && chmod 0440 /etc/sudoers.d/deploy",
        ]) {
            assert.strictEqual((await h.exec(cmd)).code, 0, cmd);
        }
        const t = sshTransport(connectionTo(h, { user: "deploy", privateKey: fs.readFileSync(path.join(tmp, "deploy_key"), "utf8") }));
        const r = await t.exec('echo "$(id -un) via ${SUDO_USER:-none}"');
        assert.strictEqual(r.stdout.trim(), "root via deploy");
        await h.exec("rm -f /etc/sudoers.d/deploy");
        const refused = await t.exec("id -u");
        assert.notStrictEqual(refused.code, 0, "without sudo rights the script must fail, never prompt");
    });

    it("serves two hosts concurrently from one process", async function () {
        const ts = hosts.map((h) => sshTransport(connectionTo(h)));
        const results = await Promise.all(ts.flatMap((t) => [1, 2, 3].map(() => t.exec("sleep 0.3; hostname"))));
        assert.deepStrictEqual(
            results.map((r) => r.stdout.trim()),
            ["host-1", "host-1", "host-1", "host-2", "host-2", "host-2"],
        );
        // Concurrent first uses share the one handshake in flight.
        assert.strictEqual(handshakeCount("host-1"), 1);
        assert.strictEqual(handshakeCount("host-2"), 1);
    });

    it("queues more concurrent scripts than sshd allows sessions per connection", async function () {
        const t = sshTransport(connectionTo(hosts[0]!));
        const results = await Promise.all(Array.from({ length: 25 }, (_, i) => t.exec(`sleep 0.2; echo ${i}`)));
        assert.deepStrictEqual(results.map((r) => r.stdout.trim()), Array.from({ length: 25 }, (_, i) => String(i)));
        assert.strictEqual(handshakeCount("host-1"), 1);
    });

    it("reuses one connection per host: many execs and an upload, one handshake each", async function () {
        const [artifact] = await buildArtifacts(path.join(tmp, "artifacts"));
        for (const h of hosts) {
            // A new transport object per call, as each provider operation makes one.
            for (let i = 0; i < 5; i++) {
                assert.strictEqual((await sshTransport(connectionTo(h)).exec("true")).code, 0);
            }
            await sshTransport(connectionTo(h)).upload(artifact!.file, "/tmp/reuse.tar.gz");
        }
        await Promise.all(hosts.map((h) => sshTransport(connectionTo(h)).exec("true")));
        assert.strictEqual(handshakeCount("host-1"), 1);
        assert.strictEqual(handshakeCount("host-2"), 1);
    });

    it("reconnects once when the pooled connection was dropped", async function () {
        const h = hosts[1]!;
        const t = sshTransport(connectionTo(h));
        assert.strictEqual((await t.exec("true")).code, 0);
        // Ends every SSH session on the host, as an sshd restart or idle NAT timeout would.
        await h.exec("pkill -f '^sshd: root' || true");
        await new Promise((r) => setTimeout(r, 300));
        const res = await t.exec("echo again");
        assert.strictEqual(res.stdout, "again\n");
        assert.strictEqual(handshakeCount(h.name), 2);
    });

    it("kills a script that exceeds its timeout and keeps the connection usable", async function () {
        const t = sshTransport(connectionTo(hosts[0]!));
        const err = await rejection(t.exec("sleep 30", { timeoutMs: 1000 }));
        assert.match(err.message, /script on host host-1 at 127\.0\.0\.1:\d+ did not finish within 1 s/);
        assert.strictEqual((await t.exec("echo ok")).stdout, "ok\n");
        // Abandoning the channel must not leave the script running on the host.
        let left = "";
        for (let i = 0; i < 20; i++) {
            left = (await hosts[0]!.exec("pgrep -x sleep || true")).stdout.trim();
            if (left === "") break;
            await new Promise((r) => setTimeout(r, 250));
        }
        assert.strictEqual(left, "", "the timed-out script is still running on the host");
    });

    it("fails a session request that a frozen host never answers within the timeout, then reconnects", async function () {
        const h = hosts[1]!;
        assert.strictEqual((await sshTransport(connectionTo(h)).exec("true")).code, 0);
        // A paused container keeps the pooled TCP connection up (the kernel still ACKs) while
        // sshd answers nothing: what a half-open connection looks like to the client.
        execFileSync("docker", ["pause", h.container]);
        let err: Error;
        let elapsed: number;
        try {
            const started = Date.now();
            err = await rejection(sshTransport(connectionTo(h, { timeoutMs: 2000 })).exec("true"));
            elapsed = Date.now() - started;
        } finally {
            execFileSync("docker", ["unpause", h.container]);
        }
        assert.match(err.message, new RegExp(`cannot open a session on host ${h.name} at 127\\.0\\.0\\.1:${h.sshPort}: .* within 2 s`));
        assert.ok(elapsed < 5000, `took ${elapsed} ms for a 2000 ms bound`);
        const again = await sshTransport(connectionTo(h)).exec("echo again");
        assert.strictEqual(again.stdout, "again\n");
        assert.strictEqual(handshakeCount(h.name), 2, "the stale connection was reused instead of dropped");
    });

    it("fails within the connect timeout, naming host and address, when the host is down", async function () {
        this.timeout(120000);
        const h = hosts[1]!;
        await h.stop();
        try {
            const boundMs = 3000;
            const t = sshTransport(connectionTo(h, { timeoutMs: boundMs }));
            const started = Date.now();
            const err = await rejection(t.exec("true"));
            const elapsed = Date.now() - started;
            assert.match(err.message, new RegExp(`cannot reach host ${h.name} at 127\\.0\\.0\\.1:${h.sshPort} within 3 s`));
            assert.ok(elapsed < boundMs + 2000, `took ${elapsed} ms for a ${boundMs} ms bound`);
        } finally {
            await h.start();
        }
        const back = await sshTransport(connectionTo(h)).exec("echo back");
        assert.strictEqual(back.stdout, "back\n");
    });
});
