// toolchain/agent.ts without Go: what the build key covers, and the lookup by sha256.
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { agentBinaryBySha, agentKey, agentSources } from "../../toolchain/agent";

function tree(files: Record<string, string>): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "agent-key-"));
    for (const [rel, content] of Object.entries(files)) {
        fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
        fs.writeFileSync(path.join(dir, rel), content);
    }
    return dir;
}

const BASE = { "go.mod": "module complinist/agent\n", "go.sum": "", "main.go": "package main\n", "internal/cli/cli.go": "package cli\n" };

describe("toolchain/agent.ts", () => {
    const dirs: string[] = [];
    const mk = (files: Record<string, string>): string => {
        const d = tree(files);
        dirs.push(d);
        return d;
    };
    after(() => {
        for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
    });

    it("hashes the non-test .go files go builds, by sorted relative path", () => {
        const d = mk({ ...BASE, "internal/cli/cli_test.go": "x", "internal/x/testdata/t.go": "x", ".git/h.go": "x", "_old/o.go": "x", "README.md": "x" });
        assert.deepStrictEqual(agentSources(d), ["internal/cli/cli.go", "main.go"]);
    });

    it("keys the sources, go.mod, go.sum and the Go version, not the checkout path or test files", () => {
        const key = agentKey(mk(BASE), "go1.26.8");
        assert.match(key, /^[0-9a-f]{12}$/);
        assert.strictEqual(agentKey(mk(BASE), "go1.26.8"), key, "another path, same key");
        assert.strictEqual(agentKey(mk({ ...BASE, "internal/cli/cli_test.go": "package cli\n" }), "go1.26.8"), key, "tests are not in the binary");
        assert.notStrictEqual(agentKey(mk(BASE), "go1.26.9"), key);
        assert.notStrictEqual(agentKey(mk({ ...BASE, "go.sum": "x h1:y\n" }), "go1.26.8"), key);
        assert.notStrictEqual(agentKey(mk({ ...BASE, "main.go": "package main // changed\n" }), "go1.26.8"), key);
        // A file moved keeps its content but not its key (the path is hashed too).
        const { "internal/cli/cli.go": moved, ...rest } = BASE;
        assert.notStrictEqual(agentKey(mk({ ...rest, "internal/cmd/cli.go": moved }), "go1.26.8"), key);
    });

    it("finds a built binary by its sha256 in the cache, and names the command when it is not built", () => {
        const cache = mk({});
        const saved = process.env.COMPLINIST_TOOLCHAIN_CACHE;
        process.env.COMPLINIST_TOOLCHAIN_CACHE = cache;
        try {
            const sha = "a".repeat(64);
            assert.throws(() => agentBinaryBySha(sha), { message: `the host agent with sha256 ${sha} is not built on this machine: run npm run agent` });
            assert.throws(() => agentBinaryBySha("../../etc/passwd"), /is not built on this machine/);
            fs.mkdirSync(path.join(cache, "agent-by-sha256"));
            fs.writeFileSync(path.join(cache, "agent-by-sha256", sha), "binary");
            assert.strictEqual(agentBinaryBySha(sha), path.join(cache, "agent-by-sha256", sha));
        } finally {
            if (saved === undefined) delete process.env.COMPLINIST_TOOLCHAIN_CACHE;
            else process.env.COMPLINIST_TOOLCHAIN_CACHE = saved;
        }
    });
});
