// @ts-check
/**
 * The operator commands run tsc's output (dist/, git-ignored), never the TypeScript sources: no
 * compile at run time. This file is plain JavaScript because it runs before anything is compiled:
 *   node toolchain/dist.cjs                         build dist/ when it is not the sources' (npm ci's `prepare`)
 *   node -r ./toolchain/dist.cjs dist/scripts/X.js   the same check first, then the command (package.json)
 *
 * Stale dist/ never runs silently: dist/.sources-sha256 holds the sha256 of every source file tsc
 * compiles (tsconfig.build.json's `include`, both tsconfig files, the compiler's version) as of the last successful
 * build. Each command hashes the sources again (a few ms) and, when they differ (an edit, a git
 * checkout, a pull), compiles first: `tsc -p tsconfig.build.json`, incremental (dist/.tsbuildinfo),
 * so only what changed is re-checked. A build that fails runs nothing. Concurrent commands build
 * once: the others wait on dist.lock and hash again.
 */
const { spawnSync } = require("child_process");
const crypto = require("crypto");
const fs = require("fs");
const path = require("path");

const CHECKOUT = path.resolve(__dirname, "..");
const BUILD_CONFIG = "tsconfig.build.json";
const STAMP = ".sources-sha256";
const LOCK = ".build.lock";

/** Files under `dir` (relative to `root`) ending in .ts, recursively, sorted. */
function tsFiles(root, dir) {
    const out = [];
    const walk = (rel) => {
        for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
            const p = path.posix.join(rel, e.name);
            if (e.isDirectory()) walk(p);
            else if (e.isFile() && e.name.endsWith(".ts")) out.push(p);
        }
    };
    if (fs.existsSync(path.join(root, dir))) walk(dir);
    return out;
}

/**
 * Every file the build reads from the checkout: the tsconfig files and what `include` names
 * (entries are a file, or `dir/**\/*.ts`; anything else is refused so the hash cannot miss a file).
 */
function sourceFiles(root = CHECKOUT) {
    const config = JSON.parse(fs.readFileSync(path.join(root, BUILD_CONFIG), "utf8"));
    const files = new Set(["tsconfig.json", BUILD_CONFIG]);
    for (const entry of config.include ?? []) {
        const dir = /^([\w./-]+)\/\*\*\/\*\.ts$/.exec(entry);
        if (dir) for (const f of tsFiles(root, dir[1])) files.add(f);
        else if (/^[\w./-]+\.ts$/.test(entry)) files.add(entry);
        else throw new Error(`${BUILD_CONFIG}: include entry ${JSON.stringify(entry)} is neither a file nor dir/**/*.ts (toolchain/dist.cjs hashes exactly those)`);
    }
    return [...files].sort();
}

/** sha256 over each source's path and content, and the compiler's version: what dist/ must have been built from. */
function sourcesHash(root = CHECKOUT) {
    const h = crypto.createHash("sha256");
    const compiler = path.join(root, "node_modules", "typescript", "package.json");
    h.update(`typescript ${fs.existsSync(compiler) ? JSON.parse(fs.readFileSync(compiler, "utf8")).version : "(none)"}\0`);
    for (const f of sourceFiles(root)) {
        h.update(`${f}\0`);
        h.update(fs.existsSync(path.join(root, f)) ? fs.readFileSync(path.join(root, f)) : "(missing)");
        h.update("\0");
    }
    return h.digest("hex");
}

/** The output directory tsconfig.build.json names. */
function distDir(root = CHECKOUT) {
    const config = JSON.parse(fs.readFileSync(path.join(root, BUILD_CONFIG), "utf8"));
    return path.join(root, config.compilerOptions?.outDir ?? "dist");
}

/** Whether dist/ was built from the sources as they are now. */
function isFresh(root = CHECKOUT, hash = sourcesHash(root)) {
    const stamp = path.join(distDir(root), STAMP);
    return fs.existsSync(stamp) && fs.readFileSync(stamp, "utf8").trim() === hash;
}

const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** Holds dist/.build.lock around fn (a lock left by a process that is gone is taken over). */
function withLock(dir, fn, timeoutMs) {
    fs.mkdirSync(dir, { recursive: true });
    const lock = path.join(dir, LOCK);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        try {
            fs.mkdirSync(lock);
            fs.writeFileSync(path.join(lock, "pid"), String(process.pid));
            break;
        } catch (e) {
            if (e.code !== "EEXIST") throw e;
            let holder = NaN;
            try {
                holder = Number(fs.readFileSync(path.join(lock, "pid"), "utf8"));
            } catch {
                // Being written: look again.
            }
            let alive = true;
            if (Number.isInteger(holder) && holder > 0) {
                try {
                    process.kill(holder, 0);
                } catch (err) {
                    alive = err.code === "EPERM";
                }
            }
            if (!alive) fs.rmSync(lock, { recursive: true, force: true });
            else if (Date.now() > deadline) throw new Error(`${lock} is held by pid ${holder} (another build of dist/) for over ${timeoutMs / 1000} s`);
            else sleep(100);
        }
    }
    try {
        return fn();
    } finally {
        fs.rmSync(lock, { recursive: true, force: true });
    }
}

/**
 * Makes dist/ the sources' own: nothing to do when the stamp matches; otherwise tsc (incremental),
 * then the stamp. Returns what happened; throws when tsc fails (its diagnostics went to stderr).
 */
function ensureDist(opts = {}) {
    const root = opts.root ?? CHECKOUT;
    const log = opts.log ?? ((line) => process.stderr.write(`${line}\n`));
    const tsc = opts.tsc ?? [process.execPath, path.join(root, "node_modules", "typescript", "bin", "tsc")];
    if (isFresh(root)) return "fresh";
    return withLock(
        distDir(root),
        () => {
            const hash = sourcesHash(root);
            if (isFresh(root, hash)) return "fresh";
            const t0 = Date.now();
            log(`complinist: dist/ is not built from these sources: compiling (tsc -p ${BUILD_CONFIG}, incremental)`);
            const r = spawnSync(tsc[0], [...tsc.slice(1), "-p", BUILD_CONFIG], { cwd: root, stdio: ["ignore", 2, 2] });
            if (r.status !== 0) throw new Error(`tsc -p ${BUILD_CONFIG} failed (${r.error ? r.error.message : `exit ${String(r.status ?? r.signal)}`}; its errors are above): the sources do not compile, so no command runs`);
            fs.writeFileSync(path.join(distDir(root), STAMP), `${hash}\n`);
            log(`complinist: dist/ built in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
            return "built";
        },
        opts.lockTimeoutMs ?? 600000,
    );
}

module.exports = { ensureDist, isFresh, sourceFiles, sourcesHash, distDir };

// Run directly (npm ci's prepare) or preloaded before a command (`node -r`, when there is no main module yet).
if (require.main === module || require.main === undefined) {
    try {
        ensureDist();
    } catch (e) {
        process.stderr.write(`complinist: ${e instanceof Error ? e.message : String(e)}\n`);
        process.exit(1);
    }
}
