import * as assert from "assert";
import { execFileSync } from "child_process";
import * as path from "path";
import { buildArtifacts } from "../../scripts/build-artifacts";
import { DEV_HOST, ensureDevHost } from "../../scripts/up";
import { EngineDriver } from "../engine/driver";
import { requireHosts } from "../../dev/hosts";
import { stackFileConfig } from "../program/stackFile";

/**
 * The main job without the Pulumi CLI: the demo host that `npm run up` starts, and the
 * committed Pulumi.local.yaml applied to it unchanged. Proves the demo host key pin, the
 * demo deploy key, the artifact paths and sha256s all line up.
 */
describe("the local stack file on the demo host from npm run up", function () {
    this.timeout(300000);
    let driver: EngineDriver;

    before(async function () {
        requireHosts(this);
        execFileSync("docker", ["rm", "-f", DEV_HOST.container], { stdio: "ignore" });
        await buildArtifacts(path.resolve(__dirname, "..", "..", ".build", "artifacts"));
        await ensureDevHost();
        driver = new EngineDriver({ stack: "local" });
    });
    after(async () => {
        await driver?.close();
        execFileSync("docker", ["rm", "-f", DEV_HOST.container], { stdio: "ignore" });
    });

    it("deploys the sample release exactly as committed and reports it healthy", async () => {
        const r = await driver.up(stackFileConfig("local"));
        assert.strictEqual(r.error, undefined);
        const version = String(stackFileConfig("local")["complinist:version"]);
        const health = execFileSync("docker", ["exec", DEV_HOST.container, "curl", "-sS", "http://127.0.0.1:5000/health"], { encoding: "utf8" });
        assert.match(health, new RegExp(`"version": ?"${version.replace(/\./g, "\\.")}"`));
        const again = await driver.preview(stackFileConfig("local"));
        assert.deepStrictEqual(again.steps.filter((s) => s.op !== "same"), [], "a second preview of the local stack is empty");
    });
});
