import * as assert from "assert";
import type { Readable } from "stream";
import type { ExecOptions } from "../../../infra/transport";
import { DEFAULT_LINES, lineSplitter, LOGS_EXIT, parseLogsArgs, selectHosts, showLogs } from "../../../ops/logs";
import { FakeTransport } from "./fakeTransport";
import { HOSTILE, inert } from "./hostileText";

const config = { baseDir: "/opt/complinist", service: { name: "complinist", port: 5000, user: "complinist", command: "bin/start", environment: {}, standby: true } };

function sourceOf(script: string): string {
    if (script.includes("journalctl")) return "journal";
    return script.includes("deploy.log") ? "deploy" : "app";
}

function io() {
    const out: string[] = [];
    const err: string[] = [];
    return { out, err, io: { out: (s: string) => out.push(s), err: (s: string) => err.push(s) } };
}

describe("logs helper", () => {
    it("parses --host, --lines and --follow, with 50 lines by default", () => {
        assert.deepStrictEqual(parseLogsArgs(["--stack", "prod", "--host", "prod-2", "--lines", "200", "--follow"]), {
            stack: "prod", host: "prod-2", lines: 200, follow: true, noPulumi: false, key: undefined, help: false,
        });
        assert.deepStrictEqual(parseLogsArgs(["-s", "dev", "-n", "0", "-f", "--no-pulumi", "--key", "k"]), { stack: "dev", host: undefined, lines: 0, follow: true, noPulumi: true, key: "k", help: false });
        assert.strictEqual(parseLogsArgs(["--stack", "dev"]).lines, DEFAULT_LINES);
        assert.throws(() => parseLogsArgs(["--stack", "dev", "--lines", "ten"]), /--lines "ten" is not a line count/);
        assert.throws(() => parseLogsArgs(["--stack", "dev", "--lines=-1"]), /--lines "-1" is not a line count/);
        assert.throws(() => parseLogsArgs(["--lines", "5"]), /--stack <env> is required/);
        assert.throws(() => parseLogsArgs(["--stack", "dev", "extra"]), /usage: npm run logs/);
    });

    it("--host picks one host; an unknown name lists the known ones", () => {
        const hosts = [{ name: "prod-1" }, { name: "prod-2" }];
        assert.deepStrictEqual(selectHosts("prod", hosts, undefined), hosts);
        assert.deepStrictEqual(selectHosts("prod", hosts, "prod-2"), [{ name: "prod-2" }]);
        assert.throws(() => selectHosts("prod", hosts, "prod-3"), /stack 'prod' has no host "prod-3" \(hosts: prod-1, prod-2\)/);
    });

    it("splits chunks into lines across chunk borders and hands over an unterminated last line", () => {
        const lines: string[] = [];
        const s = lineSplitter((l) => lines.push(l));
        s.push(Buffer.from("one\ntw"));
        s.push(Buffer.from("o\r\nthr"));
        assert.deepStrictEqual(lines, ["one", "two"]);
        s.flush();
        assert.deepStrictEqual(lines, ["one", "two", "thr"]);
    });

    it("prints every source of every host in order, each line prefixed with its host and source", async () => {
        const answer = (host: string) => (script: string) => ({ code: 0, stdout: `${host} ${sourceOf(script)} 1\n${host} ${sourceOf(script)} 2\n`, stderr: "" });
        const a = new FakeTransport("web-1", answer("a"));
        const b = new FakeTransport("web-10", answer("b"));
        const o = io();
        const code = await showLogs(config, [{ name: "web-1", transport: a }, { name: "web-10", transport: b }], { lines: 2, follow: false }, o.io);
        assert.strictEqual(code, LOGS_EXIT.ok);
        assert.deepStrictEqual(o.out, [
            "web-1  app.log    | a app 1",
            "web-1  app.log    | a app 2",
            "web-1  deploy.log | a deploy 1",
            "web-1  deploy.log | a deploy 2",
            "web-1  journal    | a journal 1",
            "web-1  journal    | a journal 2",
            "web-10 app.log    | b app 1",
            "web-10 app.log    | b app 2",
            "web-10 deploy.log | b deploy 1",
            "web-10 deploy.log | b deploy 2",
            "web-10 journal    | b journal 1",
            "web-10 journal    | b journal 2",
        ]);
        assert.ok(a.scripts.some((s) => s.includes("tail -n 2 -- '/var/log/complinist/app.log'")));
        assert.ok(a.scripts.some((s) => s.includes("journalctl -u 'complinist*' -n 2 --no-pager -o short-iso")));
    });

    it("reports a host that cannot be read on stderr, prefixed with its name, shows the others and exits 2", async () => {
        const ok = new FakeTransport("web-1", () => ({ code: 0, stdout: "fine\n", stderr: "" }));
        const gone = new FakeTransport("web-2", () => Promise.reject(new Error("cannot reach host web-2 at 10.0.0.2:22 within 15 s")));
        const o = io();
        const code = await showLogs(config, [{ name: "web-1", transport: ok }, { name: "web-2", transport: gone }], { lines: 5, follow: false }, o.io);
        assert.strictEqual(code, LOGS_EXIT.failed);
        assert.strictEqual(o.out.length, 3);
        assert.strictEqual(o.err.length, 3);
        assert.match(o.err[0]!, /^web-2 app\.log    \| cannot read: cannot reach host web-2/);
    });

    it("what the app logs reaches the terminal without a control character or escape sequence, read or followed", async () => {
        const evil = Object.values(HOSTILE).join("");
        const o = io();
        const logged = new FakeTransport("web-1", () => ({ code: 0, stdout: `GET / 200${evil} done\r\n`, stderr: "" }));
        const failing = new FakeTransport("web-2", () => ({ code: 1, stdout: "", stderr: `journalctl: ${evil}` }));
        await showLogs(config, [{ name: "web-1", transport: logged }, { name: "web-2", transport: failing }], { lines: 5, follow: false }, o.io);
        assert.strictEqual(o.out[0], "web-1 app.log    | GET / 200 done");
        const followed = new FakeTransport("web-1", (_script, options) => {
            options?.onStdout?.(Buffer.from(`tail ${evil} end\n`));
            return { code: 0, stdout: "", stderr: "" };
        });
        await showLogs(config, [{ name: "web-1", transport: followed }], { lines: 0, follow: true }, o.io);
        assert.ok(o.out.includes("web-1 app.log    | tail  end"), JSON.stringify(o.out));
        for (const line of [...o.out, ...o.err]) assert.ok(inert(line), JSON.stringify(line));
    });

    it("--follow streams lines from all hosts as they arrive and ends every reader's stdin when stopped", async () => {
        const inputs: Readable[] = [];
        const streams: Array<(text: string) => void> = [];
        const follow = (script: string, options?: ExecOptions) => {
            assert.match(script, /cat >\/dev\/null/, "a followed reader waits for its stdin to close");
            const stdin = options?.stdin as Readable;
            inputs.push(stdin);
            streams.push((text) => options?.onStdout?.(Buffer.from(text)));
            // The host side ends once its stdin reaches end of file.
            return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
                stdin.on("end", () => resolve({ code: 0, stdout: "", stderr: "" }));
                stdin.resume();
            });
        };
        const stop = new AbortController();
        const o = io();
        const done = showLogs(config, [{ name: "a", transport: new FakeTransport("a", follow) }, { name: "b", transport: new FakeTransport("b", follow) }], { lines: 0, follow: true }, o.io, stop.signal);
        while (streams.length < 6) await new Promise((r) => setImmediate(r));
        streams[3]!("from b, par");
        streams[0]!("from a\n");
        streams[3]!("t two\n");
        assert.deepStrictEqual(o.out, ["a app.log    | from a", "b app.log    | from b, part two"]);
        stop.abort();
        assert.strictEqual(await done, LOGS_EXIT.ok);
        assert.ok(inputs.every((s) => s.readableEnded), "every reader's stdin was ended");
    });
});
