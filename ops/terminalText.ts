/**
 * What a release answers or logs, made safe for an operator's terminal (the untrusted input
 * rule): a health body or a log line could otherwise clear the screen, rewrite what was
 * printed above, set the window title, or write the clipboard (OSC 52), and Unicode's bidi
 * controls could show text in another order than it is (a version or a host name read backwards).
 * One function for every printer of host text (`npm run status`, `npm run logs`), and one for
 * the dynamic providers' errors, which Pulumi prints (infra/providers/guard.ts).
 */

// String controls — OSC (ESC ], U+009D), DCS (ESC P, U+0090), SOS (ESC X, U+0098), PM (ESC ^,
// U+009E), APC (ESC _, U+009F) — up to their terminator (BEL, ESC \ or U+009C) or the end;
// CSI (ESC [ or U+009B) with its parameter, intermediate and final bytes; any other escape.
const SEQUENCES = /(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[\s\S]*?(?:\x07|\x1b\\|\x9c|$)|(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?|\x1b[\x20-\x2f]*[\x30-\x7e]?/g;
/** C0 controls but tab, DEL, and C1 controls. */
const CONTROLS = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/g;
/** Bidi controls: embeddings, overrides and isolates (U+202A–202E, U+2066–2069), the marks (U+200E, U+200F, U+061C). */
const BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** Text without Unicode's bidi controls (also for the team chat: ops/notify.ts). */
export function withoutBidi(text: string): string {
    return text.replace(BIDI, "");
}

/** One line of host text with every escape sequence, control character but tab, and bidi control removed. */
export function terminalSafe(text: string): string {
    return withoutBidi(text.replace(SEQUENCES, "").replace(CONTROLS, ""));
}

/** Text of several lines made safe line by line (terminalSafe), its line breaks kept. */
export function linesSafe(text: string): string {
    return text.split(/\r?\n/).map(terminalSafe).join("\n");
}
