/**
 * A unified diff (`diff -u`, as `git apply` and reviewers read it) of two small texts
 * — a stack file before and after a helper's change — so the helper prints the exact
 * change to commit without a git checkout or a diff binary.
 */

type Op = { readonly kind: " " | "-" | "+"; readonly text: string };

function lines(text: string): string[] {
    const l = text.split("\n");
    if (l[l.length - 1] === "") l.pop();
    return l;
}

/** Longest common subsequence walk; a stack file has tens of lines, so O(n·m) is nothing. */
function ops(a: string[], b: string[]): Op[] {
    const n = a.length;
    const m = b.length;
    const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
    for (let i = n - 1; i >= 0; i--) {
        for (let j = m - 1; j >= 0; j--) {
            lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
        }
    }
    const out: Op[] = [];
    let i = 0;
    let j = 0;
    while (i < n || j < m) {
        if (i < n && j < m && a[i] === b[j]) {
            out.push({ kind: " ", text: a[i]! });
            i++;
            j++;
        } else if (i < n && (j === m || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) {
            out.push({ kind: "-", text: a[i++]! });
        } else {
            out.push({ kind: "+", text: b[j++]! });
        }
    }
    return out;
}

const range = (start: number, count: number) => `${count === 0 ? start - 1 : start},${count}`;

/** `--- a/<file>` / `+++ b/<file>` and hunks with `context` lines around each change; "" when equal. */
export function unifiedDiff(before: string, after: string, file: string, context = 3): string {
    const all = ops(lines(before), lines(after));
    const changed = all.flatMap((o, k) => (o.kind === " " ? [] : [k]));
    if (changed.length === 0) return "";
    const out = [`--- a/${file}`, `+++ b/${file}`];
    let g = 0;
    while (g < changed.length) {
        let last = g;
        while (last + 1 < changed.length && changed[last + 1]! - changed[last]! <= 2 * context) last++;
        const start = Math.max(0, changed[g]! - context);
        const end = Math.min(all.length, changed[last]! + context + 1);
        const before = all.slice(0, start);
        const oldStart = before.filter((o) => o.kind !== "+").length + 1;
        const newStart = before.filter((o) => o.kind !== "-").length + 1;
        const hunk = all.slice(start, end);
        const oldCount = hunk.filter((o) => o.kind !== "+").length;
        const newCount = hunk.filter((o) => o.kind !== "-").length;
        out.push(`@@ -${range(oldStart, oldCount)} +${range(newStart, newCount)} @@`, ...hunk.map((o) => `${o.kind}${o.text}`));
        g = last + 1;
    }
    return `${out.join("\n")}\n`;
}
