import * as assert from "assert";
import type { ConfigValue, OutputMap, Stack } from "@pulumi/pulumi/automation";
import { OperatorIo, UsageError } from "../../../ops/operator";
import { parseRollbackArgs, rollback, ROLLBACK_EXIT } from "../../../ops/rollback";
import { planRollback, RollbackStack } from "../../../ops/rollbackPlan";

interface FakeOptions {
    config?: Record<string, string>;
    outputs?: Record<string, unknown>;
    previewError?: string;
    upError?: string;
    upResult?: string;
    setConfigFailsAfter?: number;
}

/**
 * Just the methods the helper may use, recording every call. Anything else does not exist on it, so
 * an unexpected call fails to compile; getConfig rejects for an unset key as the CLI does.
 */
class FakeStack implements RollbackStack {
    readonly name = "prod";
    readonly calls: string[] = [];
    readonly config: Record<string, string>;
    private sets = 0;
    constructor(private readonly o: FakeOptions = {}) {
        this.config = {
            "complinist:version": "1.1.0",
            "complinist:rollbackVersion": "1.0.0",
            "complinist:keepReleases": "3",
            "complinist:releases": JSON.stringify({ "0.9.0": {}, "1.0.0": {}, "1.1.0": {}, "1.2.0": {} }),
            ...(o.config ?? {}),
        };
    }
    async getConfig(key: string): Promise<ConfigValue> {
        this.calls.push(`get ${key}`);
        const value = this.config[key];
        if (value === undefined) throw new Error(`code: 255\n stderr: error: configuration key '${key}' not found for stack '${this.name}'`);
        return { value, secret: false };
    }
    async setConfig(key: string, value: ConfigValue): Promise<void> {
        this.calls.push(`set ${key}=${value.value}`);
        this.sets++;
        if (this.o.setConfigFailsAfter !== undefined && this.sets > this.o.setConfigFailsAfter) throw new Error("Pulumi.prod.yaml is read-only");
        this.config[key] = value.value;
    }
    async removeConfig(key: string): Promise<void> {
        this.calls.push(`rm ${key}`);
        delete this.config[key];
    }
    async outputs(): Promise<OutputMap> {
        this.calls.push("outputs");
        const outs = this.o.outputs ?? { deployedVersion: "1.1.0", rollbackVersion: "1.0.0", releases: ["1.1.0", "1.0.0", "1.2.0"] };
        return Object.fromEntries(Object.entries(outs).map(([k, value]) => [k, { value, secret: false }]));
    }
    async preview(opts?: { diff?: boolean; onOutput?: (out: string) => void }) {
        this.calls.push(`preview diff=${String(opts?.diff)} version=${this.config["complinist:version"]}`);
        opts?.onOutput?.("~ complinist-prod-1-activation-switch update [diff: ~version]\n");
        if (this.o.previewError) throw new Error(this.o.previewError);
        return { changeSummary: { update: 2, same: 10 } };
    }
    async up(opts?: { onOutput?: (out: string) => void }) {
        this.calls.push(`up version=${this.config["complinist:version"]}`);
        opts?.onOutput?.("Updating (prod)\n");
        if (this.o.upError) throw new Error(this.o.upError);
        const v = this.config["complinist:version"];
        return {
            summary: { result: this.o.upResult ?? "succeeded" },
            outputs: {
                deployedVersion: { value: v, secret: false },
                hosts: { value: { "prod-1": { version: v, healthy: true }, "prod-2": { version: v, healthy: true } }, secret: false },
                deployedAt: { value: "2025-01-01T00:00:00.000Z", secret: false },
                deployedCommit: { value: "abc123", secret: false },
            },
        };
    }
    /** The calls that change something or run the engine. */
    get actions(): string[] {
        return this.calls.filter((c) => !c.startsWith("get ") && c !== "outputs");
    }
}

class FakeIo implements OperatorIo {
    readonly lines: string[] = [];
    readonly errors: string[] = [];
    readonly questions: string[] = [];
    streamed = "";
    constructor(
        readonly interactive: boolean,
        private readonly answer = true,
    ) {}
    async confirm(q: string): Promise<boolean> {
        this.questions.push(q);
        return this.answer;
    }
    stream(chunk: string): void {
        this.streamed += chunk;
    }
    out(text: string): void {
        this.lines.push(text);
    }
    err(text: string): void {
        this.errors.push(text);
    }
    get text(): string {
        return [...this.lines, ...this.errors].join("\n");
    }
}

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
        assert.deepStrictEqual(stack.actions, [
            "set complinist:version=1.0.0",
            "set complinist:rollbackVersion=1.1.0",
            "preview diff=true version=1.0.0",
            "up version=1.0.0",
        ]);
        assert.match(io.streamed, /\[diff: ~version\]/, "the preview diff is shown");
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
        assert.deepStrictEqual(order, ["set", "set", "preview", "up"]);
        assert.strictEqual(io.questions.length, 1);
    });

    it("restores the old config when the preview is refused (e.g. by the promotion gate)", async () => {
        const stack = new FakeStack({ previewError: "Promotion gate: stack 'prod' refuses version 1.2.0" });
        const io = new FakeIo(false);
        assert.strictEqual(await rollback(stack, { to: "1.2.0", yes: true }, io), ROLLBACK_EXIT.refused);
        assert.ok(!stack.actions.some((c) => c.startsWith("up")));
        assert.deepStrictEqual([stack.config["complinist:version"], stack.config["complinist:rollbackVersion"]], ["1.1.0", "1.0.0"]);
        assert.match(io.text, /Promotion gate/);
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
        const stack = new FakeStack({ upError: "boom", setConfigFailsAfter: 2 });
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
