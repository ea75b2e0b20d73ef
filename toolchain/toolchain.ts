/**
 * `npm run toolchain`: the Pulumi CLI this repo runs, built from the Go module in this folder
 * (go.mod pins github.com/pulumi/pulumi/pkg/v3; go.sum pins every module under it), plus the
 * dynamic-provider launcher the engine starts for our dynamic resources.
 *
 * Release binaries cannot be downloaded here, and the Node.js language host is not served by the
 * Go module proxy; neither is needed: scripts/engine.ts runs the program inline through the
 * Automation API, whose own language runtime the CLI reaches through `--client`.
 *
 * The build lands in a cache outside the checkout, keyed by the pins (every clone on the machine
 * reuses it; go's module and build caches make a rebuild after a pin change fast):
 *   ${COMPLINIST_TOOLCHAIN_CACHE:-${XDG_CACHE_HOME:-~/.cache}/complinist-toolchain}/pulumi-<version>-<key>/bin/pulumi
 *   …/launcher/pulumi-resource-pulumi-nodejs
 * A `pulumi` already on PATH at a supported version (SUPPORTED below) is used instead of building.
 */
import { spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { CHECKOUT_DIR } from "./checkout";
import { trace } from "../infra/transport/trace";

const HERE = path.join(CHECKOUT_DIR, "toolchain");
const PKG = "github.com/pulumi/pulumi/pkg/v3";
const VERSION_VAR = "github.com/pulumi/pulumi/sdk/v3/go/common/version.Version";

/** CLI versions the program and its Automation API calls are tested with: 3.x from the npm SDK's own 3.270 on. */
export const SUPPORTED = { major: 3, minMinor: 270, text: "v3.270.0 or later 3.x" };

export interface Toolchain {
    /** The directory of the `pulumi` binary (the cache, or where PATH had it). */
    readonly cliDir: string;
    /** The directory holding `pulumi-resource-pulumi-nodejs` (always this repo's launcher). */
    readonly launcherDir: string;
    /** `pulumi version` as printed, e.g. v3.276.0. */
    readonly version: string;
    /** Where the CLI came from. */
    readonly source: "cache" | "built" | "PATH";
}

/** The pulumi/pkg version go.mod pins (the `require` line). */
export function pinnedVersion(goMod: string = fs.readFileSync(path.join(HERE, "go.mod"), "utf8")): string {
    const m = new RegExp(`^\\s*${PKG.replace(/[./]/g, "\\$&")}\\s+(v\\d+\\.\\d+\\.\\d+)\\b`, "m").exec(goMod);
    if (!m?.[1]) throw new Error(`toolchain/go.mod does not require ${PKG} at a release version`);
    return m[1];
}

/** The cache key: the pins themselves (go.mod and go.sum), so a pin change builds anew. */
export function pinKey(dir: string = HERE): string {
    const h = crypto.createHash("sha256");
    for (const f of ["go.mod", "go.sum"]) h.update(fs.readFileSync(path.join(dir, f)));
    return h.digest("hex").slice(0, 12);
}

export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
    return env.COMPLINIST_TOOLCHAIN_CACHE ?? path.join(env.XDG_CACHE_HOME ?? path.join(os.homedir(), ".cache"), "complinist-toolchain");
}

/** Whether a `pulumi version` answer is one this repo supports. */
export function isSupported(version: string): boolean {
    const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(version.trim());
    return m !== null && Number(m[1]) === SUPPORTED.major && Number(m[2]) >= SUPPORTED.minMinor;
}

/** `pulumi version` (traced like every CLI run of the engine: scripts/cliCommand.ts); the one the commands then trust. */
function versionOf(binary: string): string | undefined {
    const t0 = Date.now();
    const r = spawnSync(binary, ["version"], { encoding: "utf8", timeout: 30000, env: { ...process.env, PULUMI_SKIP_UPDATE_CHECK: "true" } });
    trace("pulumi", { command: "version", ms: Date.now() - t0, ok: r.status === 0 });
    return r.status === 0 ? r.stdout.trim() : undefined;
}

/** A supported `pulumi` on PATH (outside our own cache), if any. */
function onPath(): { dir: string; version: string } | undefined {
    for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
        if (!dir || dir.startsWith(cacheRoot())) continue;
        const bin = path.join(dir, "pulumi");
        if (!fs.existsSync(bin)) continue;
        const version = versionOf(bin);
        return version !== undefined && isSupported(version) ? { dir, version } : undefined;
    }
    return undefined;
}

/**
 * The launcher the engine starts for `pulumi:providers:pulumi-nodejs` (every dynamic resource):
 * Pulumi's own dynamic-provider server from the project's @pulumi/pulumi, run from the project
 * directory (relative paths in the config, e.g. sshPrivateKeyPath, resolve there). The engine
 * runner sets COMPLINIST_PROJECT_DIR and COMPLINIST_NODE.
 */
export const LAUNCHER = `#!/bin/sh
# complinist toolchain: Pulumi's dynamic-provider server for inline programs (toolchain/toolchain.ts)
cd "\${COMPLINIST_PROJECT_DIR:?the complinist engine runner sets COMPLINIST_PROJECT_DIR}" || exit 1
exec "\${COMPLINIST_NODE:-node}" ./node_modules/@pulumi/pulumi/cmd/dynamic-provider "$@"
`;

function writeLauncher(dir: string): void {
    const file = path.join(dir, "pulumi-resource-pulumi-nodejs");
    if (fs.existsSync(file) && fs.readFileSync(file, "utf8") === LAUNCHER) return;
    fs.mkdirSync(dir, { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, LAUNCHER, { mode: 0o755 });
    fs.renameSync(tmp, file);
}

/** `go build` of the pinned CLI into dir/bin/pulumi (a temp name, then rename: concurrent builds never see half a binary). */
function build(binDir: string, version: string, log: (line: string) => void): void {
    if (spawnSync("go", ["version"], { stdio: "ignore" }).status !== 0) {
        throw new Error("the Pulumi CLI is not on PATH and Go is not installed to build it (https://go.dev/dl/, then npm run toolchain)");
    }
    fs.mkdirSync(binDir, { recursive: true });
    const tmp = path.join(binDir, `pulumi.${process.pid}.tmp`);
    log(`toolchain: building the Pulumi CLI ${version} from ${path.join(HERE, "go.mod")} (first time: several minutes)`);
    const started = Date.now();
    const r = spawnSync("go", ["build", "-trimpath", "-ldflags", `-s -w -X ${VERSION_VAR}=${version}`, "-o", tmp, `${PKG}/cmd/pulumi`], {
        cwd: HERE,
        stdio: ["ignore", "inherit", "inherit"],
        env: { ...process.env, GOFLAGS: [process.env.GOFLAGS, "-mod=readonly"].filter(Boolean).join(" ") },
    });
    if (r.status !== 0) {
        fs.rmSync(tmp, { force: true });
        throw new Error(`go build of the Pulumi CLI failed (exit ${String(r.status ?? r.signal)}); see go's output above`);
    }
    fs.renameSync(tmp, path.join(binDir, "pulumi"));
    log(`toolchain: built in ${((Date.now() - started) / 1000).toFixed(0)} s, ${(fs.statSync(path.join(binDir, "pulumi")).size / 1e6).toFixed(0)} MB`);
}

/** Where the CLI of these pins lives in the cache. */
function cachedCliDir(version: string): string {
    return path.join(cacheRoot(), `pulumi-${version}-${pinKey()}`, "bin");
}

/** The CLI on PATH or already in the cache, without building; undefined when neither has it. */
export function findToolchain(): Toolchain | undefined {
    const launcherDir = path.join(cacheRoot(), "launcher");
    const found = onPath();
    if (found) return { cliDir: found.dir, launcherDir, version: found.version, source: "PATH" };
    const version = pinnedVersion();
    const cliDir = cachedCliDir(version);
    // Only a finished build is ever at this name (build() renames into place); the Automation API runs `pulumi version` itself.
    return fs.existsSync(path.join(cliDir, "pulumi")) ? { cliDir, launcherDir, version, source: "cache" } : undefined;
}

/** The CLI and the launcher, building the CLI when neither PATH nor the cache has it. */
export function ensureToolchain(log: (line: string) => void = () => undefined): Toolchain {
    writeLauncher(path.join(cacheRoot(), "launcher"));
    const found = findToolchain();
    if (found) return found;
    const version = pinnedVersion();
    const cliDir = cachedCliDir(version);
    build(cliDir, version, log);
    const built = versionOf(path.join(cliDir, "pulumi"));
    if (built === undefined) throw new Error(`the Pulumi CLI built into ${cliDir} does not run`);
    return { cliDir, launcherDir: path.join(cacheRoot(), "launcher"), version: built, source: "built" };
}

if (require.main === module) {
    try {
        const t = ensureToolchain((line) => console.log(line));
        const answered = versionOf(path.join(t.cliDir, "pulumi"));
        if (answered === undefined) throw new Error(`${path.join(t.cliDir, "pulumi")} does not run (pulumi version failed); remove ${t.cliDir} and run npm run toolchain again`);
        console.log(`toolchain: pulumi version ${answered} (${t.source}) in ${t.cliDir}`);
        console.log(`toolchain: dynamic-provider launcher in ${t.launcherDir}`);
    } catch (e) {
        console.error(`toolchain: ${e instanceof Error ? e.message : String(e)}`);
        process.exit(1);
    }
}
