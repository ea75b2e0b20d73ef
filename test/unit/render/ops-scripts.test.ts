import * as assert from "assert";
import * as cp from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { PassThrough } from "stream";
import { NO_AGENT_ANSWER, parseStatusAnswer } from "../../../infra/agent/state";
import { hostLayout } from "../../../infra/render/layout";
import { renderLogrotate } from "../../../infra/render/logrotate";
import { LOG_SOURCES, renderLogSource } from "../../../infra/render/logs";
import { renderStatusScript } from "../../../infra/render/status";
import { localTransport } from "../../../infra/transport/local";

const l = hostLayout("/opt/complinist", "complinist");
const hasShellcheck = cp.spawnSync("shellcheck", ["--version"]).status === 0;

/** A health path that would run, split or glob were it not quoted as one word. */
const hostilePath = (marker: string) => `/health'; touch ${marker}; echo '$(touch ${marker}) \`touch ${marker}\` "x" * ?\n$HOME`;

const scripts: Record<string, string> = {
    status: renderStatusScript(l, { service: "complinist", port: 5000, healthPath: "/health" }),
    "status (a hostile health path)": renderStatusScript(l, { service: "complinist", port: 5000, healthPath: hostilePath("/tmp/pwned") }),
    ...Object.fromEntries(LOG_SOURCES.flatMap((s) => [true, false].map((follow) => [`logs ${s}${follow ? " --follow" : ""}`, renderLogSource(l, s, { service: "complinist", lines: 50, follow })]))),
};

async function waitFor(what: string, check: () => boolean, timeoutMs = 10000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 20));
    }
}

describe("operator tool scripts", () => {
    for (const [name, script] of Object.entries(scripts)) {
        it(`${name} parses with bash -n`, () => {
            const r = cp.spawnSync("bash", ["-n"], { input: script, encoding: "utf8" });
            assert.strictEqual(r.status, 0, r.stderr);
        });
        it(`${name} passes shellcheck`, function () {
            if (!hasShellcheck) {
                if (process.env.CI) assert.fail("shellcheck is required in CI");
                this.skip();
            }
            const r = cp.spawnSync("shellcheck", ["-s", "bash", "-S", "warning", "-"], { input: script, encoding: "utf8" });
            assert.strictEqual(r.status, 0, r.stdout);
        });
    }

    it("the status script writes nothing on the host: it only runs the agent's read-only state, bounded in time", () => {
        assert.doesNotMatch(scripts.status!, />/, "no redirection at all");
        assert.strictEqual(
            scripts.status,
            [
                "if [ -x '/usr/local/sbin/complinist' ]; then",
                "  exec /usr/bin/timeout 20 '/usr/local/sbin/complinist' state --port '5000' --health-path '/health'",
                "else",
                `  printf '%s\\n' '${NO_AGENT_ANSWER}'`,
                "fi",
                "",
            ].join("\n"),
        );
    });

    it("a log source refuses a negative or fractional line count", () => {
        assert.throws(() => renderLogSource(l, "app.log", { service: "complinist", lines: -1, follow: false }), /lines must be a whole number/);
        assert.throws(() => renderLogSource(l, "journal", { service: "complinist", lines: 1.5, follow: false }), /lines must be a whole number/);
    });

    describe("run for real on this machine, under a temp root", () => {
        let root: string;
        beforeEach(() => {
            root = fs.mkdtempSync(path.join(os.tmpdir(), "ops-scripts-"));
        });
        afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

        it("a log source prints its last N lines, or says the file is missing", async () => {
            const rl = hostLayout("/opt/complinist", "complinist", root);
            fs.mkdirSync(rl.logDir, { recursive: true });
            fs.writeFileSync(rl.logFile, Array.from({ length: 20 }, (_, i) => `line ${i + 1}`).join("\n") + "\n");
            const t = localTransport({ name: "here", root, systemd: false });
            const r = await t.exec(renderLogSource(rl, "app.log", { service: "complinist", lines: 3, follow: false }));
            assert.deepStrictEqual([r.code, r.stdout], [0, "line 18\nline 19\nline 20\n"]);
            const missing = await t.exec(renderLogSource(rl, "deploy.log", { service: "complinist", lines: 3, follow: false }));
            assert.deepStrictEqual([missing.code, missing.stdout], [0, `(no file ${rl.deployLog})\n`]);
        });

        it("a followed log source streams appended lines and quits when its stdin ends", async () => {
            const rl = hostLayout("/opt/complinist", "complinist", root);
            fs.mkdirSync(rl.logDir, { recursive: true });
            fs.writeFileSync(rl.logFile, "old\n");
            const t = localTransport({ name: "here", root, systemd: false });
            const stdin = new PassThrough();
            let seen = "";
            const done = t.exec(renderLogSource(rl, "app.log", { service: "complinist", lines: 1, follow: true }), { stdin, onStdout: (c) => (seen += c.toString()) });
            await waitFor("the history line", () => seen === "old\n");
            fs.appendFileSync(rl.logFile, "new\n");
            await waitFor("the appended line", () => seen === "old\nnew\n");
            stdin.end();
            const r = await done;
            assert.deepStrictEqual([r.code, r.stdout], [0, ""], "streamed output is not collected again");
        });

        /** An agent at the host program's path that prints the arguments it was given, NUL-terminated, and exits with `code`. */
        function fakeAgent(file: string, code = 0): void {
            fs.mkdirSync(path.dirname(file), { recursive: true });
            fs.writeFileSync(file, `#!/bin/bash\nprintf '%s\\0' "$@"\necho "agent stderr" >&2\nexit ${code}\n`, { mode: 0o755 });
        }

        it("the status script answers the no-agent JSON when nothing is installed at the host program's path", async () => {
            const rl = hostLayout("/opt/complinist", "complinist", root);
            const t = localTransport({ name: "here", root, systemd: false });
            const r = await t.exec(renderStatusScript(rl, { service: "complinist", port: 5000, healthPath: "/health" }));
            assert.deepStrictEqual([r.code, r.stdout, r.stderr], [0, `${NO_AGENT_ANSWER}\n`, ""]);
            assert.strictEqual(parseStatusAnswer(r.stdout, "here"), null);
            // A file there that cannot run is no agent either.
            fs.mkdirSync(path.dirname(rl.hostProgram), { recursive: true });
            fs.writeFileSync(rl.hostProgram, "not a program\n", { mode: 0o644 });
            const notRunnable = await t.exec(renderStatusScript(rl, { service: "complinist", port: 5000, healthPath: "/health" }));
            assert.deepStrictEqual([notRunnable.code, notRunnable.stdout], [0, `${NO_AGENT_ANSWER}\n`]);
            assert.deepStrictEqual(fs.readdirSync(root).sort(), ["usr"], "nothing else written under the root");
        });

        it("the status script runs the installed agent's state with the port and a hostile health path as one word each", async () => {
            const rl = hostLayout("/opt/complinist", "complinist", root);
            fakeAgent(rl.hostProgram);
            const marker = path.join(root, "pwned");
            const healthPath = hostilePath(marker);
            const t = localTransport({ name: "here", root, systemd: false });
            const r = await t.exec(renderStatusScript(rl, { service: "complinist", port: 5000, healthPath }));
            assert.strictEqual(r.code, 0, r.stderr);
            assert.deepStrictEqual(r.stdout.split("\0"), ["state", "--port", "5000", "--health-path", healthPath, ""]);
            assert.strictEqual(fs.existsSync(marker), false, "nothing in the path ran");
        });

        it("the status script passes the agent's exit code and stderr through (a refusal is the caller's to report)", async () => {
            const rl = hostLayout("/opt/complinist", "complinist", root);
            fakeAgent(rl.hostProgram, 3);
            const t = localTransport({ name: "here", root, systemd: false });
            const r = await t.exec(renderStatusScript(rl, { service: "complinist", port: 5000, healthPath: "/health" }));
            assert.deepStrictEqual([r.code, r.stderr], [3, "agent stderr\n"]);
        });
    });

    describe("logrotate policy", () => {
        it("rotates app.log by copy and truncate (systemd keeps it open) and deploy.log by rename, re-created root:root 0640, daily, 14 kept, compressed a day late", () => {
            const text = renderLogrotate(l);
            assert.strictEqual(hostLayout("/opt/complinist", "complinist").logrotateFile, "/etc/logrotate.d/complinist");
            const blocks = Object.fromEntries([...text.matchAll(/^(\S+) \{\n([\s\S]*?)\n\}$/gm)].map((m) => [m[1], m[2]!.split("\n").map((x) => x.trim())]));
            assert.deepStrictEqual(Object.keys(blocks), ["/var/log/complinist/app.log", "/var/log/complinist/deploy.log"]);
            const common = ["daily", "rotate 14", "compress", "delaycompress", "missingok", "notifempty"];
            assert.deepStrictEqual(blocks["/var/log/complinist/app.log"], [...common, "copytruncate"]);
            assert.deepStrictEqual(blocks["/var/log/complinist/deploy.log"], [...common, "create 0640 root root"]);
            assert.doesNotMatch(text, /^\s*su /m, "the directory is root's: no su, which existed for a service-user-owned directory");
        });

        it("refuses a path that could break out of the policy's syntax", () => {
            assert.throws(() => renderLogrotate({ ...l, logFile: "/var/log/a b" }), /must be absolute/);
            assert.throws(() => renderLogrotate({ ...l, deployLog: "/var/log/x {\n/etc/shadow" }), /must be absolute/);
        });
    });
});
