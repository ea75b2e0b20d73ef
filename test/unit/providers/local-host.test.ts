import * as assert from "assert";
import * as cp from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { activationProvider, ActivationState } from "../../../infra/providers/activation";
import { HostTarget } from "../../../infra/providers/host";
import { releaseDirProvider, ReleaseDirOutputs, ReleaseDirState } from "../../../infra/providers/release";
import { serviceUnitProvider, ServiceUnitOutputs, ServiceUnitState } from "../../../infra/providers/service";
import { renderUnit } from "../../../infra/render/unit";
import { useTransportFactory } from "../../../infra/transport";
import { localTransport } from "../../../infra/transport/local";

/**
 * File-only host operations, for real, through the local transport under a
 * temp root: extraction + checksum + rename, the atomic `current` switch, the
 * 0600 env file, revisions.log. systemctl and health checks need a real host
 * (test/integration).
 */

function makeArtifact(dir: string, version: string): { file: string; sha256: string } {
    const src = fs.mkdtempSync(path.join(os.tmpdir(), "src-"));
    fs.writeFileSync(path.join(src, "VERSION"), `${version}\n`);
    fs.mkdirSync(path.join(src, "bin"));
    fs.writeFileSync(path.join(src, "bin", "start"), "#!/bin/sh\nexit 0\n", { mode: 0o755 });
    const file = path.join(dir, `complinist-${version}.tar.gz`);
    cp.execFileSync("tar", ["-czf", file, "-C", src, "."]);
    return { file, sha256: crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex") };
}

describe("host operations under a temp root (local transport)", () => {
    let root: string;
    let host: HostTarget;
    let a1: { file: string; sha256: string };
    let a2: { file: string; sha256: string };
    const base = "/opt/complinist";

    function release(version: string, art: { file: string; sha256: string }): ReleaseDirState {
        return { host, privateKey: "", baseDir: base, service: "complinist", version, sha256: art.sha256, artifact: { path: art.file } };
    }
    function activation(version: string, sha256: string): ActivationState {
        return { host, privateKey: "", stack: "dev", baseDir: base, service: "complinist", version, sha256, port: 5000, healthPath: "/health", timeoutSeconds: 5, intervalMs: 100, serviceRevision: "r1" };
    }
    const at = (p: string) => path.join(root, p);

    beforeEach(() => {
        root = fs.mkdtempSync(path.join(os.tmpdir(), "host-root-"));
        host = { name: "local-1", address: "127.0.0.1", port: 22, user: "root", hostKey: "ssh-ed25519 AAAA" };
        useTransportFactory((conn) => localTransport({ name: conn.name, root, systemd: false }));
        const arts = fs.mkdtempSync(path.join(os.tmpdir(), "arts-"));
        a1 = makeArtifact(arts, "1.0.0");
        a2 = makeArtifact(arts, "1.1.0");
    });

    afterEach(() => {
        useTransportFactory(undefined);
    });

    describe("Release", () => {
        it("extracts a verified artifact into releases/<v> with a manifest and the shared link", async () => {
            const r = await releaseDirProvider.create!(release("1.0.0", a1));
            assert.strictEqual(r.id, "local-1:1.0.0");
            assert.ok((r.outs as ReleaseDirOutputs).uploadedBytes > 0);
            const dir = at(`${base}/releases/1.0.0`);
            assert.strictEqual(fs.readFileSync(path.join(dir, "VERSION"), "utf8"), "1.0.0\n");
            const manifest = fs.readFileSync(path.join(dir, ".complinist-release"), "utf8");
            assert.match(manifest, new RegExp(`^version=1\\.0\\.0\nsha256=${a1.sha256}\ninstalledAt=\\d{4}-`));
            assert.strictEqual(fs.readlinkSync(path.join(dir, "shared")), "../../shared");
            assert.deepStrictEqual(fs.readdirSync(at(`${base}/releases`)), ["1.0.0"], "no temp files left");
        });

        it("uploads nothing when the release is already complete on the host", async () => {
            await releaseDirProvider.create!(release("1.0.0", a1));
            const again = await releaseDirProvider.create!(release("1.0.0", a1));
            assert.strictEqual((again.outs as ReleaseDirOutputs).uploadedBytes, 0);
        });

        it("a checksum mismatch fails with both sums and leaves nothing behind", async () => {
            const wrong = "0".repeat(64);
            await assert.rejects(releaseDirProvider.create!({ ...release("1.0.0", a1), sha256: wrong }), (e: Error) => {
                assert.match(e.message, /host local-1: release 1\.0\.0 was not installed/);
                assert.ok(e.message.includes(`expected sha256 ${wrong}`) && e.message.includes(`got ${a1.sha256}`), e.message);
                return true;
            });
            assert.deepStrictEqual(fs.readdirSync(at(`${base}/releases`)), []);
        });

        it("check refuses a new sha256 for an installed version", async () => {
            const olds = (await releaseDirProvider.create!(release("1.0.0", a1))).outs as ReleaseDirOutputs;
            const r = await releaseDirProvider.check!(olds, { ...release("1.0.0", a1), sha256: a2.sha256 });
            assert.match(r.failures?.[0]?.reason ?? "", /never changes after it is built/);
        });

        it("check stops a missing or altered local artifact before any host is touched", async () => {
            const missing = await releaseDirProvider.check!({}, { ...release("1.0.0", a1), artifact: { path: "/nonexistent/a.tar.gz" } });
            assert.match(missing.failures?.[0]?.reason ?? "", /release 1\.0\.0: artifact \/nonexistent\/a\.tar\.gz not found/);
            const wrong = await releaseDirProvider.check!({}, { ...release("1.0.0", a1), sha256: a2.sha256 });
            assert.match(wrong.failures?.[0]?.reason ?? "", new RegExp(`has sha256 ${a1.sha256}, but the config says ${a2.sha256}`));
            assert.strictEqual((await releaseDirProvider.check!({}, release("1.0.0", a1))).failures, undefined);
            assert.ok(!fs.existsSync(at(base)), "nothing on the host");
        });

        it("check does not need the local artifact once the release is installed (rollback after cleanup)", async () => {
            const outs = (await releaseDirProvider.create!(release("1.0.0", a1))).outs as ReleaseDirOutputs;
            fs.rmSync(a1.file);
            assert.strictEqual((await releaseDirProvider.check!(outs, release("1.0.0", a1))).failures, undefined);
        });

        it("read reports a deleted directory as incomplete, and diff then asks to reinstall", async () => {
            const outs = (await releaseDirProvider.create!(release("1.0.0", a1))).outs as ReleaseDirOutputs;
            fs.rmSync(at(`${base}/releases/1.0.0`), { recursive: true });
            const read = await releaseDirProvider.read!("local-1:1.0.0", outs);
            assert.strictEqual(read.id, "local-1:1.0.0", "read must return the id or refresh drops the resource");
            assert.strictEqual((read.props as ReleaseDirOutputs).complete, false);
            const d = await releaseDirProvider.diff!("local-1:1.0.0", read.props as ReleaseDirOutputs, release("1.0.0", a1));
            assert.strictEqual(d.changes, true);
            await releaseDirProvider.update!("local-1:1.0.0", read.props as ReleaseDirOutputs, release("1.0.0", a1));
            assert.ok(fs.existsSync(at(`${base}/releases/1.0.0/.complinist-release`)));
        });

        it("delete never removes the release current points to", async () => {
            const o1 = (await releaseDirProvider.create!(release("1.0.0", a1))).outs as ReleaseDirOutputs;
            const o2 = (await releaseDirProvider.create!(release("1.1.0", a2))).outs as ReleaseDirOutputs;
            await activationProvider.create!(activation("1.0.0", a1.sha256));
            await releaseDirProvider.delete!("local-1:1.0.0", o1);
            await releaseDirProvider.delete!("local-1:1.1.0", o2);
            assert.deepStrictEqual(fs.readdirSync(at(`${base}/releases`)), ["1.0.0"]);
        });
    });

    describe("SystemdService files", () => {
        const unitText = renderUnit({ service: "complinist", user: "complinist", baseDir: base, command: "bin/start" });
        const state = (): ServiceUnitState => ({ host, privateKey: "", baseDir: base, service: "complinist", user: "complinist", unitText, envText: 'PORT="5000"\nSECRET_KEY="s3cr3t"\n' });

        it("writes the unit and a 0600 env file, and read returns them as written", async () => {
            const outs = (await serviceUnitProvider.create!(state())).outs as ServiceUnitOutputs;
            assert.strictEqual(fs.readFileSync(at("/etc/systemd/system/complinist.service"), "utf8"), unitText);
            const env = at("/etc/complinist/complinist.env");
            assert.strictEqual(fs.statSync(env).mode & 0o777, 0o600);
            assert.strictEqual(fs.readFileSync(env, "utf8"), state().envText);
            const read = await serviceUnitProvider.read!("x", outs);
            const d = await serviceUnitProvider.diff!("x", read.props as ServiceUnitOutputs, state());
            assert.strictEqual(d.changes, false);
        });

        it("a hand edit of the unit or the env file mode shows as drift", async () => {
            const outs = (await serviceUnitProvider.create!(state())).outs as ServiceUnitOutputs;
            fs.appendFileSync(at("/etc/systemd/system/complinist.service"), "Environment=DEBUG=1\n");
            fs.chmodSync(at("/etc/complinist/complinist.env"), 0o644);
            const read = (await serviceUnitProvider.read!("x", outs)).props as ServiceUnitOutputs;
            assert.ok(read.unitText.endsWith("Environment=DEBUG=1\n"));
            assert.strictEqual(read.envMode, "644");
            assert.strictEqual((await serviceUnitProvider.diff!("x", read, state())).changes, true);
        });
    });

    describe("Activation (switch only: no systemd under a temp root)", () => {
        beforeEach(async () => {
            await releaseDirProvider.create!(release("1.0.0", a1));
            await releaseDirProvider.create!(release("1.1.0", a2));
        });

        it("switches current atomically and records the outcome in revisions.log", async () => {
            await activationProvider.create!(activation("1.0.0", a1.sha256));
            assert.strictEqual(fs.readlinkSync(at(`${base}/current`)), "releases/1.0.0");
            await activationProvider.update!("x", { ...activation("1.0.0", a1.sha256), activeVersion: "1.0.0", active: "active", activatedAt: "t", activatedCommit: "c" }, activation("1.1.0", a2.sha256));
            assert.strictEqual(fs.readlinkSync(at(`${base}/current`)), "releases/1.1.0");
            const log = fs.readFileSync(at(`${base}/revisions.log`), "utf8").trim().split("\n");
            assert.strictEqual(log.length, 2);
            assert.match(log[1] as string, new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[0-9:]+Z\tversion=1\\.1\\.0\tsha256=${a2.sha256}\tby=\\S+\toutcome=activated previous=1\\.0\\.0$`));
            assert.ok(!fs.readdirSync(at(base)).some((f) => f.startsWith("current.tmp")), "no temp link left");
        });

        it("read reports where current points, so a hand-made switch is drift", async () => {
            const outs = (await activationProvider.create!(activation("1.1.0", a2.sha256))).outs;
            fs.symlinkSync("releases/1.0.0", at(`${base}/current.new`));
            fs.renameSync(at(`${base}/current.new`), at(`${base}/current`));
            const read = await activationProvider.read!("x", outs);
            assert.strictEqual(read.props?.activeVersion, "1.0.0");
            assert.strictEqual((await activationProvider.diff!("x", read.props, activation("1.1.0", a2.sha256))).changes, true);
        });

        it("refuses to activate an incomplete release", async () => {
            fs.rmSync(at(`${base}/releases/1.1.0/.complinist-release`));
            await assert.rejects(activationProvider.create!(activation("1.1.0", a2.sha256)), /release 1\.1\.0 is not complete/);
        });

        it("fails fast while another activation holds the host lock, naming the holder", async () => {
            fs.writeFileSync(at(`${base}/.deploy.lock.owner`), "alice@laptop pid 42 since 2026-01-01T00:00:00Z\n");
            const holder = cp.spawn("flock", [at(`${base}/.deploy.lock`), "sleep", "30"], { stdio: "ignore" });
            try {
                await new Promise((r) => setTimeout(r, 300));
                await assert.rejects(activationProvider.create!(activation("1.0.0", a1.sha256)), /holds the deploy lock \(alice@laptop pid 42/);
            } finally {
                holder.kill();
            }
        });

        it("a failing beforeActivate hook stops before the switch", async () => {
            await activationProvider.create!(activation("1.0.0", a1.sha256));
            await assert.rejects(activationProvider.create!({ ...activation("1.1.0", a2.sha256), beforeActivate: "echo migrating; exit 3" }), /beforeActivate failed in release 1\.1\.0; nothing was switched \(still on 1\.0\.0\)\. Output: migrating/);
            assert.strictEqual(fs.readlinkSync(at(`${base}/current`)), "releases/1.0.0");
            assert.match(fs.readFileSync(at(`${base}/revisions.log`), "utf8"), /version=1\.1\.0.*outcome=failed reason=beforeActivate-hook/);
        });
    });
});
