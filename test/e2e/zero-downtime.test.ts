import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { TestHost, useHosts, hostEntry } from "../../dev/hosts";
import { degradingArtifact, healthPathArtifact } from "../integration/artifacts";
import { buildArtifacts, BuiltArtifact } from "../../scripts/build-artifacts";
import { ProgramConfig, RealEngine } from "./engine";
import { isTrace, traced, uploads } from "./trace";
import { installLoadgen, underLoad as runUnderLoad } from "./load";

/**
 * Zero-downtime activation on a real host, under load, applied by the real Pulumi CLI running the
 * program inline (test/e2e/engine.ts, scripts/engine.ts): a load generator inside the host
 * (dev/loadgen.py: 8 workers, a new connection per request) runs through every switch and
 * must see no failed request. Host state is observed through docker exec, never through
 * the transport under test.
 */

const REPO = path.resolve(__dirname, "..", "..");
const BASE = "/opt/complinist";

describe("zero-downtime activation on a real host, under load", function () {
    this.timeout(900000);
    const hosts: TestHost[] = useHosts(1, { names: ["zd-1"] });
    let arts: Record<string, { file: string; sha256: string }>;
    let driver: RealEngine;

    const sh = (h: TestHost, cmd: string) => h.run(cmd);
    const host = () => hosts[0] as TestHost;
    const served = async () => sh(host(), "curl -sS -m 5 http://127.0.0.1:5000/health || true");
    const instancePids = async () => sh(host(), "systemctl show -p MainPID --value complinist@5001 complinist@5002 | tr '\\n' ' '");
    const lastRecord = async () => sh(host(), `tail -n 1 ${BASE}/revisions.log`);

    function config(version: string, rollbackVersion: string | undefined, extra: ProgramConfig = {}): ProgramConfig {
        const h = host();
        return {
            "complinist:mode": "release",
            "complinist:version": version,
            "complinist:rollbackVersion": rollbackVersion,
            "complinist:keepReleases": "5",
            "complinist:releases": Object.fromEntries(Object.entries(arts).map(([v, a]) => [v, { path: path.relative(REPO, a.file), sha256: a.sha256 }])),
            "complinist:hosts": [hostEntry(h)],
            "complinist:sshPrivateKey": h.privateKey,
            "complinist:service": { command: "bin/start", environment: { COMPLINIST_ENV: "zd" } },
            "complinist:health": { timeoutSeconds: 10, intervalMs: 300, drainSeconds: 10 },
            ...extra,
        };
    }
    const up = (c: ProgramConfig) => driver.up(c, ["complinist:sshPrivateKey"]);

    /** Run `step` while the load generator hits PATH inside the host; return what it saw. */
    const underLoad = <T>(pathOnHost: string, step: () => Promise<T>) => runUnderLoad(host(), pathOnHost, step);

    before(async () => {
        const built = await buildArtifacts(path.join(REPO, ".build", "zd-artifacts"));
        const pick = (v: string) => built.find((a: BuiltArtifact) => a.version === v) as BuiltArtifact;
        arts = { "1.0.0": pick("1.0.0"), "1.1.0": pick("1.1.0"), "1.2.0": pick("1.2.0") };
        arts["1.5.0"] = degradingArtifact(path.join(REPO, ".build", "zd-artifacts"), "1.5.0", 8);
        arts["1.6.0"] = healthPathArtifact(path.join(REPO, ".build", "zd-artifacts"), "1.6.0", "/ready");
        driver = new RealEngine({ stack: "zd", env: { COMPLINIST_DEPLOYER: "zd" } });
        fs.copyFileSync(path.join(REPO, "dev", "loadgen.py"), path.join(REPO, ".build", "zd-artifacts", "loadgen.py"));
        installLoadgen(host());
    });
    after(async () => {
        await driver?.close();
    });

    it("first deploy: the proxy serves 1.0.0 on the service port, current names it", async () => {
        const r = await up(config("1.0.0", undefined));
        assert.strictEqual(r.error, undefined);
        assert.match(await served(), /"status": ?"healthy".*"version": ?"1\.0\.0"/);
        assert.strictEqual(await sh(host(), `readlink ${BASE}/current`), "releases/1.0.0");
        assert.strictEqual(await sh(host(), "systemctl is-active complinist complinist-proxy | sort -u"), "active");
    });

    it("every unit the stack writes scores ≤ 2.0 in systemd-analyze security", async () => {
        for (const unit of ["complinist.service", "complinist@5001.service", "complinist-proxy.service"]) {
            const out = await sh(host(), `systemd-analyze security ${unit} 2>&1 | tail -n 1`);
            const m = /Overall exposure level for \S+: ([0-9.]+)/.exec(out);
            assert.ok(m, out);
            assert.ok(Number(m[1]) <= 2.0, `${unit}: exposure ${m[1]} > 2.0`);
        }
    });

    it("upgrade to 1.1.0 under load: no failed request, 1.0.0 stays warm as the standby", async () => {
        const { result, load } = await underLoad("/health", () => up(config("1.1.0", "1.0.0")));
        assert.strictEqual(result.error, undefined);
        assert.deepStrictEqual(load.failedByKind, {}, JSON.stringify(load));
        assert.ok((load.versions["1.1.0"] ?? 0) > 0, JSON.stringify(load));
        assert.match(await served(), /"version": ?"1\.1\.0"/);
        assert.match(await sh(host(), "/usr/local/sbin/complinist status"), /standbyVersion=1\.0\.0/);
    });

    it("pinned rollback to the warm 1.0.0 under load: no failed request, no upload, no process start", async () => {
        const pids = await instancePids();
        const { result, load } = await underLoad("/health", () => up(config("1.0.0", "1.1.0")));
        assert.strictEqual(result.error, undefined);
        assert.deepStrictEqual(load.failedByKind, {}, JSON.stringify(load));
        assert.deepStrictEqual(uploads(result.providerLog), []);
        assert.strictEqual(await instancePids(), pids, "a rollback to the standby starts nothing");
        assert.match(await served(), /"version": ?"1\.0\.0"/);
        assert.match(await lastRecord(), /version=1\.0\.0.*outcome=activated previous=1\.1\.0 mode=warm-switch/);
        // The host's part, as the agent timed it (a figure for the report, never asserted).
        for (const t of traced(result.providerLog, "activated")) console.log(`      host activation phases (ms): ${t.fields.phasesMs ?? "none reported"}`);
    });

    it("a refresh reads the host once: one ssh exec serves every resource of the host", async () => {
        const r = await driver.refresh({ previewOnly: true });
        assert.strictEqual(r.error, undefined, r.error);
        assert.deepStrictEqual(r.drift.map((d) => d.name), []);
        // ServiceUnit, both ReleaseDirs and the Activation read from the one host read.
        assert.deepStrictEqual(traced(r.providerLog, "ssh-exec").map((t) => t.fields.host), ["zd-1"], JSON.stringify(traced(r.providerLog)));
        assert.deepStrictEqual(traced(r.providerLog, "host-read").map((t) => t.fields.host), ["zd-1"]);
    });

    it("a broken 1.2.0 under load: the update fails and 1.2.0 never answers a request", async () => {
        const { result, load } = await underLoad("/health", () => up(config("1.2.0", "1.0.0")));
        assert.match(String(result.error), /version 1\.2\.0 failed its gate .*saw: HTTP 503 .*status=unhealthy.*It never took a request: 1\.0\.0 serves/);
        assert.deepStrictEqual(load.failedByKind, {}, JSON.stringify(load));
        assert.strictEqual(load.versions["1.2.0"], undefined, JSON.stringify(load));
        assert.match(await served(), /"version": ?"1\.0\.0"/);
        assert.match(await lastRecord(), /version=1\.2\.0.*outcome=failed reason=health-gate live=1\.0\.0/);
    });

    it("an env-only change goes through the gate under load with no failed request", async () => {
        const pids = await instancePids();
        const c = config("1.0.0", "1.1.0", { "complinist:service": { command: "bin/start", environment: { COMPLINIST_ENV: "zd", FEATURE_X: "on" } } });
        const { result, load } = await underLoad("/health", () => up(c));
        assert.strictEqual(result.error, undefined);
        assert.deepStrictEqual(load.failedByKind, {}, JSON.stringify(load));
        assert.notStrictEqual(await instancePids(), pids, "a new instance started with the new env");
        assert.match(await sh(host(), "cat /etc/complinist/instance-$(sed -n 's/^    server i\\([0-9]*\\) 127.0.0.1:[0-9]*$/\\1/p' /etc/complinist/haproxy.cfg | head -n 1).env"), /FEATURE_X="on"/);
    });

    it("a release that degrades during the soak is switched back at once, with no failed page request", async () => {
        const c = config("1.5.0", "1.0.0", { "complinist:health": { timeoutSeconds: 10, intervalMs: 300, drainSeconds: 10, soakSeconds: 20 } });
        const { result, load } = await underLoad("/", () => up(c));
        assert.match(String(result.error), /version 1\.5\.0 failed after the switch \(the 20s soak through the proxy; saw: during the soak: HTTP 503 .*status=degraded.*Switched back at once: 1\.0\.0 serves/);
        assert.deepStrictEqual(load.failedByKind, {}, JSON.stringify(load));
        assert.match(await served(), /"version": ?"1\.0\.0"/);
        assert.match(await lastRecord(), /version=1\.5\.0.*outcome=failed-rolled-back reason=soak live=1\.0\.0 serving=1\.0\.0/);
        assert.strictEqual(await sh(host(), `readlink ${BASE}/current`), "releases/1.0.0");
    });

    it("a health.path typo fails the update and the old instance keeps serving", async () => {
        const c = config("1.1.0", "1.0.0", { "complinist:health": { path: "/healthz", timeoutSeconds: 4, intervalMs: 300 } });
        const r = await up(c);
        assert.match(String(r.error), /version 1\.1\.0 failed its gate \(GET \/healthz/);
        assert.match(await served(), /"status": ?"healthy".*"version": ?"1\.0\.0"/);
        assert.strictEqual(await sh(host(), `readlink ${BASE}/current`), "releases/1.0.0");
        assert.strictEqual(await sh(host(), "systemctl is-active complinist-proxy"), "active");
    });

    it("the deploy killed during the gate: the host finishes on its own, serves a healthy release and records the outcome", async () => {
        const lines = Number(await sh(host(), `wc -l < ${BASE}/revisions.log`));
        driver.killProvider({ onLine: isTrace("activate", { host: "zd-1", version: "1.2.0" }), delayMs: 1500 });
        const killed = await up(config("1.2.0", "1.0.0"));
        assert.ok(killed.error, "the interrupted update must fail");
        // The host-side activation goes on without its caller; wait for its record.
        await sh(host(), `for i in $(seq 1 300); do [ "$(wc -l < ${BASE}/revisions.log)" -gt ${lines} ] && break; sleep 0.1; done`);
        assert.match(await lastRecord(), /version=1\.2\.0.*outcome=failed reason=health-gate live=1\.0\.0/);
        assert.match(await served(), /"status": ?"healthy".*"version": ?"1\.0\.0"/);
        const r = await up(config("1.1.0", "1.0.0"));
        assert.strictEqual(r.error, undefined);
        assert.match(await served(), /"version": ?"1\.1\.0"/);
    });

    it("refresh reports a stopped instance, a hand-switched proxy and a moved link; the next apply converges under load", async () => {
        const h = host();
        assert.deepStrictEqual((await driver.refresh({ previewOnly: true })).drift.map((d) => d.name), [], "no drift before hand edits");
        // The warm standby stopped by hand: the next rollback would have to start it.
        await sh(h, "p=$(sed -n 's/^    server i\\([0-9]*\\) 127.0.0.1:[0-9]* disabled$/\\1/p' /etc/complinist/haproxy.cfg | head -n 1); systemctl stop complinist@$p");
        let r = await driver.refresh();
        assert.deepStrictEqual(r.drift.map((d) => d.name), ["complinist-zd-1-activation-switch"], "a stopped standby is drift");
        assert.strictEqual((await up(config("1.1.0", "1.0.0"))).error, undefined);
        assert.match(await sh(h, "/usr/local/sbin/complinist status"), /standbyVersion=1\.0\.0/);
        await sh(h, `cd ${BASE} && ln -sfn releases/1.0.0 current`);
        r = await driver.refresh();
        assert.deepStrictEqual(r.drift.map((d) => d.name), ["complinist-zd-1-activation-switch"]);
        // The operator switches the proxy to the standby by hand.
        const toggle = "awk '/^    server i/ { if ($0 ~ / disabled$/) sub(/ disabled$/, \"\"); else $0 = $0 \" disabled\" } { print }'";
        await sh(h, `${toggle} /etc/complinist/haproxy.cfg > /tmp/cfg && cat /tmp/cfg > /etc/complinist/haproxy.cfg && systemctl reload complinist-proxy`);
        r = await driver.refresh();
        assert.ok(r.drift.find((d) => d.name === "complinist-zd-1-activation-switch"), "a switched proxy is drift");
        const { result, load } = await underLoad("/health", () => up(config("1.1.0", "1.0.0")));
        assert.strictEqual(result.error, undefined);
        assert.deepStrictEqual(load.failedByKind, {}, JSON.stringify(load));
        assert.match(await served(), /"version": ?"1\.1\.0"/);
        assert.strictEqual(await sh(h, `readlink ${BASE}/current`), "releases/1.1.0");
        assert.deepStrictEqual((await driver.refresh({ previewOnly: true })).drift.map((d) => d.name), [], "no drift after converging");
    });

    it("the on-host emergency rollback refuses while a deploy holds the lock, naming the holder", async () => {
        const h = host();
        await sh(h, `systemd-run --unit=zd-holder --collect --quiet flock ${BASE}/.deploy.lock sleep 600`);
        try {
            await sh(h, `for i in $(seq 1 100); do flock -n ${BASE}/.deploy.lock true || break; sleep 0.1; done`);
            const pid = await sh(h, "systemctl show -p MainPID --value zd-holder");
            await sh(h, `echo "ci@runner pid ${pid} since now" > ${BASE}/.deploy.lock.owner`);
            const r = await h.exec("LOCK_WAIT=2 /usr/local/sbin/complinist rollback");
            assert.strictEqual(r.code, 75, r.stdout + r.stderr);
            assert.match(r.stderr, new RegExp(`refused: the deploy lock is held by ci@runner pid ${pid} since now \\(still running\\)`));
            assert.match(await served(), /"version": ?"1\.1\.0"/, "nothing switched");
        } finally {
            await sh(h, "systemctl stop zd-holder || true");
        }
    });

    it("the on-host emergency rollback switches to the warm standby, locked and recorded", async () => {
        const out = await sh(host(), "s=$(date +%s%N); /usr/local/sbin/complinist rollback; echo \"tookMs=$(( ($(date +%s%N) - s) / 1000000 ))\"");
        assert.match(out, /rolling back to 1\.0\.0/);
        // The host's part, for the report (never asserted): the command's time and the agent's phases.
        console.log(`      complinist rollback: ${out.split("\n").filter((l) => /^(tookMs|phasesMs)=/.test(l)).join(" ")}`);
        assert.match(await served(), /"version": ?"1\.0\.0"/);
        assert.match(await lastRecord(), /version=1\.0\.0\tsha256=[0-9a-f]{64}\tby=\S+-emergency\toutcome=activated previous=1\.1\.0 mode=warm-switch/);
        // The release left stays warm beside it (no second instance of 1.0.0 on the other port).
        const versions = await sh(host(), `for p in 5001 5002; do curl -s -m 2 http://127.0.0.1:$p/health; echo; done`);
        assert.match(versions, /"version": ?"1\.1\.0"/, versions);
        assert.match(versions, /"version": ?"1\.0\.0"/, versions);
        const drift = await driver.refresh({ previewOnly: true });
        assert.deepStrictEqual(drift.drift.map((d) => d.name), ["complinist-zd-1-activation-switch"], "the stack now differs from the host");
    });

    it("the runbook's hand rollback (ln -sfn + systemctl restart) fails loudly, naming `complinist rollback`; refresh reports it", async () => {
        const h = host();
        // The emergency rollback above left 1.0.0 live: refresh, then up, brings 1.1.0 back.
        await driver.refresh();
        assert.strictEqual((await up(config("1.1.0", "1.0.0"))).error, undefined);
        assert.match(await served(), /"version": ?"1\.1\.0"/);
        const r = await h.exec(`cd ${BASE} && ln -sfn releases/1.0.0 current && systemctl restart complinist`);
        assert.notStrictEqual(r.code, 0, "the restart must not exit 0 while 1.1.0 keeps serving");
        const journal = await sh(h, "journalctl -u complinist.service --no-pager -n 20");
        assert.match(journal, /names 1\.0\.0 but the proxy routes to 1\.1\.0 .*restarting complinist does not switch releases/);
        assert.match(journal, /To switch to 1\.0\.0: sudo \/usr\/local\/sbin\/complinist rollback 1\.0\.0/);
        // The instances and the proxy restarted with it (PartOf=): the routed release answers again.
        await sh(h, "for i in $(seq 1 100); do curl -fsS -m 2 http://127.0.0.1:5000/health >/dev/null 2>&1 && break; sleep 0.2; done");
        assert.match(await served(), /"version": ?"1\.1\.0"/);
        const drift = await driver.refresh({ previewOnly: true });
        assert.deepStrictEqual(drift.drift.map((d) => d.name), ["complinist-zd-1-activation-switch"], "the moved link is drift");
        await driver.refresh();
        assert.strictEqual((await up(config("1.1.0", "1.0.0"))).error, undefined);
        assert.strictEqual(await sh(h, `readlink ${BASE}/current`), "releases/1.1.0");
        assert.strictEqual(await sh(h, "systemctl is-active complinist"), "active", "the next apply starts the umbrella unit again");
    });

    it("a hook that prints the app's secret and fails: the secret is in no log, result file or error", async () => {
        const h = host();
        // Not the pinned rollback target: a rollback skips the hook (hooks.onRollback).
        const c = config("1.2.0", "1.1.0", { "complinist:hooks": { beforeActivate: 'echo "migrating with key $SECRET_KEY"; exit 4' } });
        const r = await up(c);
        assert.match(String(r.error), /hooks\.beforeActivate failed: migrating with key \*\*\*/);
        const secret = await sh(h, "sed -n 's/^SECRET_KEY=\"\\(.*\\)\"$/\\1/p' /etc/complinist/complinist.env");
        assert.ok(secret.length >= 16, "the env file holds the generated secret");
        const stored = await sh(h, `cat ${BASE}/revisions.log /var/log/complinist/deploy.log ${BASE}/.activations/*.result.json`);
        assert.ok(!stored.includes(secret), "the secret was stored on the host");
        // r.output is everything the CLI printed (the program's and the providers' diagnostics among it).
        assert.ok(!String(r.error).includes(secret) && !r.output.includes(secret) && !JSON.stringify(r.providerLog).includes(secret), "the secret reached the deploy's output");
        assert.ok(!driver.stateContainsPlaintext(secret), "the secret is in the backend in plain text");
        assert.match(await served(), /"version": ?"1\.1\.0"/, "nothing switched");
    });

    it("a health.path change under load: the live release is recognized on its old path, the new one gated on its new path, no failed request", async () => {
        const before = /"version": ?"([^"]+)"/.exec(await served())?.[1];
        assert.ok(before);
        const c = config("1.6.0", "1.1.0", { "complinist:health": { path: "/ready", timeoutSeconds: 10, intervalMs: 300, drainSeconds: 10 } });
        const { result, load } = await underLoad("/", () => up(c));
        assert.strictEqual(result.error, undefined);
        assert.deepStrictEqual(load.failedByKind, {}, JSON.stringify(load));
        assert.match(await sh(host(), "curl -sS -m 5 http://127.0.0.1:5000/ready"), /"version": ?"1\.6\.0"/);
        assert.match(await lastRecord(), new RegExp(`version=1\\.6\\.0.*outcome=activated previous=${before.replace(/\./g, "\\.")} mode=started`));
    });

});
