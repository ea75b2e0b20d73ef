import * as assert from "assert";
import * as cp from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ActivationRun, renderActivationPoll, renderActivationRead, renderActivationStart } from "../../../infra/render/activation";
import { DeploySettings, hostProgramPart, renderDeploySettings, renderHostProgram } from "../../../infra/render/hostProgram";
import { hostLayout } from "../../../infra/render/layout";
import { renderLocked } from "../../../infra/render/lock";
import { parseKeyValues } from "../../../infra/render/protocol";
import { renderReleaseDelete, renderReleaseInstall, renderReleaseProbe } from "../../../infra/render/release";
import { renderServiceApply, renderServiceDelete, renderServiceRead, ServiceFiles } from "../../../infra/render/service";
import { q } from "../../../infra/render/shell";
import { runBash, stubBin } from "./bash";

const l = hostLayout("/opt/complinist", "complinist");
const files: ServiceFiles = {
    service: "complinist",
    user: "complinist",
    unitText: "[Unit]\nDescription=instance %i\n",
    logrotateText: "/var/log/complinist/app.log {\n    daily\n}\n",
    serviceUnitText: "[Unit]\nDescription=umbrella\n",
    proxyUnitText: "[Unit]\nDescription=proxy\n",
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
    serviceRead: renderServiceRead(l, "complinist", true),
    serviceReadTempRoot: renderServiceRead(l, "complinist", false),
    serviceDelete: renderServiceDelete(l, "complinist", true, "ci@runner"),
    serviceDeleteTempRoot: renderServiceDelete(l, "complinist", false, "ci@runner"),
    activationStart: renderActivationStart(l, run),
    activationStartWithHook: renderActivationStart(l, { ...run, runHook: true }),
    activationPoll: renderActivationPoll(l, "complinist", run.id),
    activationRead: renderActivationRead(l),
    locked: renderLocked(l, "complinist", "ci@runner"),
    hostProgram: renderHostProgram(l, "complinist"),
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
        assert.deepStrictEqual([...hostProgramPart("activate").matchAll(/pause_point ([a-z-]+)/g)].map((m) => m[1]), ["gate", "switch", "switch-back"]);
        const install = scripts.releaseInstallUpload as string;
        assert.ok(install.indexOf("trap '") < install.indexOf("take_lock"), "a refused lock still removes the upload");
    });

    it("the service script reads the env file from stdin, never from its own text", () => {
        const s = scripts.serviceApply as string;
        assert.ok(s.includes("tmp_env='/etc/complinist/complinist.env'.tmp.$$\ncat > \"$tmp_env\"\nchmod 0600 \"$tmp_env\""));
        assert.ok(!/SECRET|PASSWORD/.test(s));
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
    let tmp: string;
    let canary: string;
    let hostile: string;

    beforeEach(() => {
        tmp = fs.mkdtempSync(path.join(os.tmpdir(), "hostile-"));
        canary = path.join(tmp, "pwned");
        hostile = `v1'$(touch ${canary})\`touch ${canary}\`;touch ${canary} "a b" $HOME *\nx`;
    });

    afterEach(() => {
        assert.ok(!fs.existsSync(canary), "a hostile value was executed");
    });

    it("q() round-trips through bash", () => {
        for (const h of [hostile, "$(touch /tmp/pwned)", "`id`", "a'b", "x; rm -rf /", "a\nb", "", "'", "''"]) {
            const r = cp.spawnSync("bash", ["-c", `printf '%s' ${q(h)}`], { encoding: "utf8" });
            assert.strictEqual(r.stdout, h);
        }
        assert.throws(() => q("a\0b"), /NUL/);
    });

    it("the activation start hands each value to systemd-run as one argument", async () => {
        const root = path.join(tmp, "root");
        const rl = hostLayout("/opt/complinist", "complinist", root);
        fs.mkdirSync(path.dirname(rl.hostProgram), { recursive: true });
        fs.writeFileSync(rl.hostProgram, "#!/bin/bash\n", { mode: 0o755 });
        const stub = stubBin({ "systemd-run": "exit 0" });
        // The id names a file: the provider derives it from the version with [^A-Za-z0-9] replaced; here only '/' is.
        const id = hostile.replace(/\//g, "_");
        const a: ActivationRun = { ...run, id, version: hostile, sha256: hostile, who: hostile, runHook: true };
        const r = await runBash(`set -euo pipefail\n${renderActivationStart(rl, a)}`, { env: { PATH: `${stub.dir}:${process.env.PATH}` }, input: "SETTINGS=1\n" });
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
    });

    it("renderLocked writes the hostile owner literally into the owner file", async () => {
        const rl = hostLayout("/opt/complinist", "complinist", path.join(tmp, "root"));
        const r = await runBash(`set -euo pipefail\n${renderLocked(rl, "complinist", hostile)}echo locked`);
        assert.strictEqual(r.code, 0, r.stderr);
        assert.strictEqual(r.stdout, "locked\n");
        const owner = fs.readFileSync(`${rl.lockFile}.owner`, "utf8");
        assert.ok(owner.startsWith(`${hostile} pid `), owner);
    });

    it("the release scripts touch only the directory of the hostile version", async () => {
        const rl = hostLayout("/opt/complinist", "complinist", path.join(tmp, "root"));
        const bad = hostile.replace(/\n/g, " ").replace(/\//g, "_");
        fs.mkdirSync(path.join(rl.releasesDir, bad), { recursive: true });
        fs.mkdirSync(path.join(rl.releasesDir, "1.0.0"));
        const probe = await runBash(`set -euo pipefail\n${renderReleaseProbe(rl, bad)}`);
        assert.strictEqual(probe.code, 0, probe.stderr);
        assert.strictEqual(parseKeyValues(probe.stdout).complete, "false");
        const del = await runBash(`set -euo pipefail\n${renderReleaseDelete(rl, bad, "complinist", "ci@runner")}`);
        assert.strictEqual(del.code, 0, del.stderr);
        assert.deepStrictEqual(fs.readdirSync(rl.releasesDir), ["1.0.0"]);
    });

    it("the release download passes a hostile URL to curl as one argument", async () => {
        const rl = hostLayout("/opt/complinist", "complinist", path.join(tmp, "root"));
        const stub = stubBin({ curl: "exit 22" });
        const url = `https://example.test/a.tar.gz?x=${hostile}`;
        const r = await runBash(`set -euo pipefail\n${renderReleaseInstall(rl, { ...install, source: { url } })}`, { env: { PATH: `${stub.dir}:${process.env.PATH}` } });
        assert.strictEqual(r.code, 22);
        const calls = stub.calls();
        assert.strictEqual(calls.length, 1);
        const args = calls[0]?.args ?? [];
        assert.deepStrictEqual(args.slice(0, 6), ["-fsSL", "--max-time", "600", "--proto", "=http,https", "-o"]);
        assert.match(args[6] ?? "", new RegExp(`^${rl.releasesDir}/\\.download-1\\.0\\.0\\.\\d+\\.tar\\.gz\\.part$`));
        assert.strictEqual(args[7], url);
        assert.strictEqual(args.length, 8);
        assert.deepStrictEqual(fs.readdirSync(rl.releasesDir), [], "the trap removed the temp dir and the partial download");
    });

    it("the deploy settings keep hostile values literal when the host program sources them", async () => {
        const s: DeploySettings = { ...settings, rollbackVersion: hostile, beforeActivate: hostile, checks: [{ path: hostile, status: 200, maxMs: 1 }, ...settings.checks] };
        const file = path.join(tmp, "deploy.conf");
        fs.writeFileSync(file, renderDeploySettings(s));
        const r = await runBash(`set -euo pipefail\n. ${q(file)}\nprintf '%s\\0' "$ROLLBACK_VERSION" "$HOOK" "\${#CHECKS[@]}" "\${CHECKS[@]}" "$PORT" "$INTERVAL" "$STANDBY" "$REV"`);
        assert.strictEqual(r.code, 0, r.stderr);
        assert.deepStrictEqual(r.stdout.split("\0").slice(0, -1), [hostile, hostile, "3", `${hostile}|200|1`, "/|200|2000", "/login|302|0", "5000", "0.500", "1", "0123456789abcdef"]);
    });

    it("the host program keeps a hostile layout literal (its own path in --help)", async () => {
        const root = path.join(tmp, `it's $(touch ${canary}) \`touch ${canary}\``);
        const program = renderHostProgram(hostLayout("/opt/complinist", "complinist", root), "complinist");
        const r = await runBash(`${program}`.replace(/\nmain "\$@"\n$/, '\nmain --help\n'));
        assert.strictEqual(r.code, 0, r.stderr);
        assert.ok(r.stdout.includes(`usage: ${root}/usr/local/sbin/complinist status`), r.stdout);
    });
});
