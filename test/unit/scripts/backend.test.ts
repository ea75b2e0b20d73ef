// The file backend of `npm run up` (.pulumi-state/ in the checkout): whoever can write it runs code
// as the operator (each dynamic provider's code is stored there and runs on every refresh), so
// only the operator may enter it.
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { privateStateDir } from "../../../scripts/engine";
import { localBackendEnv } from "../../../scripts/up";

const mode = (p: string): number => fs.lstatSync(p).mode & 0o7777;

describe("the local file backend of npm run up", () => {
    let repo: string;
    beforeEach(() => {
        repo = fs.mkdtempSync(path.join(os.tmpdir(), "backend-"));
    });
    afterEach(() => fs.rmSync(repo, { recursive: true, force: true }));

    it("creates .pulumi-state 0700 and points the engine at it with the dev-only passphrase", () => {
        const env = localBackendEnv(repo, {});
        const dir = path.join(repo, ".pulumi-state");
        assert.strictEqual(mode(dir), 0o700);
        assert.deepStrictEqual(env, { PULUMI_BACKEND_URL: `file://${dir}`, PULUMI_CONFIG_PASSPHRASE: "complinist-dev-only" });
    });

    it("closes a .pulumi-state an older checkout left open to others (0755, or group-writable)", () => {
        const dir = path.join(repo, ".pulumi-state");
        fs.mkdirSync(path.join(dir, ".pulumi", "stacks"), { recursive: true, mode: 0o777 });
        fs.chmodSync(dir, 0o775);
        localBackendEnv(repo, {});
        assert.strictEqual(mode(dir), 0o700, "the backend's root is the boundary: nothing below it is reachable by others");
    });

    it("refuses a backend directory that is a symbolic link or belongs to someone else, naming it", function () {
        const elsewhere = path.join(repo, "elsewhere");
        fs.mkdirSync(elsewhere);
        fs.symlinkSync(elsewhere, path.join(repo, ".pulumi-state"));
        assert.throws(() => localBackendEnv(repo, {}), /\.pulumi-state is a symbolic link.*remove it/);
        fs.rmSync(path.join(repo, ".pulumi-state"));
        if (process.getuid?.() !== 0) return; // chown needs root; CI runs the suite as root
        fs.mkdirSync(path.join(repo, ".pulumi-state"));
        fs.chownSync(path.join(repo, ".pulumi-state"), 65534, 65534);
        assert.throws(() => privateStateDir(path.join(repo, ".pulumi-state")), /\.pulumi-state belongs to uid 65534, not to uid 0 who runs this: whoever owns it can change the state/);
    });

    it("leaves the operator's own backend alone (PULUMI_BACKEND_URL and PULUMI_CONFIG_PASSPHRASE set)", () => {
        const env = localBackendEnv(repo, { PULUMI_BACKEND_URL: "s3://bucket/complinist", PULUMI_CONFIG_PASSPHRASE: "theirs" });
        assert.deepStrictEqual(env, { PULUMI_BACKEND_URL: "s3://bucket/complinist", PULUMI_CONFIG_PASSPHRASE: "theirs" });
        assert.ok(!fs.existsSync(path.join(repo, ".pulumi-state")), "no directory made for a backend elsewhere");
    });
});
