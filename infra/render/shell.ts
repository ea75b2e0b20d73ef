/**
 * Quote a value for bash: single quotes, with embedded single quotes closed,
 * escaped and reopened. Every value that reaches a script goes through here,
 * even ones the schema already constrained.
 */
export function q(value: string | number): string {
    const s = String(value);
    if (s.includes("\0")) throw new Error("a shell value cannot contain a NUL byte");
    return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Quote a value for a systemd unit directive (C-style double quotes; % and $ doubled). */
export function systemdQuote(value: string): string {
    if (/[\n\r\0]/.test(value)) throw new Error("a unit value must be a single line");
    return `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/%/g, "%%").replace(/\$/g, "$$$$")}"`;
}
