import * as assert from "assert";
import * as path from "path";
import { buildArtifacts, BuiltArtifact } from "../../scripts/build-artifacts";
import { ProgramConfig, RealEngine, Step } from "./engine";
import { isTrace, traced, uploads } from "./trace";
import { TestHost, useHosts, hostEntry } from "../../dev/hosts";
import { ProgramUnderMocks } from "../program/mocks/evaluate";

/**
 * Release mode end to end: the real Pulumi CLI runs the program inline (test/e2e/engine.ts,
 * scripts/engine.ts) against two real systemd hosts over SSH. Scenarios run in order against
 * the same hosts and stack, like an operator's week. Host state is observed independently
 * (docker exec), never through the transport under test.
 */

const REPO = path.resolve(__dirname, "..", "..");
const BASE = "/opt/complinist";

function changed(steps: Step[]): Step[] {
    return steps.filter((s) => s.op !== "same");
}

describe("release mode on real hosts", function () {
    this.timeout(600000);
    const hosts: TestHost[] = useHosts(2, { names: ["web-1", "web-2"] });
    let arts: Record<string, BuiltArtifact>;
    let driver: RealEngine;

    const sh = (h: TestHost, cmd: string) => h.run(cmd);
    const current = (h: TestHost) => sh(h, `readlink ${BASE}/current || true`);
    const releasesOn = async (h: TestHost) => (await sh(h, `ls ${BASE}/releases`)).split("\n").filter(Boolean).sort();
    const health = (h: TestHost) => sh(h, "curl -sS -m 5 http://127.0.0.1:5000/health || true");
    const isActive = (h: TestHost) => sh(h, "systemctl is-active complinist || true");
    // Both app instances: a restart of either changes this.
    const mainPid = (h: TestHost) => sh(h, "systemctl show -p MainPID --value complinist@5001 complinist@5002 | tr '\\n' ' '");

    function config(version: string, rollbackVersion: string | undefined, published: string[], extra: ProgramConfig = {}): ProgramConfig {
        const [first] = hosts;
        return {
            "complinist:mode": "release",
            "complinist:version": version,
            "complinist:rollbackVersion": rollbackVersion,
            "complinist:keepReleases": "3",
            "complinist:releases": Object.fromEntries(
                published.map((v) => {
                    const a = arts[v] as BuiltArtifact;
                    return [v, { path: path.relative(REPO, a.file), sha256: a.sha256 }];
                }),
            ),
            "complinist:hosts": hosts.map(hostEntry),
            "complinist:sshPrivateKey": first?.privateKey,
            "complinist:service": { command: "bin/start", environment: { COMPLINIST_ENV: "itest" } },
            "complinist:health": { timeoutSeconds: 15, intervalMs: 300 },
            "complinist:rollout": { batchSize: 1 },
            ...extra,
        };
    }
    const SECRETS = ["complinist:sshPrivateKey"];
    const up = (c: ProgramConfig) => driver.up(c, SECRETS);

    before(async () => {
        const built = await buildArtifacts(path.join(REPO, ".build", "itest-artifacts"));
        arts = Object.fromEntries(built.map((a) => [a.version, a]));
        driver = new RealEngine({ stack: "itest", env: { COMPLINIST_DEPLOYER: "itest" } });
    });
    after(async () => {
        await driver?.close();
    });

    it("a. first deploy of 1.0.0 reaches both hosts, serving and recorded", async () => {
        const r = await up(config("1.0.0", undefined, ["1.0.0"]));
        assert.strictEqual(r.error, undefined);
        for (const h of hosts) {
            assert.strictEqual(await current(h), "releases/1.0.0");
            assert.strictEqual(await isActive(h), "active");
            assert.match(await health(h), /"status": ?"healthy".*"version": ?"1\.0\.0"/);
            assert.match(await sh(h, `cat ${BASE}/revisions.log`), /version=1\.0\.0\tsha256=[0-9a-f]{64}\tby=itest@\S+\toutcome=activated/);
        }
        assert.deepStrictEqual(uploads(r.providerLog).map((u) => u.host).sort(), ["web-1", "web-2"]);
    });

    it("the official CLI's entry point (index.ts required and called, as its language host does) registers exactly what the inline program did", async () => {
        // The same config the first deploy applied, evaluated the other way: the language host's path under Pulumi's mocks.
        const mocks = new ProgramUnderMocks({ stack: "itest" });
        try {
            const evaluated = await mocks.evaluate(config("1.0.0", undefined, ["1.0.0"]), SECRETS);
            assert.strictEqual(evaluated.error, undefined);
            // Type and name (the mocks qualify a URN's type by the parent's own type only, the engine by the whole chain).
            const managed = (rs: Array<{ type: string; name: string }>) => rs.filter((r) => !/^pulumi:(providers:|pulumi:Stack)/.test(r.type)).map((r) => `${r.type} ${r.name}`).sort();
            assert.deepStrictEqual(managed(evaluated.resources), managed(driver.state.resources));
        } finally {
            await mocks.close();
        }
    });

    it("secrets stay out of logs and state; the env file is 0600", async () => {
        const [h] = hosts as [TestHost];
        assert.strictEqual(await sh(h, "stat -c %a /etc/complinist/complinist.env"), "600");
        const secret = (await sh(h, "sed -n 's/^SECRET_KEY=\"\\(.*\\)\"$/\\1/p' /etc/complinist/complinist.env")).trim();
        assert.ok(secret.length >= 16, "SECRET_KEY is in the env file");
        assert.ok(!(await sh(h, `cat ${BASE}/revisions.log`)).includes(secret), "revisions.log");
        assert.ok(!(await sh(h, "journalctl --no-pager -o cat 2>/dev/null || true")).includes(secret), "journal");
        assert.ok(!driver.stateContainsPlaintext(secret), "unencrypted state");
        assert.ok(!driver.stateContainsPlaintext("PRIVATE KEY"), "SSH key in unencrypted state");
    });

    it("b. upgrade to 1.1.0 uploads only the new artifact and keeps 1.0.0", async () => {
        const r = await up(config("1.1.0", "1.0.0", ["1.0.0", "1.1.0"]));
        assert.strictEqual(r.error, undefined);
        const sent = uploads(r.providerLog);
        assert.deepStrictEqual(sent.map((u) => u.host).sort(), ["web-1", "web-2"]);
        for (const u of sent) assert.strictEqual(u.bytes, (arts["1.1.0"] as BuiltArtifact).size);
        for (const h of hosts) {
            assert.strictEqual(await current(h), "releases/1.1.0");
            assert.match(await health(h), /"version": ?"1\.1\.0"/);
            assert.deepStrictEqual(await releasesOn(h), ["1.0.0", "1.1.0"]);
        }
    });

    it("c. rollback by pinning 1.0.0 uploads zero bytes and serves 1.0.0", async () => {
        const r = await up(config("1.0.0", "1.1.0", ["1.0.0", "1.1.0"]));
        assert.strictEqual(r.error, undefined);
        assert.deepStrictEqual(uploads(r.providerLog), []);
        for (const h of hosts) {
            assert.strictEqual(await current(h), "releases/1.0.0");
            assert.match(await health(h), /"version": ?"1\.0\.0"/);
        }
    });

    it("d. a broken 1.2.0 fails the update, switches web-1 back, and never touches web-2", async () => {
        const [w1, w2] = hosts as [TestHost, TestHost];
        const before2 = { current: await current(w2), releases: await releasesOn(w2), pid: await mainPid(w2) };
        const r = await up(config("1.2.0", "1.0.0", ["1.0.0", "1.1.0", "1.2.0"]));
        assert.ok(r.error, "the update must fail");
        assert.match(r.error, /host web-1: version 1\.2\.0 failed its gate/);
        assert.match(r.error, /saw: HTTP 503 .*status=unhealthy/);
        assert.match(r.error, /It never took a request: 1\.0\.0 serves/);
        assert.match(r.error, /npm run rollback -- --stack itest --to 1\.0\.0/);
        assert.strictEqual(await current(w1), "releases/1.0.0");
        assert.match(await health(w1), /"status": ?"healthy".*"version": ?"1\.0\.0"/);
        assert.match(await sh(w1, `tail -n 1 ${BASE}/revisions.log`), /version=1\.2\.0.*outcome=failed reason=health-gate live=1\.0\.0/);
        assert.deepStrictEqual({ current: await current(w2), releases: await releasesOn(w2), pid: await mainPid(w2) }, before2, "web-2 untouched");
        assert.ok(!uploads(r.providerLog).some((u) => u.host === "web-2"), "nothing uploaded to web-2");
    });

    it("converges again once a good version is pinned", async () => {
        const r = await up(config("1.1.0", "1.0.0", ["1.0.0", "1.1.0"]));
        assert.strictEqual(r.error, undefined);
        for (const h of hosts) assert.strictEqual(await current(h), "releases/1.1.0");
    });

    it("e. hand-made drift (link, unit, stopped service) shows in refresh and the next apply converges", async () => {
        const [w1, w2] = hosts as [TestHost, TestHost];
        const clean = await driver.refresh({ previewOnly: true });
        assert.deepStrictEqual(clean.drift.map((d) => d.name), [], "no drift before hand edits");
        // Every resource of a host reads from one read of the host: one ssh exec per host.
        assert.deepStrictEqual(traced(clean.providerLog, "ssh-exec").map((t) => t.fields.host).sort(), ["web-1", "web-2"], JSON.stringify(traced(clean.providerLog)));

        await sh(w1, `cd ${BASE} && ln -sfn releases/1.0.0 current`);
        await sh(w1, "echo 'Environment=DEBUG=1' >> /etc/systemd/system/complinist.service");
        await sh(w2, "systemctl stop complinist");
        const r = await driver.refresh();
        const drift = Object.fromEntries(r.drift.map((d) => [d.name, d.diffs]));
        assert.deepStrictEqual(Object.keys(drift).sort(), ["complinist-web-1-activation-switch", "complinist-web-1-service-unit", "complinist-web-2-activation-switch"]);
        assert.ok(drift["complinist-web-1-activation-switch"]?.includes("active"));
        assert.ok(drift["complinist-web-1-service-unit"]?.includes("serviceUnitText"));
        assert.ok(drift["complinist-web-2-activation-switch"]?.includes("active"));

        const c = config("1.1.0", "1.0.0", ["1.0.0", "1.1.0"]);
        const fix = await up(c);
        assert.strictEqual(fix.error, undefined);
        for (const h of hosts) {
            assert.strictEqual(await current(h), "releases/1.1.0");
            assert.strictEqual(await isActive(h), "active");
            assert.match(await health(h), /"version": ?"1\.1\.0"/);
        }
        assert.ok(!(await sh(w1, "cat /etc/systemd/system/complinist.service")).includes("DEBUG=1"));
        const after = await driver.refresh({ previewOnly: true });
        assert.deepStrictEqual(after.drift.map((d) => d.name), [], "no drift after converging");
    });

    it("g. re-applying an unchanged config changes nothing, uploads nothing, restarts nothing", async () => {
        const c = config("1.1.0", "1.0.0", ["1.0.0", "1.1.0"]);
        const pids = await Promise.all(hosts.map(mainPid));
        const logs = await Promise.all(hosts.map((h) => sh(h, `wc -l < ${BASE}/revisions.log`)));
        const preview = await driver.preview(c, SECRETS);
        assert.deepStrictEqual(changed(preview.steps), []);
        const r = await up(c);
        assert.strictEqual(r.error, undefined);
        assert.deepStrictEqual(changed(r.steps), []);
        assert.deepStrictEqual(uploads(r.providerLog), []);
        assert.deepStrictEqual(await Promise.all(hosts.map(mainPid)), pids, "no restart");
        assert.deepStrictEqual(await Promise.all(hosts.map((h) => sh(h, `wc -l < ${BASE}/revisions.log`))), logs);
    });

    it("f. retention: after five versions with keepReleases 3 exactly the kept release dirs remain", async () => {
        // The operator drops the broken 1.2.0 from `releases`; 1.3.0 and 1.4.0 ship.
        assert.strictEqual((await up(config("1.3.0", "1.1.0", ["1.0.0", "1.1.0", "1.3.0"]))).error, undefined);
        const r = await up(config("1.4.0", "1.3.0", ["1.0.0", "1.1.0", "1.3.0", "1.4.0"]));
        assert.strictEqual(r.error, undefined);
        for (const h of hosts) {
            assert.strictEqual(await current(h), "releases/1.4.0");
            // Kept: 1.4.0 (current), 1.3.0 (pinned rollback), 1.1.0 (newest other). 1.0.0 and 1.2.0 are gone.
            assert.deepStrictEqual(await releasesOn(h), ["1.1.0", "1.3.0", "1.4.0"]);
        }
    });

    it("h. a provider killed mid-activation leaves current on a complete release; the next apply converges", async () => {
        // The hook holds the remote script for 1 s, so a kill 1.3 s after the activation starts lands
        // after the switch, during the restart or the health check.
        const c = config("1.3.0", "1.4.0", ["1.1.0", "1.3.0", "1.4.0"], { "complinist:hooks": { beforeActivate: "sleep 1" } });
        driver.killProvider({ onLine: isTrace("activate", { host: "web-1", version: "1.3.0" }), delayMs: 1300 });
        const killed = await up(c);
        assert.ok(killed.error, "the interrupted update must fail");
        for (const h of hosts) {
            const target = await current(h);
            assert.match(target, /^releases\/1\.[34]\.0$/);
            assert.strictEqual(await sh(h, `test -f ${BASE}/${target}/.complinist-release && echo complete`), "complete");
        }
        // A script orphaned by the kill may still hold the host lock until sshd reaps it; an operator waits too.
        for (const h of hosts) await sh(h, `flock -w 60 ${BASE}/.deploy.lock true`);
        const r = await up(c);
        assert.strictEqual(r.error, undefined);
        for (const h of hosts) {
            assert.strictEqual(await current(h), "releases/1.3.0");
            assert.match(await health(h), /"version": ?"1\.3\.0"/);
        }
    });
});
