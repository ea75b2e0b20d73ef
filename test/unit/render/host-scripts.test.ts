import * as assert from "assert";
import * as cp from "child_process";
import * as fs from "fs";
import * as path from "path";
import { ActivationRun, renderActivationPoll, renderActivationRead, renderActivationStart } from "../../../infra/render/activation";
import { DeploySettings, hostProgramPart, renderDeploySettings, renderHostProgram } from "../../../infra/render/hostProgram";
import { renderFirewallRules, renderFirewallUnit } from "../../../infra/render/firewall";
import { hostLayout } from "../../../infra/render/layout";
import { renderLocked } from "../../../infra/render/lock";
import { parseKeyValues } from "../../../infra/render/protocol";
import { renderImageReleaseInstall, renderImageReleaseProbe, renderReleaseDelete, renderReleaseInstall, renderReleaseProbe } from "../../../infra/render/release";
import { renderServiceApply, renderServiceDelete, renderServiceRead, ServiceFiles } from "../../../infra/render/service";
import { q } from "../../../infra/render/shell";
import { HostTarget } from "../../../infra/providers/host";
import { releaseDirProvider, ReleaseDirState } from "../../../infra/providers/release";
import { serviceUnitProvider, ServiceUnitState } from "../../../infra/providers/service";
import { useTransportFactory } from "../../../infra/transport";
import { localTransport } from "../../../infra/transport/local";
import { MAX_SCRIPT_BYTES } from "../../../infra/transport/ssh/exec";
import { Sandbox, sandbox, stubBin } from "./bash";

const l = hostLayout("/opt/complinist", "complinist");
const files: ServiceFiles = {
    service: "complinist",
    user: "complinist",
    unitText: "[Unit]\nDescription=instance %i\n",
    logrotateText: "/var/log/complinist/app.log {\n    daily\n}\n",
    serviceUnitText: "[Unit]\nDescription=umbrella\n",
    proxyUnitText: "[Unit]\nDescription=proxy\n",
    firewallUnitText: renderFirewallUnit({ service: "complinist" }),
    firewallRules: renderFirewallRules({ service: "complinist", port: 5000 }),
    hostProgram: "#!/bin/bash\necho host program\n",
    who: "ci@runner",
};
const run: ActivationRun = { id: "1_0_0-abc-def", service: "complinist", version: "1.0.0", sha256: "a".repeat(64), who: "ci@runner", runHook: false, budgetSeconds: 600 };
const settings: DeploySettings = {
    port: 5000,
    user: "complinist",
    healthPath: "/health",
    timeoutSeconds: 30,
    intervalMs: 500,
    soakSeconds: 10,
    drainSeconds: 30,
    checks: [
        { path: "/", status: 200, maxMs: 2000 },
        { path: "/login", status: 302, maxMs: 0 },
    ],
    standby: true,
    rollbackVersion: "0.9.0",
    beforeActivate: "bin/migrate --yes 'it''s' \"$HOME\"",
    hookTimeoutSeconds: 300,
    canary: { percent: 0, seconds: 0 },
    watch: { errorRateFactor: 10, minRequests: 20, maxErrorRatio: 0.01 },
    acknowledged: false,
    revision: "0123456789abcdef",
};

const install = { version: "1.0.0", sha256: "a".repeat(64), authOnStdin: false, who: "ci@runner", service: "complinist", commit: "abc123" };

/** Every script a provider sends to a host, and the host program it installs. */
const scripts: Record<string, string> = {
    releaseProbe: renderReleaseProbe(l, "1.0.0"),
    releaseInstallUpload: renderReleaseInstall(l, { ...install, source: { uploaded: "/opt/complinist/releases/.upload-1.0.0-42-abc.tar.gz" } }),
    releaseInstallUrl: renderReleaseInstall(l, { ...install, source: { url: "https://example.test/a.tar.gz" } }),
    releaseInstallUrlWithAuth: renderReleaseInstall(l, { ...install, source: { url: "https://example.test/a.tar.gz" }, authOnStdin: true }),
    releaseDelete: renderReleaseDelete(l, "1.0.0", "complinist", "ci@runner"),
    serviceApply: renderServiceApply(l, files, true),
    serviceApplyTempRoot: renderServiceApply(l, files, false),
    serviceRead: renderServiceRead(l, "complinist", true, files.firewallRules),
    serviceReadTempRoot: renderServiceRead(l, "complinist", false, files.firewallRules),
    serviceDelete: renderServiceDelete(l, "complinist", true, "ci@runner"),
    serviceDeleteTempRoot: renderServiceDelete(l, "complinist", false, "ci@runner"),
    activationStart: renderActivationStart(l, run),
    activationStartWithHook: renderActivationStart(l, { ...run, runHook: true }),
    activationPoll: renderActivationPoll(l, "complinist", run.id),
    activationRead: renderActivationRead(l),
    locked: renderLocked(l, "complinist", "ci@runner"),
    hostProgram: renderHostProgram(l, "complinist"),
    hostProgramContainers: renderHostProgram(l, "complinist", "docker"),
    imageReleaseInstall: renderImageReleaseInstall(l, { version: "1.0.0", image: `registry.example.com/complinist:1.0.0@sha256:${"b".repeat(64)}`, who: "ci@runner", service: "complinist", commit: "abc123" }),
    imageReleaseProbe: renderImageReleaseProbe(l, "1.0.0"),
};

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

    it("the deploy settings parse with bash -n and pass shellcheck", function () {
        const text = renderDeploySettings(settings);
        const r = cp.spawnSync("bash", ["-n"], { input: text, encoding: "utf8" });
        assert.strictEqual(r.status, 0, r.stderr);
        // A sourced settings file: its variables are used by the host program, not by itself.
        shellcheck(this, text, ["-e", "SC2034"]);
    });

    it("shellcheck is not a rubber stamp: an unquoted expansion is a warning", function () {
        if (!hasShellcheck) this.skip();
        const r = cp.spawnSync("shellcheck", ["-s", "bash", "-S", "warning", "-"], { input: 'f=$1\nrm -rf $f/*\n', encoding: "utf8" });
        assert.notStrictEqual(r.status, 0);
    });

    it("the host program is one bash program with the layout quoted in front of the command families", () => {
        const s = scripts.hostProgram as string;
        assert.ok(s.startsWith("#!/bin/bash\n"));
        assert.ok(s.includes("\nset -euo pipefail\n"));
        assert.ok(s.includes("\nLOCK_FILE='/opt/complinist/.deploy.lock'\n"));
        assert.ok(s.includes("\nPROXY_CONFIG='/etc/complinist/haproxy.cfg'\n"));
        assert.ok(s.trimEnd().endsWith('main "$@"'));
        for (const fn of ["take_lock", "record", "json_top", "proxy_config", "instance_start", "activate", "cmd_rollback"]) {
            assert.match(s, new RegExp(`^${fn}\\(\\) \\{`, "m"), `defines ${fn}`);
        }
    });

    for (const name of ["serviceApply", "serviceApplyTempRoot", "releaseInstallUpload", "releaseInstallUrl", "releaseDelete"]) {
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

    it("every script fits in one argument of bash -c with room to grow (the service apply carries the host program)", () => {
        const withHostProgram = { ...scripts, serviceApply: renderServiceApply(l, { ...files, hostProgram: renderHostProgram(l, "complinist", "docker") }, true) };
        for (const [name, text] of Object.entries(withHostProgram)) {
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
        assert.deepStrictEqual([...hostProgramPart("activate").matchAll(/pause_point ([a-z-]+)/g)].map((m) => m[1]), ["canary", "switch-back", "gate", "switch"]);
        const install = scripts.releaseInstallUpload as string;
        assert.ok(install.indexOf("trap '") < install.indexOf("take_lock"), "a refused lock still removes the upload");
    });

    it("the service script reads the env file from stdin into a temp name it makes 0600 before the rename", () => {
        const s = scripts.serviceApply as string;
        assert.ok(s.includes("tmp_env='/etc/complinist/complinist.env'.tmp.$$\ncat > \"$tmp_env\"\nchmod 0600 \"$tmp_env\""));
    });

    it("the activation is started as a transient unit and left running (no --wait), its settings from stdin", () => {
        const s = scripts.activationStart as string;
        assert.match(s, /^systemd-run --quiet --collect --unit='complinist-activate-1_0_0-abc-def' -p RuntimeMaxSec=600 -p KillMode=mixed /m);
        assert.ok(!s.includes("--wait"));
        assert.ok(s.includes("cat > '/opt/complinist/.activations/1_0_0-abc-def.conf'"));
        assert.ok(!s.includes("--hook"));
        assert.ok((scripts.activationStartWithHook as string).includes(" --hook\n"));
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

    it("the activation start hands each value to systemd-run as one argument", async () => {
        const root = path.join(box.dir, "root");
        const rl = hostLayout("/opt/complinist", "complinist", root);
        fs.mkdirSync(path.dirname(rl.hostProgram), { recursive: true });
        fs.writeFileSync(rl.hostProgram, "#!/bin/bash\n", { mode: 0o755 });
        const stub = stubBin({ "systemd-run": "exit 0" });
        // The id names a file: the provider derives it from the version with [^A-Za-z0-9] replaced; here only '/' is.
        const id = hostile.replace(/\//g, "_");
        const a: ActivationRun = { ...run, id, version: hostile, sha256: hostile, who: hostile, runHook: true };
        const r = await box.run(`set -euo pipefail\n${renderActivationStart(rl, a)}`, {
            env: { PATH: `${stub.dir}:${process.env.PATH}` },
            input: "SETTINGS=1\n",
            writes: [/^root\/opt\/$/, /^root\/opt\/complinist\/$/, /^root\/opt\/complinist\/\.activations\/$/, /^root\/opt\/complinist\/\.activations\/[^/]+\.conf$/],
        });
        assert.strictEqual(r.code, 0, r.stderr);
        assert.strictEqual(parseKeyValues(r.stdout).started, "true");
        const settingsFile = path.posix.join(rl.activationsDir, `${id}.conf`);
        assert.deepStrictEqual(stub.calls(), [
            {
                tool: "systemd-run",
                args: [
                    "--quiet",
                    "--collect",
                    `--unit=complinist-activate-${id}`,
                    "-p",
                    "RuntimeMaxSec=600",
                    "-p",
                    "KillMode=mixed",
                    rl.hostProgram,
                    "activate",
                    "--id",
                    id,
                    "--version",
                    hostile,
                    "--sha",
                    hostile,
                    "--who",
                    hostile,
                    "--settings",
                    settingsFile,
                    "--hook",
                ],
            },
        ]);
        assert.strictEqual(fs.readFileSync(settingsFile, "utf8"), "SETTINGS=1\n", "the settings come from stdin");
        assert.strictEqual(fs.statSync(settingsFile).mode & 0o777, 0o600);
        assert.deepStrictEqual(fs.readdirSync(rl.activationsDir), [`${id}.conf`]);
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
        assert.deepStrictEqual(args.slice(0, 6), ["-sS", "--max-time", "600", "--proto", "=http,https", "-o"]);
        assert.match(args[6] ?? "", new RegExp(`^${rl.releasesDir}/\\.download-v1_[^/]*\\.\\d+\\.tar\\.gz\\.part$`));
        assert.deepStrictEqual(args.slice(7), ["-w", "%{http_code} %{redirect_url}", url]);
        assert.deepStrictEqual(fs.readdirSync(rl.releasesDir), [], "the trap removed the temp dir and the partial download");
    });

    it("the service apply writes hostile names and texts literally, only where the layout says", async () => {
        const rl = hostLayout("/opt/complinist", "complinist", path.join(box.dir, "root"));
        const texts: ServiceFiles = { ...files, who: hostile, unitText: hostile, serviceUnitText: hostile, proxyUnitText: hostile, firewallUnitText: hostile, firewallRules: hostile, hostProgram: hostile, logrotateText: hostile };
        const r = await box.run(`set -euo pipefail\n${renderServiceApply(rl, texts, false)}`, {
            input: "A=1\n",
            writes: [
                ...LOCKED,
                /^root\/opt\/complinist\/(releases|instances|shared|\.activations)\/$/,
                /^root\/etc\/$/,
                /^root\/etc\/(complinist|systemd|logrotate\.d)\/$/,
                /^root\/etc\/systemd\/system\/$/,
                /^root\/etc\/systemd\/system\/complinist(@|-proxy|-firewall)?\.service$/,
                /^root\/etc\/systemd\/system\/complinist\.service\.wants\/$/,
                /^root\/etc\/complinist\/(complinist\.env|firewall\.nft)$/,
                /^root\/etc\/logrotate\.d\/complinist$/,
                /^root\/usr\/$/,
                /^root\/usr\/local\/$/,
                /^root\/usr\/local\/sbin\/$/,
                /^root\/usr\/local\/sbin\/complinist$/,
            ],
        });
        assert.strictEqual(r.code, 0, r.stderr);
        assert.strictEqual(fs.readFileSync(rl.instanceUnitFile, "utf8"), hostile);
        assert.strictEqual(fs.readFileSync(rl.hostProgram, "utf8"), hostile);
        assert.ok(fs.readFileSync(`${rl.lockFile}.owner`, "utf8").startsWith(`${hostile} pid `));
    });

    it("the deploy settings keep hostile values literal when the host program sources them", async () => {
        const s: DeploySettings = { ...settings, rollbackVersion: hostile, beforeActivate: hostile, checks: [{ path: hostile, status: 200, maxMs: 1 }, ...settings.checks] };
        const file = path.join(box.dir, "deploy.conf");
        fs.writeFileSync(file, renderDeploySettings(s));
        const r = await box.run(`set -euo pipefail\n. ${q(file)}\nprintf '%s\\0' "$ROLLBACK_VERSION" "$HOOK" "\${#CHECKS[@]}" "\${CHECKS[@]}" "$PORT" "$INTERVAL" "$STANDBY" "$REV"`, { writes: [] });
        assert.strictEqual(r.code, 0, r.stderr);
        assert.deepStrictEqual(r.stdout.split("\0").slice(0, -1), [hostile, hostile, "3", `${hostile}|200|1`, "/|200|2000", "/login|302|0", "5000", "0.500", "1", "0123456789abcdef"]);
    });

    it("the host program keeps a hostile layout literal (its own path in --help)", async () => {
        const root = path.join(box.dir, `it's $(touch ${canary}) \`touch pwned\``);
        const program = renderHostProgram(hostLayout("/opt/complinist", "complinist", root), "complinist");
        const r = await box.run(`${program}`.replace(/\nmain "\$@"\n$/, "\nmain --help\n"), { writes: [] });
        assert.strictEqual(r.code, 0, r.stderr);
        assert.ok(r.stdout.includes(`usage: ${root}/usr/local/sbin/complinist status`), r.stdout);
    });

    it("the sandbox sees a value bash executes, wherever it writes (the check can fail)", async () => {
        for (const leak of [`touch ${canary}`, "touch pwned", "touch ~/pwned", 'touch "$TMPDIR/pwned"']) {
            await assert.rejects(box.run(leak, { writes: [] }), assert.AssertionError, leak);
            fs.rmSync(canary, { force: true });
            for (const d of [box.cwd, box.home, box.tmpdir]) for (const f of fs.readdirSync(d)) fs.rmSync(path.join(d, f));
        }
    });
});

describe("secrets reach a host on stdin only, never in a script's text or a command's argv", () => {
    const SECRET = "s3cr3t-Zq9-never-in-argv";
    const host: HostTarget = { name: "local-1", address: "127.0.0.1", port: 22, user: "root", hostKey: "ssh-ed25519 AAAA" };
    let box: Sandbox;
    let sent: Array<{ script: string; stdin: string }>;

    beforeEach(() => {
        box = sandbox("secrets-");
        sent = [];
        useTransportFactory((conn) => {
            const t = localTransport({ name: conn.name, root: path.join(box.dir, "root"), systemd: false });
            return { ...t, exec: (script, o) => (sent.push({ script, stdin: o?.stdin?.toString("utf8") ?? "" }), t.exec(script, o)) };
        });
    });
    afterEach(() => {
        useTransportFactory(undefined);
        box.remove();
    });

    it("the service apply: the env file's secret travels on stdin into the 0600 env file, in no script", async () => {
        const state: ServiceUnitState = { ...files, host, privateKey: "", baseDir: "/opt/complinist", envText: `SECRET_KEY="${SECRET}"\n`, stack: "dev", allowServiceInterruption: false };
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
            const state: ReleaseDirState = { host, privateKey: "", baseDir: "/opt/complinist", service: "complinist", version: "1.0.0", sha256: "a".repeat(64), artifact: { url: "https://example.test/a.tar.gz" }, auth: `Deploy-Token: ${SECRET}` };
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
