/** A markdown table with padded columns, as pasted into the README's Figures section. */
export function markdownTable(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
    const fmt = (cells: readonly string[]): string => "| " + widths.map((w, i) => (cells[i] ?? "").padEnd(w)).join(" | ") + " |";
    return [fmt(header), "| " + widths.map((w) => "-".repeat(w)).join(" | ") + " |", ...rows.map(fmt)].join("\n");
}

/** 13279 → "13,279", as in the figures. */
export function count(n: number): string {
    return n.toLocaleString("en-US");
}
