// toolchain/dist.cjs: the operator commands run tsc's output, and a dist/ that is not built from the
// sources as they are never runs (it is rebuilt first, or the command fails when they do not compile).
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

const REPO = path.resolve(__dirname, "..", "..", "..");
const TSC = [process.execPath, path.join(REPO, "node_modules", "typescript", "bin", "tsc")];
const dist = require(path.join(REPO, "toolchain", "dist.cjs")) as {
    ensureDist(opts: { root: string; tsc?: string[]; log?: (line: string) => void; lockTimeoutMs?: number }): "fresh" | "built";
    isFresh(root: string): boolean;
    sourceFiles(root: string): string[];
    sourcesHash(root: string): string;
};

const OPERATOR_COMMANDS = ["up", "preview", "deploy", "rollback", "status", "drift", "logs", "release", "destroy"];

describe("dist/: the operator commands run compiled JavaScript", function () {
    this.timeout(120000);
    let root: string;
    const logged: string[] = [];
    const ensure = () => dist.ensureDist({ root, tsc: TSC, log: (l) => logged.push(l) });
    const run = () => spawnSync(process.execPath, [path.join(root, "dist", "src", "main.js")], { encoding: "utf8" }).stdout.trim();

    beforeEach(() => {
        root = fs.mkdtempSync(path.join(os.tmpdir(), "dist-"));
        logged.length = 0;
        fs.writeFileSync(path.join(root, "tsconfig.json"), JSON.stringify({ compilerOptions: { target: "es2022", module: "commonjs", strict: true, types: [] } }));
        fs.writeFileSync(
            path.join(root, "tsconfig.build.json"),
            JSON.stringify({ extends: "./tsconfig.json", compilerOptions: { outDir: "dist", rootDir: ".", incremental: true, tsBuildInfoFile: "dist/.tsbuildinfo" }, include: ["src/**/*.ts"] }),
        );
        fs.mkdirSync(path.join(root, "src"));
        fs.writeFileSync(path.join(root, "src", "main.ts"), 'import { word } from "./word";\nconsole.log(word);\n');
        fs.writeFileSync(path.join(root, "src", "word.ts"), 'export const word: string = "one";\n');
    });
    afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

    it("builds when dist/ is missing, then does nothing while the sources stay as they were", () => {
        assert.strictEqual(dist.isFresh(root), false);
        assert.strictEqual(ensure(), "built");
        assert.strictEqual(run(), "one");
        assert.strictEqual(dist.isFresh(root), true);
        assert.strictEqual(ensure(), "fresh");
        assert.match(logged.join("\n"), /dist\/ is not built from these sources: compiling/);
    });

    it("an edited source is compiled before the next command: the old code never runs", () => {
        ensure();
        fs.writeFileSync(path.join(root, "src", "word.ts"), 'export const word: string = "two";\n');
        assert.strictEqual(dist.isFresh(root), false);
        assert.strictEqual(ensure(), "built");
        assert.strictEqual(run(), "two");
    });

    it("a source that does not compile fails the command and leaves dist/ marked stale", () => {
        ensure();
        fs.writeFileSync(path.join(root, "src", "word.ts"), "export const word: number = 'three';\n");
        assert.throws(() => ensure(), /tsc -p tsconfig\.build\.json failed .*the sources do not compile, so no command runs/);
        assert.strictEqual(dist.isFresh(root), false, "the next command tries again, never the old build");
    });

    it("an added or deleted source, a changed tsconfig or another compiler version makes dist/ stale", () => {
        ensure();
        const h0 = dist.sourcesHash(root);
        fs.writeFileSync(path.join(root, "src", "extra.ts"), "export {};\n");
        const h1 = dist.sourcesHash(root);
        fs.rmSync(path.join(root, "src", "extra.ts"));
        assert.strictEqual(dist.sourcesHash(root), h0);
        fs.appendFileSync(path.join(root, "tsconfig.json"), "\n");
        const h2 = dist.sourcesHash(root);
        // Another compiler (an upgrade in package-lock.json) builds anew too.
        fs.mkdirSync(path.join(root, "node_modules", "typescript"), { recursive: true });
        fs.writeFileSync(path.join(root, "node_modules", "typescript", "package.json"), JSON.stringify({ version: "9.9.9" }));
        assert.deepStrictEqual(new Set([h0, h1, h2, dist.sourcesHash(root)]).size, 4);
    });

    it("takes over the build lock of a process that is gone; waits for a live holder, then names it", () => {
        const lock = path.join(root, "dist", ".build.lock");
        fs.mkdirSync(lock, { recursive: true });
        const gone = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" }).stdout;
        fs.writeFileSync(path.join(lock, "pid"), gone);
        assert.strictEqual(ensure(), "built");
        assert.ok(!fs.existsSync(lock));
        fs.writeFileSync(path.join(root, "src", "word.ts"), 'export const word: string = "four";\n');
        fs.mkdirSync(lock);
        fs.writeFileSync(path.join(lock, "pid"), String(process.pid));
        assert.throws(() => dist.ensureDist({ root, tsc: TSC, log: () => undefined, lockTimeoutMs: 300 }), new RegExp(`held by pid ${process.pid}`));
        fs.rmSync(lock, { recursive: true });
    });

    it("refuses an include entry it cannot hash exactly", () => {
        fs.writeFileSync(path.join(root, "tsconfig.build.json"), JSON.stringify({ extends: "./tsconfig.json", compilerOptions: { outDir: "dist" }, include: ["src/*.ts"] }));
        assert.throws(() => dist.sourceFiles(root), /include entry "src\/\*\.ts" is neither a file nor dir\/\*\*\/\*\.ts/);
    });

    it("this repo: the hash covers every file of the checkout tsc compiles for dist/ (nothing imported from outside include)", () => {
        const r = spawnSync(TSC[0] as string, [...TSC.slice(1), "-p", "tsconfig.build.json", "--listFilesOnly"], { cwd: REPO, encoding: "utf8" });
        assert.strictEqual(r.status, 0, r.stdout + r.stderr);
        const compiled = r.stdout.split("\n").filter((f) => f.startsWith(`${REPO}/`) && !f.includes("/node_modules/")).map((f) => path.relative(REPO, f));
        const hashed = dist.sourceFiles(REPO);
        assert.ok(compiled.length > 50, `tsc lists ${compiled.length} files`);
        assert.deepStrictEqual(compiled.filter((f) => !hashed.includes(f)), []);
    });

    it("this repo: every operator command runs its compiled script through the freshness check; ts-node is not among them", () => {
        const scripts = (JSON.parse(fs.readFileSync(path.join(REPO, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;
        for (const name of OPERATOR_COMMANDS) {
            assert.strictEqual(scripts[name], `node -r ./toolchain/dist.cjs dist/scripts/${name}.js`, name);
            assert.ok(fs.existsSync(path.join(REPO, "scripts", `${name}.ts`)), `scripts/${name}.ts`);
        }
        assert.strictEqual(scripts.prepare, "node toolchain/dist.cjs", "npm ci builds dist/");
        assert.match(fs.readFileSync(path.join(REPO, ".gitignore"), "utf8"), /^dist\/$/m);
    });
});
