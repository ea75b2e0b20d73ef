import * as assert from "assert";
import * as cp from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { renderActivationPoll, renderActivationStart, renderAgentState } from "../../../infra/render/activation";
import { renderFirewallRules, renderFirewallUnit } from "../../../infra/render/firewall";
import { hostLayout } from "../../../infra/render/layout";
import { renderLocked } from "../../../infra/render/lock";
import { MANIFEST, parseKeyValues } from "../../../infra/render/protocol";
import { renderImageReleaseInstall, renderImageReleaseProbe, renderReleaseDelete, renderReleaseInstall, renderReleaseProbe } from "../../../infra/render/release";
import { AgentInstall, renderAgentConfig, renderServiceApply, renderServiceDelete, renderServiceRead, ServiceFiles } from "../../../infra/render/service";
import { q } from "../../../infra/render/shell";
import { HostTarget } from "../../../infra/providers/host";
import { releaseDirProvider, ReleaseDirState } from "../../../infra/providers/release";
import { serviceUnitProvider, ServiceUnitState } from "../../../infra/providers/service";
import { useTransportFactory } from "../../../infra/transport";
import { localTransport } from "../../../infra/transport/local";
import { MAX_SCRIPT_BYTES } from "../../../infra/transport/ssh/exec";
import type { AgentBuild } from "../../../toolchain/agent";
import { HOST_READ_MARK, parseHostRead, renderHostRead } from "../../../infra/render/hostRead";
import { runBash, Sandbox, sandbox, stubBin, tree } from "./bash";

const l = hostLayout("/opt/complinist", "complinist");
const files: ServiceFiles = {
    service: "complinist",
    user: "complinist",
    unitText: "[Unit]\nDescription=instance %i\n",
    logrotateText: "/var/log/complinist/app.log {\n    daily\n}\n",
    serviceUnitText: "[Unit]\nDescription=umbrella\n",
    proxyUnitText: "[Unit]\nDescription=proxy\n",
    failoverUnitText: "[Unit]\nDescription=failover\n",
    firewallUnitText: renderFirewallUnit({ service: "complinist" }),
    firewallRules: renderFirewallRules({ service: "complinist", port: 5000 }),
    agentConfigText: renderAgentConfig("/opt/complinist", "process"),
    who: "ci@runner",
};
/** A new agent uploaded to the host to install, and the one already installed. */
const uploaded: AgentInstall = { upload: l.agentUpload, sha256: "a".repeat(64) };
const installedAgent: AgentInstall = { installed: "a".repeat(64) };
const activationId = "1_0_0-abc-def";
const install = { version: "1.0.0", sha256: "a".repeat(64), authOrigins: [], who: "ci@runner", service: "complinist", commit: "abc123" };

/** Every script a provider sends to a host. */
const scripts: Record<string, string> = {
    releaseProbe: renderReleaseProbe(l, "1.0.0"),
    releaseInstallUpload: renderReleaseInstall(l, { ...install, source: { uploaded: "/opt/complinist/releases/.upload-1.0.0-42-abc.tar.gz" } }),
    releaseInstallUrl: renderReleaseInstall(l, { ...install, source: { url: "https://example.test/a.tar.gz" } }),
    releaseInstallUrlWithAuth: renderReleaseInstall(l, { ...install, source: { url: "https://example.test/a.tar.gz" }, authOrigins: ["https://example.test"] }),
    releaseDelete: renderReleaseDelete(l, "1.0.0", "complinist", "ci@runner"),
    serviceApply: renderServiceApply(l, files, true, uploaded),
    serviceApplyInstalled: renderServiceApply(l, files, true, installedAgent),
    serviceApplyTempRoot: renderServiceApply(l, files, false, uploaded),
    serviceRead: renderServiceRead(l, "complinist", true, files.firewallRules),
    serviceReadTempRoot: renderServiceRead(l, "complinist", false, files.firewallRules),
    serviceDelete: renderServiceDelete(l, "complinist", true, "ci@runner"),
    serviceDeleteTempRoot: renderServiceDelete(l, "complinist", false, "ci@runner"),
    activationStart: renderActivationStart(l),
    activationPoll: renderActivationPoll(l, activationId),
    agentState: renderAgentState(l, 5000, "/health"),
    agentStateOwnProbe: renderAgentState(l),
    hostRead: renderHostRead(l, "complinist", true),
    hostReadTempRoot: renderHostRead(l, "complinist", false),
    locked: renderLocked(l, "complinist", "ci@runner"),
    imageReleaseInstall: renderImageReleaseInstall(l, { version: "1.0.0", image: `registry.example.com/complinist:1.0.0@sha256:${"b".repeat(64)}`, who: "ci@runner", service: "complinist", commit: "abc123" }),
    imageReleaseProbe: renderImageReleaseProbe(l, "1.0.0"),
};

const sha256 = (data: string | Buffer): string => crypto.createHash("sha256").update(data).digest("hex");

const hasShellcheck = cp.spawnSync("shellcheck", ["--version"]).status === 0;

function shellcheck(ctx: Mocha.Context, script: string, extra: string[] = []): void {
    if (!hasShellcheck) {
        if (process.env.CI) assert.fail("shellcheck is required in CI");
        ctx.skip();
    }
    const r = cp.spawnSync("shellcheck", ["-s", "bash", "-S", "warning", ...extra, "-"], { input: script, encoding: "utf8" });
    assert.strictEqual(r.status, 0, r.stdout);
}

describe("host scripts", () => {
    for (const [name, script] of Object.entries(scripts)) {
        it(`${name} parses with bash -n`, () => {
            const r = cp.spawnSync("bash", ["-n"], { input: script, encoding: "utf8" });
            assert.strictEqual(r.status, 0, r.stderr);
        });
        it(`${name} passes shellcheck`, function () {
            shellcheck(this, script);
        });
    }

    it("shellcheck is not a rubber stamp: an unquoted expansion is a warning", function () {
        if (!hasShellcheck) this.skip();
        const r = cp.spawnSync("shellcheck", ["-s", "bash", "-S", "warning", "-"], { input: 'f=$1\nrm -rf $f/*\n', encoding: "utf8" });
        assert.notStrictEqual(r.status, 0);
    });

    for (const name of ["serviceApply", "serviceApplyInstalled", "serviceApplyTempRoot", "releaseInstallUpload", "releaseInstallUrl", "releaseDelete"]) {
        it(`${name} takes the host lock before it writes anything`, () => {
            const s = scripts[name] as string;
            const lock = s.indexOf("take_lock 'ci@runner' || exit 75");
            assert.ok(lock > 0, "takes the lock");
            assert.ok(lock < s.indexOf("clean_leftovers\n"), "cleans leftovers only under the lock");
            for (const write of ["install -d", "mkdir -p '", "rm -rf \"$dir\"", "mv "]) {
                if (s.includes(write)) assert.ok(lock < s.indexOf(write), `before ${write}`);
            }
        });
    }

    it("the service delete takes the host lock before it stops or removes anything", () => {
        const s = scripts.serviceDelete as string;
        const lock = s.indexOf("take_lock 'ci@runner' || exit 75");
        assert.ok(lock > 0, "takes the lock");
        assert.ok(s.includes("LOCK_FILE='/opt/complinist/.deploy.lock'"), "the lock of the layout being removed");
        for (const write of ["systemctl disable --now 'complinist.service'", "rm -f '", "rm -rf '", "systemctl daemon-reload"]) {
            assert.ok(s.indexOf(write) > lock, `${write} only under the lock`);
        }
    });

    it("every script fits in one argument of bash -c with room to grow", () => {
        for (const [name, text] of Object.entries(scripts)) {
            const bytes = Buffer.byteLength(text, "utf8");
            assert.ok(bytes < MAX_SCRIPT_BYTES * 0.9, `${name} is ${bytes} bytes: within 10% of the ${MAX_SCRIPT_BYTES} bytes Linux takes as one argument`);
        }
    });

    it("a release delete first renames the directory to a temp name, so a kill never leaves a half-deleted release with its manifest", () => {
        const s = scripts.releaseDelete as string;
        const rename = s.indexOf('mv -T "$dir" "$doomed"');
        assert.ok(rename > 0 && rename < s.indexOf('rm -rf "$doomed"'));
        assert.ok(s.includes("doomed='/opt/complinist/releases/.tmp-delete-1.0.0'.$$"), "a name the cleanup of .tmp-* removes");
        assert.ok(!s.includes('rm -rf "$dir"'));
    });

    it("every write step has its fault-injection pause point, and an install sets its trap before it waits for the lock", () => {
        const pauses = (name: string) => [...(scripts[name] as string).matchAll(/^pause_point '?([a-z-]+)'?$/gm)].map((m) => m[1]);
        assert.deepStrictEqual(pauses("releaseInstallUpload"), ["upload", "extract"]);
        assert.deepStrictEqual(pauses("serviceApply"), ["apply"]);
        assert.deepStrictEqual(pauses("releaseDelete"), ["retention"]);
        const install = scripts.releaseInstallUpload as string;
        assert.ok(install.indexOf("trap '") < install.indexOf("take_lock"), "a refused lock still removes the upload");
    });

    it("the service script reads the env file from stdin into a temp name it makes 0600 before the rename", () => {
        const s = scripts.serviceApply as string;
        assert.ok(s.includes("tmp_env='/etc/complinist/complinist.env'.tmp.$$\ncat > \"$tmp_env\"\nchmod 0600 \"$tmp_env\""));
    });

    it("with systemd, the service apply verifies the uploaded agent, then has the agent it will run check baseDir's trust, before the lock and before any write", () => {
        const up = scripts.serviceApply as string;
        const check = up.indexOf(`if [ "$(sha256sum < "$upload" | cut -d' ' -f1)" != '${"a".repeat(64)}' ]; then`);
        const trust = up.indexOf("\n'/usr/local/sbin/.complinist-agent.upload' trust-check '/opt/complinist' || exit 1\n");
        assert.ok(check > 0 && check < trust, "the sha256 is checked before the binary runs");
        assert.ok(up.indexOf("trap 'rm -f \"$upload\"' EXIT") < check, "a refused upload is removed");
        assert.ok(trust < up.indexOf("take_lock"), "before the lock, which lives in baseDir");
        assert.ok(up.indexOf('mv -f "$upload" \'/usr/local/sbin/complinist\'') > up.indexOf("take_lock"), "installed under the lock");
        const inst = scripts.serviceApplyInstalled as string;
        assert.match(inst, /^'\/usr\/local\/sbin\/complinist' trust-check '\/opt\/complinist' \|\| exit 1$/m, "the installed agent checks");
        assert.ok(inst.indexOf("trust-check") < inst.indexOf("take_lock"));
        assert.ok(!inst.includes("$upload"), "no upload to install");
        assert.ok(!(scripts.serviceApplyTempRoot as string).includes("trust-check"), "a temp root is the caller's, not root's");
    });

    it("the activation start, poll and state run the installed agent (exec: its output and exit status are the script's)", () => {
        assert.ok((scripts.activationStart as string).includes("\nexec '/usr/local/sbin/complinist' start-activation\n"));
        assert.ok((scripts.activationPoll as string).includes(`\nexec '/usr/local/sbin/complinist' activation-result --id '${activationId}'\n`));
        assert.ok((scripts.agentState as string).includes("\nexec '/usr/local/sbin/complinist' state --port '5000' --health-path '/health'\n"));
    });

    it("parses key=value output, keeping '=' inside values", () => {
        assert.deepStrictEqual(parseKeyValues("a=1\nnoise\nseen=HTTP 200 {\"x\":\"=\"}\n"), { a: "1", seen: 'HTTP 200 {"x":"="}' });
    });
});

describe("host scripts: every value is quoted (hostile values stay one literal word)", () => {
    let box: Sandbox;
    let canary: string;
    let hostile: string;
    /** What every locked script writes on a fresh root: the lock, its owner line and the log files. */
    const LOCKED = [/^root\/$/, /^root\/opt\/$/, /^root\/opt\/complinist\/$/, /^root\/opt\/complinist\/(\.deploy\.lock|\.deploy\.lock\.owner|revisions\.log)$/, /^root\/var\/$/, /^root\/var\/log\/$/, /^root\/var\/log\/complinist\/$/, /^root\/var\/log\/complinist\/(app|deploy)\.log$/];

    beforeEach(() => {
        box = sandbox("hostile-");
        canary = path.join(box.dir, "pwned");
        // Executed, each part would write somewhere the sandbox watches: an absolute path, the
        // working directory, HOME; a version-derived name turns the first into a relative one too.
        hostile = `v1'$(touch ${canary})\`touch pwned\`;touch ~/pwned "a b" $HOME *\nx`;
    });

    afterEach(() => {
        assert.ok(!fs.existsSync(canary), "a hostile value was executed");
        box.remove();
    });

    it("q() round-trips through bash", async () => {
        for (const h of [hostile, "$(touch pwned)", "`id`", "a'b", "x; rm -rf /", "a\nb", "", "'", "''"]) {
            const r = await box.run(`printf '%s' ${q(h)}`, { writes: [] });
            assert.strictEqual(r.stdout, h);
        }
        assert.throws(() => q("a\0b"), /NUL/);
    });

    it("the activation start, poll and state hand a hostile agent path, id and health path to the agent as one argument each, the request on stdin", async () => {
        // The agent's own path is hostile too: a temp root is part of it.
        const rl = hostLayout("/opt/complinist", "complinist", path.join(box.dir, `it's $(touch ${canary}) \`touch pwned\``));
        const seen = fs.mkdtempSync(path.join(os.tmpdir(), "agent-seen-"));
        try {
            const argv = path.join(seen, "argv");
            const stdin = path.join(seen, "stdin");
            fs.mkdirSync(path.dirname(rl.hostProgram), { recursive: true });
            // A stand-in agent: its last call's argv (NUL-separated) and, for start-activation, its stdin.
            fs.writeFileSync(rl.hostProgram, `#!/bin/bash\nprintf '%s\\0' "$@" > ${q(argv)}\nif [ "$1" = start-activation ]; then cat > ${q(stdin)}; fi\n`, { mode: 0o755 });
            const last = () => fs.readFileSync(argv, "utf8").split("\0").slice(0, -1);
            const request = `{"v":1,"id":${JSON.stringify(hostile)}}\n`;
            const start = await box.run(`set -euo pipefail\n${renderActivationStart(rl)}`, { input: request, writes: [] });
            assert.strictEqual(start.code, 0, start.stderr);
            assert.deepStrictEqual(last(), ["start-activation"]);
            assert.strictEqual(fs.readFileSync(stdin, "utf8"), request, "the request reaches the agent on stdin");
            const poll = await box.run(`set -euo pipefail\n${renderActivationPoll(rl, hostile)}`, { writes: [] });
            assert.strictEqual(poll.code, 0, poll.stderr);
            assert.deepStrictEqual(last(), ["activation-result", "--id", hostile]);
            const state = await box.run(`set -euo pipefail\n${renderAgentState(rl, 5000, hostile)}`, { writes: [] });
            assert.strictEqual(state.code, 0, state.stderr);
            assert.deepStrictEqual(last(), ["state", "--port", "5000", "--health-path", hostile]);
        } finally {
            fs.rmSync(seen, { recursive: true, force: true });
        }
    });

    it("without the agent, the activation scripts say it is missing (the service was never applied)", async () => {
        const rl = hostLayout("/opt/complinist", "complinist", path.join(box.dir, "root"));
        for (const script of [renderActivationStart(rl), renderActivationPoll(rl, hostile), renderAgentState(rl, 5000, hostile)]) {
            const r = await box.run(`set -euo pipefail\n${script}`, { writes: [] });
            assert.strictEqual(r.code, 1);
            assert.ok(r.stderr.includes(`the host agent ${rl.hostProgram} is missing: the service was not installed`), r.stderr);
        }
    });

    it("the host read lists the complete releases by version (never a linked manifest or a name that is no version) and keeps the state's failure as its own section", async () => {
        const rl = hostLayout("/opt/complinist", "complinist", path.join(box.dir, "root"));
        const release = (name: string, manifest?: string) => {
            fs.mkdirSync(path.join(rl.releasesDir, name), { recursive: true });
            if (manifest !== undefined) fs.writeFileSync(path.join(rl.releasesDir, name, MANIFEST), manifest);
        };
        release("1.0.0", `version=1.0.0\nsha256=${"a".repeat(64)}\ninstalledAt=x\n`);
        release("2.0.0");
        release(hostile.replace(/\n/g, " ").replace(/\//g, "_"), `sha256=${"b".repeat(64)}\n`);
        release("1.1.0");
        fs.symlinkSync(path.join(rl.releasesDir, "1.0.0", MANIFEST), path.join(rl.releasesDir, "1.1.0", MANIFEST));
        const r = await box.run(`set -euo pipefail\n${renderHostRead(rl, "complinist", false)}`, { writes: [] });
        assert.strictEqual(r.code, 0, r.stderr);
        const read = parseHostRead(r.stdout, "local-1");
        assert.deepStrictEqual([...read.releases], [["1.0.0", "a".repeat(64)]]);
        assert.strictEqual(read.state.code, 1);
        assert.ok(read.state.stderr.includes(`the host agent ${rl.hostProgram} is missing`), read.state.stderr);
        assert.deepStrictEqual(Object.keys(parseKeyValues(read.service)).slice(0, 3), ["unit", "serviceUnit", "proxyUnit"]);
        assert.throws(() => parseHostRead(r.stdout.split(HOST_READ_MARK + " state ")[0] ?? "", "local-1"), /host local-1: the read of the host's state ended early \(no state\)/);
    });

    it("renderLocked writes the hostile owner literally into the owner file", async () => {
        const rl = hostLayout("/opt/complinist", "complinist", path.join(box.dir, "root"));
        const r = await box.run(`set -euo pipefail\n${renderLocked(rl, "complinist", hostile)}echo locked`, { writes: LOCKED });
        assert.strictEqual(r.code, 0, r.stderr);
        assert.strictEqual(r.stdout, "locked\n");
        const owner = fs.readFileSync(`${rl.lockFile}.owner`, "utf8");
        assert.ok(owner.startsWith(`${hostile} pid `), owner);
    });

    it("the release scripts touch only the directory of the hostile version", async () => {
        const rl = hostLayout("/opt/complinist", "complinist", path.join(box.dir, "root"));
        const bad = hostile.replace(/\n/g, " ").replace(/\//g, "_");
        fs.mkdirSync(path.join(rl.releasesDir, bad), { recursive: true });
        fs.mkdirSync(path.join(rl.releasesDir, "1.0.0"));
        const probe = await box.run(`set -euo pipefail\n${renderReleaseProbe(rl, bad)}`, { writes: [] });
        assert.strictEqual(probe.code, 0, probe.stderr);
        assert.strictEqual(parseKeyValues(probe.stdout).complete, "false");
        const del = await box.run(`set -euo pipefail\n${renderReleaseDelete(rl, bad, hostile, hostile)}`, { writes: LOCKED });
        assert.strictEqual(del.code, 0, del.stderr);
        assert.deepStrictEqual(fs.readdirSync(rl.releasesDir), ["1.0.0"]);
    });

    it("the release download passes a hostile URL to curl as one argument", async () => {
        const rl = hostLayout("/opt/complinist", "complinist", path.join(box.dir, "root"));
        const stub = stubBin({ curl: "exit 22" });
        const url = `https://example.test/a.tar.gz?x=${hostile}`;
        const r = await box.run(`set -euo pipefail\n${renderReleaseInstall(rl, { ...install, version: hostile.replace(/[^A-Za-z0-9.]/g, "_"), service: hostile, who: hostile, commit: hostile, source: { url } })}`, {
            env: { PATH: `${stub.dir}:${process.env.PATH}` },
            writes: [...LOCKED, /^root\/opt\/complinist\/(releases|shared)\/$/],
        });
        assert.strictEqual(r.code, 22, r.stderr);
        const calls = stub.calls();
        assert.strictEqual(calls.length, 1);
        const args = calls[0]?.args ?? [];
        // No -L: the first request (the only one releaseAuth could go with) follows no redirect.
        // --globoff: the URL is fetched literally, never expanded (test/unit/render/release-download.test.ts).
        assert.deepStrictEqual(args.slice(0, 7), ["-sS", "--globoff", "--max-time", "600", "--proto", "=http,https", "-o"]);
        assert.match(args[7] ?? "", new RegExp(`^${rl.releasesDir}/\\.download-v1_[^/]*\\.\\d+\\.tar\\.gz\\.part$`));
        assert.deepStrictEqual(args.slice(8), ["-w", "%{http_code} %{redirect_url}", url]);
        assert.deepStrictEqual(fs.readdirSync(rl.releasesDir), [], "the trap removed the temp dir and the partial download");
    });

    it("the service apply writes hostile names and texts literally, only where the layout says", async () => {
        const rl = hostLayout("/opt/complinist", "complinist", path.join(box.dir, "root"));
        const texts: ServiceFiles = { ...files, who: hostile, unitText: hostile, serviceUnitText: hostile, proxyUnitText: hostile, failoverUnitText: hostile, firewallUnitText: hostile, firewallRules: hostile, agentConfigText: hostile, logrotateText: hostile };
        // The uploaded agent's bytes are hostile too: they are data to install, never run by the apply under a temp root.
        fs.mkdirSync(path.dirname(rl.agentUpload), { recursive: true });
        fs.writeFileSync(rl.agentUpload, hostile);
        const r = await box.run(`set -euo pipefail\n${renderServiceApply(rl, texts, false, { upload: rl.agentUpload, sha256: sha256(hostile) })}`, {
            input: "A=1\n",
            writes: [
                ...LOCKED,
                /^root\/opt\/complinist\/(releases|instances|shared|\.activations)\/$/,
                /^root\/etc\/$/,
                /^root\/etc\/(complinist|systemd|logrotate\.d)\/$/,
                /^root\/etc\/systemd\/system\/$/,
                /^root\/etc\/systemd\/system\/complinist(@|-proxy|-failover|-firewall)?\.service$/,
                /^root\/etc\/systemd\/system\/complinist\.service\.wants\/$/,
                /^root\/etc\/complinist\/(complinist\.env|firewall\.nft|agent\.json)$/,
                /^root\/etc\/logrotate\.d\/complinist$/,
                /^root\/usr\/local\/sbin\/complinist$/,
            ],
        });
        assert.strictEqual(r.code, 0, r.stderr);
        assert.strictEqual(fs.readFileSync(rl.instanceUnitFile, "utf8"), hostile);
        assert.strictEqual(fs.readFileSync(rl.agentConfig, "utf8"), hostile);
        assert.strictEqual(fs.readFileSync(rl.hostProgram, "utf8"), hostile);
        assert.ok(!fs.existsSync(rl.agentUpload), "the upload was moved into place");
        assert.ok(fs.readFileSync(`${rl.lockFile}.owner`, "utf8").startsWith(`${hostile} pid `));
    });

    it("the sandbox sees a value bash executes, wherever it writes (the check can fail)", async () => {
        for (const leak of [`touch ${canary}`, "touch pwned", "touch ~/pwned", 'touch "$TMPDIR/pwned"']) {
            await assert.rejects(box.run(leak, { writes: [] }), assert.AssertionError, leak);
            fs.rmSync(canary, { force: true });
            for (const d of [box.cwd, box.home, box.tmpdir]) for (const f of fs.readdirSync(d)) fs.rmSync(path.join(d, f));
        }
    });
});

describe("the service apply installs the host agent and its configuration (under a temp root)", () => {
    let tmp: string;
    let rl: ReturnType<typeof hostLayout>;
    /** A stand-in agent: the apply installs bytes, whatever they are. */
    const agentBytes = "#!/bin/sh\necho stand-in agent\n";

    beforeEach(() => {
        tmp = fs.mkdtempSync(path.join(os.tmpdir(), "agent-install-"));
        rl = hostLayout("/opt/complinist", "complinist", path.join(tmp, "root"));
    });
    afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

    function upload(bytes: string): void {
        fs.mkdirSync(path.dirname(rl.agentUpload), { recursive: true });
        fs.writeFileSync(rl.agentUpload, bytes, { mode: 0o644 });
    }
    const apply = (agent: AgentInstall, f: ServiceFiles = files, env = "A=1\n") => runBash(`set -euo pipefail\n${renderServiceApply(rl, f, false, agent)}`, { input: env });

    /** Every path under the root with its mode and content hash: what "nothing changed" compares. */
    function snapshot(): string[] {
        const root = path.join(tmp, "root");
        return tree(root).map((p) => {
            const st = fs.lstatSync(path.join(root, p));
            return `${p} ${(st.mode & 0o7777).toString(8)}${st.isFile() ? ` ${sha256(fs.readFileSync(path.join(root, p)))}` : ""}`;
        });
    }

    it("installs the uploaded agent at /usr/local/sbin/complinist with mode 0755 and writes agent.json 0600 with the version, baseDir and runtime", async () => {
        upload(agentBytes);
        const r = await apply({ upload: rl.agentUpload, sha256: sha256(agentBytes) });
        assert.strictEqual(r.code, 0, r.stderr);
        assert.strictEqual(rl.hostProgram, path.join(tmp, "root", "usr/local/sbin/complinist"));
        assert.strictEqual(fs.readFileSync(rl.hostProgram, "utf8"), agentBytes);
        assert.strictEqual(fs.statSync(rl.hostProgram).mode & 0o7777, 0o755);
        assert.ok(!fs.existsSync(rl.agentUpload), "the upload was moved into place, not copied");
        assert.strictEqual(rl.agentConfig, path.join(tmp, "root", "etc/complinist/agent.json"));
        assert.deepStrictEqual(JSON.parse(fs.readFileSync(rl.agentConfig, "utf8")), { v: 1, baseDir: "/opt/complinist", runtime: "process" });
        assert.strictEqual(fs.statSync(rl.agentConfig).mode & 0o7777, 0o600);
    });

    it("agent.json is one JSON line of the host's baseDir (not the temp root's) and the runtime", () => {
        assert.strictEqual(renderAgentConfig("/srv/it's here", "docker"), '{"v":1,"baseDir":"/srv/it\'s here","runtime":"docker"}\n');
    });

    it("refuses an upload whose sha256 is not the expected one, and changes nothing (the upload is removed)", async () => {
        upload(agentBytes);
        assert.strictEqual((await apply({ upload: rl.agentUpload, sha256: sha256(agentBytes) })).code, 0);
        const before = snapshot();
        upload("#!/bin/sh\necho another agent\n");
        const r = await apply({ upload: rl.agentUpload, sha256: sha256(agentBytes) }, { ...files, unitText: "[Unit]\nDescription=changed\n", agentConfigText: renderAgentConfig("/srv/other", "docker") }, "A=2\n");
        assert.strictEqual(r.code, 1);
        assert.ok(r.stderr.includes(`the uploaded host agent is not the one built (sha256 ${sha256(agentBytes)}): nothing was changed`), r.stderr);
        assert.ok(!fs.existsSync(rl.agentUpload), "the refused upload is removed");
        assert.deepStrictEqual(snapshot(), before, "no file, mode or content changed: not the units, the env file, agent.json, the agent, the lock's owner line or deploy.log");
    });

    it("refuses a mismatched upload on a fresh host before it writes anything at all", async () => {
        upload(agentBytes);
        const r = await apply({ upload: rl.agentUpload, sha256: "0".repeat(64) });
        assert.strictEqual(r.code, 1);
        assert.deepStrictEqual(tree(path.join(tmp, "root")), ["usr/", "usr/local/", "usr/local/sbin/"]);
    });

    it("with the agent already installed, the apply leaves it as it is", async () => {
        upload(agentBytes);
        assert.strictEqual((await apply({ upload: rl.agentUpload, sha256: sha256(agentBytes) })).code, 0);
        const before = fs.statSync(rl.hostProgram);
        const r = await apply({ installed: sha256(agentBytes) }, { ...files, unitText: "[Unit]\nDescription=changed\n" });
        assert.strictEqual(r.code, 0, r.stderr);
        const after = fs.statSync(rl.hostProgram);
        assert.deepStrictEqual([after.ino, after.mtimeMs, after.mode & 0o7777], [before.ino, before.mtimeMs, 0o755]);
        assert.strictEqual(fs.readFileSync(rl.instanceUnitFile, "utf8"), "[Unit]\nDescription=changed\n", "the rest is applied");
    });

    it("the read reports agent.json, the architecture and the installed agent's sha256 (empty when there is none)", async () => {
        const read = async () => parseKeyValues((await runBash(`set -euo pipefail\n${renderServiceRead(rl, "complinist", false, files.firewallRules)}`)).stdout);
        assert.deepStrictEqual([(await read()).agentSha256, (await read()).agentConfig], ["", ""]);
        upload(agentBytes);
        assert.strictEqual((await apply({ upload: rl.agentUpload, sha256: sha256(agentBytes) })).code, 0);
        const kv = await read();
        assert.strictEqual(kv.agentSha256, sha256(agentBytes));
        assert.strictEqual(Buffer.from(kv.agentConfig ?? "", "base64").toString("utf8"), files.agentConfigText);
        assert.strictEqual(kv.arch, cp.execFileSync("uname", ["-m"], { encoding: "utf8" }).trim());
    });

    it("the delete removes the agent and agent.json with the rest", async () => {
        upload(agentBytes);
        assert.strictEqual((await apply({ upload: rl.agentUpload, sha256: sha256(agentBytes) })).code, 0);
        const r = await runBash(`set -euo pipefail\n${renderServiceDelete(rl, "complinist", false, "ci@runner")}`);
        assert.strictEqual(r.code, 0, r.stderr);
        for (const f of [rl.hostProgram, rl.agentConfig, rl.envFile, rl.unitFile]) assert.ok(!fs.existsSync(f), f);
    });
});

describe("secrets reach a host on stdin only, never in a script's text or a command's argv", () => {
    const SECRET = "s3cr3t-Zq9-never-in-argv";
    const host: HostTarget = { name: "local-1", address: "127.0.0.1", port: 22, user: "root", hostKey: "ssh-ed25519 AAAA" };
    let box: Sandbox;
    let sent: Array<{ script: string; stdin: string }>;

    /** A stand-in agent build, in a toolchain cache of the test's own (where agentBinaryBySha finds it). */
    let agent: AgentBuild;
    let savedCache: string | undefined;

    beforeEach(() => {
        box = sandbox("secrets-");
        sent = [];
        savedCache = process.env.COMPLINIST_TOOLCHAIN_CACHE;
        process.env.COMPLINIST_TOOLCHAIN_CACHE = path.join(box.dir, "cache");
        const bytes = "#!/bin/sh\necho stand-in agent\n";
        const sha = sha256(bytes);
        fs.mkdirSync(path.join(box.dir, "cache", "agent-by-sha256"), { recursive: true });
        fs.writeFileSync(path.join(box.dir, "cache", "agent-by-sha256", sha), bytes, { mode: 0o755 });
        agent = { version: "1.0.0+test", sha256: { amd64: sha, arm64: sha } };
        useTransportFactory((conn) => {
            const t = localTransport({ name: conn.name, root: path.join(box.dir, "root"), systemd: false });
            return { ...t, exec: (script, o) => (sent.push({ script, stdin: o?.stdin?.toString("utf8") ?? "" }), t.exec(script, o)) };
        });
    });
    afterEach(() => {
        useTransportFactory(undefined);
        if (savedCache === undefined) delete process.env.COMPLINIST_TOOLCHAIN_CACHE;
        else process.env.COMPLINIST_TOOLCHAIN_CACHE = savedCache;
        box.remove();
    });

    it("the service apply: the env file's secret travels on stdin into the 0600 env file, in no script", async () => {
        const state: ServiceUnitState = { ...files, host, privateKey: "", baseDir: "/opt/complinist", envText: `SECRET_KEY="${SECRET}"\n`, stack: "dev", allowServiceInterruption: false, acknowledgeHostChange: [], agent };
        await serviceUnitProvider.create!(state);
        assert.ok(sent.length > 0);
        for (const { script } of sent) assert.ok(!script.includes(SECRET), "a script carries the secret");
        assert.ok(sent.some((x) => x.stdin.includes(SECRET)), "the secret went on stdin");
        const env = path.join(box.dir, "root", "etc", "complinist", "complinist.env");
        assert.strictEqual(fs.readFileSync(env, "utf8"), `SECRET_KEY="${SECRET}"\n`);
        assert.strictEqual(fs.statSync(env).mode & 0o777, 0o600);
    });

    it("the release download: releaseAuth reaches curl on its stdin (-H @-), never the script or curl's argv", async () => {
        const seen = path.join(box.dir, "header.seen");
        const stub = stubBin({ curl: `cat > '${seen}'; exit 22` });
        const savedPath = process.env.PATH;
        process.env.PATH = `${stub.dir}:${savedPath}`;
        try {
            const state: ReleaseDirState = { host, privateKey: "", baseDir: "/opt/complinist", service: "complinist", version: "1.0.0", sha256: "a".repeat(64), artifact: { url: "https://example.test/a.tar.gz" }, auth: `Deploy-Token: ${SECRET}`, authOrigins: ["https://example.test"], stack: "dev", acknowledgeHostChange: [] };
            await assert.rejects(releaseDirProvider.create!(state), /release 1\.0\.0 was not installed/);
        } finally {
            process.env.PATH = savedPath;
        }
        for (const { script } of sent) assert.ok(!script.includes(SECRET), "a script carries the secret");
        const calls = stub.calls();
        assert.strictEqual(calls.length, 1);
        assert.ok(!calls.some((c) => c.args.some((a) => a.includes(SECRET))), "curl's argv carries the secret");
        assert.ok((calls[0]?.args.join(" ") ?? "").includes("-H @-"), "curl reads the header from stdin");
        assert.strictEqual(fs.readFileSync(seen, "utf8"), `Deploy-Token: ${SECRET}\n`);
    });
});
