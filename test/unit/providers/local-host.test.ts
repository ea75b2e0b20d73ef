import * as assert from "assert";
import * as cp from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { HostTarget } from "../../../infra/providers/host";
import { releaseDirProvider, ReleaseDirOutputs, ReleaseDirState } from "../../../infra/providers/release";
import { serviceUnitProvider, ServiceUnitOutputs, ServiceUnitState } from "../../../infra/providers/service";
import { renderFirewallRules, renderFirewallUnit } from "../../../infra/render/firewall";
import { renderLogrotate } from "../../../infra/render/logrotate";
import { hostLayout } from "../../../infra/render/layout";
import { renderAgentConfig } from "../../../infra/render/service";
import { renderInstanceUnit, renderFailoverUnit, renderProxyUnit, renderServiceUnit } from "../../../infra/render/unit";
import { useTransportFactory } from "../../../infra/transport";
import { localTransport } from "../../../infra/transport/local";
import { AGENT_ARCHES, agentBinaryBySha, agentBuild, AgentBuild } from "../../../toolchain/agent";

/**
 * File-only host operations, for real, through the local transport under a temp root:
 * extraction + checksum + rename, the units, the host agent (the real binary, built by
 * toolchain/agent.ts) and the 0600 env file, and the host lock every writing script takes. The activation needs systemd (instances, the
 * proxy, systemd-run): it is tested on real hosts in test/integration.
 */

function sha256File(file: string): string {
    return crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}

function makeArtifact(dir: string, version: string): { file: string; sha256: string } {
    const src = fs.mkdtempSync(path.join(os.tmpdir(), "src-"));
    fs.writeFileSync(path.join(src, "VERSION"), `${version}\n`);
    fs.mkdirSync(path.join(src, "bin"));
    fs.writeFileSync(path.join(src, "bin", "start"), "#!/bin/sh\nexit 0\n", { mode: 0o755 });
    const file = path.join(dir, `complinist-${version}.tar.gz`);
    cp.execFileSync("tar", ["-czf", file, "-C", src, "."]);
    return { file, sha256: crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex") };
}

async function waitFor(what: string, cond: () => boolean, ms = 10000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!cond()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 20));
    }
}

/** Whether some process waits (blocked) for an flock on FILE, from /proc/locks. */
function someoneWaitsFor(file: string): boolean {
    const ino = fs.statSync(file).ino;
    return fs
        .readFileSync("/proc/locks", "utf8")
        .split("\n")
        .some((line) => new RegExp(`-> FLOCK\\s+ADVISORY\\s+WRITE\\s+\\d+\\s+[0-9a-f]+:[0-9a-f]+:${ino}\\s`).test(line));
}

describe("host operations under a temp root (local transport)", () => {
    let root: string;
    let host: HostTarget;
    let a1: { file: string; sha256: string };
    let a2: { file: string; sha256: string };
    let holder: cp.ChildProcess | undefined;
    const base = "/opt/complinist";
    const saved: Record<string, string | undefined> = {};
    const at = (p: string) => path.join(root, p);
    const lockFile = () => at(`${base}/.deploy.lock`);
    const deployerName = `tester@${os.hostname()}`.replace(/[^A-Za-z0-9@._-]/g, "_");

    function release(version: string, art: { file: string; sha256: string }): ReleaseDirState {
        return { host, privateKey: "", baseDir: base, service: "complinist", version, sha256: art.sha256, artifact: { path: art.file }, auth: "", authOrigins: [], stack: "dev", acknowledgeHostChange: [] };
    }

    /**
     * Hold the host lock from another process, as a concurrent deploy would: flock(1) takes it,
     * the command writes its owner line the way take_lock does and holds it until its stdin closes.
     */
    async function holdLock(who: string): Promise<{ owner: string; release: () => Promise<void> }> {
        fs.mkdirSync(at(base), { recursive: true });
        const child = cp.spawn("flock", [lockFile(), "bash", "-c", `printf '%s pid %s since 2026-01-01T00:00:00Z\\n' '${who}' "$$" > '${lockFile()}.owner'; echo held; read -r _`], {
            stdio: ["pipe", "pipe", "inherit"],
        });
        holder = child;
        const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
        await new Promise<void>((resolve, reject) => {
            child.stdout?.on("data", (d: Buffer) => d.toString().includes("held") && resolve());
            void exited.then(() => reject(new Error("the lock holder exited before it held the lock")));
        });
        return {
            owner: fs.readFileSync(`${lockFile()}.owner`, "utf8").trimEnd(),
            release: async () => {
                child.stdin?.end();
                await exited;
            },
        };
    }

    before(() => {
        for (const k of ["LOCK_WAIT", "COMPLINIST_DEPLOYER"]) saved[k] = process.env[k];
        // take_lock reads LOCK_WAIT from its environment; the local transport passes ours on.
        process.env.LOCK_WAIT = "1";
        process.env.COMPLINIST_DEPLOYER = "tester";
    });

    after(() => {
        for (const [k, v] of Object.entries(saved)) {
            if (v === undefined) delete process.env[k];
            else process.env[k] = v;
        }
    });

    beforeEach(() => {
        root = fs.mkdtempSync(path.join(os.tmpdir(), "host-root-"));
        host = { name: "local-1", address: "127.0.0.1", port: 22, user: "root", hostKey: "ssh-ed25519 AAAA" };
        useTransportFactory((conn) => localTransport({ name: conn.name, root, systemd: false }));
        const arts = fs.mkdtempSync(path.join(os.tmpdir(), "arts-"));
        a1 = makeArtifact(arts, "1.0.0");
        a2 = makeArtifact(arts, "1.1.0");
    });

    afterEach(() => {
        holder?.kill("SIGKILL");
        holder = undefined;
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
            assert.match(fs.readFileSync(`${lockFile()}.owner`, "utf8"), new RegExp(`^${deployerName} pid \\d+ since \\d{4}-`), "installed under the host lock");
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

        it("an install while another operation holds the host lock fails naming the holder, leaving nothing", async () => {
            const { owner } = await holdLock("alice@laptop");
            await assert.rejects(releaseDirProvider.create!(release("1.0.0", a1)), (e: Error) => {
                assert.strictEqual(e.message, `host local-1: release 1.0.0 was not installed: the deploy lock is held by ${owner} (still running); it frees itself when that process ends`);
                return true;
            });
            assert.ok(!fs.existsSync(at(`${base}/releases/1.0.0`)));
        });

        it("an install refused by the lock removes its upload", async () => {
            await holdLock("alice@laptop");
            await assert.rejects(releaseDirProvider.create!(release("1.0.0", a1)), /deploy lock is held/);
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

        it("delete never removes the release current points to, nor one an instance runs (the warm standby)", async () => {
            const o1 = (await releaseDirProvider.create!(release("1.0.0", a1))).outs as ReleaseDirOutputs;
            const o2 = (await releaseDirProvider.create!(release("1.1.0", a2))).outs as ReleaseDirOutputs;
            const o3 = (await releaseDirProvider.create!(release("1.2.0", a2))).outs as ReleaseDirOutputs;
            fs.symlinkSync("releases/1.0.0", at(`${base}/current`));
            fs.mkdirSync(at(`${base}/instances`));
            fs.symlinkSync("../releases/1.1.0", at(`${base}/instances/5002`));
            for (const [id, o] of [["local-1:1.0.0", o1], ["local-1:1.1.0", o2], ["local-1:1.2.0", o3]] as const) await releaseDirProvider.delete!(id, o);
            assert.deepStrictEqual(fs.readdirSync(at(`${base}/releases`)).sort(), ["1.0.0", "1.1.0"]);
        });
    });

    describe("ServiceUnit", () => {
        /** The host agent of the sources as they are (built with Go on first use, cached after). */
        let agent: AgentBuild;
        /** This machine's `uname -m`, and the build's sha256 for it: what the apply installs here. */
        const arch = os.arch() === "arm64" ? "aarch64" : "x86_64";
        const agentSha = () => agent.sha256[AGENT_ARCHES[arch]];
        const AGENT = "/usr/local/sbin/complinist";

        before(function () {
            this.timeout(300000);
            agent = agentBuild({ log: (line) => console.log(`      ${line}`) });
        });

        const spec = { service: "complinist", user: "complinist", baseDir: base, command: "bin/start" };
        const unitText = renderInstanceUnit(spec);
        const serviceUnitText = renderServiceUnit(spec);
        const proxyUnitText = renderProxyUnit({ ...spec, port: 5000 });
        const failoverUnitText = renderFailoverUnit(spec);
        const firewallUnitText = renderFirewallUnit(spec);
        const firewallRules = renderFirewallRules({ service: "complinist", port: 5000 });
        const agentConfigText = renderAgentConfig(base, "process");
        const logrotateText = renderLogrotate(hostLayout(base, "complinist"));
        const state = (): ServiceUnitState => ({
            host,
            privateKey: "",
            baseDir: base,
            service: "complinist",
            user: "complinist",
            unitText,
            serviceUnitText,
            proxyUnitText,
            failoverUnitText,
            firewallUnitText,
            firewallRules,
            agentConfigText,
            logrotateText,
            envText: 'APP_ENV="dev"\nSECRET_KEY="s3cr3t"\n',
            stack: "dev",
            allowServiceInterruption: false,
            acknowledgeHostChange: [],
            agent,
        });
        const installed: ReadonlyArray<[keyof ServiceUnitState, string, number]> = [
            ["unitText", "/etc/systemd/system/complinist@.service", 0o644],
            ["serviceUnitText", "/etc/systemd/system/complinist.service", 0o644],
            ["proxyUnitText", "/etc/systemd/system/complinist-proxy.service", 0o644],
            ["failoverUnitText", "/etc/systemd/system/complinist-failover.service", 0o644],
            ["firewallUnitText", "/etc/systemd/system/complinist-firewall.service", 0o644],
            ["firewallRules", "/etc/complinist/firewall.nft", 0o644],
            ["agentConfigText", "/etc/complinist/agent.json", 0o600],
            ["logrotateText", "/etc/logrotate.d/complinist", 0o644],
        ];

        it("writes the units, agent.json, the agent and a 0600 env file; read returns them as written", async () => {
            const outs = (await serviceUnitProvider.create!(state())).outs as ServiceUnitOutputs;
            for (const [key, file, mode] of installed) {
                assert.strictEqual(fs.readFileSync(at(file), "utf8"), state()[key], file);
                assert.strictEqual(fs.statSync(at(file)).mode & 0o777, mode, `${file} mode`);
            }
            const env = at("/etc/complinist/complinist.env");
            assert.strictEqual(fs.statSync(env).mode & 0o777, 0o600);
            assert.strictEqual(fs.readFileSync(env, "utf8"), state().envText);
            assert.strictEqual(fs.statSync(at("/etc/complinist")).mode & 0o777, 0o711, "the proxy may read haproxy.cfg, nobody may list");
            for (const d of ["releases", "instances", "shared"]) assert.ok(fs.statSync(at(`${base}/${d}`)).isDirectory(), d);
            assert.strictEqual(fs.statSync(at(`${base}/.activations`)).mode & 0o777, 0o700);
            assert.deepStrictEqual(JSON.parse(fs.readFileSync(at("/etc/complinist/agent.json"), "utf8")), { v: 1, baseDir: base, runtime: "process" });
            // The uploaded file is the real agent binary, the build's for this machine's architecture.
            assert.strictEqual(sha256File(at(AGENT)), agentSha());
            assert.ok(fs.readFileSync(at(AGENT)).equals(fs.readFileSync(agentBinaryBySha(agentSha()))));
            assert.strictEqual(fs.statSync(at(AGENT)).mode & 0o7777, 0o755);
            assert.ok(!fs.existsSync(at("/usr/local/sbin/.complinist-agent.upload")), "the upload was moved into place");
            assert.deepStrictEqual([outs.arch, outs.agentSha256], [arch, agentSha()]);
            const read = (await serviceUnitProvider.read!("x", outs)).props as ServiceUnitOutputs;
            assert.deepStrictEqual([read.arch, read.agentSha256, read.agentConfigText], [arch, agentSha(), agentConfigText]);
            assert.strictEqual((await serviceUnitProvider.diff!("x", read, state())).changes, false);
        });

        it("the installed agent runs: version names the build's version and its own sha256", async () => {
            await serviceUnitProvider.create!(state());
            const r = cp.spawnSync(at(AGENT), ["version"], { encoding: "utf8" });
            assert.strictEqual(r.status, 0, r.stderr);
            assert.strictEqual(r.stdout, `complinist-agent ${agent.version} sha256 ${agentSha()}\n`);
        });

        it("the agent travels only when the host's differs: a second apply uploads nothing and leaves it in place", async () => {
            const uploads: string[] = [];
            useTransportFactory((conn) => {
                const t = localTransport({ name: conn.name, root, systemd: false });
                return { ...t, upload: (local, remote) => (uploads.push(remote), t.upload(local, remote)) };
            });
            const outs = (await serviceUnitProvider.create!(state())).outs as ServiceUnitOutputs;
            assert.deepStrictEqual(uploads, [at("/usr/local/sbin/.complinist-agent.upload")]);
            const before = fs.statSync(at(AGENT));
            await serviceUnitProvider.update!("x", outs, { ...state(), unitText: `${unitText}# changed\n` });
            assert.strictEqual(uploads.length, 1, "no second upload");
            const after = fs.statSync(at(AGENT));
            assert.deepStrictEqual([after.ino, after.mtimeMs], [before.ino, before.mtimeMs]);
            assert.strictEqual(fs.readFileSync(at("/etc/systemd/system/complinist@.service"), "utf8"), `${unitText}# changed\n`);
        });

        it("a hand-replaced agent shows as drift (its sha256), and the next apply installs the build's again", async () => {
            const outs = (await serviceUnitProvider.create!(state())).outs as ServiceUnitOutputs;
            fs.writeFileSync(at(AGENT), "#!/bin/sh\necho not the agent\n");
            const read = (await serviceUnitProvider.read!("x", outs)).props as ServiceUnitOutputs;
            assert.strictEqual(read.agentSha256, sha256File(at(AGENT)));
            assert.strictEqual((await serviceUnitProvider.diff!("x", read, state())).changes, true);
            // agentSha256 alone is what differs: the same read with the build's sha256 is no change.
            assert.strictEqual((await serviceUnitProvider.diff!("x", { ...read, agentSha256: agentSha() }, state())).changes, false);
            await serviceUnitProvider.update!("x", read, state());
            assert.strictEqual(sha256File(at(AGENT)), agentSha());
        });

        it("a changed agent build is a change", async () => {
            const outs = (await serviceUnitProvider.create!(state())).outs as ServiceUnitOutputs;
            const other: AgentBuild = { version: `${agent.version}.next`, sha256: { amd64: "1".repeat(64), arm64: "2".repeat(64) } };
            assert.strictEqual((await serviceUnitProvider.diff!("x", outs, { ...state(), agent: other })).changes, true);
            assert.strictEqual((await serviceUnitProvider.diff!("x", outs, { ...state(), agent: { ...agent, version: other.version } })).changes, true, "the version alone");
            assert.strictEqual((await serviceUnitProvider.diff!("x", outs, state())).changes, false);
        });

        describe("the host's architecture (uname -m) picks the binary", () => {
            let savedPath: string | undefined;
            let unameDir: string | undefined;
            /** The local transport's scripts inherit our PATH: a stand-in uname answers for the host. */
            const fakeUname = (answer: string) => {
                unameDir = fs.mkdtempSync(path.join(os.tmpdir(), "uname-"));
                fs.writeFileSync(path.join(unameDir, "uname"), `#!/bin/sh\necho ${answer}\n`, { mode: 0o755 });
                savedPath = process.env.PATH;
                process.env.PATH = `${unameDir}:${savedPath ?? ""}`;
            };
            afterEach(() => {
                if (savedPath !== undefined) process.env.PATH = savedPath;
                if (unameDir !== undefined) fs.rmSync(unameDir, { recursive: true, force: true });
                savedPath = unameDir = undefined;
            });

            for (const [uname, goarch] of Object.entries(AGENT_ARCHES)) {
                it(`a host whose uname -m is ${uname} gets the linux/${goarch} agent`, async () => {
                    fakeUname(uname);
                    const outs = (await serviceUnitProvider.create!(state())).outs as ServiceUnitOutputs;
                    assert.strictEqual(sha256File(at(AGENT)), agent.sha256[goarch]);
                    assert.deepStrictEqual([outs.arch, outs.agentSha256], [uname, agent.sha256[goarch]]);
                });
            }

            it("a host of another architecture is refused, naming it and the supported ones, before anything is written", async () => {
                fakeUname("riscv64");
                await assert.rejects(serviceUnitProvider.create!(state()), /^Error: host local-1: architecture riscv64 \(uname -m\) is not one the host agent is built for \(x86_64, aarch64\)$/);
                assert.deepStrictEqual(fs.readdirSync(root), []);
            });
        });

        it("applies under the host lock: it leaves <baseDir>/.deploy.lock.owner naming the deployer", async () => {
            await serviceUnitProvider.create!(state());
            assert.match(fs.readFileSync(`${lockFile()}.owner`, "utf8"), new RegExp(`^${deployerName} pid \\d+ since \\d{4}-\\d\\d-\\d\\dT[0-9:]+Z\n$`));
        });

        it("fails while another operation holds the lock, naming the holder, and writes nothing", async () => {
            const { owner } = await holdLock("alice@laptop");
            await assert.rejects(serviceUnitProvider.create!(state()), (e: Error) => {
                assert.match(e.message, /^host local-1: installing unit complinist\.service failed \(exit 75\): /);
                assert.ok(e.message.includes(`the deploy lock ${lockFile()} is held by ${owner} (still running); waited 1 s.`), e.message);
                return true;
            });
            for (const [, file] of installed) assert.ok(!fs.existsSync(at(file)), `${file} written without the lock`);
            assert.ok(!fs.existsSync(at(AGENT)), "the agent installed without the lock");
            assert.ok(!fs.existsSync(at("/usr/local/sbin/.complinist-agent.upload")), "the refused apply removed its upload");
            assert.strictEqual(fs.readFileSync(`${lockFile()}.owner`, "utf8").trimEnd(), owner, "the holder's owner line stays");
        });

        it("waits for the lock while it is held, then applies", async () => {
            process.env.LOCK_WAIT = "60";
            try {
                const lock = await holdLock("alice@laptop");
                const apply = serviceUnitProvider.create!(state());
                let settled = false;
                void apply.then(
                    () => (settled = true),
                    () => (settled = true),
                );
                await waitFor("the apply to wait for the lock", () => someoneWaitsFor(lockFile()));
                assert.strictEqual(settled, false);
                assert.ok(!fs.existsSync(at("/etc/systemd/system/complinist.service")), "nothing written while waiting");
                await lock.release();
                await apply;
                assert.strictEqual(fs.readFileSync(at("/etc/systemd/system/complinist.service"), "utf8"), serviceUnitText);
                assert.match(fs.readFileSync(`${lockFile()}.owner`, "utf8"), new RegExp(`^${deployerName} pid `));
            } finally {
                process.env.LOCK_WAIT = "1";
            }
        });

        it("removes the leftovers of interrupted operations under the lock, but not an upload in progress", async () => {
            const releases = at(`${base}/releases`);
            fs.mkdirSync(path.join(releases, ".tmp-1.0.0.123"), { recursive: true });
            fs.mkdirSync(path.join(releases, "1.0.0"));
            fs.writeFileSync(path.join(releases, "1.0.0", ".complinist-release"), "version=1.0.0\n");
            const stale = path.join(releases, ".upload-1.0.0-1-old.tar.gz");
            const fresh = path.join(releases, ".upload-1.1.0-2-new.tar.gz");
            fs.writeFileSync(stale, "x");
            fs.writeFileSync(fresh, "x");
            const twoHoursAgo = new Date(Date.now() - 2 * 3600 * 1000);
            fs.utimesSync(stale, twoHoursAgo, twoHoursAgo);
            fs.writeFileSync(path.join(releases, ".download-1.0.0.99.tar.gz.part"), "x");
            fs.symlinkSync("releases/1.0.0", at(`${base}/current.tmp.77`));
            fs.mkdirSync(at("/etc/complinist"), { recursive: true });
            fs.writeFileSync(at("/etc/complinist/haproxy.cfg.tmp.5"), "x");
            // What a service apply killed mid-write leaves (each file written to <file>.tmp.<pid>, then renamed).
            const killedApply = ["/etc/complinist/complinist.env.tmp.6", "/etc/systemd/system/complinist@.service.tmp.6", "/usr/local/sbin/complinist.tmp.6"];
            fs.mkdirSync(at("/etc/systemd/system"), { recursive: true });
            fs.mkdirSync(at("/usr/local/sbin"), { recursive: true });
            for (const f of killedApply) fs.writeFileSync(at(f), "x");
            fs.writeFileSync(at("/etc/systemd/system/other.service.tmp.6"), "not ours");
            await serviceUnitProvider.create!(state());
            assert.deepStrictEqual(fs.readdirSync(releases).sort(), [".upload-1.1.0-2-new.tar.gz", "1.0.0"]);
            assert.ok(!fs.readdirSync(at(base)).some((f) => f.startsWith("current.tmp")));
            assert.ok(!fs.existsSync(at("/etc/complinist/haproxy.cfg.tmp.5")));
            for (const f of killedApply) assert.ok(!fs.existsSync(at(f)), f);
            assert.ok(fs.existsSync(at("/etc/systemd/system/other.service.tmp.6")), "another service's temp file is not ours to remove");
        });

        for (const [key, file] of [
            ["unitText", "/etc/systemd/system/complinist@.service"],
            ["serviceUnitText", "/etc/systemd/system/complinist.service"],
            ["proxyUnitText", "/etc/systemd/system/complinist-proxy.service"],
            ["failoverUnitText", "/etc/systemd/system/complinist-failover.service"],
            ["firewallUnitText", "/etc/systemd/system/complinist-firewall.service"],
            ["firewallRules", "/etc/complinist/firewall.nft"],
            ["agentConfigText", "/etc/complinist/agent.json"],
        ] as const) {
            it(`a hand edit of ${file} shows as drift`, async () => {
                const outs = (await serviceUnitProvider.create!(state())).outs as ServiceUnitOutputs;
                fs.appendFileSync(at(file), "# edited by hand\n");
                const read = (await serviceUnitProvider.read!("x", outs)).props as ServiceUnitOutputs;
                assert.strictEqual(read[key], `${state()[key]}# edited by hand\n`);
                assert.strictEqual((await serviceUnitProvider.diff!("x", read, state())).changes, true);
            });
        }

        it("a changed env file or its mode shows as drift", async () => {
            const outs = (await serviceUnitProvider.create!(state())).outs as ServiceUnitOutputs;
            fs.chmodSync(at("/etc/complinist/complinist.env"), 0o644);
            const read = (await serviceUnitProvider.read!("x", outs)).props as ServiceUnitOutputs;
            assert.strictEqual(read.envMode, "644");
            assert.strictEqual((await serviceUnitProvider.diff!("x", read, state())).changes, true);
            const fixed = (await serviceUnitProvider.create!(state())).outs as ServiceUnitOutputs;
            fs.appendFileSync(at("/etc/complinist/complinist.env"), 'DEBUG="1"\n');
            const edited = (await serviceUnitProvider.read!("x", fixed)).props as ServiceUnitOutputs;
            assert.notStrictEqual(edited.envSha256, fixed.envSha256);
            assert.strictEqual((await serviceUnitProvider.diff!("x", edited, state())).changes, true);
        });

        it("delete removes every file it wrote", async () => {
            const outs = (await serviceUnitProvider.create!(state())).outs as ServiceUnitOutputs;
            await serviceUnitProvider.delete!("x", outs);
            for (const [, file] of installed) assert.ok(!fs.existsSync(at(file)), file);
            assert.ok(!fs.existsSync(at(AGENT)), "the agent");
            assert.ok(!fs.existsSync(at("/etc/complinist/complinist.env")));
        });

        describe("a change that interrupts the service (a new service name or baseDir)", () => {
            const exists = () => [...installed.map(([, file]) => file), AGENT].every((file) => fs.existsSync(at(file)));

            for (const [what, change, named] of [
                ["a new service name", { service: "complinist2" }, "changing service.name from 'complinist' to 'complinist2'"],
                ["a new baseDir", { baseDir: "/srv/complinist" }, "changing baseDir from '/opt/complinist' to '/srv/complinist'"],
            ] as const) {
                it(`${what} is refused by diff (so in preview) without the acknowledgement, naming the host, the change, what stops and the command that acknowledges it`, async () => {
                    const outs = (await serviceUnitProvider.create!(state())).outs as ServiceUnitOutputs;
                    await assert.rejects(serviceUnitProvider.diff!("x", outs, { ...state(), ...change }), (e: Error) => {
                        for (const f of [
                            "host local-1: ",
                            named,
                            "the old complinist.service is stopped and removed first",
                            "every app instance and the proxy on the service port stop",
                            "nothing serves on this host until the new release has booted and passed its health gate",
                            "pulumi config set complinist:allowServiceInterruption true --stack dev",
                        ]) {
                            assert.ok(e.message.includes(f), `message lacks ${JSON.stringify(f)}:\n${e.message}`);
                        }
                        return true;
                    });
                    assert.ok(exists(), "nothing on the host was touched");
                });

                it(`${what} with allowServiceInterruption is a delete-first replacement`, async () => {
                    const outs = (await serviceUnitProvider.create!(state())).outs as ServiceUnitOutputs;
                    const d = await serviceUnitProvider.diff!("x", outs, { ...state(), ...change, allowServiceInterruption: true });
                    assert.deepStrictEqual({ changes: d.changes, replaces: d.replaces, deleteBeforeReplace: d.deleteBeforeReplace }, { changes: true, replaces: Object.keys(change), deleteBeforeReplace: true });
                });
            }

            it("the acknowledgement alone changes nothing, and an ordinary update needs none", async () => {
                const outs = (await serviceUnitProvider.create!(state())).outs as ServiceUnitOutputs;
                assert.strictEqual((await serviceUnitProvider.diff!("x", outs, { ...state(), allowServiceInterruption: true })).changes, false);
                const d = await serviceUnitProvider.diff!("x", outs, { ...state(), user: "other", envText: "X=1\n" });
                assert.deepStrictEqual([d.changes, d.replaces], [true, []]);
            });

            it("a refusal without a known stack still says how to acknowledge", async () => {
                const outs = (await serviceUnitProvider.create!(state())).outs as ServiceUnitOutputs;
                await assert.rejects(serviceUnitProvider.diff!("x", outs, { ...state(), stack: "", service: "x" }), /allowServiceInterruption true --stack <your stack>/);
            });

            it("the delete takes the host lock of the layout it removes: while an activation holds it, nothing is stopped or removed", async () => {
                const outs = (await serviceUnitProvider.create!(state())).outs as ServiceUnitOutputs;
                const { owner } = await holdLock("activation@host");
                await assert.rejects(serviceUnitProvider.delete!("x", outs), (e: Error) => {
                    assert.match(e.message, /^host local-1: removing unit complinist\.service failed \(exit 75\): /);
                    assert.ok(e.message.includes(`is held by ${owner}`), e.message);
                    return true;
                });
                assert.ok(exists(), "the service was left alone");
            });
        });
    });
});
