import * as assert from "assert";
import { linesSafe, terminalSafe } from "../../../ops/terminalText";
import { HOSTILE, inert } from "./hostileText";

const ALL = Object.values(HOSTILE).join("");

describe("terminalSafe: release text made safe for the operator's terminal", () => {
    it("removes escape sequences (CSI, OSC 52 and other OSC, DCS, APC, their C1 forms) and C0/C1 controls, keeping the text and tabs", () => {
        assert.strictEqual(terminalSafe(`ok${ALL}\tdone · 1.1.0 …`), "ok\tdone · 1.1.0 …");
        for (const [name, seq] of Object.entries(HOSTILE)) assert.strictEqual(terminalSafe(`a${seq}b`), "ab", name);
        assert.strictEqual(terminalSafe("one\ntwo"), "onetwo", "a value cannot start a line of its own");
    });

    it("an unterminated string control swallows the rest of the line, as the terminal would", () => {
        assert.strictEqual(terminalSafe("status \x1b]52;c;ZXZpbA== and more"), "status ");
    });

    it("leaves ordinary text alone", () => {
        const text = `2025-01-11T10:00:00Z\tversion=1.1.0 sha256=${"b".repeat(12)}… by=ci@runner [x] ~/ é ü 中文`;
        assert.strictEqual(terminalSafe(text), text);
        assert.ok(inert(terminalSafe(ALL)));
    });
});

describe("linesSafe: host text of several lines (a provider's error)", () => {
    it("makes each line inert and keeps the line breaks", () => {
        assert.strictEqual(linesSafe(`one${HOSTILE.osc52}\r\ntwo\u202e1.0.2\nthree`), "one\ntwo1.0.2\nthree");
    });
});
