import * as assert from "assert";
import { spawn } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { buildArtifacts, BuiltArtifact } from "../../scripts/build-artifacts";
import { PROJECT_DIR } from "../../scripts/engine";
import { ProgramConfig, RealEngine } from "./engine";
import { TestHost, useHosts, hostEntry } from "../../dev/hosts";

/**
 * The operator's own commands through the real engine, on one real host: `npm run preview`,
 * `deploy`, `drift`, `rollback`, `status`, `logs` and `destroy` run as an operator runs them
 * (their stack file in the project directory, a temporary file backend), plus what only the
 * real engine can show: a preview that touches no host, the backend's lock against a second
 * `up`, and secrets kept out of the state files and every line the CLI printed.
 */

const BASE = "/opt/complinist";
const SECRETS = ["complinist:sshPrivateKey", "complinist:releaseAuth"];
const RELEASE_AUTH = `Deploy-Token: e2e-${crypto.randomBytes(8).toString("hex")}`;

interface Ran {
    code: number;
    stdout: string;
    stderr: string;
}

describe("operator commands through the real engine", function () {
    this.timeout(600000);
    const hosts: TestHost[] = useHosts(1, { names: ["ops-1"] });
    const stack = `e2e-ops-${crypto.randomBytes(3).toString("hex")}`;
    let arts: Record<string, BuiltArtifact>;
    let engine: RealEngine;
    /** Everything every command printed: the secrets test reads it all. */
    let printed = "";

    const sh = (cmd: string) => (hosts[0] as TestHost).run(cmd);
    const health = () => sh("curl -sS -m 5 http://127.0.0.1:5000/health || true");
    /** What a preview must not change: the host's record, its releases, its units and its proxy config. */
    const hostFingerprint = () => sh(`cat ${BASE}/revisions.log; ls -la --time-style=+%s ${BASE}/releases; readlink ${BASE}/current; systemctl show -p MainPID --value complinist@5001 complinist@5002; md5sum /etc/complinist/haproxy.cfg 2>/dev/null || true; wc -l < /var/log/complinist/deploy.log`);

    function config(version: string, rollbackVersion: string | undefined, published: string[]): ProgramConfig {
        const h = hosts[0] as TestHost;
        return {
            "complinist:mode": "release",
            "complinist:version": version,
            "complinist:rollbackVersion": rollbackVersion,
            "complinist:keepReleases": "3",
            "complinist:releases": Object.fromEntries(published.map((v) => [v, { path: path.relative(PROJECT_DIR, (arts[v] as BuiltArtifact).file), sha256: (arts[v] as BuiltArtifact).sha256 }])),
            "complinist:hosts": [hostEntry(h)],
            "complinist:sshPrivateKey": h.privateKey,
            "complinist:releaseAuth": { header: RELEASE_AUTH, origins: ["https://registry.example.com"] },
            "complinist:service": { command: "bin/start", environment: { COMPLINIST_ENV: "e2e" } },
            "complinist:health": { timeoutSeconds: 20, intervalMs: 300 },
        };
    }

    /** `npm run <script> -- --stack <stack> …` from the project directory, as an operator types it. */
    function npmRun(script: string, args: string[], stopWhen?: (out: string) => boolean): Promise<Ran> {
        return new Promise((resolve, reject) => {
            const p = spawn("npm", ["run", "-s", script, "--", "--stack", stack, ...args], { cwd: PROJECT_DIR, env: { ...process.env, ...engine.scriptEnv() }, stdio: ["ignore", "pipe", "pipe"] });
            let stdout = "";
            let stderr = "";
            p.stdout.on("data", (d: Buffer) => {
                stdout += d.toString();
                if (stopWhen?.(stdout)) p.kill("SIGINT");
            });
            p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
            p.on("error", reject);
            p.on("close", (code) => {
                printed += stdout + stderr;
                resolve({ code: code ?? -1, stdout, stderr });
            });
        });
    }

    before(async () => {
        const built = await buildArtifacts(path.join(PROJECT_DIR, ".build", "e2e-artifacts"));
        arts = Object.fromEntries(built.map((a) => [a.version, a]));
        engine = new RealEngine({ stack, inProject: true, env: { COMPLINIST_DEPLOYER: "e2e" } });
    });
    after(async () => {
        await engine?.close();
    });

    it("npm run deploy --yes: the first deploy serves 1.0.0 and ends with the deploy record", async () => {
        await engine.setConfig(config("1.0.0", undefined, ["1.0.0"]), SECRETS);
        const r = await npmRun("deploy", ["--yes"]);
        assert.strictEqual(r.code, 0, r.stderr);
        assert.match(r.stdout, /DEPLOYED_VERSION=1\.0\.0\s*\nDEPLOYED_COMMIT=\S+\s*\nDEPLOYED_AT=\d{4}-/);
        assert.match(await health(), /"status": ?"healthy".*"version": ?"1\.0\.0"/);
    });

    it("npm run preview of an upgrade prints exactly the expected changes and touches no host", async () => {
        await engine.setConfig(config("1.1.0", "1.0.0", ["1.0.0", "1.1.0"]), SECRETS);
        const before = await hostFingerprint();
        const r = await npmRun("preview", []);
        assert.strictEqual(r.code, 0, r.stderr);
        // The new release on the host (its component and its directory), and the activation's version,
        // sha256 and rollback pin, and the failover the kept standby turns on: nothing else.
        assert.match(r.stdout, /\+ complinist:host:Release: \(create\)\n\s*\[urn=[^\]]*::complinist-ops-1-release-1\.1\.0\]/);
        assert.match(r.stdout, /\+ pulumi-nodejs:dynamic\/complinist:ReleaseDir: \(create\)\n\s*\[urn=[^\]]*::complinist-ops-1-release-1\.1\.0-dir\]/);
        const activation = /~ pulumi-nodejs:dynamic\/complinist:Activation: \(update\)\n[^\n]*\n\s*\[urn=[^\]]*::complinist-ops-1-activation-switch\]\n([\s\S]*?)\n(?=@ |\s*--outputs:--|Resources:)/.exec(r.stdout)?.[1];
        assert.ok(activation !== undefined, r.stdout);
        const changedKeys = [...activation.matchAll(/^\s+[~+-] (\w+)\s*:/gm)].map((m) => m[1]).sort();
        assert.deepStrictEqual(changedKeys, ["failoverAfterSeconds", "rollbackVersion", "sha256", "version"]);
        assert.match(activation, /~ version\s*: "1\.0\.0" => "1\.1\.0"/);
        assert.match(activation, /~ failoverAfterSeconds\s*: 0 => 10/);
        assert.match(activation, /\+ rollbackVersion\s*: "1\.0\.0"/);
        assert.match(r.stdout, /preview: 2 to create, 1 to update \(stack/);
        assert.strictEqual(await hostFingerprint(), before, "the preview changed nothing on the host");
    });

    it("npm run deploy applies the upgrade; a second preview shows no changes", async () => {
        const r = await npmRun("deploy", ["--yes"]);
        assert.strictEqual(r.code, 0, r.stderr);
        assert.match(await health(), /"version": ?"1\.1\.0"/);
        const again = await npmRun("preview", []);
        assert.strictEqual(again.code, 0, again.stderr);
        assert.match(again.stdout, /preview: no changes/);
    });

    it("npm run drift exits 0 when clean, 2 naming the resource after a hand-moved link, and 0 again after the next deploy", async () => {
        assert.strictEqual((await npmRun("drift", [])).code, 0);
        await sh(`ln -sfn releases/1.0.0 ${BASE}/current.tmp && mv -T ${BASE}/current.tmp ${BASE}/current`);
        const drift = await npmRun("drift", []);
        assert.strictEqual(drift.code, 2, drift.stdout + drift.stderr);
        assert.match(drift.stdout, /complinist-ops-1-activation-switch/);
        const fix = await npmRun("deploy", ["--yes"]);
        assert.strictEqual(fix.code, 0, fix.stderr);
        assert.strictEqual(await sh(`readlink ${BASE}/current`), "releases/1.1.0");
        assert.strictEqual((await npmRun("drift", [])).code, 0);
    });

    it("npm run status exits 0 on the declared version; npm run logs prints the host's deploy log", async () => {
        const status = await npmRun("status", []);
        assert.strictEqual(status.code, 0, status.stdout + status.stderr);
        assert.match(status.stdout, /1\.1\.0/);
        const logs = await npmRun("logs", ["--lines", "5"]);
        assert.strictEqual(logs.code, 0, logs.stderr);
        assert.match(logs.stdout, /ops-1.*deploy\.log/);
    });

    it("npm run rollback --yes pins 1.0.0, serves it from the warm standby and rewrites the stack file", async () => {
        const r = await npmRun("rollback", ["--yes"]);
        assert.strictEqual(r.code, 0, r.stdout + r.stderr);
        assert.match(await health(), /"version": ?"1\.0\.0"/);
        const file = fs.readFileSync(engine.stackFile(), "utf8");
        assert.match(file, /complinist:version: 1\.0\.0/);
        assert.match(file, /complinist:rollbackVersion: 1\.1\.0/);
    });

    it("two ups of one stack at once: the backend's lock refuses the second, naming the holder; the host ends whole", async () => {
        await engine.setConfig(config("1.1.0", "1.0.0", ["1.0.0", "1.1.0"]), SECRETS);
        const first = npmRun("up", ["--yes"]);
        // The second starts once the first holds the backend's lock (the file backend's lock file exists).
        const locks = path.join(engine.backend.dir, ".pulumi", "locks");
        const held = (): boolean => fs.existsSync(locks) && fs.readdirSync(locks, { recursive: true }).some((f) => String(f).endsWith(".json"));
        const deadline = Date.now() + 120000;
        while (!held()) {
            if (Date.now() > deadline) throw new Error("the first up never took the lock");
            await new Promise((r) => setTimeout(r, 50));
        }
        const second = await npmRun("up", ["--yes"]);
        assert.notStrictEqual(second.code, 0);
        assert.match(second.stdout + second.stderr, /currently locked by 1 lock\(s\)[\s\S]*created by \S+@\S+ \(pid \d+\)/);
        const done = await first;
        assert.strictEqual(done.code, 0, done.stderr);
        assert.match(await health(), /"version": ?"1\.1\.0"/);
        assert.match(await sh(`tail -n 1 ${BASE}/revisions.log`), /version=1\.1\.0.*outcome=activated/);
    });

    it("no SSH key, releaseAuth or generated secret in the state files or in anything a command printed", async () => {
        const h = hosts[0] as TestHost;
        const generated = await sh("sed -n 's/^SECRET_KEY=\"\\(.*\\)\"$/\\1/p' /etc/complinist/complinist.env");
        assert.ok(generated.length >= 48, "the generated secret is in the env file");
        const keyBody = h.privateKey.split("\n")[1] as string;
        for (const [what, text] of [["SSH key", keyBody], ["releaseAuth", RELEASE_AUTH], ["generated secret", generated]] as const) {
            assert.ok(!engine.stateContainsPlaintext(text), `${what} in the backend's files`);
            assert.ok(!printed.includes(text), `${what} in a command's output`);
            assert.ok(!fs.readFileSync(engine.stackFile(), "utf8").includes(text), `${what} in the stack file`);
        }
        // The generated secret is stable across updates: the env file kept it through every deploy above.
        assert.strictEqual(await sh("sed -n 's/^SECRET_KEY=\"\\(.*\\)\"$/\\1/p' /etc/complinist/complinist.env"), generated);
    });

    it("npm run destroy --yes removes the stack's units, proxy config and host program; the logs stay", async () => {
        const r = await npmRun("destroy", ["--yes"]);
        assert.strictEqual(r.code, 0, r.stdout + r.stderr);
        const left = await sh(
            "ls /etc/systemd/system | grep -i complinist || true; ls /etc/complinist 2>/dev/null || true; ls /usr/local/sbin/complinist 2>/dev/null || true; systemctl list-units --all --no-legend 'complinist*' | grep -v not-found || true",
        );
        assert.strictEqual(left, "", `left on the host:\n${left}`);
        assert.match(await sh("ls /var/log/complinist"), /deploy\.log/);
        assert.strictEqual(await sh("curl -s -o /dev/null -w '%{http_code}' -m 3 http://127.0.0.1:5000/health || true"), "000");
    });
});
