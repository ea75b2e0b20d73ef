// The engine driver (test/engine/driver.ts) against its toy fixture program: the real dynamic
// provider server, real files in a temp directory.
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { EngineDriver, isSecret, ProgramConfig, Step } from "../engine/driver";
import { countLines } from "../engine/trace";
import type { FileSpec } from "../engine/fixtures/toy";

const FIXTURE = path.join(__dirname, "..", "engine", "fixtures", "toy", "index.ts");


function ops(steps: Step[]): string[] {
    return steps.map((s) => `${s.name}:${s.op}`).sort();
}

function changes(steps: Step[]): string[] {
    return ops(steps.filter((s) => s.op !== "same"));
}

describe("engine driver (toy fixture)", function () {
    this.timeout(60000);
    let dir: string;
    let driver: EngineDriver;

    const config = (files: FileSpec[], extra: ProgramConfig = {}): ProgramConfig => ({ "toy:dir": dir, "toy:files": files, ...extra });

    beforeEach(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "engine-driver-"));
        driver = new EngineDriver({ program: FIXTURE, project: "toy", stack: "test", env: { TOY_TRACE: "1" } });
    });

    afterEach(async () => {
        await driver.close();
        fs.rmSync(dir, { recursive: true, force: true });
    });

    it("creates, leaves alone, updates, replaces and deletes like the engine", async () => {
        let r = await driver.up(config([{ name: "a", content: "A" }, { name: "b", content: "B" }]));
        assert.strictEqual(r.error, undefined);
        assert.deepStrictEqual(ops(r.steps), ["a:create", "b:create"]);
        assert.strictEqual(fs.readFileSync(path.join(dir, "a.txt"), "utf8"), "A");
        assert.ok(driver.byName("a")[0].id.endsWith("a.txt"));

        r = await driver.up(config([{ name: "a", content: "A" }, { name: "b", content: "B" }]));
        assert.strictEqual(r.error, undefined);
        assert.deepStrictEqual(changes(r.steps), []);
        assert.deepStrictEqual(r.providerLog.filter((l) => l.line.startsWith("[toy]")), [], "no provider writes on an unchanged stack");
        // Outputs of existing resources come from state (on the first up the program saw inputs only).
        assert.deepStrictEqual(r.outputs.paths, [path.join(dir, "a.txt"), path.join(dir, "b.txt")]);

        r = await driver.up(config([{ name: "a", content: "A2" }, { name: "b", content: "B" }]));
        assert.strictEqual(r.error, undefined);
        assert.deepStrictEqual(changes(r.steps), ["a:update"]);
        assert.deepStrictEqual(r.steps.find((s) => s.name === "a")?.diffs, ["content"]);
        assert.strictEqual(fs.readFileSync(path.join(dir, "a.txt"), "utf8"), "A2");

        r = await driver.up(config([{ name: "a", content: "A2" }, { name: "b", file: "b2.txt", content: "B" }]));
        assert.strictEqual(r.error, undefined);
        // create-before-delete: the replacement's old copy is deleted at the end.
        assert.deepStrictEqual(changes(r.steps), ["b:delete", "b:replace"]);
        assert.deepStrictEqual(r.steps.find((s) => s.op === "replace")?.replaces, ["file"]);
        const log = r.providerLog.map((l) => l.line).filter((l) => l.startsWith("[toy]"));
        assert.deepStrictEqual(log, ["[toy] create b2.txt", "[toy] delete b.txt"]);
        assert.deepStrictEqual(fs.readdirSync(dir).sort(), ["a.txt", "b2.txt"]);
        assert.strictEqual(driver.state.resources.filter((x) => x.name === "b").length, 1);

        r = await driver.up(config([{ name: "a", content: "A2" }]));
        assert.strictEqual(r.error, undefined);
        assert.deepStrictEqual(changes(r.steps), ["b:delete"]);
        assert.deepStrictEqual(fs.readdirSync(dir), ["a.txt"]);
        assert.deepStrictEqual(driver.byName("b"), []);
    });

    it("replaces delete-before-create when the resource asks for it", async () => {
        await driver.up(config([{ name: "b", content: "B", deleteBeforeReplace: true }]));
        const r = await driver.up(config([{ name: "b", file: "b2.txt", content: "B", deleteBeforeReplace: true }]));
        assert.strictEqual(r.error, undefined);
        assert.deepStrictEqual(changes(r.steps), ["b:replace"]);
        assert.deepStrictEqual(
            r.providerLog.map((l) => l.line).filter((l) => l.startsWith("[toy]")),
            ["[toy] delete b.txt", "[toy] create b2.txt"],
        );
        assert.strictEqual(countLines(r.providerLog, /^\[toy\] (create|delete)/), 2);
        assert.deepStrictEqual(fs.readdirSync(dir), ["b2.txt"]);
    });

    it("previews the plan without touching anything", async () => {
        await driver.up(config([{ name: "a", content: "A" }, { name: "b", content: "B" }]));
        const before = JSON.stringify(driver.state);
        const p = await driver.preview(config([{ name: "a", content: "A2" }, { name: "c", content: "C" }]));
        assert.strictEqual(p.error, undefined);
        assert.deepStrictEqual(changes(p.steps), ["a:update", "b:delete", "c:create"]);
        assert.strictEqual(JSON.stringify(driver.state), before);
        assert.strictEqual(fs.readFileSync(path.join(dir, "a.txt"), "utf8"), "A");
        assert.ok(!fs.existsSync(path.join(dir, "c.txt")));
    });

    it("refresh detects an out-of-band change and a deleted resource", async () => {
        await driver.up(config([{ name: "a", content: "A" }, { name: "b", content: "B" }]));
        fs.writeFileSync(path.join(dir, "a.txt"), "changed by hand");

        let rf = await driver.refresh({ previewOnly: true });
        assert.strictEqual(rf.error, undefined);
        assert.deepStrictEqual(rf.drift.map((d) => [d.name, d.diffs, d.deleted]), [["a", ["content", "digest"], false]]);
        assert.strictEqual(rf.providerLog.filter((l) => l.line.startsWith("[toy] read")).length, 2);
        // previewOnly leaves state alone: the drift is still there.
        rf = await driver.refresh({ previewOnly: true });
        assert.strictEqual(rf.drift.length, 1);

        rf = await driver.refresh();
        assert.strictEqual(driver.byName("a")[0].outputs.content, "changed by hand");
        rf = await driver.refresh();
        assert.deepStrictEqual(rf.drift, []);

        // The next up puts the declared content back (Diff sees state != inputs).
        const r = await driver.up(config([{ name: "a", content: "A" }, { name: "b", content: "B" }]));
        assert.deepStrictEqual(changes(r.steps), ["a:update"]);
        assert.strictEqual(fs.readFileSync(path.join(dir, "a.txt"), "utf8"), "A");

        fs.rmSync(path.join(dir, "b.txt"));
        rf = await driver.refresh();
        assert.deepStrictEqual(rf.drift.map((d) => [d.name, d.deleted]), [["b", true]]);
        assert.deepStrictEqual(driver.byName("b"), []);
    });

    it("a failed create stops its dependents and keeps what completed", async () => {
        const files = [
            { name: "a", content: "A" },
            { name: "b", content: "FAIL" },
            { name: "c", content: "C" },
        ];
        const r = await driver.up(config(files, { "toy:chain": true }));
        assert.ok(r.error, "up must fail");
        assert.match(r.error ?? "", /toy: refusing to create b\.txt/);
        assert.deepStrictEqual(
            r.steps.map((s) => `${s.name}:${s.op}:${s.status}`),
            ["a:create:ok", "b:create:failed"],
        );
        assert.ok(!r.providerLog.some((l) => l.line.includes("create c.txt")), "c must not be attempted");
        assert.deepStrictEqual(driver.state.resources.map((x) => x.name), ["a"]);

        // Fixing the config converges.
        const ok = await driver.up(config([{ name: "a", content: "A" }, { name: "b", content: "B" }, { name: "c", content: "C" }], { "toy:chain": true }));
        assert.strictEqual(ok.error, undefined);
        assert.deepStrictEqual(changes(ok.steps), ["b:create", "c:create"]);
    });

    it("check failures surface with the provider's reason", async () => {
        const r = await driver.up(config([{ name: "a", file: "x/y", content: "A" }]));
        assert.match(r.error ?? "", /check failed: file: must be a plain file name/);
        assert.deepStrictEqual(driver.state.resources, []);
    });

    it("a provider crash mid-create surfaces an error and records nothing for it", async () => {
        driver.killProvider({ onLine: "[toy] create slow.txt" });
        const r = await driver.up(config([{ name: "slow", content: "S", delayMs: 5000 }]));
        assert.ok(r.error);
        assert.match(r.error ?? "", /killed by SIGKILL/);
        assert.deepStrictEqual(driver.byName("slow"), []);
        assert.ok(!fs.existsSync(path.join(dir, "slow.txt")));

        // The next deployment starts a fresh provider.
        const again = await driver.up(config([{ name: "slow", content: "S", delayMs: 10 }]));
        assert.strictEqual(again.error, undefined);
        assert.deepStrictEqual(changes(again.steps), ["slow:create"]);
    });

    it("keeps secrets wrapped in state (secret config, random passwords, additionalSecretOutputs)", async () => {
        const r = await driver.up(config([{ name: "a", content: "plain-content" }], { "toy:token": "tok-123456", "toy:password": true }), ["toy:token"]);
        assert.strictEqual(r.error, undefined);
        assert.strictEqual(fs.readFileSync(path.join(dir, "token.env"), "utf8"), "TOKEN=tok-123456\n");
        assert.ok(!driver.stateContainsPlaintext("tok-123456"));
        const pw = fs.readFileSync(path.join(dir, "pw.env"), "utf8");
        assert.strictEqual(pw.length, 24);
        assert.ok(!driver.stateContainsPlaintext(pw));
        assert.ok(driver.stateContainsPlaintext("plain-content"));
        const token = driver.byName("token")[0];
        assert.ok(isSecret(token.inputs.content) && isSecret(token.outputs.content));
        assert.ok(isSecret(token.outputs.digest), "additionalSecretOutputs");
        assert.ok(isSecret(r.outputs.secretPassword));
        // Unchanged secrets diff as unchanged.
        const again = await driver.up(config([{ name: "a", content: "plain-content" }], { "toy:token": "tok-123456", "toy:password": true }), ["toy:token"]);
        assert.deepStrictEqual(changes(again.steps), []);
    });

    it("refuses to delete a protected resource", async () => {
        await driver.up(config([{ name: "a", content: "A", protect: true }, { name: "b", content: "B" }]));
        const r = await driver.up(config([{ name: "b", content: "B" }]));
        assert.match(r.error ?? "", /cannot be deleted\s+because it is protected/);
        assert.ok(fs.existsSync(path.join(dir, "a.txt")));
        assert.strictEqual(driver.byName("a").length, 1);
    });

    it("persists state to a file that a new driver picks up", async () => {
        const stateFile = path.join(dir, "state.json");
        const first = new EngineDriver({ program: FIXTURE, project: "toy", stack: "test", stateFile });
        await first.up(config([{ name: "a", content: "A" }]));
        await first.close();
        const second = new EngineDriver({ program: FIXTURE, project: "toy", stack: "test", stateFile });
        try {
            const r = await second.up(config([{ name: "a", content: "A" }]));
            assert.deepStrictEqual(ops(r.steps), ["a:same"]);
        } finally {
            await second.close();
        }
    });

    it("reports program errors", async () => {
        const r = await driver.up({ "toy:dir": dir });
        assert.match(r.error ?? "", /Missing required configuration variable 'toy:files'/);
        assert.deepStrictEqual(r.steps, []);
    });
});
