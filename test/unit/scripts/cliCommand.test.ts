// scripts/cliCommand.ts: the CLI the Automation API runs, made without a `pulumi version` process,
// every run traced by its command words only.
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { LocalWorkspace } from "@pulumi/pulumi/automation";
import { cliCommand, commandName, sdkVersionCheck } from "../../../scripts/cliCommand";
import { parseTraceLine } from "../../../infra/transport/trace";

describe("the Pulumi CLI the engine runs (scripts/cliCommand.ts)", () => {
    let dir: string;
    let calls: string;
    let traceFile: string;
    let saved: string | undefined;
    /** A stand-in `pulumi` that records each run's arguments and answers like `pulumi config get --json`. */
    let binary: string;
    beforeEach(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "cli-"));
        calls = path.join(dir, "calls");
        traceFile = path.join(dir, "trace.log");
        binary = path.join(dir, "bin", "pulumi");
        fs.mkdirSync(path.dirname(binary));
        fs.writeFileSync(binary, `#!/bin/sh\necho "$*" >> ${calls}\necho '{"value":"v","secret":false}'\n`, { mode: 0o755 });
        fs.writeFileSync(path.join(dir, "Pulumi.yaml"), "name: t\nruntime: nodejs\n");
        saved = process.env.COMPLINIST_TRACE;
        process.env.COMPLINIST_TRACE = traceFile;
    });
    afterEach(() => {
        if (saved === undefined) delete process.env.COMPLINIST_TRACE;
        else process.env.COMPLINIST_TRACE = saved;
        fs.rmSync(dir, { recursive: true, force: true });
    });
    const ran = () => (fs.existsSync(calls) ? fs.readFileSync(calls, "utf8").trim().split("\n") : []);
    const traced = () => fs.readFileSync(traceFile, "utf8").trim().split("\n").map(parseTraceLine);

    it("names a run by its command words, never an argument", () => {
        assert.strictEqual(commandName(["up", "--yes", "--skip-preview", "--refresh"]), "up");
        assert.strictEqual(commandName(["config", "set-all", "--stack", "prod", "--secret", "complinist:sshPrivateKey=KEY"]), "config set-all");
        assert.strictEqual(commandName(["config", "get", "complinist:version", "--json"]), "config get");
        assert.strictEqual(commandName(["stack", "output", "--json", "--show-secrets"]), "stack output");
        assert.strictEqual(commandName(["version"]), "version");
        assert.strictEqual(commandName([]), "(no command)");
    });

    it("this SDK has the version parser it uses, so no `pulumi version` process is needed", () => {
        assert.ok(sdkVersionCheck() !== undefined, "@pulumi/pulumi/automation moved parseAndValidatePulumiVersion or minimumVersion: update scripts/cliCommand.ts");
    });

    it("runs nothing until the workspace does; then one process per command, each traced", async () => {
        const cmd = await cliCommand(binary, "v3.277.0");
        assert.deepStrictEqual(ran(), [], "no `pulumi version`");
        assert.strictEqual(String(cmd.version), "3.277.0");
        const ws = await LocalWorkspace.create({ workDir: dir, pulumiCommand: cmd, envVars: { PULUMI_CONFIG_PASSPHRASE: "x" } });
        assert.strictEqual(ws.pulumiVersion, "3.277.0");
        assert.deepStrictEqual(ran(), [], "creating the workspace runs no CLI");
        assert.deepStrictEqual(await ws.getConfig("s", "complinist:version"), { value: "v", secret: false });
        assert.deepStrictEqual(ran(), ["config get complinist:version --json --stack s --non-interactive"]);
        const t = traced();
        assert.strictEqual(t.length, 1);
        assert.strictEqual(t[0]?.event, "pulumi");
        assert.deepStrictEqual({ command: t[0]?.fields.command, ok: t[0]?.fields.ok }, { command: "config get", ok: "true" });
        assert.ok(Number(t[0]?.fields.ms) >= 0);
    });

    it("traces a failed run as ok=false, and refuses a CLI older than the SDK supports", async () => {
        fs.writeFileSync(binary, "#!/bin/sh\nexit 3\n", { mode: 0o755 });
        const ws = await LocalWorkspace.create({ workDir: dir, pulumiCommand: await cliCommand(binary, "v3.277.0") });
        await assert.rejects(ws.getConfig("s", "k"));
        assert.strictEqual(traced()[0]?.fields.ok, "false");
        await assert.rejects(cliCommand(binary, "v2.25.0"), /Minimum version requirement failed|Major version/);
    });
});
