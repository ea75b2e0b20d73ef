/**
 * `npm run test:go`: the host agent's Go checks, run in agent/ (part of `npm test`):
 *   go vet ./...
 *   staticcheck ./...   (pinned in toolchain/tools/go.mod, built once into the toolchain cache:
 *                        ${cacheRoot()}/staticcheck-<version>-<key>/staticcheck, key = tools go.mod + go.sum + GOVERSION)
 *   go test ./...
 *   every fuzz target (go test -list '^Fuzz'), one at a time: go test -run '^$' -fuzz '^Name$' -fuzztime $COMPLINIST_FUZZTIME
 *   (default 100000x: a count of inputs, not a duration. Go ends a duration-bounded run with "context
 *   deadline exceeded", a failure, when a worker is mid-input at the deadline, as happened in CI on a
 *   busy machine; a count ends when the work is done, whatever the load. 0 skips fuzzing.) The fuzz corpus cache goes to GOCACHE; a crasher go writes to
 *   <package>/testdata/fuzz/<Name>/ is kept and named, and any other file a step leaves in agent/ fails the run.
 * Exits non-zero when any step fails.
 */
import { spawnSync, SpawnSyncOptions } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { cacheRoot } from "./toolchain";

const AGENT_DIR = path.resolve(__dirname, "..", "agent");
const TOOLS_DIR = path.join(__dirname, "tools");
const STATICCHECK = "honnef.co/go/tools/cmd/staticcheck";

const log = (line: string): void => console.log(`test:go: ${line}`);

function goEnv(): NodeJS.ProcessEnv {
    return { ...process.env, GOFLAGS: [process.env.GOFLAGS, "-mod=readonly"].filter(Boolean).join(" ") };
}

function shown(cmd: string, args: readonly string[]): string {
    return [cmd, ...args.map((a) => (/[\s^$*]/.test(a) ? `'${a}'` : a))].join(" ");
}

/** Runs a command in agent/ with its output shown; true when it exits 0. */
function run(cmd: string, args: string[], opts: SpawnSyncOptions = {}): boolean {
    log(`$ ${shown(cmd, args)}`);
    const r = spawnSync(cmd, args, { cwd: AGENT_DIR, stdio: "inherit", env: goEnv(), ...opts });
    if (r.error !== undefined) log(`${cmd}: ${r.error.message}`);
    return r.error === undefined && r.status === 0;
}

function goVersion(cwd: string): string {
    const r = spawnSync("go", ["env", "GOVERSION"], { cwd, encoding: "utf8", env: goEnv() });
    if (r.error !== undefined || r.status !== 0) throw new Error(`go is needed for the agent's tests and \`go env GOVERSION\` failed${r.error ? ` (${r.error.message})` : `: ${r.stderr.trim()}`}; install Go (https://go.dev/dl/)`);
    return r.stdout.trim();
}

/** staticcheck at the version toolchain/tools/go.mod pins, built into the cache when missing. */
export function ensureStaticcheck(): string {
    const goMod = fs.readFileSync(path.join(TOOLS_DIR, "go.mod"), "utf8");
    const version = /^\s*honnef\.co\/go\/tools\s+(v\S+)/m.exec(goMod)?.[1];
    if (version === undefined) throw new Error("toolchain/tools/go.mod does not require honnef.co/go/tools");
    const h = crypto.createHash("sha256");
    for (const f of ["go.mod", "go.sum"]) h.update(fs.readFileSync(path.join(TOOLS_DIR, f)));
    h.update(goVersion(TOOLS_DIR));
    const dir = path.join(cacheRoot(), `staticcheck-${version}-${h.digest("hex").slice(0, 12)}`);
    const bin = path.join(dir, "staticcheck");
    if (fs.existsSync(bin)) return bin;
    fs.mkdirSync(dir, { recursive: true });
    const tmp = `${bin}.${process.pid}.tmp`;
    log(`building staticcheck ${version} from ${path.join(TOOLS_DIR, "go.mod")} into ${dir} (first time: a minute or two)`);
    if (!run("go", ["build", "-trimpath", "-o", tmp, STATICCHECK], { cwd: TOOLS_DIR })) {
        fs.rmSync(tmp, { force: true });
        throw new Error(`go build of staticcheck ${version} failed (in ${TOOLS_DIR}); see go's output above`);
    }
    fs.renameSync(tmp, bin);
    return bin;
}

/** Every file under agent/ but the Go sources (which others may be writing meanwhile): what a step could leave behind. */
function leftovers(): Set<string> {
    const out = new Set<string>();
    const walk = (rel: string): void => {
        for (const e of fs.readdirSync(path.join(AGENT_DIR, rel), { withFileTypes: true })) {
            const r = rel ? `${rel}/${e.name}` : e.name;
            if (e.isDirectory()) walk(r);
            else if (!e.name.endsWith(".go")) out.add(r);
        }
    };
    walk("");
    return out;
}

function added(before: Set<string>): string[] {
    return [...leftovers()].filter((f) => !before.has(f)).sort();
}

/** Fuzz targets per package (import path → names), from go test -list. */
function fuzzTargets(): Map<string, string[]> | undefined {
    log(`$ go test -list '^Fuzz' -json ./...`);
    const r = spawnSync("go", ["test", "-list", "^Fuzz", "-json", "./..."], { cwd: AGENT_DIR, encoding: "utf8", env: goEnv(), stdio: ["ignore", "pipe", "inherit"], maxBuffer: 64 << 20 });
    if (r.error !== undefined || r.status !== 0) {
        process.stdout.write(r.stdout ?? "");
        return undefined;
    }
    const targets = new Map<string, string[]>();
    for (const line of r.stdout.split("\n")) {
        if (!line.startsWith("{")) continue;
        const ev = JSON.parse(line) as { Action?: string; Package?: string; Output?: string };
        const name = ev.Output?.trim() ?? "";
        if (ev.Action !== "output" || ev.Package === undefined || !/^Fuzz\w*$/.test(name)) continue;
        targets.set(ev.Package, [...(targets.get(ev.Package) ?? []), name]);
    }
    return targets;
}

function main(): number {
    const fuzztime = process.env.COMPLINIST_FUZZTIME ?? "100000x";
    const failures: string[] = [];
    const step = (name: string, ok: () => boolean): boolean => {
        const before = leftovers();
        let passed = ok();
        const left = added(before);
        if (left.length > 0) {
            failures.push(`${name} left files in the checkout: ${left.map((f) => `agent/${f}`).join(", ")}`);
            passed = false;
        } else if (!passed) {
            failures.push(name);
        }
        return passed;
    };
    try {
        goVersion(AGENT_DIR);
        const staticcheck = ensureStaticcheck();
        const ok =
            step("go vet", () => run("go", ["vet", "./..."])) &&
            step("staticcheck", () => run(staticcheck, ["./..."])) &&
            step("go test", () => run("go", ["test", "./..."]));
        if (ok && fuzztime !== "0") {
            const targets = fuzzTargets();
            if (targets === undefined) failures.push("go test -list '^Fuzz'");
            for (const [pkg, names] of targets ?? []) {
                for (const name of names) {
                    const before = leftovers();
                    // A temp dir of its own: the workers stopped at -fuzztime leave their t.TempDir()s behind.
                    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "complinist-fuzz-"));
                    const passed = run("go", ["test", "-run", "^$", "-fuzz", `^${name}$`, "-fuzztime", fuzztime, pkg], { env: { ...goEnv(), TMPDIR: tmp } });
                    fs.rmSync(tmp, { recursive: true, force: true });
                    const left = added(before);
                    const crashers = left.filter((f) => new RegExp(`(^|/)testdata/fuzz/${name}/[^/]+$`).test(f));
                    const other = left.filter((f) => !crashers.includes(f));
                    for (const f of crashers) failures.push(`${name} (${pkg}) found a crasher, kept at agent/${f}: (cd agent && go test -run '^${name}/${path.basename(f)}$' ${pkg}) replays it`);
                    if (crashers.length === 0 && !passed) failures.push(`${name} (${pkg}) failed`);
                    if (other.length > 0) failures.push(`${name} (${pkg}) left files in the checkout: ${other.map((f) => `agent/${f}`).join(", ")}`);
                }
            }
            const count = [...(targets ?? new Map<string, string[]>()).values()].reduce((n, names) => n + names.length, 0);
            log(`${count} fuzz target${count === 1 ? "" : "s"}, ${fuzztime} each (COMPLINIST_FUZZTIME)`);
        }
    } catch (e) {
        failures.push(e instanceof Error ? e.message : String(e));
    }
    if (failures.length === 0) {
        log("all passed");
        return 0;
    }
    console.error("");
    for (const f of failures) console.error(`test:go: FAILED: ${f}`);
    return 1;
}

if (require.main === module) process.exitCode = main();
