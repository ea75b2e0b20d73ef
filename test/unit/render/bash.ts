import * as cp from "child_process";
import { runProcess } from "../../../infra/transport/local";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

/**
 * Run host-program code for real in bash, asynchronously: the tests that serve HTTP
 * from this process would deadlock with spawnSync (the event loop could not answer).
 */
export interface BashResult {
    readonly code: number;
    readonly stdout: string;
    readonly stderr: string;
}

export function runBash(script: string, opts: { env?: Record<string, string>; input?: string; timeoutMs?: number } = {}): Promise<BashResult> {
    const timeoutMs = opts.timeoutMs ?? 30000;
    return runProcess("bash", ["-c", script], opts.input ?? "", timeoutMs, `bash did not finish within ${timeoutMs} ms`, opts.env ?? {});
}

/** `if CMD; then rc=0; else rc=$?; fi`: the exit status of CMD without `set -e` ending the script. */
export function status(cmd: string): string {
    return `if ${cmd}; then echo "rc=0"; else echo "rc=$?"; fi`;
}

/** Whether a tool the test needs is here; in CI a missing tool fails instead of skipping. */
export function requireTool(ctx: Mocha.Context, tool: string, args: string[], install: string): void {
    if (cp.spawnSync(tool, args).status === 0) return;
    if (process.env.CI) throw new Error(`${tool} is required in CI (${install})`);
    ctx.skip();
}

/**
 * A directory of stand-ins for commands a temp root cannot run for real (systemctl,
 * systemd-run, ...): each appends its argv to calls.log (NUL-separated, so any argument
 * survives), then runs the shell body given for it (e.g. `exit 0`).
 */
export function stubBin(tools: Record<string, string>): { dir: string; calls: () => Array<{ tool: string; args: string[] }> } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stub-bin-"));
    const log = path.join(dir, "calls.log");
    for (const [tool, body] of Object.entries(tools)) {
        fs.writeFileSync(path.join(dir, tool), `#!/bin/bash\nprintf '%s\\0' '== ${tool}' "$@" >>'${log}'\n${body}\n`, { mode: 0o755 });
    }
    return {
        dir,
        calls: () => {
            if (!fs.existsSync(log)) return [];
            const out: Array<{ tool: string; args: string[] }> = [];
            for (const f of fs.readFileSync(log, "utf8").split("\0").slice(0, -1)) {
                if (f.startsWith("== ")) out.push({ tool: f.slice(3), args: [] });
                else out[out.length - 1]?.args.push(f);
            }
            return out;
        },
    };
}
