import * as assert from "assert";
import * as cp from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Artifact, degradingArtifact, pack as packInto } from "../integration/artifacts";
import { TestHost, useHosts, hostEntry } from "../../dev/hosts";
import { testKeyPair } from "../../dev/sshKeys";
import { buildArtifacts, BuiltArtifact } from "../../scripts/build-artifacts";
import { OperationResult, ProgramConfig, RealEngine } from "./engine";
import { uploads } from "./trace";

/**
 * Faults on real hosts, deployed through the real Pulumi CLI (test/e2e/engine.ts). Each write
 * step of a deploy stops at its pause point (host/lock.sh pause_point, armed by a file on the
 * host), the fault is injected there — the deploy's provider processes SIGKILLed, its SSH
 * connection cut, or (for the steps a kill leaves temp files at) the host-side script itself
 * SIGKILLed — then the step is let go. Afterwards the host must serve a complete healthy
 * release, hold no leftover, have its lock free and a well-formed revisions.log, and the next
 * apply must converge. Then: two deploys at once, a full disk, a host unreachable in the
 * second batch, a rotated key, and the whole deploy (the CLI with its providers) killed.
 *
 * "Deploy killed" kills the providers only, as the engine driver did: the CLI outlives them,
 * fails the step and leaves a clean state. Killing the CLI too is what the real engine adds:
 * a backend lock and pending operations an operator clears with `pulumi cancel` and `pulumi refresh`.
 *
 * What the faults do on the host: an SSH-run script (install, service apply, release
 * delete) is not killed with its session (no pty, no login session scope): it runs on and
 * dies at its first write to the lost channel, so it finishes the step it was in. The
 * activation runs as a transient unit and finishes whatever happens to its caller.
 * Host state is observed through docker exec, never through the transport under test.
 */

const REPO = path.resolve(__dirname, "..", "..");
const BASE = "/opt/complinist";
const FAULTS = "/run/complinist-faults";
const OUT = path.join(REPO, ".build", "faults-artifacts");

type Fault = "kill" | "cut" | "host-kill";

/**
 * How the deploy ends when its provider processes are SIGKILLed: the CLI's own report for the step
 * that was waiting on the provider (the gRPC stream ended) — or the SSH connection cut (the provider's
 * message, wrapped by the CLI).
 */
const KILLED = /error reading from server: EOF/;
const CUT = /connection to host f-1 at 127\.0\.0\.1:\d+ was lost while running/;

/** A record line: when, version, sha256 (empty for an emergency command that found none), who, outcome. */
const RECORD = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\tversion=[^\t]+\tsha256=[0-9a-f]*\tby=[^\t]+\toutcome=[a-z-]+[^\t]*$/;

/** A good release with a padding file: random bytes (the upload is big) or zeros (only the extraction is). */
function paddedArtifact(base: BuiltArtifact, pad: Buffer): Artifact {
    const src = fs.mkdtempSync(path.join(os.tmpdir(), "padded-"));
    cp.execFileSync("tar", ["-xzf", base.file, "-C", src]);
    fs.writeFileSync(path.join(src, "pad.bin"), pad);
    return pack(src, base.version);
}

function pack(src: string, version: string): Artifact {
    return packInto(src, OUT, version);
}

describe("faults on real hosts: every write step killed or cut, then a healthy host and a converging apply", function () {
    this.timeout(900000);
    const hosts: TestHost[] = useHosts(2, { names: ["f-1", "f-2"] });
    const arts: Record<string, Artifact> = {};
    let driver: RealEngine;
    let privateKey = "";

    const f1 = () => hosts[0] as TestHost;
    const f2 = () => hosts[1] as TestHost;

    const sh = (h: TestHost, cmd: string) => h.run(cmd);

    interface Opts {
        readonly keep?: number;
        readonly env?: Record<string, string>;
        readonly health?: Record<string, number>;
        readonly hosts?: TestHost[];
        readonly published?: string[];
    }
    function config(version: string, rollbackVersion: string | undefined, o: Opts = {}): ProgramConfig {
        const published = o.published ?? Object.keys(arts);
        return {
            "complinist:mode": "release",
            "complinist:version": version,
            "complinist:rollbackVersion": rollbackVersion,
            "complinist:keepReleases": String(o.keep ?? 2),
            "complinist:releases": Object.fromEntries(published.map((v) => [v, { path: path.relative(REPO, (arts[v] as Artifact).file), sha256: (arts[v] as Artifact).sha256 }])),
            "complinist:hosts": (o.hosts ?? [f1()]).map(hostEntry),
            "complinist:sshPrivateKey": privateKey,
            "complinist:service": { command: "bin/start", environment: { COMPLINIST_ENV: "faults", ...o.env } },
            "complinist:health": { timeoutSeconds: 10, intervalMs: 300, drainSeconds: 2, ...o.health },
            "complinist:rollout": { batchSize: 1 },
        };
    }
    const SECRETS = ["complinist:sshPrivateKey"];
    const up = (c: ProgramConfig, d: RealEngine = driver) => d.up(c, SECRETS);

    /** The operations the engine's checkpoint still marks as in flight (`pulumi stack export`). */
    async function pendingOperations(d: RealEngine = driver): Promise<unknown[]> {
        const exported = await (await d.handle()).exportStack();
        return ((exported.deployment as { pending_operations?: unknown[] } | undefined)?.pending_operations ?? []) as unknown[];
    }

    // ------------------------------------------------------------ the trigger and the faults

    async function arm(h: TestHost, point: string): Promise<void> {
        await sh(h, `mkdir -p ${FAULTS} && rm -f ${FAULTS}/${point}.reached && touch ${FAULTS}/${point}`);
    }

    /** Waits until the host reached `point` (polled on the host); fails if the deploy ends first. Returns the paused script's pid. */
    async function reached(h: TestHost, point: string, run: Promise<OperationResult>): Promise<string> {
        let ended: OperationResult | undefined;
        void run.then((r) => (ended = r));
        const deadline = Date.now() + 120000;
        for (;;) {
            const pid = await sh(h, `for i in $(seq 1 20); do [ -s ${FAULTS}/${point}.reached ] && exec cat ${FAULTS}/${point}.reached; sleep 0.1; done; true`);
            if (pid) return pid;
            if (ended) throw new Error(`the deploy ended before ${h.name} reached ${point}: ${ended.error ?? "it succeeded"}`);
            if (Date.now() > deadline) throw new Error(`${h.name} did not reach ${point} within 120 s`);
        }
    }

    async function inject(h: TestHost, fault: Fault, pid: string, d: RealEngine = driver): Promise<void> {
        switch (fault) {
            case "kill":
                assert.ok(d.killProvidersNow() > 0, "a provider process was running");
                return;
            case "cut":
                // [y]: the pattern must not match this very command line.
                await sh(h, "pkill -KILL -f 'sshd: root@nott[y]'");
                return;
            case "host-kill":
                // Its process group: the script, the `timeout` that wraps it, what it runs (as the host-side timeout would).
                await sh(h, `kill -KILL -- -$(ps -o pgid= -p ${pid} | tr -d ' ')`);
                return;
            default: {
                const never: never = fault;
                throw new Error(`unknown fault ${String(never)}`);
            }
        }
    }

    async function letGo(h: TestHost, point: string): Promise<void> {
        await sh(h, `rm -f ${FAULTS}/${point} ${FAULTS}/${point}.reached`);
    }

    /** Until no script of a deploy runs on the host and no activation unit is active (bounded). */
    async function settled(h: TestHost): Promise<void> {
        await sh(
            h,
            `for i in $(seq 1 1200); do ` +
                `if ! pgrep -f 'complinist-scrip[t]' >/dev/null && [ -z "$(systemctl list-units --no-legend --state=active,activating 'complinist-activate-*')" ]; then exit 0; fi; sleep 0.1; ` +
                `done; echo "still running: $(pgrep -af 'complinist-scrip[t]'; systemctl list-units --no-legend 'complinist-activate-*')" >&2; exit 1`,
        );
    }

    /** The env file of the instance the proxy routes to. */
    const liveEnv = (h: TestHost) => sh(h, "cat /etc/complinist/instance-$(sed -n 's/^    server i\\([0-9]*\\) 127.0.0.1:[0-9]*$/\\1/p' /etc/complinist/haproxy.cfg | head -n 1).env");

    // ------------------------------------------------------------ what a healthy host looks like

    interface HostView {
        served: string;
        current: string;
        leftovers: string[];
        incomplete: string[];
        lock: string;
        releases: string[];
        records: string[];
    }

    async function view(h: TestHost): Promise<HostView> {
        const out = await sh(
            h,
            [
                `cd ${BASE}`,
                `echo "served=$(curl -sS -m 5 http://127.0.0.1:5000/health 2>/dev/null | tr -d '\\n')"`,
                `echo "current=$(readlink current)"`,
                `for f in releases/.tmp-* releases/.download-* releases/.upload-* releases/.upload.* current.tmp.* instances/.tmp-* ` +
                    `/etc/complinist/*.tmp /etc/complinist/*.tmp.* /etc/systemd/system/complinist*.tmp /etc/systemd/system/complinist*.tmp.* /usr/local/sbin/complinist.tmp.*; do ` +
                    `if [ -e "$f" ] || [ -L "$f" ]; then echo "leftover=$f"; fi; done`,
                `for d in releases/*/; do [ -f "$d.complinist-release" ] || echo "incomplete=$d"; done`,
                `for d in releases/*/; do echo "release=$(basename "$d")"; done`,
                `if flock -n .deploy.lock true; then echo lock=free; else echo "lock=held by $(cat .deploy.lock.owner)"; fi`,
                `sed 's/^/record=/' revisions.log`,
            ].join("\n"),
        );
        const v: HostView = { served: "", current: "", leftovers: [], incomplete: [], lock: "", releases: [], records: [] };
        for (const line of out.split("\n")) {
            const i = line.indexOf("=");
            const [k, val] = [line.slice(0, i), line.slice(i + 1)];
            if (k === "served" || k === "current" || k === "lock") v[k] = val;
            else if (k === "leftover") v.leftovers.push(val);
            else if (k === "incomplete") v.incomplete.push(val);
            else if (k === "release") v.releases.push(val);
            else if (k === "record") v.records.push(val);
        }
        v.releases.sort();
        return v;
    }

    /** A complete healthy release serving `version`, no leftover (unless allowed), the lock free, every record well-formed. */
    async function assertHealthy(h: TestHost, version: string, opts: { leftoversAllowed?: boolean } = {}): Promise<HostView> {
        const v = await view(h);
        const health = JSON.parse(v.served || "{}") as { status?: string; version?: string };
        assert.deepStrictEqual({ status: health.status, version: health.version }, { status: "healthy", version }, `${h.name} serves ${v.served}`);
        assert.strictEqual(v.current, `releases/${version}`);
        assert.deepStrictEqual(v.incomplete, [], "no half-installed release");
        if (!opts.leftoversAllowed) assert.deepStrictEqual(v.leftovers, [], "no leftover");
        assert.strictEqual(v.lock, "free");
        for (const r of v.records) assert.match(r, RECORD);
        return v;
    }

    interface Case {
        readonly point: string;
        readonly fault: Fault;
        readonly config: ProgramConfig;
        /** What the host serves once the fault has played out. */
        readonly serves: string;
        /** The new record of the interrupted version, or none (nothing was activated). */
        readonly record?: RegExp;
        /** The deploy's own result: an error matching this, or success (undefined). */
        readonly error?: RegExp;
        /** The configuration the next apply converges to (default: the same). */
        readonly converge?: ProgramConfig;
        /** What the host serves after that. */
        readonly converged: string;
        /** Releases on the host after converging. */
        readonly kept: string[];
    }

    /** The fault at one pause point, then the host checked, then the next apply. Returns both deploys. */
    async function faultAt(c: Case): Promise<{ faulted: OperationResult; next: OperationResult; after: HostView }> {
        const h = f1();
        const records = (await view(h)).records.length;
        await arm(h, c.point);
        const run = up(c.config);
        try {
            const pid = await reached(h, c.point, run);
            await inject(h, c.fault, pid);
        } finally {
            await letGo(h, c.point);
        }
        const faulted = await run;
        // The CLI outlives its killed providers: it closes the failed step and saves the state with
        // no pending operation, so the next `pulumi up` needs no `pulumi refresh` first.
        assert.deepStrictEqual(await pendingOperations(), [], "no pending operation left in the state");
        if (c.error) assert.match(String(faulted.error), c.error);
        else assert.strictEqual(faulted.error, undefined);
        await settled(h);
        const after = await assertHealthy(h, c.serves, { leftoversAllowed: c.fault === "host-kill" });
        const added = after.records.slice(records);
        if (c.record) assert.match(added[added.length - 1] ?? "", c.record, added.join("\n"));
        else assert.deepStrictEqual(added, [], "nothing was activated, so nothing is recorded");

        const next = await up(c.converge ?? c.config);
        assert.strictEqual(next.error, undefined, `the next apply converges: ${next.error}`);
        const converged = await assertHealthy(h, c.converged);
        assert.deepStrictEqual(converged.releases, [...c.kept].sort(), "exactly the kept releases remain");
        return { faulted, next, after };
    }

    before(async function () {
        this.timeout(180000);
        fs.mkdirSync(OUT, { recursive: true });
        const good = ["3.0.0", "3.1.0", "3.2.0", "3.3.0", "3.4.0", "3.5.0", "3.7.0", "3.8.0", "3.9.0", "3.9.1", "4.0.0"];
        const built = await buildArtifacts(OUT, good.map((version) => ({ version, mode: "good" as const })));
        for (const a of built) arts[a.version] = a;
        arts["3.6.0"] = degradingArtifact(OUT, "3.6.0", 5);
        // 3.9.0 is too big for the full disk to upload; 3.9.1 uploads but is too big to extract.
        arts["3.9.0"] = paddedArtifact(built.find((a) => a.version === "3.9.0") as BuiltArtifact, crypto.randomBytes(3 * 1024 * 1024));
        arts["3.9.1"] = paddedArtifact(built.find((a) => a.version === "3.9.1") as BuiltArtifact, Buffer.alloc(8 * 1024 * 1024));
        privateKey = testKeyPair().privateKey;
        driver = new RealEngine({ stack: "faults", env: { COMPLINIST_DEPLOYER: "faults" } });
    });
    after(async () => {
        await driver?.close();
    });

    it("first deploy of 3.0.0", async () => {
        const r = await up(config("3.0.0", undefined, { published: ["3.0.0"] }));
        assert.strictEqual(r.error, undefined);
        await assertHealthy(f1(), "3.0.0");
    });

    // ------------------------------------------------------------ upload and extract: the install

    for (const [point, fault, version, previous] of [
        ["upload", "kill", "3.1.0", "3.0.0"],
        ["upload", "cut", "3.2.0", "3.1.0"],
        ["extract", "kill", "3.3.0", "3.2.0"],
        ["extract", "cut", "3.4.0", "3.3.0"],
    ] as const) {
        it(`${point}, ${fault === "kill" ? "deploy killed" : "SSH cut"}: the orphaned install completes, the old release serves; the re-run uploads nothing`, async () => {
            const { next } = await faultAt({
                point,
                fault,
                config: config(version, previous),
                serves: previous,
                error: fault === "kill" ? KILLED : CUT,
                converged: version,
                kept: [version, previous],
            });
            assert.deepStrictEqual(uploads(next.providerLog), [], "the release was already complete");
        });
    }

    it("extract, install script killed on the host: its temp dir and artifact stay until the next locked operation removes them", async () => {
        const h = f1();
        await arm(h, "extract");
        const run = up(config("3.5.0", "3.4.0"));
        try {
            await inject(h, "host-kill", await reached(h, "extract", run));
        } finally {
            await letGo(h, "extract");
        }
        assert.match(String((await run).error), /release 3\.5\.0 was not installed/);
        await settled(h);
        const v = await assertHealthy(h, "3.4.0", { leftoversAllowed: true });
        assert.deepStrictEqual(
            v.leftovers.map((f) => f.replace(/\d+/g, "N")),
            ["releases/.tmp-N.N.N.N", "releases/.tmp-artifact-N.N.N.N.tar.gz"],
            "a SIGKILL skips the trap: the temp dir and the claimed upload stay",
        );
        assert.ok(!v.releases.includes("3.5.0"));
        const next = await up(config("3.5.0", "3.4.0"));
        assert.strictEqual(next.error, undefined);
        assert.strictEqual(uploads(next.providerLog).length, 1, "uploaded again");
        assert.deepStrictEqual((await assertHealthy(h, "3.5.0")).releases, ["3.4.0", "3.5.0"]);
    });

    // ------------------------------------------------------------ unit apply

    for (const fault of ["kill", "cut"] as const) {
        it(`unit apply, ${fault === "kill" ? "deploy killed" : "SSH cut"}: the orphaned apply completes, the running instance keeps its env; the re-run activates the new one`, async () => {
            const env = { FAULT_CASE: `apply-${fault}` };
            await faultAt({
                point: "apply",
                fault,
                config: config("3.5.0", "3.4.0", { env }),
                serves: "3.5.0",
                error: fault === "kill" ? KILLED : CUT,
                converged: "3.5.0",
                kept: ["3.4.0", "3.5.0"],
            });
            assert.match(await liveEnv(f1()), new RegExp(`FAULT_CASE="apply-${fault}"`));
        });
    }

    // ------------------------------------------------------------ the activation: gate, switch, switch-back

    for (const point of ["gate", "switch"] as const) {
        for (const fault of ["kill", "cut"] as const) {
            it(`${point}, ${fault === "kill" ? "deploy killed" : "SSH cut"}: the activation finishes on its own and records it${fault === "cut" ? "; the deploy reconnects and succeeds" : ""}`, async () => {
                const c = config("3.5.0", "3.4.0", { env: { FAULT_CASE: `${point}-${fault}` } });
                await faultAt({
                    point,
                    fault,
                    config: c,
                    serves: "3.5.0",
                    record: /version=3\.5\.0\t.*\toutcome=activated previous=3\.5\.0 mode=started/,
                    ...(fault === "kill" ? { error: KILLED } : {}),
                    converged: "3.5.0",
                    kept: ["3.4.0", "3.5.0"],
                });
                assert.match(await sh(f1(), "/usr/local/sbin/complinist status"), /standbyVersion=3\.4\.0/);
            });
        }
    }

    for (const fault of ["kill", "cut"] as const) {
        it(`switch-back after a failed soak, ${fault === "kill" ? "deploy killed" : "SSH cut"}: the activation switches back on its own and records it`, async () => {
            const soak = { soakSeconds: 15 };
            await faultAt({
                point: "switch-back",
                fault,
                config: config("3.6.0", "3.5.0", { health: soak }),
                serves: "3.5.0",
                record: /version=3\.6\.0\t.*\toutcome=failed-rolled-back reason=soak live=3\.5\.0 serving=3\.5\.0/,
                error: fault === "kill" ? KILLED : /version 3\.6\.0 failed after the switch .*Switched back at once: 3\.5\.0 serves/,
                converge: config("3.5.0", "3.4.0"),
                converged: "3.5.0",
                kept: ["3.4.0", "3.5.0"],
            });
            if (fault === "cut") {
                // The failed release took the standby's port; the unchanged previous config has nothing
                // to apply, so the standby stays gone until refresh reports it and an up restarts it.
                const drift = await driver.refresh({ previewOnly: true });
                assert.deepStrictEqual(drift.drift.map((d) => [d.name, d.diffs]), [["complinist-f-1-activation-switch", ["standbyVersion"]]]);
                await driver.refresh();
                assert.strictEqual((await up(config("3.5.0", "3.4.0"))).error, undefined);
                assert.match(await sh(f1(), "/usr/local/sbin/complinist status"), /standbyVersion=3\.4\.0/);
            }
        });
    }

    // ------------------------------------------------------------ retention

    it("retention setup: five releases kept", async () => {
        // Retention keeps only releases older than version and rollbackVersion (never one not deployed yet).
        const r = await up(config("3.5.0", "3.4.0", { keep: 5, published: ["3.1.0", "3.2.0", "3.3.0", "3.4.0", "3.5.0"] }));
        assert.strictEqual(r.error, undefined);
        assert.deepStrictEqual((await assertHealthy(f1(), "3.5.0")).releases, ["3.1.0", "3.2.0", "3.3.0", "3.4.0", "3.5.0"]);
    });

    for (const [fault, keep, doomed, kept] of [
        ["kill", 4, "3.1.0", ["3.2.0", "3.3.0", "3.4.0", "3.5.0"]],
        ["cut", 3, "3.2.0", ["3.3.0", "3.4.0", "3.5.0"]],
        ["host-kill", 2, "3.3.0", ["3.4.0", "3.5.0"]],
    ] as const) {
        it(`retention, ${fault === "kill" ? "deploy killed" : fault === "cut" ? "SSH cut" : "delete killed on the host"}: ${doomed} is gone${fault === "host-kill" ? " once the next locked operation cleans up" : ""}, never half`, async () => {
            const published = ["3.1.0", "3.2.0", "3.3.0", "3.4.0", "3.5.0"];
            const { after } = await faultAt({
                point: "retention",
                fault,
                config: config("3.5.0", "3.4.0", { keep, published }),
                serves: "3.5.0",
                error: fault === "kill" ? KILLED : fault === "cut" ? CUT : /deleting release 3\.3\.0 failed/,
                converged: "3.5.0",
                kept: [...kept],
            });
            assert.ok(!after.releases.includes(doomed), `${doomed} is not left as a release`);
            if (fault === "host-kill") assert.deepStrictEqual(after.leftovers.map((f) => f.replace(/\d+/g, "N")), ["releases/.tmp-delete-N.N.N.N"]);
        });
    }

    // ------------------------------------------------------------ two deploys at once

    it("two deploys to one host at once (two stacks): the second waits for the lock and goes after the first; an operator's command fails naming the holder; the first stack then restores its own env file", async () => {
        const h = f1();
        const other = new RealEngine({ stack: "faults-b", env: { COMPLINIST_DEPLOYER: "faults-b" } });
        try {
            const records = (await view(h)).records.length;
            await arm(h, "switch");
            const first = up(config("3.7.0", "3.5.0"));
            let second: Promise<OperationResult> | undefined;
            try {
                await reached(h, "switch", first);
                second = up(config("3.8.0", "3.7.0"), other);
                // The second deploy's locked scripts wait on the lock: a flock process on the host.
                await sh(h, "for i in $(seq 1 600); do pgrep -x flock >/dev/null && exit 0; sleep 0.1; done; exit 1");
                const refused = await h.exec("LOCK_WAIT=1 /usr/local/sbin/complinist rollback");
                assert.strictEqual(refused.code, 75, refused.stdout + refused.stderr);
                assert.match(refused.stderr, /refused: the deploy lock is held by faults@\S+ pid \d+ since \S+Z \(still running\)/);
            } finally {
                await letGo(h, "switch");
            }
            const [a, b] = await Promise.all([first, second as Promise<OperationResult>]);
            assert.strictEqual(a.error, undefined);
            assert.strictEqual(b.error, undefined);
            await settled(h);
            const v = await assertHealthy(h, "3.8.0");
            const added = v.records.slice(records);
            assert.deepStrictEqual(
                added.map((r) => `${/version=(\S+)/.exec(r)?.[1]} ${/by=(\S+?)@/.exec(r)?.[1]} ${/outcome=(\S+)/.exec(r)?.[1]}`),
                ["3.7.0 faults activated", "3.8.0 faults-b activated"],
            );
        } finally {
            await other.close();
        }
        // Each stack generates its own SECRET_KEY (the engine driver derived it from the resource name,
        // the same for both), so f-1's env file is now faults-b's: the faults stack sees drift, accepts
        // the host's state with a refresh and restores its own with an up, as the drift runbook says.
        const drift = await driver.refresh({ previewOnly: true });
        assert.ok(
            drift.drift.some((d) => d.name === "complinist-f-1-service-unit" && d.diffs.includes("envSha256")),
            JSON.stringify(drift.drift.map((d) => [d.name, d.diffs])),
        );
        assert.strictEqual((await driver.refresh()).error, undefined);
        const restored = await up(config("3.8.0", "3.7.0"));
        assert.strictEqual(restored.error, undefined, restored.error);
        await assertHealthy(h, "3.8.0");
        assert.deepStrictEqual((await driver.refresh({ previewOnly: true })).drift.map((d) => d.name), [], "the faults stack is whole again");
    });

    // ------------------------------------------------------------ disk full

    it("disk full during upload, and during extraction: the update fails saying so, nothing half-installed, the old release serves", async () => {
        const h = f1();
        const used = Number(await sh(h, `du -sk ${BASE}/releases | cut -f1`));
        await sh(
            h,
            `rm -rf /tmp/releases.copy && cp -a ${BASE}/releases /tmp/releases.copy && ` +
                `mount -t tmpfs -o size=${used + 1024}k faults-full ${BASE}/releases && cp -a /tmp/releases.copy/. ${BASE}/releases/`,
        );
        try {
            const big = await up(config("3.9.0", "3.8.0"));
            assert.match(String(big.error), /host f-1: release 3\.9\.0 was not installed: no space left on device while uploading into \/opt\/complinist\/releases \(\d+ kB free on \/opt\/complinist\/releases\); nothing was left half-installed/);
            let v = await assertHealthy(h, "3.8.0");
            assert.ok(!v.releases.includes("3.9.0"));
            const wide = await up(config("3.9.1", "3.8.0"));
            assert.match(String(wide.error), /host f-1: release 3\.9\.1 was not installed: no space left on device while extracting/);
            v = await assertHealthy(h, "3.8.0");
            assert.ok(!v.releases.includes("3.9.1"));
        } finally {
            await sh(h, `umount ${BASE}/releases && rm -rf /tmp/releases.copy`);
        }
        const r = await up(config("3.9.0", "3.8.0"));
        assert.strictEqual(r.error, undefined);
        assert.deepStrictEqual((await assertHealthy(h, "3.9.0")).releases, ["3.8.0", "3.9.0"]);
    });

    // ------------------------------------------------------------ a host unreachable in the second batch

    it("host unreachable in the second batch: the update fails after host 1; back, a re-run converges and the pinned rollback works", async () => {
        const both = { hosts: [f1(), f2()] };
        assert.strictEqual((await up(config("3.9.0", "3.8.0", both))).error, undefined);
        await assertHealthy(f2(), "3.9.0");
        cp.execFileSync("docker", ["pause", f2().container]);
        let r: OperationResult;
        try {
            r = await up(config("4.0.0", "3.9.0", both));
        } finally {
            cp.execFileSync("docker", ["unpause", f2().container]);
        }
        // The CLI reports the provider's message under the failed resource's name.
        assert.match(String(r.error), /\(complinist-f-2-release-4\.0\.0-dir\):\n\s*error: cannot reach host f-2 at 127\.0\.0\.1:\d+ within 15 s/);
        assert.deepStrictEqual(
            r.steps.filter((s) => s.status === "failed").map((s) => s.name),
            ["complinist-f-2-release-4.0.0-dir"],
            "host 1 went through",
        );
        await assertHealthy(f1(), "4.0.0");
        await assertHealthy(f2(), "3.9.0");
        const again = await up(config("4.0.0", "3.9.0", both));
        assert.strictEqual(again.error, undefined);
        for (const h of [f1(), f2()]) await assertHealthy(h, "4.0.0");
        const rollback = await up(config("3.9.0", "4.0.0", both));
        assert.strictEqual(rollback.error, undefined);
        assert.deepStrictEqual(uploads(rollback.providerLog), [], "the rollback target is on every host");
        for (const h of [f1(), f2()]) {
            await assertHealthy(h, "3.9.0");
            assert.match((await view(h)).records.pop() ?? "", /version=3\.9\.0\t.*outcome=activated previous=4\.0\.0 mode=warm-switch/);
        }
    });

    // ------------------------------------------------------------ a rotated key

    it("rotated key: with the old key revoked, a refresh running the program and an up that deletes an old release succeed", async () => {
        const both = { hosts: [f1(), f2()] };
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "faults-key-"));
        cp.execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "faults-key-b", "-f", path.join(dir, "key_b")]);
        const oldPublic = testKeyPair().publicKey.split(/\s+/)[1] as string;
        const newPublic = fs.readFileSync(path.join(dir, "key_b.pub"), "utf8").trim();
        for (const h of [f1(), f2()]) await sh(h, `echo '${newPublic}' >> /root/.ssh/authorized_keys`);
        privateKey = fs.readFileSync(path.join(dir, "key_b"), "utf8");
        fs.rmSync(dir, { recursive: true, force: true });
        for (const h of [f1(), f2()]) {
            await sh(h, `grep -vF '${oldPublic}' /root/.ssh/authorized_keys > /tmp/ak && cat /tmp/ak > /root/.ssh/authorized_keys && ! grep -qF '${oldPublic}' /root/.ssh/authorized_keys`);
        }
        // The real engine's `pulumi refresh` does not run the program: the providers are configured
        // with the config saved by the last update, the revoked key (the engine driver configured
        // them from the current config). `--run-program` gives them the current one, as an `up` does.
        const stale = await driver.refresh({ config: config("3.9.0", "4.0.0", both), secretKeys: SECRETS });
        assert.match(String(stale.error), /host f-1 at 127\.0\.0\.1:\d+ refused key authentication for user root/);
        const refreshed = await driver.refresh({ runProgram: true });
        assert.strictEqual(refreshed.error, undefined, refreshed.error);
        // The components, which read no host, come back from a refresh that runs the program as steps without a changed key.
        const hostDrift = refreshed.drift.filter((d) => d.type.startsWith("pulumi-nodejs:dynamic/"));
        assert.deepStrictEqual(hostDrift.map((d) => d.name), [], JSON.stringify(hostDrift));
        // 4.0.0 falls out of the kept set: retention deletes it with the new key.
        const r = await up(config("3.9.0", "3.8.0", both));
        assert.strictEqual(r.error, undefined, r.error);
        assert.ok(r.steps.some((s) => s.op === "delete" && s.name.endsWith("release-4.0.0-dir")), JSON.stringify(r.steps.map((s) => `${s.op} ${s.name}`)));
        for (const h of [f1(), f2()]) assert.deepStrictEqual((await assertHealthy(h, "3.9.0")).releases, ["3.8.0", "3.9.0"]);
        // The up saved the new key with the providers' config: a plain refresh works again.
        const after = await driver.refresh({ previewOnly: true });
        assert.strictEqual(after.error, undefined, after.error);
        assert.deepStrictEqual(after.drift.map((d) => d.name), []);
    });

    // ------------------------------------------------------------ the whole deploy killed: the CLI with its providers

    /**
     * SIGKILL the whole deploy as a cancelled CI job does: the `pulumi` CLI and the providers it
     * started (every process carrying this stack's backend in its environment). The CLI goes first,
     * so it cannot close the interrupted step. Returns the CLI's pid.
     */
    function killDeployNow(d: RealEngine = driver): number {
        const mark = `PULUMI_BACKEND_URL=${d.backend.url}`;
        let cli = 0;
        const others: number[] = [];
        for (const entry of fs.readdirSync("/proc")) {
            if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
            try {
                if (!fs.readFileSync(`/proc/${entry}/environ`, "utf8").split("\0").includes(mark)) continue;
                const argv0 = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0")[0] ?? "";
                if (path.basename(argv0) === "pulumi") cli = Number(entry);
                else others.push(Number(entry));
            } catch {
                // The process ended while being read.
            }
        }
        assert.ok(cli > 0, "a pulumi CLI was running");
        for (const pid of [cli, ...others]) {
            try {
                process.kill(pid, "SIGKILL");
            } catch {
                // Already gone.
            }
        }
        return cli;
    }

    /** The checkpoint's in-flight operations as "<type> <resource name>". */
    async function pendingNames(): Promise<string[]> {
        return (await pendingOperations()).map((p) => {
            const o = p as { type: string; resource: { urn: string } };
            return `${o.type} ${o.resource.urn.split("::").pop() ?? ""}`;
        });
    }

    /** The fault at a pause point on f-1 with the whole deploy killed; returns the CLI's pid once the killed run has ended. */
    async function killWholeDeployAt(point: string, c: ProgramConfig): Promise<number> {
        const h = f1();
        await arm(h, point);
        const run = up(c);
        let cli = 0;
        try {
            await reached(h, point, run);
            cli = killDeployNow();
        } finally {
            await letGo(h, point);
        }
        const killed = await run;
        assert.match(String(killed.error), /Command was killed with SIGKILL/);
        await settled(h);
        return cli;
    }

    /** What an operator meets after a killed CLI: the backend still locked by the dead process; `pulumi cancel` lifts it. */
    async function lockedThenCancelled(c: ProgramConfig, cli: number): Promise<void> {
        const locked = await up(c);
        assert.match(String(locked.error), new RegExp(`the stack is currently locked by 1 lock\\(s\\)\\. Either wait for the other process\\(es\\) to end or delete the lock file with \`pulumi cancel\`\\.\\n.*created by \\S+ \\(pid ${cli}\\)`));
        assert.deepStrictEqual(locked.steps, [], "the refused up touched nothing");
        await (await driver.handle()).cancel();
    }

    it("the whole deploy killed during the upload: the backend stays locked by the dead CLI; after `pulumi cancel` and `pulumi refresh --clear-pending-creates` the up re-runs the create (nothing uploaded again on f-1) and converges", async () => {
        const both = { hosts: [f1(), f2()] };
        const c = config("4.0.0", "3.9.0", both);
        const cli = await killWholeDeployAt("upload", c);
        await assertHealthy(f1(), "3.9.0");
        assert.deepStrictEqual(await pendingNames(), ["creating complinist-f-1-release-4.0.0-dir"]);
        await lockedThenCancelled(c, cli);
        // A plain non-interactive `pulumi refresh` leaves a pending create, and an `up` re-runs the create
        // but keeps the pending create in the state, warning again at every later update. The creates
        // here are idempotent (the install finds its release complete), so the operator drops it.
        await (await driver.handle()).refresh({ clearPendingCreates: true });
        assert.deepStrictEqual(await pendingNames(), [], "`pulumi refresh --clear-pending-creates` dropped it");
        const next = await up(c);
        assert.strictEqual(next.error, undefined, next.error);
        assert.doesNotMatch(next.output, /pending operations/);
        assert.deepStrictEqual(uploads(next.providerLog).map((u) => u.host), ["f-2"], "f-1's orphaned install had completed");
        for (const h of [f1(), f2()]) await assertHealthy(h, "4.0.0");
    });

    it("the whole deploy killed during the switch: after `pulumi cancel`, `pulumi refresh` (as the CLI's warning advises) reads the finished activation and clears the interrupted update; the up converges", async () => {
        const both = { hosts: [f1(), f2()] };
        const c = config("4.0.0", "3.9.0", { ...both, env: { FAULT_CASE: "switch-whole-deploy" } });
        const records = (await view(f1())).records.length;
        const cli = await killWholeDeployAt("switch", c);
        const after = await assertHealthy(f1(), "4.0.0");
        assert.match(after.records.slice(records).pop() ?? "", /version=4\.0\.0\t.*\toutcome=activated previous=4\.0\.0 mode=started/, "the activation finished on its own");
        assert.deepStrictEqual(await pendingNames(), ["updating complinist-f-1-activation-switch"]);
        await lockedThenCancelled(c, cli);
        const refreshed = await driver.refresh();
        assert.strictEqual(refreshed.error, undefined, refreshed.error);
        assert.deepStrictEqual(await pendingNames(), [], "the refresh cleared the pending update");
        const next = await up(c);
        assert.strictEqual(next.error, undefined, next.error);
        assert.doesNotMatch(next.output, /pending operations/);
        for (const h of [f1(), f2()]) {
            await assertHealthy(h, "4.0.0");
            assert.match(await liveEnv(h), /FAULT_CASE="switch-whole-deploy"/);
        }
    });
});
