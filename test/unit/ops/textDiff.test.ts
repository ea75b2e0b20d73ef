import * as assert from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { unifiedDiff } from "../../../ops/textDiff";

/** git apply is the judge: the diff turns `before` into exactly `after`. */
function applies(before: string, after: string): void {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "textdiff-"));
    fs.writeFileSync(path.join(dir, "f.yaml"), before);
    const diff = unifiedDiff(before, after, "f.yaml");
    fs.writeFileSync(path.join(dir, "d.diff"), diff);
    execFileSync("git", ["apply", "--unidiff-zero", "d.diff"], { cwd: dir });
    assert.strictEqual(fs.readFileSync(path.join(dir, "f.yaml"), "utf8"), after, diff);
}

const numbered = (n: number) => Array.from({ length: n }, (_, i) => `line ${i + 1}`).join("\n") + "\n";

describe("unified diff (ops/textDiff.ts)", () => {
    it("writes what diff -u writes for one changed line", () => {
        assert.strictEqual(unifiedDiff("a\nb\nc\n", "a\nB\nc\n", "x.yaml"), "--- a/x.yaml\n+++ b/x.yaml\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n");
    });

    it("is empty for equal texts", () => {
        assert.strictEqual(unifiedDiff("a\n", "a\n", "x"), "");
    });

    it("keeps distant changes in separate hunks and near ones in one", () => {
        const before = numbered(30);
        const after = before.replace("line 2\n", "line two\n").replace("line 25\n", "line 25\nline 25b\n");
        const d = unifiedDiff(before, after, "f");
        assert.deepStrictEqual(d.split("\n").filter((l) => l.startsWith("@@")), ["@@ -1,5 +1,5 @@", "@@ -23,6 +23,7 @@"]);
        applies(before, after);
        applies(before, before.replace("line 5\n", "line five\n").replace("line 9\n", ""));
    });

    it("applies for insertions and deletions at either end and for whole-file changes", () => {
        const base = numbered(8);
        for (const after of [`first\n${base}`, `${base}last\n`, base.replace("line 1\n", ""), base.replace("line 8\n", ""), "other\n", numbered(3), ""]) applies(base, after);
        applies("", "new\n");
    });
});
