/**
 * `npm run agent`: the host agent (the Go module in agent/, `complinist/agent`) built for
 * linux/amd64 and linux/arm64, reproducibly and cache-aware, like the Pulumi CLI (toolchain.ts):
 *   ${cacheRoot()}/agent-<key>/complinist-agent-linux-{amd64,arm64}   + sha256.json beside them
 *   ${cacheRoot()}/agent-by-sha256/<sha256>                           (hard link, else a copy)
 * key = the first 12 hex of sha256 over agent/go.mod, go.sum, every non-test .go file (sorted
 * relative paths, each path and content), `go env GOVERSION` and the build flags below; the
 * version stamped into the binary is `1.0.0+<key>`. Same sources and Go version, same bytes:
 * CGO_ENABLED=0, -trimpath, -buildvcs=false, -s -w, GOFLAGS/GOAMD64/GOARM64 fixed.
 * (Files a package embeds with //go:embed are not in the key: hash them here if one ever does.)
 *
 * Node-only imports: the program imports this (agentBuild, agentBinaryBySha) as well as the script.
 */
import { spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { cacheRoot } from "./toolchain";
import { CHECKOUT_DIR } from "./checkout";

const AGENT_DIR = path.join(CHECKOUT_DIR, "agent");
const VERSION_VAR = "complinist/agent/internal/cli.Version";
const BASE_VERSION = "1.0.0";

/** `uname -m` → GOARCH, for every architecture the agent is built for. */
export const AGENT_ARCHES = { x86_64: "amd64", aarch64: "arm64" } as const;
export type AgentArch = (typeof AGENT_ARCHES)[keyof typeof AGENT_ARCHES];
const ARCHES: readonly AgentArch[] = Object.values(AGENT_ARCHES);

export interface AgentBuild {
    /** `1.0.0+<key>`, stamped into both binaries (complinist/agent/internal/cli.Version). */
    readonly version: string;
    readonly sha256: { readonly amd64: string; readonly arm64: string };
}

export interface AgentBuildOptions {
    /** Build what the cache lacks (default true); false: throw instead. */
    build?: boolean;
    /** Progress lines (a build); default: none. */
    log?: (line: string) => void;
}

/** The go build arguments (in agent/); part of the key, so a change of flags builds anew. */
function buildArgs(version: string, out: string): string[] {
    return ["build", "-trimpath", "-buildvcs=false", "-ldflags", `-s -w -X ${VERSION_VAR}=${version}`, "-o", out, "."];
}

/** The environment of every go command here: nothing of the caller's GOFLAGS or GOAMD64 reaches the bytes. */
function goEnv(arch?: AgentArch): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env, CGO_ENABLED: "0", GOOS: "linux", GOFLAGS: "-mod=readonly", GOAMD64: "v1", GOARM64: "v8.0" };
    if (arch !== undefined) env.GOARCH = arch;
    return env;
}

function goVersion(): string {
    const r = spawnSync("go", ["env", "GOVERSION"], { cwd: AGENT_DIR, encoding: "utf8", env: goEnv() });
    if (r.error !== undefined || r.status !== 0 || !r.stdout.trim()) {
        throw new Error(`the host agent is built with Go, and \`go env GOVERSION\` failed in ${AGENT_DIR}${r.error ? ` (${r.error.message})` : `: ${r.stderr.trim()}`}; install Go (https://go.dev/dl/), then npm run agent`);
    }
    return r.stdout.trim();
}

/** agent/'s non-test .go files, as sorted posix paths relative to agent/ (directories go ignores are skipped). */
export function agentSources(dir: string = AGENT_DIR): string[] {
    const out: string[] = [];
    const walk = (rel: string): void => {
        for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
            const r = rel ? `${rel}/${e.name}` : e.name;
            if (e.isDirectory()) {
                if (!e.name.startsWith(".") && !e.name.startsWith("_") && e.name !== "testdata") walk(r);
            } else if (e.isFile() && e.name.endsWith(".go") && !e.name.endsWith("_test.go")) {
                out.push(r);
            }
        }
    };
    walk("");
    return out.sort();
}

/** The cache key: 12 hex of sha256 over go.mod, go.sum, the sources (path and content each), the Go version and the flags. */
export function agentKey(dir: string = AGENT_DIR, gover: string = goVersion()): string {
    const h = crypto.createHash("sha256");
    const add = (rel: string): void => {
        const file = path.join(dir, rel);
        const content = fs.existsSync(file) ? fs.readFileSync(file) : undefined;
        h.update(`${rel}\0${content === undefined ? "absent" : content.length}\0`);
        if (content !== undefined) h.update(content);
    };
    add("go.mod");
    add("go.sum");
    for (const rel of agentSources(dir)) add(rel);
    h.update(`GOVERSION\0${gover}\0FLAGS\0${buildArgs("", "").join(" ")}\0`);
    return h.digest("hex").slice(0, 12);
}

export function agentCacheDir(key: string): string {
    return path.join(cacheRoot(), `agent-${key}`);
}

function bySha(sha256: string): string {
    return path.join(cacheRoot(), "agent-by-sha256", sha256);
}

const binaryName = (arch: AgentArch): string => `complinist-agent-linux-${arch}`;

function sha256Of(file: string): string {
    return crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}

/** Write by temp name and rename: a reader never sees half a file. */
function writeAtomic(file: string, content: string): void {
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, content);
    fs.renameSync(tmp, file);
}

/** The content-addressed entry: a hard link to the binary, else a copy (by temp name and rename). */
function linkBySha(file: string, sha256: string): void {
    const dst = bySha(sha256);
    if (fs.existsSync(dst)) return;
    fs.mkdirSync(path.dirname(dst), { recursive: true });
    try {
        fs.linkSync(file, dst);
    } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "EEXIST") return;
        const tmp = `${dst}.${process.pid}.tmp`;
        fs.copyFileSync(file, tmp);
        fs.chmodSync(tmp, 0o755);
        fs.renameSync(tmp, dst);
    }
}

function goBuild(arch: AgentArch, version: string, file: string, log: (line: string) => void): void {
    const tmp = `${file}.${process.pid}.tmp`;
    const args = buildArgs(version, tmp);
    const shown = `CGO_ENABLED=0 GOOS=linux GOARCH=${arch} go ${args.map((a) => (/\s/.test(a) ? `"${a}"` : a)).join(" ")} (in ${AGENT_DIR})`;
    log(`agent: building linux/${arch} ${version}`);
    // stdout too goes to stderr: the program's own stdout stays the engine's.
    const r = spawnSync("go", args, { cwd: AGENT_DIR, stdio: ["ignore", 2, 2], env: goEnv(arch) });
    if (r.error !== undefined || r.status !== 0) {
        fs.rmSync(tmp, { force: true });
        throw new Error(`building the host agent failed (${r.error ? r.error.message : `exit ${String(r.status ?? r.signal)}`}): ${shown}; see go's output above`);
    }
    fs.renameSync(tmp, file);
}

interface Recorded {
    version: string;
    sha256: Partial<Record<AgentArch, string>>;
}

function readRecorded(file: string, version: string): Recorded["sha256"] {
    try {
        const r = JSON.parse(fs.readFileSync(file, "utf8")) as Recorded;
        return r.version === version && typeof r.sha256 === "object" && r.sha256 !== null ? r.sha256 : {};
    } catch {
        return {};
    }
}

/**
 * The host agent of the sources as they are: its version and each architecture's sha256, building
 * what the cache lacks (unless build is false). Warm, it costs the source hash and one `go env`.
 */
export function agentBuild(opts: AgentBuildOptions = {}): AgentBuild {
    const log = opts.log ?? (() => undefined);
    const gover = goVersion();
    const key = agentKey(AGENT_DIR, gover);
    const version = `${BASE_VERSION}+${key}`;
    const dir = agentCacheDir(key);
    const record = path.join(dir, "sha256.json");
    const recorded = readRecorded(record, version);
    const sha256: Partial<Record<AgentArch, string>> = {};
    let changed = false;
    for (const arch of ARCHES) {
        const file = path.join(dir, binaryName(arch));
        if (!fs.existsSync(file)) {
            if (opts.build === false) throw new Error(`the host agent ${version} is not built on this machine: run npm run agent`);
            fs.mkdirSync(dir, { recursive: true });
            goBuild(arch, version, file, log);
        } else if (recorded[arch] !== undefined) {
            sha256[arch] = recorded[arch];
        }
        if (sha256[arch] === undefined) {
            sha256[arch] = sha256Of(file);
            changed = true;
        }
        linkBySha(file, sha256[arch]);
    }
    if (changed) writeAtomic(record, `${JSON.stringify({ version, goVersion: gover, sha256 }, null, 2)}\n`);
    return { version, sha256: { amd64: sha256.amd64 ?? "", arm64: sha256.arm64 ?? "" } };
}

/** The built agent whose sha256 is this, from any working directory (a provider process reads it from its inputs). */
export function agentBinaryBySha(sha256: string): string {
    const file = /^[0-9a-f]{64}$/.test(sha256) ? bySha(sha256) : undefined;
    if (file === undefined || !fs.existsSync(file)) throw new Error(`the host agent with sha256 ${sha256} is not built on this machine: run npm run agent`);
    return file;
}

if (require.main === module) {
    try {
        const started = Date.now();
        const b = agentBuild({ log: (line) => console.log(line) });
        const dir = agentCacheDir(b.version.slice(BASE_VERSION.length + 1));
        console.log(`agent: ${dir} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
        console.log(`agent: version ${b.version}`);
        for (const arch of ARCHES) console.log(`agent: linux/${arch} sha256 ${b.sha256[arch]}  ${binaryName(arch)}`);
        console.log(`agent: by sha256 in ${path.dirname(bySha(b.sha256.amd64))}`);
    } catch (e) {
        console.error(`agent: ${e instanceof Error ? e.message : String(e)}`);
        process.exit(1);
    }
}
