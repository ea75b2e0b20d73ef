import * as assert from "assert";
import { formatTraceLine, parseTraceLine, trace } from "../../../infra/transport/trace";
import { handshakes, isTrace, uploads } from "../../e2e/trace";

/** What trace() writes to stderr while COMPLINIST_TRACE is set to `flag`. */
function traceOutput(flag: string | undefined, write: () => void): string {
    const saved = process.env.COMPLINIST_TRACE;
    const stderrWrite = process.stderr.write;
    let out = "";
    if (flag === undefined) delete process.env.COMPLINIST_TRACE;
    else process.env.COMPLINIST_TRACE = flag;
    process.stderr.write = ((chunk: string | Uint8Array) => {
        out += String(chunk);
        return true;
    }) as typeof process.stderr.write;
    try {
        write();
    } finally {
        process.stderr.write = stderrWrite;
        if (saved === undefined) delete process.env.COMPLINIST_TRACE;
        else process.env.COMPLINIST_TRACE = saved;
    }
    return out;
}

describe("trace lines", () => {
    it("a traced line reads back as the event and fields it was written with", () => {
        const out = traceOutput("1", () => trace("upload", { host: "web-1", bytes: 1838 }));
        // `at` (epoch ms) is added to every line: it orders events across the processes writing one file.
        assert.match(out, /^\[complinist\] upload host=web-1 bytes=1838 at=\d{13}\n$/);
        const { at, ...fields } = parseTraceLine(out.trimEnd())?.fields ?? {};
        assert.deepStrictEqual(fields, { host: "web-1", bytes: "1838" });
        assert.ok(Math.abs(Number(at) - Date.now()) < 60000);
    });

    it("values with spaces, quotes, `=` or nothing at all survive the round trip", () => {
        const fields = { note: 'a "quoted" word', expr: "a=b", empty: "", tab: "x\ty", flag: true };
        const parsed = parseTraceLine(formatTraceLine("odd", fields));
        assert.deepStrictEqual(parsed, { event: "odd", fields: { note: 'a "quoted" word', expr: "a=b", empty: "", tab: "x\ty", flag: "true" } });
    });

    it("an event without fields is a trace line too", () => {
        assert.deepStrictEqual(parseTraceLine(formatTraceLine("tick")), { event: "tick", fields: {} });
    });

    it("writes nothing unless COMPLINIST_TRACE is set", () => {
        assert.strictEqual(traceOutput(undefined, () => trace("ssh-handshake", { host: "web-1" })), "");
    });

    it("lines that are not trace lines, or break the format, parse to undefined", () => {
        for (const line of ["[toy] create a.txt", "", "[complinist]", "[complinist] upload host", '[complinist] upload host="unterminated', '[complinist] x k="\\q"']) {
            assert.strictEqual(parseTraceLine(line), undefined, line);
        }
    });

    it("the test engine counts uploads (artifacts, or the agent) and handshakes from the provider log", () => {
        const log = [
            formatTraceLine("ssh-handshake", { host: "web-1" }),
            "some other provider output",
            formatTraceLine("upload", { host: "web-1", bytes: 10, kind: "artifact" }),
            formatTraceLine("activate", { host: "web-1", version: "1.3.0" }),
            formatTraceLine("upload", { host: "web-1", bytes: 5000000, kind: "agent" }),
        ].map((line, at) => ({ stream: "stderr" as const, line, at }));
        assert.deepStrictEqual(uploads(log), [{ host: "web-1", bytes: 10 }]);
        assert.deepStrictEqual(uploads(log, "agent"), [{ host: "web-1", bytes: 5000000 }]);
        assert.strictEqual(handshakes(log), 1);
        assert.ok(isTrace("activate", { host: "web-1", version: "1.3.0" })(log[3]!.line));
        assert.ok(!isTrace("activate", { host: "web-2" })(log[3]!.line));
    });
});
