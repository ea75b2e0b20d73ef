import * as assert from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import type { Stack } from "@pulumi/pulumi/automation";
import { UsageError } from "../../../ops/operator";
import { parseRollbackArgs, rollback, ROLLBACK_EXIT, rolledBackStackFile } from "../../../ops/rollback";
import { planRollback, RollbackStack } from "../../../ops/rollbackPlan";
import { FakeIo, FakeReporting, FakeStack } from "./fakes";

describe("rollback helper", () => {
    it("the Automation API's Stack satisfies RollbackStack (checked by tsc)", () => {
        const fits: (s: Stack) => RollbackStack = (s) => s;
        assert.strictEqual(typeof fits, "function");
    });

    it("rolls back to the pinned rollbackVersion and pins the version it leaves as the next target", async () => {
        const stack = new FakeStack();
        const io = new FakeIo(false);
        const code = await rollback(stack, { yes: true }, io);
        assert.strictEqual(code, ROLLBACK_EXIT.ok, io.text);
        // --yes: one config write, no separate preview: the update's own --diff output is the preview.
        assert.deepStrictEqual(stack.actions, ["setAll complinist:version=1.0.0 complinist:rollbackVersion=1.1.0", "up version=1.0.0"]);
        assert.deepStrictEqual(stack.calls.slice(0, 2), ["getAll", "outputs"], "the config is read in one call, before anything changes");
        assert.match(io.text, /--yes: no separate preview; the update refreshes the hosts, then prints each change/);
        assert.match(io.streamed, /Updating \(prod\)/, "the update's output is shown");
        assert.match(io.text, /Rolled back stack prod to 1\.0\.0/);
        assert.match(io.text, /rollback target: 1\.1\.0 \(npm run rollback -- --stack prod returns to it\)/);
        assert.match(io.text, /prod-1 1\.0\.0 healthy, prod-2 1\.0\.0 healthy/);
        assert.match(io.text, /Commit Pulumi\.prod\.yaml/);
    });

    it("rolls back to --to when that release is kept on the hosts", async () => {
        const stack = new FakeStack();
        const code = await rollback(stack, { to: "1.2.0", yes: true }, new FakeIo(false));
        assert.strictEqual(code, ROLLBACK_EXIT.ok);
        assert.strictEqual(stack.config["complinist:version"], "1.2.0");
        assert.strictEqual(stack.config["complinist:rollbackVersion"], "1.1.0");
    });

    it("refuses a version not kept on the hosts, changing nothing", async () => {
        const stack = new FakeStack();
        const io = new FakeIo(true);
        assert.strictEqual(await rollback(stack, { to: "0.9.0", yes: true }, io), ROLLBACK_EXIT.refused);
        assert.deepStrictEqual(stack.actions, []);
        assert.match(io.text, /0\.9\.0 is not kept on the hosts \(kept: 1\.1\.0, 1\.0\.0, 1\.2\.0\)/);
        assert.match(io.text, /Nothing was changed/);
    });

    it("refuses without a pinned rollbackVersion and without --to, listing what is kept", async () => {
        const stack = new FakeStack();
        delete stack.config["complinist:rollbackVersion"];
        const io = new FakeIo(true);
        assert.strictEqual(await rollback(stack, { yes: true }, io), ROLLBACK_EXIT.refused);
        assert.deepStrictEqual(stack.actions, []);
        assert.match(io.text, /no complinist:rollbackVersion is pinned; pass --to <version>.*1\.1\.0, 1\.0\.0, 1\.2\.0/);
    });

    it("refuses to run without a terminal unless --yes is given, before touching the stack", async () => {
        const stack = new FakeStack();
        const io = new FakeIo(false);
        assert.strictEqual(await rollback(stack, { yes: false }, io), ROLLBACK_EXIT.refused);
        assert.deepStrictEqual(stack.calls, []);
        assert.match(io.text, /no terminal to confirm on; pass --yes/);
    });

    it("asks on a terminal after showing the preview, and restores the config when the operator says no", async () => {
        const stack = new FakeStack();
        const io = new FakeIo(true, false);
        assert.strictEqual(await rollback(stack, { yes: false }, io), ROLLBACK_EXIT.refused);
        assert.strictEqual(io.questions.length, 1);
        assert.match(io.questions[0] as string, /from 1\.1\.0 to 1\.0\.0/);
        assert.ok(!stack.actions.some((c) => c.startsWith("up")), "nothing deployed");
        assert.strictEqual(stack.config["complinist:version"], "1.1.0");
        assert.strictEqual(stack.config["complinist:rollbackVersion"], "1.0.0");
        assert.match(io.text, /aborted by the operator/);
    });

    it("applies after a yes on the terminal", async () => {
        const stack = new FakeStack();
        const io = new FakeIo(true, true);
        assert.strictEqual(await rollback(stack, { yes: false }, io), ROLLBACK_EXIT.ok);
        const order = stack.actions.map((c) => c.split(" ")[0]);
        assert.deepStrictEqual(order, ["setAll", "preview", "up"]);
        assert.match(io.streamed, /\[diff: ~version\]/, "the preview diff is shown before the question");
        assert.strictEqual(io.questions.length, 1);
    });

    it("restores the old config when the preview is refused (e.g. by the promotion gate)", async () => {
        const stack = new FakeStack({ previewError: "Promotion gate: stack 'prod' refuses version 1.2.0" });
        const io = new FakeIo(true, true);
        assert.strictEqual(await rollback(stack, { to: "1.2.0", yes: false }, io), ROLLBACK_EXIT.refused);
        assert.ok(!stack.actions.some((c) => c.startsWith("up")));
        assert.deepStrictEqual([stack.config["complinist:version"], stack.config["complinist:rollbackVersion"]], ["1.1.0", "1.0.0"]);
        assert.match(io.text, /Promotion gate/);
    });

    it("--yes: an update refused before any step that changes a host (e.g. the promotion gate) is a refusal, exit 1, config restored", async () => {
        const stack = new FakeStack({ upError: "Promotion gate: stack 'prod' refuses version 1.2.0", upFailsBeforeChanges: true });
        const io = new FakeIo(false);
        const reporting = new FakeReporting();
        assert.strictEqual(await rollback(stack, { to: "1.2.0", yes: true }, io, { reporting }), ROLLBACK_EXIT.refused);
        assert.deepStrictEqual([stack.config["complinist:version"], stack.config["complinist:rollbackVersion"]], ["1.1.0", "1.0.0"]);
        assert.match(io.text, /refused: the update stopped before changing any host .*Promotion gate.*Nothing was changed on the hosts/);
        assert.deepStrictEqual(reporting.events, [], "nothing was deployed, so nothing is notified");
    });

    it("restores the old config when pulumi up fails, exiting 2", async () => {
        const stack = new FakeStack({ upError: "host prod-1: version 1.0.0 failed its health check" });
        const io = new FakeIo(false);
        assert.strictEqual(await rollback(stack, { yes: true }, io), ROLLBACK_EXIT.upFailed);
        assert.deepStrictEqual([stack.config["complinist:version"], stack.config["complinist:rollbackVersion"]], ["1.1.0", "1.0.0"]);
        assert.match(io.text, /FAILED: host prod-1: version 1\.0\.0 failed its health check/);
        assert.match(io.text, /config was restored \(version 1\.1\.0, rollbackVersion 1\.0\.0\)/);
    });

    it("treats an update that did not succeed as a failure", async () => {
        const stack = new FakeStack({ upResult: "failed" });
        assert.strictEqual(await rollback(stack, { yes: true }, new FakeIo(false)), ROLLBACK_EXIT.upFailed);
        assert.strictEqual(stack.config["complinist:version"], "1.1.0");
    });

    it("removes rollbackVersion again when it was unset before a failed --to rollback", async () => {
        const stack = new FakeStack({ upError: "boom" });
        delete stack.config["complinist:rollbackVersion"];
        assert.strictEqual(await rollback(stack, { to: "1.0.0", yes: true }, new FakeIo(false)), ROLLBACK_EXIT.upFailed);
        assert.strictEqual(stack.config["complinist:version"], "1.1.0");
        assert.ok(!("complinist:rollbackVersion" in stack.config));
        assert.ok(stack.actions.includes("rm complinist:rollbackVersion"));
    });

    it("prints the commands that restore the config when restoring fails too, exiting 3", async () => {
        const stack = new FakeStack({ upError: "boom", setConfigFailsAfter: 1 });
        const io = new FakeIo(false);
        assert.strictEqual(await rollback(stack, { yes: true }, io), ROLLBACK_EXIT.restoreFailed);
        assert.match(io.text, /pulumi config set complinist:version 1\.1\.0 --stack prod && pulumi config set complinist:rollbackVersion 1\.0\.0 --stack prod/);
    });

    it("refuses a stack that was never deployed, and a rollback to what already runs", async () => {
        const fresh = new FakeStack({ outputs: {} });
        const io = new FakeIo(false);
        assert.strictEqual(await rollback(fresh, { yes: true }, io), ROLLBACK_EXIT.refused);
        assert.match(io.text, /no deploy record/);
        const same = new FakeStack();
        const io2 = new FakeIo(false);
        assert.strictEqual(await rollback(same, { to: "1.1.0", yes: true }, io2), ROLLBACK_EXIT.refused);
        assert.match(io2.text, /already runs 1\.1\.0/);
        assert.deepStrictEqual([...fresh.actions, ...same.actions], []);
    });

    it("rolls back from what the stack deployed when the stack file has an undeployed version, and says so", () => {
        const r = planRollback({
            stack: "prod",
            configVersion: "1.2.0",
            configRollback: "1.0.0",
            configReleases: ["1.0.0", "1.1.0", "1.2.0"],
            keepReleases: 3,
            deployedVersion: "1.1.0",
            keptOnHosts: ["1.1.0", "1.0.0"],
        });
        assert.ok(r.ok);
        assert.strictEqual(r.plan.from, "1.1.0");
        assert.match(r.plan.warnings.join(), /says version 1\.2\.0, but the stack last deployed 1\.1\.0/);
    });

    it("says which kept releases the rollback's retention deletes", () => {
        // Hosts keep 1.3.0 (current), 1.0.0 (pinned) and 1.2.0 (newest other); going to 1.2.0 re-pins 1.3.0.
        const r = planRollback(
            {
                stack: "prod",
                configVersion: "1.3.0",
                configRollback: "1.0.0",
                configReleases: ["1.0.0", "1.1.0", "1.2.0", "1.3.0"],
                keepReleases: 3,
                deployedVersion: "1.3.0",
                keptOnHosts: ["1.3.0", "1.0.0", "1.2.0"],
            },
            "1.2.0",
        );
        assert.ok(r.ok);
        assert.deepStrictEqual(r.plan.keptAfter, ["1.2.0", "1.3.0", "1.1.0"]);
        assert.deepStrictEqual(r.plan.dropped, ["1.0.0"]);
        assert.deepStrictEqual(r.plan.added, ["1.1.0"]);
        const missing = planRollback({ stack: "prod", configVersion: "1.1.0", configReleases: ["1.1.0"], keepReleases: 3, deployedVersion: "1.1.0", keptOnHosts: ["1.1.0", "1.0.0"] }, "1.0.0");
        assert.ok(!missing.ok);
        assert.match(missing.message, /missing from complinist:releases/);
    });

    it("parses its command line and rejects what it does not know", () => {
        assert.deepStrictEqual(parseRollbackArgs(["--stack", "prod"]), { stack: "prod", to: undefined, yes: false, dotenv: undefined, help: false });
        assert.deepStrictEqual(parseRollbackArgs(["--stack", "prod", "--to", "1.0.0", "--yes", "--dotenv", "deploy.env"]), { stack: "prod", to: "1.0.0", yes: true, dotenv: "deploy.env", help: false });
        assert.throws(() => parseRollbackArgs([]), (e: unknown) => e instanceof UsageError && /--stack <env> is required/.test(e.message));
        assert.throws(() => parseRollbackArgs(["--stack", "prod", "--to", "1.0.0; rm -rf /"]), /is not a version/);
        assert.throws(() => parseRollbackArgs(["--stack", "prod", "--force"]), UsageError);
    });
});

describe("rollback helper: the change to commit, notifications and the deploy record", () => {
    const PROD = fs.readFileSync(path.join(__dirname, "..", "..", "..", "Pulumi.prod.yaml"), "utf8");

    function memoryFile(text: string) {
        const f = { file: "Pulumi.prod.yaml", text, writes: 0, read: () => f.text, write: (t: string) => void ((f.text = t), f.writes++) };
        return f;
    }

    it("prints the exact diff of Pulumi.prod.yaml, writes it with every comment kept, and ends with the record", async () => {
        const file = memoryFile(PROD);
        const io = new FakeIo(false);
        const reporting = new FakeReporting();
        assert.strictEqual(await rollback(new FakeStack(), { yes: true, dotenv: "deploy.env" }, io, { reporting, stackFile: file }), ROLLBACK_EXIT.ok, io.text);
        const diff = io.text.slice(io.text.indexOf("--- a/Pulumi.prod.yaml"), io.text.indexOf("DEPLOYED_VERSION") - 1);
        assert.match(io.text, /Commit this change of Pulumi\.prod\.yaml \(a merge request\), or the next deploy rolls forward again:/);
        const changed = diff.split("\n").filter((l) => /^[-+][^-+]/.test(l));
        assert.deepStrictEqual(changed, ["-  complinist:version: 1.1.0", "+  complinist:version: 1.0.0", "-  complinist:rollbackVersion: 1.0.0", "+  complinist:rollbackVersion: 1.1.0"]);
        assert.strictEqual(file.writes, 1);
        assert.strictEqual(file.text.replace("version: 1.0.0", "version: 1.1.0").replace("rollbackVersion: 1.1.0", "rollbackVersion: 1.0.0"), PROD, "only the two values changed");
        // The printed diff applies to the committed file and gives exactly what was written.
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rollback-diff-"));
        fs.writeFileSync(path.join(dir, "Pulumi.prod.yaml"), PROD);
        fs.writeFileSync(path.join(dir, "change.diff"), `${diff}\n`);
        execFileSync("git", ["apply", "change.diff"], { cwd: dir });
        assert.strictEqual(fs.readFileSync(path.join(dir, "Pulumi.prod.yaml"), "utf8"), file.text);
        assert.deepStrictEqual(io.lines.join("\n").split("\n").slice(-3), ["DEPLOYED_VERSION=1.0.0", "DEPLOYED_COMMIT=abc123", "DEPLOYED_AT=2025-01-01T00:00:00.000Z"]);
        assert.strictEqual(reporting.files["deploy.env"], "DEPLOYED_VERSION=1.0.0\nDEPLOYED_COMMIT=abc123\nDEPLOYED_AT=2025-01-01T00:00:00.000Z\n");
        assert.deepStrictEqual(reporting.events, [{ kind: "rolledBack", stack: "prod", from: "1.1.0", to: "1.0.0", commit: "abc123", at: "2025-01-01T00:00:00.000Z", hosts: "prod-1 1.0.0 healthy, prod-2 1.0.0 healthy" }]);
    });

    it("takes the version it leaves off acknowledgeRolledBack, so the rollback sticks", () => {
        const acked = `${PROD}  complinist:acknowledgeRolledBack:\n    - 1.1.0\n`;
        const text = rolledBackStackFile(acked, "Pulumi.prod.yaml", { from: "1.1.0", to: "1.0.0" });
        assert.ok(!text.includes("acknowledgeRolledBack"), text);
        const two = rolledBackStackFile(`${PROD}  complinist:acknowledgeRolledBack:\n    - 0.9.0\n    - 1.1.0\n`, "Pulumi.prod.yaml", { from: "1.1.0", to: "1.0.0" });
        assert.match(two, /complinist:acknowledgeRolledBack:\n {4}- 0\.9\.0\n$/);
    });

    it("notifies a failed rollback and prints what runs, leaving the stack file alone", async () => {
        const file = memoryFile(PROD);
        const io = new FakeIo(false);
        const reporting = new FakeReporting();
        const stack = new FakeStack({ upError: "host prod-2: 1.0.0 failed its health gate" });
        assert.strictEqual(await rollback(stack, { yes: true }, io, { reporting, stackFile: file }), ROLLBACK_EXIT.upFailed);
        assert.strictEqual(file.writes, 0);
        const failed = reporting.events[0];
        assert.ok(failed?.kind === "failed");
        assert.deepStrictEqual([failed.hosts, failed.version], [["prod-2"], "1.0.0"]);
        assert.strictEqual(io.lines.join("\n").split("\n").slice(-3)[0], "DEPLOYED_VERSION=1.1.0");
    });
});
