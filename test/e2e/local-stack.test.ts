import * as assert from "assert";
import { execFileSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { buildArtifacts } from "../../scripts/build-artifacts";
import { PROJECT_DIR } from "../../scripts/engine";
import { DEV_HOST, ensureDevHost } from "../../scripts/up";
import { ProgramConfig, RealEngine } from "./engine";
import { requireHosts } from "../../dev/hosts";

/**
 * The main job through the real Pulumi CLI: the demo host that `npm run up` starts, and the
 * committed Pulumi.local.yaml applied to it unchanged. Proves the demo host key pin, the
 * demo deploy key, the artifact paths and sha256s all line up.
 *
 * The stack is not `local` itself: creating it would write the passphrase's salt into the
 * committed Pulumi.local.yaml and close() would delete that file. It is a stack of a unique name
 * in the project directory (so the key and artifact paths resolve as they do for `npm run up`)
 * whose stack file carries the committed file's config value for value, as YAML.
 */
describe("the local stack file on the demo host from npm run up", function () {
    this.timeout(300000);
    let driver: RealEngine;
    let committed: ProgramConfig;

    before(async function () {
        requireHosts(this);
        execFileSync("docker", ["rm", "-f", DEV_HOST.container], { stdio: "ignore" });
        await buildArtifacts(path.join(PROJECT_DIR, ".build", "artifacts"));
        await ensureDevHost();
        const doc = YAML.parse(fs.readFileSync(path.join(PROJECT_DIR, "Pulumi.local.yaml"), "utf8")) as { config: ProgramConfig };
        committed = doc.config;
        driver = new RealEngine({ stack: `e2e-local-${crypto.randomBytes(3).toString("hex")}`, inProject: true });
    });
    after(async () => {
        await driver?.close();
        execFileSync("docker", ["rm", "-f", DEV_HOST.container], { stdio: "ignore" });
    });

    it("deploys the sample release exactly as committed and reports it healthy", async () => {
        const r = await driver.up(committed);
        assert.strictEqual(r.error, undefined, r.output);
        const version = String(committed["complinist:version"]);
        const health = execFileSync("docker", ["exec", DEV_HOST.container, "curl", "-sS", "http://127.0.0.1:5000/health"], { encoding: "utf8" });
        assert.match(health, new RegExp(`"version": ?"${version.replace(/\./g, "\\.")}"`));
        const again = await driver.preview(committed);
        assert.deepStrictEqual(again.steps.filter((s) => s.op !== "same"), [], "a second preview of the local stack is empty");
    });
});
