import * as assert from "assert";
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

const REPO_ROOT = path.resolve(__dirname, "..", "..", "..");

/** Every path under `dir`, relative, directories with a trailing `/`; links are listed, never followed. */
export function tree(dir: string): string[] {
    const out: string[] = [];
    const walk = (d: string, rel: string): void => {
        for (const e of fs.readdirSync(d, { withFileTypes: true })) {
            const r = rel === "" ? e.name : `${rel}/${e.name}`;
            out.push(e.isDirectory() ? `${r}/` : r);
            if (e.isDirectory()) walk(path.join(d, e.name), r);
        }
    };
    walk(dir, "");
    return out.sort();
}

/**
 * A temp directory a test about hostile input owns whole: bash runs with an empty working
 * directory, HOME and TMPDIR inside it, so whatever a hostile value makes bash write lands
 * somewhere this watches. `run` compares the whole tree, the working directory and the
 * repository root before and after, and fails on any new path the script is not supposed to write.
 */
export interface Sandbox {
    /** The temp directory; a test's own files (layout roots, fixtures) live in it. */
    readonly dir: string;
    readonly cwd: string;
    readonly home: string;
    readonly tmpdir: string;
    /** `writes`: every path (relative to `dir`) the script may create, anchored patterns. */
    run(script: string, opts: { env?: Record<string, string>; input?: string; writes: ReadonlyArray<RegExp> }): Promise<BashResult>;
    remove(): void;
}

export function sandbox(prefix: string): Sandbox {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    const [cwd, home, tmpdir] = ["cwd", "home", "tmp"].map((d) => path.join(dir, d)) as [string, string, string];
    for (const d of [cwd, home, tmpdir]) fs.mkdirSync(d);
    const views = () => ({ tree: tree(dir), repo: fs.readdirSync(REPO_ROOT).sort(), processCwd: fs.readdirSync(process.cwd()).sort() });
    return {
        dir,
        cwd,
        home,
        tmpdir,
        async run(script, opts) {
            const before = views();
            // env -C: the working directory is set before bash parses a single byte of the script.
            const r = await runProcess("env", ["-C", cwd, "bash", "-c", script], opts.input ?? "", 30000, "bash did not finish within 30000 ms", { ...opts.env, HOME: home, TMPDIR: tmpdir });
            const after = views();
            assert.deepStrictEqual(after.repo, before.repo, "a path appeared in (or left) the repository root");
            assert.deepStrictEqual(after.processCwd, before.processCwd, "a path appeared in the test process's working directory");
            for (const d of [cwd, home, tmpdir]) assert.deepStrictEqual(tree(d), [], `${d} must stay empty`);
            const appeared = after.tree.filter((p) => !before.tree.includes(p));
            assert.deepStrictEqual(
                appeared.filter((p) => !opts.writes.some((w) => w.test(p))),
                [],
                "only what the script is supposed to write may appear",
            );
            return r;
        },
        remove: () => fs.rmSync(dir, { recursive: true, force: true }),
    };
}
