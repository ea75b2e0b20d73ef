// The demo host of `npm run up` (scripts/up.ts) and its keys (dev/sshKeys.ts), without Docker: the
// keys for real in a temporary directory, the container through a recording stand-in for docker.
import * as assert from "assert";
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { demoKeys } from "../../../dev/sshKeys";
import { DEV_HOST, ensureDevHost, pinDemoHostKey } from "../../../scripts/up";

const REPO = path.join(__dirname, "..", "..", "..");
const mode = (p: string): number => fs.statSync(p).mode & 0o777;

/** What a docker stand-in was asked, and what it answers: the container state and files inside it. */
class FakeDocker {
    readonly calls: Array<{ args: string[]; input?: string | undefined }> = [];
    /** undefined: no such container. */
    running: boolean | undefined;
    readonly files = new Map<string, string>();
    constructor(running?: boolean) {
        this.running = running;
    }
    readonly run = (args: string[], input?: string): { status: number; stdout: string; stderr: string } => {
        this.calls.push({ args, input });
        const ok = (stdout = ""): { status: number; stdout: string; stderr: string } => ({ status: 0, stdout, stderr: "" });
        if (args[0] === "inspect") return this.running === undefined ? { status: 1, stdout: "", stderr: "Error: No such object" } : ok(`${this.running}\n`);
        if (args[0] === "rm") {
            this.running = undefined;
            this.files.clear();
            return ok();
        }
        if (args[0] === "run") {
            this.running = true;
            return ok("c0ffee\n");
        }
        if (args[0] === "exec") {
            const script = args[args.length - 1] ?? "";
            const write = /cat > (\S+)/.exec(script);
            if (write && input !== undefined) this.files.set(write[1] as string, input);
            if (args[args.length - 2] === "cat") return ok(this.files.get(script) ?? "");
            return ok();
        }
        return { status: 1, stdout: "", stderr: `unexpected docker ${args.join(" ")}` };
    };
}

describe("the demo host of npm run up, without Docker", () => {
    let tmp: string;
    beforeEach(() => {
        tmp = fs.mkdtempSync(path.join(os.tmpdir(), "demo-host-"));
    });
    afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

    it("generates the demo's deploy key and host key once per checkout, each private half 0600 in a 0700 directory", () => {
        const a = demoKeys(path.join(tmp, "a"));
        assert.strictEqual(mode(path.join(tmp, "a")), 0o700);
        for (const k of [a.deploy, a.host]) {
            assert.strictEqual(mode(k.privateKeyPath), 0o600, k.privateKeyPath);
            assert.match(k.privateKey, /^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
            assert.match(k.publicKey, /^ssh-ed25519 AAAA[0-9A-Za-z+/]+=*$/);
            assert.strictEqual(execFileSync("ssh-keygen", ["-y", "-f", k.privateKeyPath], { encoding: "utf8" }).trim().split(" ").slice(0, 2).join(" "), k.publicKey, "the pair matches");
        }
        assert.notStrictEqual(a.deploy.publicKey, a.host.publicKey);
        assert.deepStrictEqual(demoKeys(path.join(tmp, "a")), a, "the same checkout keeps its keys");
        const b = demoKeys(path.join(tmp, "b"));
        assert.notStrictEqual(b.deploy.publicKey, a.deploy.publicKey, "another checkout has keys of its own");
        assert.notStrictEqual(b.host.publicKey, a.host.publicKey);
    });

    it("closes a key left readable by others, and refuses a key directory that is a symbolic link", () => {
        const a = demoKeys(path.join(tmp, "a"));
        fs.chmodSync(a.deploy.privateKeyPath, 0o644);
        fs.chmodSync(path.join(tmp, "a"), 0o755);
        demoKeys(path.join(tmp, "a"));
        assert.strictEqual(mode(a.deploy.privateKeyPath), 0o600);
        assert.strictEqual(mode(path.join(tmp, "a")), 0o700);
        fs.symlinkSync(path.join(tmp, "a"), path.join(tmp, "link"));
        assert.throws(() => demoKeys(path.join(tmp, "link")), /link.* is not a directory owned by uid \d+ \(it is a symbolic link\)/);
    });

    it("keeps the demo's keys where git ignores them, and Pulumi.local.yaml reads the deploy key from there", () => {
        const config = (YAML.parse(fs.readFileSync(path.join(REPO, "Pulumi.local.yaml"), "utf8")) as { config: Record<string, unknown> }).config;
        assert.strictEqual(config["complinist:sshPrivateKeyPath"], ".build/demo-ssh/deploy_ed25519");
        for (const f of [".build/demo-ssh/deploy_ed25519", ".build/demo-ssh/host_ed25519_key", ".build/test-ssh/id_ed25519"]) {
            assert.strictEqual(spawnSync("git", ["check-ignore", "-q", "--no-index", f], { cwd: REPO }).status, 0, `${f} is git-ignored`);
        }
    });

    it("tracks no private key in git: no file holds a usable one", () => {
        const files = execFileSync("git", ["ls-files", "-z"], { cwd: REPO, encoding: "utf8" }).split("\0").filter((f) => f !== "" && fs.existsSync(path.join(REPO, f)));
        assert.ok(files.length > 100, "git ls-files lists the checkout");
        const found: string[] = [];
        for (const f of files) {
            const text = fs.readFileSync(path.join(REPO, f), "latin1");
            if (!text.includes("PRIVATE KEY")) continue;
            // Tests hold stand-ins such as "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-key\n…": a key is a block
            // ssh-keygen can read, or a file that is nothing but a key.
            const blocks = text.match(/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----\r?\n[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY-----/g) ?? [];
            if (/^-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(text.trimStart())) found.push(`${f} (a key file)`);
            for (const block of blocks) {
                const probe = path.join(tmp, "probe");
                fs.writeFileSync(probe, `${block}\n`, { mode: 0o600 });
                const read = spawnSync("ssh-keygen", ["-y", "-P", "", "-f", probe], { encoding: "utf8" });
                if (read.status === 0 || /incorrect passphrase/i.test(read.stderr)) found.push(`${f} (a key ssh-keygen reads)`);
            }
        }
        assert.deepStrictEqual(found, []);
    });

    it("pins the checkout's host key in the demo stack file, comments and everything else kept", () => {
        const text = fs.readFileSync(path.join(REPO, "Pulumi.local.yaml"), "utf8");
        const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE0mFqQq8m0y1vOAsG6oWgv1cFMyzR3ADdx6nKkMsRXN";
        const pinned = pinDemoHostKey(text, key, "Pulumi.local.yaml");
        const hosts = (YAML.parse(pinned) as { config: { "complinist:hosts": Array<{ hostKey: string; port: number }> } }).config["complinist:hosts"];
        assert.strictEqual(hosts[0]?.hostKey, key);
        const lines = (t: string): string[] => t.split("\n").filter((l) => !/^\s+hostKey: /.test(l));
        assert.deepStrictEqual(lines(pinned), lines(text), "only the hostKey line changes");
        assert.strictEqual(pinDemoHostKey(pinned, key, "Pulumi.local.yaml"), pinned);
        assert.throws(() => pinDemoHostKey("config:\n  complinist:hosts: []\n", key, "Pulumi.local.yaml"), /Pulumi\.local\.yaml lists no host on 127\.0\.0\.1:2222/);
    });

    it("starts the demo host with this checkout's keys only: the deploy key authorized, the host key installed and pinned", async () => {
        const keyDir = path.join(tmp, "keys");
        const stackFile = path.join(tmp, "Pulumi.local.yaml");
        fs.copyFileSync(path.join(REPO, "Pulumi.local.yaml"), stackFile);
        const docker = new FakeDocker();
        await ensureDevHost({ docker: docker.run, waitReady: async () => undefined, keyDir, stackFile, log: () => undefined });
        const keys = demoKeys(keyDir);
        const run = docker.calls.find((c) => c.args[0] === "run")?.args ?? [];
        assert.ok(run.includes(`127.0.0.1:${DEV_HOST.port}:22`), `published on loopback only: ${run.join(" ")}`);
        assert.strictEqual(docker.files.get("/root/.ssh/authorized_keys"), `${keys.deploy.publicKey}\n`, "only this checkout's deploy key opens it");
        assert.strictEqual(docker.files.get("/etc/ssh/ssh_host_ed25519_key"), keys.host.privateKey);
        assert.strictEqual(docker.files.get("/etc/ssh/ssh_host_ed25519_key.pub"), `${keys.host.publicKey}\n`);
        const hosts = (YAML.parse(fs.readFileSync(stackFile, "utf8")) as { config: { "complinist:hosts": Array<{ hostKey: string }> } }).config["complinist:hosts"];
        assert.strictEqual(hosts[0]?.hostKey, keys.host.publicKey, "the stack pins the host key it installed");
        assert.ok(!docker.calls.some((c) => c.args.join(" ").includes("dev/keys")), "nothing of the committed keys");
    });

    it("keeps a running demo host that has this checkout's keys, and replaces one that authorizes any other key", async () => {
        const keyDir = path.join(tmp, "keys");
        const stackFile = path.join(tmp, "Pulumi.local.yaml");
        fs.copyFileSync(path.join(REPO, "Pulumi.local.yaml"), stackFile);
        const keys = demoKeys(keyDir);
        const deps = { waitReady: async () => undefined, keyDir, stackFile, log: () => undefined };
        const mine = new FakeDocker(true);
        mine.files.set("/root/.ssh/authorized_keys", `${keys.deploy.publicKey}\n`);
        mine.files.set("/etc/ssh/ssh_host_ed25519_key.pub", `${keys.host.publicKey}\n`);
        await ensureDevHost({ ...deps, docker: mine.run });
        assert.ok(!mine.calls.some((c) => c.args[0] === "rm" || c.args[0] === "run"), mine.calls.map((c) => c.args.join(" ")).join("\n"));
        const old = new FakeDocker(true);
        old.files.set("/root/.ssh/authorized_keys", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBa0JDg7Mzw2Bj6fzRw2PF1fX0wvYlX1lpxgSjJzrGJU complinist-demo-only\n");
        old.files.set("/etc/ssh/ssh_host_ed25519_key.pub", `${keys.host.publicKey}\n`);
        await ensureDevHost({ ...deps, docker: old.run });
        assert.ok(old.calls.some((c) => c.args[0] === "rm" && c.args.includes(DEV_HOST.container)), "the host with another key is removed");
        assert.strictEqual(old.files.get("/root/.ssh/authorized_keys"), `${keys.deploy.publicKey}\n`);
    });
});
