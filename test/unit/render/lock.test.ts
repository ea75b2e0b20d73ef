import * as assert from "assert";
import * as cp from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { hostLayout } from "../../../infra/render/layout";
import { renderLocked } from "../../../infra/render/lock";

/** The shell lock's preamble refuses a baseDir someone else made or can write (issue 29, finding 2), before the lock file is written into it. */
describe("the host lock's preamble: baseDir must be root's", () => {
    let root = "";
    beforeEach(() => {
        root = fs.mkdtempSync(path.join(os.tmpdir(), "lock-trust-"));
    });
    afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

    const run = () => cp.spawnSync("bash", ["-euo", "pipefail", "-c", `${renderLocked(hostLayout("/srv/app/complinist", "complinist", root), "complinist", "ci@runner")}\necho locked`], { encoding: "utf8" });

    it("takes the lock when nothing of the layout exists yet, or when it is all the running user's and writable by it only", () => {
        assert.strictEqual(run().stdout.trim(), "locked");
        assert.ok(fs.existsSync(path.join(root, "srv/app/complinist/.deploy.lock")));
        assert.strictEqual(run().stdout.trim(), "locked", "again, now that it exists");
    });

    it("refuses a group- or other-writable directory on the way, naming it and its mode, and writes nothing into it", () => {
        fs.mkdirSync(path.join(root, "srv/app"), { recursive: true });
        fs.chmodSync(path.join(root, "srv/app"), 0o777);
        const r = run();
        assert.strictEqual(r.status, 1);
        assert.match(r.stderr, new RegExp(`^refused: ${root}/srv/app is owned by \\S+ \\(uid ${process.getuid?.()}\\) with mode 0777: .*Nothing was changed$`, "m"));
        assert.deepStrictEqual(fs.readdirSync(path.join(root, "srv/app")), [], "no baseDir, no lock file");
    });

    it("refuses a baseDir that is a symbolic link", () => {
        fs.mkdirSync(path.join(root, "srv/app/elsewhere"), { recursive: true });
        fs.symlinkSync("elsewhere", path.join(root, "srv/app/complinist"));
        const r = run();
        assert.strictEqual(r.status, 1);
        assert.match(r.stderr, /refused: \S+\/srv\/app\/complinist is a symbolic link/);
        assert.deepStrictEqual(fs.readdirSync(path.join(root, "srv/app/elsewhere")), []);
    });

    it("refuses a directory another user owns (as root: the directory handed to nobody)", function () {
        if (process.getuid?.() !== 0) this.skip();
        fs.mkdirSync(path.join(root, "srv/app"), { recursive: true });
        fs.chownSync(path.join(root, "srv/app"), 65534, 65534);
        const r = run();
        assert.strictEqual(r.status, 1);
        assert.match(r.stderr, /refused: \S+\/srv\/app is owned by \S+ \(uid 65534\) with mode 0755/);
        assert.deepStrictEqual(fs.readdirSync(path.join(root, "srv/app")), []);
    });
});
