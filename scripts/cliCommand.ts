/**
 * The Pulumi CLI as the Automation API runs it (scripts/engine.ts), minus a process and with every
 * process it starts traced.
 *
 * `PulumiCommand.get` always runs `pulumi version` (even with `skipVersionCheck`), one CLI process
 * per command before anything else. The toolchain already knows the version (the pin the cached
 * CLI was built and stamped with, or the `pulumi version` answer it checked for a CLI on PATH:
 * toolchain/toolchain.ts), so the command is made from that answer and checked against the SDK's
 * own minimum by the SDK's own parser. Where this SDK lacks those (an SDK upgrade moved them), it
 * falls back to `PulumiCommand.get` (traced as `version`): slower, never wrong.
 *
 * Every CLI run an operator command makes goes through `run` below and writes a trace line when it
 * exits (infra/transport/trace.ts): `[complinist] pulumi command="config set-all" ms=118 ok=true`.
 * `npm run bench -- engine` counts them per step. The line names the command words only, never an
 * argument (config values and secrets travel in the arguments).
 */
import { PulumiCommand } from "@pulumi/pulumi/automation";
import { trace } from "../infra/transport/trace";

/** Commands whose second word is the operation (`config set-all`, `stack output`). */
const GROUPS = new Set(["config", "stack", "plugin", "state", "org", "policy"]);

/** The command words of a CLI run: `up`, `config set-all`, `stack select`; never an argument. */
export function commandName(args: readonly string[]): string {
    const words: string[] = [];
    for (const a of args) {
        if (a.startsWith("-") || words.length === (GROUPS.has(words[0] ?? "") ? 2 : 1)) break;
        words.push(a);
    }
    return words.length > 0 ? words.join(" ") : "(no command)";
}

type Run = (this: PulumiCommand, args: string[], ...rest: unknown[]) => Promise<unknown>;

/** `cmd` with each run traced (its command words, wall ms and whether it exited 0). */
export function tracedCommand(cmd: PulumiCommand): PulumiCommand {
    const run = (PulumiCommand.prototype as unknown as { run: Run }).run;
    const traced: Run = function (this: PulumiCommand, args, ...rest) {
        const command = commandName(args);
        const t0 = Date.now();
        const p = run.call(this, args, ...rest);
        p.then(
            () => trace("pulumi", { command, ms: Date.now() - t0, ok: true }),
            () => trace("pulumi", { command, ms: Date.now() - t0, ok: false }),
        );
        return p;
    };
    Object.defineProperty(cmd, "run", { value: traced });
    return cmd;
}

interface SdkVersionCheck {
    readonly parse: (version: string) => PulumiCommand["version"];
}

/** The SDK's own version parser and minimum (internal to @pulumi/pulumi/automation), when this SDK has them. */
export function sdkVersionCheck(): SdkVersionCheck | undefined {
    try {
        const cmd = require("@pulumi/pulumi/automation/cmd") as { parseAndValidatePulumiVersion?: (min: unknown, version: string, optOut: boolean) => PulumiCommand["version"] };
        const min = (require("@pulumi/pulumi/automation/minimumVersion") as { minimumVersion?: unknown }).minimumVersion;
        const check = cmd.parseAndValidatePulumiVersion;
        if (typeof check !== "function" || min === undefined) return undefined;
        return { parse: (version) => check(min, version, false) };
    } catch {
        return undefined;
    }
}

/**
 * The CLI at `binary` (absolute), known to be `version` (e.g. v3.277.0), without running it; the
 * SDK's check refuses a version it does not support, as `PulumiCommand.get` would.
 */
export async function cliCommand(binary: string, version: string, check: SdkVersionCheck | undefined = sdkVersionCheck()): Promise<PulumiCommand> {
    if (check === undefined) {
        const t0 = Date.now();
        const slow = await PulumiCommand.get({ root: binary.replace(/\/bin\/pulumi$/, "") }).catch(() => PulumiCommand.get());
        trace("pulumi", { command: "version", ms: Date.now() - t0, ok: true });
        return tracedCommand(slow);
    }
    const cmd = Object.create(PulumiCommand.prototype) as { command: string; version: PulumiCommand["version"] };
    cmd.command = binary;
    cmd.version = check.parse(version.replace(/^v/, ""));
    return tracedCommand(cmd as unknown as PulumiCommand);
}
