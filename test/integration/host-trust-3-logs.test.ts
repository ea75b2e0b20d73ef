import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { buildArtifacts, type BuiltArtifact } from "../../scripts/build-artifacts";
import { buildImages, loadImages, pushImages } from "../../dev/images";
import { RealEngine, type ProgramConfig } from "../e2e/engine";
import { TestHost, useHosts, hostEntry } from "../../dev/hosts";
import { hostLayout } from "../../infra/render/layout";
import { q } from "../../infra/render/shell";
import { APP_LOG_BOUND } from "../../infra/render/unit";
import { closeAllConnections, openTransport } from "../../infra/transport";
import { showLogs } from "../../ops/logs";

/**
 * Host trust, third round, finding 8 (issue 29), on real hosts through the real engine: an app that
 * floods its output cannot grow app.log past its bound, and no root process writes app.log (root
 * may take the disk's reserved blocks, which the emergency rollback needs). Release mode on a
 * plain test host; container mode on a host with its own Docker engine, with an image whose CMD
 * floods before it starts the app. Each flooder writes FLOOD bytes then a last line: the tests
 * wait for that line to reach app.log (so every byte went through the writer), then look.
 */

const FLOOD = 200 * 1024 * 1024;
const BOUND = Number(APP_LOG_BOUND.slice(0, -1)) * 1024 * 1024;
/** What another write in flight can add over the bound: one 64 KiB chunk per writer, doubled. */
const MARGIN = 256 * 1024;
const l = hostLayout("/opt/complinist", "complinist");
const DONE = `flood done: ${FLOOD} bytes`;
/** Backgrounded, so the app starts and passes its gate while the flood runs; head cuts the last flood line, so DONE starts a line of its own. */
const FLOODER = `(yes 'flood line: this app writes as fast as it can' | head -c ${FLOOD}; echo; echo '${DONE}') &`;

/**
 * Every process as the caller sees it: "holds <uid> <comm>" when it has app.log open, "hidden <uid>
 * <comm>" when the caller may not read its descriptors. (A test host's root lacks CAP_SYS_PTRACE:
 * it reads the descriptors of root's processes, and of no other user's; the log writer is not
 * dumpable, so not even its own user reads them.)
 */
const HOLDERS = `for p in /proc/[0-9]*; do who="$(awk '/^Uid:/ { print $2 }' "$p/status" 2>/dev/null) $(cat "$p/comm" 2>/dev/null)"; if ! ls "$p/fd" >/dev/null 2>&1; then echo "hidden $who"; continue; fi; for fd in "$p"/fd/*; do if [ "$(readlink "$fd" 2>/dev/null)" = ${l.logFile} ]; then echo "holds $who"; break; fi; done; done | sort -u`;

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 300000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 250));
    }
}

/** What the instance said when a deploy failed: the journal of its units and app.log's end. */
async function hostSide(h: TestHost, error: string | undefined): Promise<string> {
    if (error === undefined) return "";
    const r = await h.exec(`journalctl -u 'complinist@*' -n 30 --no-pager -o cat; tail -c 2000 ${l.logFile}`);
    return `${error}\n--- on the host:\n${r.stdout}${r.stderr}`;
}

/** The checks both modes share, once the flood is up: bound, trim note, writer identity, `npm run logs`. */
async function assertBoundedAndNotRoot(h: TestHost): Promise<void> {
    await waitFor(`the flooder's last line in app.log (${FLOOD} bytes through the writer)`, async () => (await h.exec(`grep -qxF '${DONE}' ${l.logFile}`)).code === 0);
    const [size, blocks] = (await h.run(`stat -c '%s %b' ${l.logFile}`)).split(" ").map(Number) as [number, number];
    assert.ok(size <= BOUND + MARGIN, `app.log is ${size} bytes after a ${FLOOD}-byte flood: over its bound ${BOUND} (+${MARGIN})`);
    assert.ok(blocks * 512 <= BOUND + MARGIN + 1024 * 1024, `app.log takes ${blocks} blocks of 512 bytes on disk`);
    assert.match(await h.run(`grep -c 'app.log reached its bound of ${BOUND} bytes: emptied in place by the log writer' ${l.logFile}`), /^[1-9]\d*$/, "the writer said where it emptied the file");
    const uid = await h.run("id -u complinist");
    assert.notStrictEqual(uid, "0");
    // Only the log writer holds app.log, as the service user: no root process (root's docker CLI
    // included). Root reads every process's descriptors (a real host's root, and the test hosts,
    // have CAP_SYS_PTRACE); any it could not read are not root's.
    const byRoot = (await h.run(HOLDERS)).split("\n");
    assert.deepStrictEqual(byRoot.filter((x) => x.startsWith("holds ")), [`holds ${uid} complinist`], "only the service user's log writer holds app.log open");
    assert.deepStrictEqual(byRoot.filter((x) => /^hidden 0 /.test(x)), [], "root reads every root process's descriptors");
    // Nor does the app, as its own user sees it: only the writer (hidden even from that user) has it.
    const byUser = (await h.run(`runuser -u complinist -- sh -c ${q(HOLDERS)}`)).split("\n");
    assert.deepStrictEqual(byUser.filter((x) => x.startsWith("holds ")), [], "the app's own processes do not hold app.log");
    const writers = await h.run(`pgrep -u complinist -x complinist -a | grep -c ' log-writer ${APP_LOG_BOUND}$' || true`);
    assert.match(writers, /^[1-9]$/, "the log writer runs as the service user");
    assert.strictEqual(await h.run("pgrep -u 0 -f ' log-write[r] ' | wc -l"), "0", "no log writer runs as root");
    assert.strictEqual(await h.run(`stat -c '%U:%G %a' ${l.logFile} ${l.logDir}`), "root:root 640\nroot:root 750", "the file and its directory stay root's: the writer got the descriptor from systemd");

    const out: string[] = [];
    const err: string[] = [];
    const transport = await openTransport({ kind: "ssh", ...hostEntry(h), privateKey: h.privateKey });
    try {
        const code = await showLogs({ baseDir: "/opt/complinist", service: { name: "complinist" } } as Parameters<typeof showLogs>[0], [{ name: h.name, transport }], { lines: 3, follow: false }, { out: (s) => out.push(s), err: (s) => err.push(s) });
        assert.strictEqual(code, 0, err.join("\n"));
    } finally {
        closeAllConnections();
    }
    // The app's newest output, through the writer: its flooder's last line or its access log (the gate's probes), whichever came last.
    assert.ok(out.some((x) => x.startsWith(`${h.name} app.log`) && (x.endsWith(`| ${DONE}`) || /\| 127\.0\.0\.1 "GET \/health HTTP\/1\.1" 200/.test(x))), `npm run logs shows the app's lines:\n${out.join("\n")}`);
}

describe("host trust, round 3, finding 8, on real hosts: app.log is bounded and not written by root", function () {
    this.timeout(1200000);

    describe("release mode", () => {
        const hosts: TestHost[] = useHosts(1, { names: ["logs-1"] });
        const h = () => hosts[0] as TestHost;
        let tmp = "";
        let art: BuiltArtifact;
        let driver: RealEngine;

        before(async () => {
            tmp = fs.mkdtempSync(path.join(os.tmpdir(), "host-trust-3-logs-"));
            art = (await buildArtifacts(path.join(tmp, "built"))).find((a) => a.version === "1.0.0") as BuiltArtifact;
            driver = new RealEngine({ stack: "itest-logs-release", env: { COMPLINIST_DEPLOYER: "itest" } });
        });
        after(async () => {
            await driver?.close();
            if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
        });

        it(`an app flooding ${FLOOD} bytes leaves app.log within ${APP_LOG_BOUND}, written by the service user's log writer`, async () => {
            const config: ProgramConfig = {
                "complinist:mode": "release",
                "complinist:version": "1.0.0",
                "complinist:releases": { "1.0.0": { path: art.file, sha256: art.sha256 } },
                "complinist:keepReleases": 2,
                "complinist:hosts": [hostEntry(h())],
                "complinist:sshPrivateKey": h().privateKey,
                // The unit runs `exec <command>`: the flooder needs a shell of its own.
                "complinist:service": { command: `sh -c ${q(`${FLOODER} exec bin/start`)}`, standby: false },
                "complinist:health": { timeoutSeconds: 30, intervalMs: 300 },
            };
            const r = await driver.up(config, ["complinist:sshPrivateKey"]);
            assert.strictEqual(r.error, undefined, await hostSide(h(), r.error));
            await assertBoundedAndNotRoot(h());
            assert.match(await h().run("curl -sS -m 5 http://127.0.0.1:5000/health"), /"version": ?"1\.0\.0"/, "the app serves behind its writer");
        });
    });

    describe("container mode", () => {
        const hosts: TestHost[] = useHosts(1, { names: ["logs-c1"], dockerEngine: true });
        const h = () => hosts[0] as TestHost;
        let driver: RealEngine;
        let pinned = "";

        before(async () => {
            buildImages(["1.0.0"]);
            await loadImages(h(), ["complinist:1.0.0"]);
            // The sample image, its CMD replaced by one that floods first (on the host's engine, pulling nothing).
            const cmd = `CMD ${JSON.stringify(["/bin/sh", "-c", `${FLOODER} exec /app/bin/start`])}`;
            await h().run(`docker create --name flood-base complinist:1.0.0 >/dev/null && docker commit --change ${q(cmd)} flood-base complinist-flood:1.0.0 >/dev/null && docker rm flood-base >/dev/null`);
            pinned = (await pushImages(h(), ["complinist-flood:1.0.0"]))["complinist-flood:1.0.0"] as string;
            driver = new RealEngine({ stack: "itest-logs-container", env: { COMPLINIST_DEPLOYER: "itest" } });
        });
        after(async () => {
            await driver?.close();
        });

        it(`an image flooding ${FLOOD} bytes leaves app.log within ${APP_LOG_BOUND}; root's docker CLI writes only to the writer's pipe`, async () => {
            const config: ProgramConfig = {
                "complinist:mode": "container",
                "complinist:version": "1.0.0",
                "complinist:releases": { "1.0.0": { image: pinned } },
                "complinist:hosts": [hostEntry(h())],
                "complinist:sshPrivateKey": h().privateKey,
                "complinist:service": { command: "bin/start", standby: false },
                "complinist:health": { timeoutSeconds: 30, intervalMs: 300, drainSeconds: 3 },
            };
            const r = await driver.up(config, ["complinist:sshPrivateKey"]);
            assert.strictEqual(r.error, undefined, await hostSide(h(), r.error));
            await assertBoundedAndNotRoot(h());
            const mains = await h().run(
                "for u in $(systemctl list-units --plain --no-legend --state=active 'complinist@*.service' | awk '{ print $1 }'); do pid=$(systemctl show -p MainPID --value \"$u\"); echo $(awk '/^Uid:/ { print $2 }' /proc/$pid/status) $(cat /proc/$pid/comm); done",
            );
            assert.strictEqual(mains, "0 docker", "the live instance's main process is root's docker CLI, and it does not hold app.log (above)");
        });
    });
});
