import * as assert from "assert";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { hostLayout, HostLayout } from "../../../infra/render/layout";
import { renderLogFiles } from "../../../infra/render/logFiles";
import { renderReleaseDelete } from "../../../infra/render/release";
import { AgentInstall, renderAgentConfig, renderServiceApply, ServiceFiles } from "../../../infra/render/service";
import { runBash } from "./bash";

/**
 * The privilege rule on the log files: root never appends to, chmods or chowns a path the
 * service user could have replaced, and never follows a link there. Run for real under a
 * temp root; the migration cases need root (to hand the directory to another uid, as the
 * old layout had it), as on a host.
 */

const files: ServiceFiles = {
    service: "complinist",
    user: "complinist",
    unitText: "[Unit]\n",
    serviceUnitText: "[Unit]\n",
    proxyUnitText: "[Unit]\n",
    failoverUnitText: "[Unit]\nDescription=failover\n",
    firewallUnitText: "[Unit]\n",
    firewallRules: "# none\n",
    agentConfigText: renderAgentConfig("/opt/complinist", "process"),
    logrotateText: "# none\n",
    who: "ci@runner",
};
/** The agent already installed: these scripts run without one (a temp root has none). */
const agent: AgentInstall = { installed: "a".repeat(64) };
/** An unprivileged uid standing in for the service user. */
const SERVICE_UID = 65534;
const isRoot = process.getuid?.() === 0;

interface Seen {
    readonly sha256: string;
    readonly uid: number;
    readonly mode: number;
    readonly nlink: number;
    readonly mtimeMs: number;
}
function seen(file: string): Seen {
    const st = fs.lstatSync(file);
    return { sha256: crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex"), uid: st.uid, mode: st.mode & 0o7777, nlink: st.nlink, mtimeMs: st.mtimeMs };
}

describe("renderLogFiles (the log directory and the files root appends to)", () => {
    const l = hostLayout("/opt/complinist", "complinist");
    const text = renderLogFiles(l);

    it("takes the directory before it looks at any file in it", () => {
        const take = text.indexOf('chown -h "$me" "$log_dir"');
        assert.ok(take > 0);
        assert.ok(take < text.indexOf('chmod 0750 "$log_dir"'));
        assert.ok(text.indexOf('chmod 0750 "$log_dir"') < text.indexOf('for log in "$log_dir/app.log" "$log_dir/deploy.log"'));
    });

    it("chmods or chowns a log file only after find -P has seen a regular single-link file of its own, or it created it", () => {
        const loop = text.slice(text.indexOf("for log in"), text.indexOf("done"));
        assert.ok(loop.indexOf("find -P") < loop.indexOf('chown -h "$me" "$log"'));
        assert.match(loop, /-type f -links 1 -uid "\$me_uid"/);
        assert.doesNotMatch(text, /chmod [^\n]*-[RLH]|chown -[RL]|touch /, "nothing recursive, nothing that follows");
    });

    it("every script that takes the host lock takes the log files right after it, before its first step", () => {
        for (const s of [renderServiceApply(l, files, true, agent), renderReleaseDelete(l, "1.0.0", "complinist", "ci@runner")]) {
            const at = s.indexOf(text);
            assert.ok(at > s.indexOf("take_lock 'ci@runner'"), "under the lock");
            assert.ok(at < s.indexOf("\nstep "), "before the first deploy.log line");
        }
    });
});

describe("the log files under a temp root", () => {
    let tmp: string;
    let rl: HostLayout;

    beforeEach(() => {
        tmp = fs.mkdtempSync(path.join(os.tmpdir(), "log-files-"));
        rl = hostLayout("/opt/complinist", "complinist", path.join(tmp, "root"));
    });
    afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

    const apply = () => runBash(`set -euo pipefail\n${renderServiceApply(rl, files, false, agent)}`, { input: "SECRET_KEY=x\n" });

    it("a first apply creates the log directory 0750 and app.log, deploy.log, revisions.log and the lock files 0640, all of the deploying user", async () => {
        const r = await apply();
        assert.strictEqual(r.code, 0, r.stderr);
        const uid = process.getuid?.() ?? 0;
        const st = fs.lstatSync(rl.logDir);
        assert.ok(st.isDirectory());
        assert.deepStrictEqual([st.uid, st.mode & 0o7777], [uid, 0o750]);
        for (const f of [rl.logFile, rl.deployLog, rl.revisionsLog, rl.lockFile, `${rl.lockFile}.owner`]) {
            const s = fs.lstatSync(f);
            assert.ok(s.isFile(), f);
            assert.deepStrictEqual([s.uid, s.mode & 0o7777, s.nlink], [uid, 0o640, 1], f);
        }
        assert.match(fs.readFileSync(rl.deployLog, "utf8"), /service complinist: units, env file and host program applied/);
        assert.strictEqual(fs.lstatSync(rl.sharedDir).mode & 0o7777, 0o750);
        assert.strictEqual(fs.lstatSync(`${rl.unitFile}.wants`).mode & 0o7777, 0o755, "the umbrella's wants directory has an explicit mode too");
    });

    it("re-applying keeps the history in deploy.log and revisions.log and fixes a loosened mode", async () => {
        assert.strictEqual((await apply()).code, 0);
        fs.appendFileSync(rl.revisionsLog, "earlier\tversion=1.0.0\n");
        fs.chmodSync(rl.revisionsLog, 0o644);
        fs.chmodSync(rl.deployLog, 0o666);
        const r = await apply();
        assert.strictEqual(r.code, 0, r.stderr);
        assert.strictEqual(fs.readFileSync(rl.revisionsLog, "utf8"), "earlier\tversion=1.0.0\n");
        assert.strictEqual(fs.readFileSync(rl.deployLog, "utf8").split("\n").filter((x) => x.includes("applied")).length, 2);
        assert.strictEqual(fs.statSync(rl.revisionsLog).mode & 0o777, 0o640);
        assert.strictEqual(fs.statSync(rl.deployLog).mode & 0o777, 0o640);
    });

    describe("migrating a host whose log directory the service user owns (the old layout)", function () {
        let target: string;
        let before: Seen;

        beforeEach(function () {
            if (!isRoot) this.skip();
            // A root file the service user must never get root to write, chmod or chown.
            target = path.join(tmp, "root-only-target");
            fs.writeFileSync(target, "root's secret\n", { mode: 0o600 });
            fs.chmodSync(target, 0o600);
            before = seen(target);
            fs.mkdirSync(rl.logDir, { recursive: true, mode: 0o750 });
            fs.chownSync(rl.logDir, SERVICE_UID, SERVICE_UID);
        });

        function assertTakenBack(): void {
            assert.deepStrictEqual(seen(target), before, "the link target is untouched: content, owner, mode, links and mtime");
            const st = fs.lstatSync(rl.logDir);
            assert.deepStrictEqual([st.uid, st.gid, st.mode & 0o7777], [0, 0, 0o750], "the directory is root's");
            for (const f of [rl.logFile, rl.deployLog]) {
                const s = fs.lstatSync(f);
                assert.ok(s.isFile() && !s.isSymbolicLink(), `${f} is a regular file again`);
                assert.deepStrictEqual([s.uid, s.mode & 0o7777, s.nlink], [0, 0o640, 1], f);
            }
        }

        for (const [name, script] of [
            ["the service apply", (x: HostLayout) => renderServiceApply(x, files, false, agent)],
            ["a release delete (any locked script)", (x: HostLayout) => renderReleaseDelete(x, "1.0.0", "complinist", "ci@runner")],
        ] as const) {
            it(`${name} never follows the links the service user planted as app.log and deploy.log`, async () => {
                fs.symlinkSync(target, rl.logFile);
                fs.symlinkSync(target, rl.deployLog);
                for (const f of [rl.logFile, rl.deployLog]) fs.lchownSync(f, SERVICE_UID, SERVICE_UID);
                const r = await runBash(`set -euo pipefail\n${script(rl)}`, { input: "SECRET_KEY=x\n" });
                assert.strictEqual(r.code, 0, r.stderr);
                assertTakenBack();
            });
        }

        it("a hard link to a root file is removed, not appended to; the service user's old app.log is set aside, its lines kept", async () => {
            fs.linkSync(target, rl.deployLog);
            before = seen(target);
            fs.writeFileSync(rl.logFile, "old app line\n");
            fs.chownSync(rl.logFile, SERVICE_UID, SERVICE_UID);
            const r = await apply();
            assert.strictEqual(r.code, 0, r.stderr);
            before = { ...before, nlink: 1 };
            assertTakenBack();
            assert.strictEqual(fs.readFileSync(`${rl.logFile}.service-user`, "utf8"), "old app line\n");
            assert.strictEqual(fs.readFileSync(rl.logFile, "utf8"), "", "a fresh app.log");
        });

        it("a FIFO or a directory in place of a log file is removed too", async () => {
            fs.mkdirSync(rl.logFile);
            fs.writeFileSync(path.join(rl.logFile, "x"), "x");
            const r = await runBash(`set -euo pipefail\nmkfifo ${JSON.stringify(rl.deployLog)}\n${renderServiceApply(rl, files, false, agent)}`, { input: "" });
            assert.strictEqual(r.code, 0, r.stderr);
            assertTakenBack();
        });
    });
});
