import * as assert from "assert";
import { pinnedSampleImages } from "../../dev/images";
import { TestHost, useHosts, hostEntry } from "../../dev/hosts";
import { OperationResult, ProgramConfig, RealEngine } from "./engine";
import { installLoadgen, underLoad as runUnderLoad } from "./load";

/**
 * Container mode on a real host (Debian, systemd, sshd and its own Docker engine), through
 * the same path as release mode's tests: the real Pulumi CLI running the program inline
 * (test/e2e/engine.ts, scripts/engine.ts); container mode uses no docker provider, only this
 * program's dynamic ones. A load generator inside the host (dev/loadgen.py: 8 workers, a
 * new connection per request) runs through every switch and must see no failed request.
 * Host state is observed through docker exec, never through the transport under test.
 */

const BASE = "/opt/complinist";
const FAULTS = "/run/complinist-faults";
const VERSIONS = ["1.0.0", "1.1.0", "1.2.0", "1.3.0"];
// The CLI's own words for a provider process that died mid-call (its gRPC client reading EOF), in
// the diagnostics of the resource it was updating. Unlike the old test engine, the CLI does not say
// the process was killed or by which signal: the test knows that from killProvidersNow().
const KILLED = /complinist:Activation \(complinist-cm-1-activation-switch\):\n\s+error: error reading from server: EOF/;

describe("container mode on a real host with a Docker engine, under load", function () {
    this.timeout(900000);
    const hosts: TestHost[] = useHosts(1, { names: ["cm-1"], dockerEngine: true });
    let driver: RealEngine;
    const imageIds: Record<string, string> = {};
    /** complinist:<v> → its digest reference on the host's registry (dev/images.ts pushImages). */
    let pinned: Record<string, string> = {};

    const host = () => hosts[0] as TestHost;
    const sh = (cmd: string) => host().run(cmd);
    const served = async () => sh("curl -sS -m 5 http://127.0.0.1:5000/health || true");
    const lastRecord = async () => sh(`tail -n 1 ${BASE}/revisions.log`);
    /** `<name> <id> <image>` of every running container of the service, sorted by name. */
    const containers = async () => sh("docker ps --filter label=complinist.service=complinist --format '{{.Names}} {{.ID}} {{.Image}}' | sort");
    const state = (name: string) => sh(`docker inspect --format '{{.State.Status}} {{.Image}}' ${name} 2>/dev/null || echo missing`);

    function config(version: string, rollbackVersion: string | undefined, extra: ProgramConfig = {}): ProgramConfig {
        const h = host();
        return {
            "complinist:mode": "container",
            "complinist:version": version,
            "complinist:rollbackVersion": rollbackVersion,
            "complinist:keepReleases": "4",
            "complinist:releases": Object.fromEntries(VERSIONS.map((v) => [v, { image: pinned[`complinist:${v}`] }])),
            "complinist:hosts": [hostEntry(h)],
            "complinist:sshPrivateKey": h.privateKey,
            "complinist:service": { command: "bin/start", environment: { COMPLINIST_ENV: "cm" } },
            "complinist:health": { timeoutSeconds: 15, intervalMs: 300, drainSeconds: 5 },
            ...extra,
        };
    }
    const up = (c: ProgramConfig): Promise<OperationResult> => driver.up(c, ["complinist:sshPrivateKey"]);
    const activation = () => driver.byName("complinist-cm-1-activation-switch")[0];

    const underLoad = <T>(step: () => Promise<T>) => runUnderLoad(host(), "/health", step);

    before(async () => {
        const images = await pinnedSampleImages(host(), VERSIONS);
        Object.assign(imageIds, images.ids);
        pinned = images.pinned;
        installLoadgen(host());
        driver = new RealEngine({ stack: "cm", env: { COMPLINIST_DEPLOYER: "cm", COMPLINIST_COMMIT: "c0ffee1" } });
    });
    after(async () => {
        await driver?.close();
    });

    it("first deploy: the proxy serves 1.0.0 from the container complinist-5001, published on loopback, its image pinned by ID", async () => {
        const r = await up(config("1.0.0", undefined));
        assert.strictEqual(r.error, undefined);
        assert.match(await served(), /"version": ?"1\.0\.0"/);
        assert.strictEqual(await sh(`readlink ${BASE}/current`), "releases/1.0.0");
        assert.strictEqual(await state("complinist-5001"), `running ${imageIds["1.0.0"]}`);
        assert.strictEqual(await sh("docker port complinist-5001"), "5001/tcp -> 127.0.0.1:5001");
        assert.match(await sh(`cat ${BASE}/releases/1.0.0/.complinist-release`), new RegExp(`^image=${imageIds["1.0.0"]}$`, "m"));
        assert.strictEqual(await sh("systemctl is-active complinist complinist-proxy complinist@5001 | sort -u"), "active");
        // The deploy record, from the activation (not from container inputs).
        const outs = activation()?.outputs ?? {};
        assert.match(String(outs.activatedAt), /^\d{4}-\d\d-\d\dT/);
        assert.strictEqual(outs.activatedCommit, "c0ffee1");
        assert.match(String(outs.liveContainer), /^[0-9a-f]{64}$/);
    });

    it("upgrade to 1.1.0 under load: no failed request; 1.0.0's container stays running as the warm standby", async () => {
        const before = await state("complinist-5001");
        const { result, load } = await underLoad(() => up(config("1.1.0", "1.0.0")));
        assert.strictEqual(result.error, undefined);
        assert.deepStrictEqual(load.failedByKind, {}, JSON.stringify(load));
        assert.ok((load.versions["1.1.0"] ?? 0) > 0, JSON.stringify(load));
        assert.match(await served(), /"version": ?"1\.1\.0"/);
        assert.strictEqual(await state("complinist-5002"), `running ${imageIds["1.1.0"]}`);
        assert.strictEqual(await state("complinist-5001"), before, "the standby is the container that was live");
        assert.match(await sh("/usr/local/sbin/complinist status"), /standbyVersion=1\.0\.0/);
    });

    it("pinned rollback to the warm 1.0.0 under load: no failed request, no container started, a proxy switch", async () => {
        const running = await containers();
        const { result, load } = await underLoad(() => up(config("1.0.0", "1.1.0")));
        assert.strictEqual(result.error, undefined);
        assert.deepStrictEqual(load.failedByKind, {}, JSON.stringify(load));
        assert.strictEqual(await containers(), running, "a rollback to the standby starts (and stops) no container");
        assert.match(await served(), /"version": ?"1\.0\.0"/);
        assert.match(await lastRecord(), /version=1\.0\.0.*outcome=activated previous=1\.1\.0 mode=warm-switch/);
    });

    it("a broken image (1.2.0) under load: the update fails at the gate and 1.2.0 never answers a request", async () => {
        const { result, load } = await underLoad(() => up(config("1.2.0", "1.0.0")));
        assert.match(String(result.error), /version 1\.2\.0 failed its gate .*saw: HTTP 503 .*It never took a request: 1\.0\.0 serves/);
        assert.deepStrictEqual(load.failedByKind, {}, JSON.stringify(load));
        assert.strictEqual(load.versions["1.2.0"], undefined, JSON.stringify(load));
        assert.match(await served(), /"version": ?"1\.0\.0"/);
        assert.match(await lastRecord(), /version=1\.2\.0.*outcome=failed reason=health-gate live=1\.0\.0/);
    });

    it("after the failed gate refresh reports the standby slot it used; the next up brings 1.1.0 back warm, then nothing drifts", async () => {
        const r = await driver.refresh();
        assert.deepStrictEqual(r.drift.map((d) => [d.name, d.diffs.includes("standbyVersion")]), [["complinist-cm-1-activation-switch", true]]);
        const fix = await up(config("1.0.0", "1.1.0"));
        assert.strictEqual(fix.error, undefined);
        assert.match(await sh("/usr/local/sbin/complinist status"), /standbyVersion=1\.1\.0/);
        assert.match(await lastRecord(), /version=1\.0\.0.*outcome=converged/);
        const clean = await driver.refresh({ previewOnly: true });
        assert.deepStrictEqual(clean.drift.map((d) => d.name), []);
    });

    for (const [what, edit, problem] of [
        // Stays stopped, as with Docker's unless-stopped: the app's exit on the stop signal is a success for its unit.
        ["stopped by hand (docker stop)", "docker stop complinist-$LIVE", /live instance inactive.*live container complinist-500\d missing/],
        // A removal is a failure for the unit, which restarts it: refresh sees it missing, or another container than the gated one.
        ["removed by hand (docker rm -f)", "docker rm -f complinist-$LIVE", /live container complinist-500\d (missing|is [0-9a-f]{12}, not [0-9a-f]{12} that the activation gated)/],
        [
            "replaced by hand with another image",
            "systemctl stop complinist@$LIVE && docker run -d --name complinist-$LIVE -p 127.0.0.1:$LIVE:$LIVE -e PORT=$LIVE complinist:1.3.0",
            /live container complinist-500\d runs image sha256:/,
        ],
        ["routed elsewhere by hand (proxy)", "sed -i \"s/^\\(    server i$LIVE 127.0.0.1:$LIVE\\)$/\\1 disabled/; s/^\\(    server i$OTHER 127.0.0.1:$OTHER\\) disabled$/\\1/\" /etc/complinist/haproxy.cfg && systemctl reload complinist-proxy", /port 5000 answers 1\.1\.0/],
    ] as const) {
        it(`drift: the live container ${what} shows in refresh, and pulumi up brings 1.0.0 back`, async () => {
            const live = await sh(`sed -n 's/^    server i\\([0-9]*\\) 127.0.0.1:[0-9]*$/\\1/p' /etc/complinist/haproxy.cfg | head -n 1`);
            const other = live === "5001" ? "5002" : "5001";
            await sh(`LIVE=${live}; OTHER=${other}; ${edit}`);
            const r = await driver.refresh();
            assert.strictEqual(r.error, undefined);
            assert.deepStrictEqual(r.drift.map((d) => d.name), ["complinist-cm-1-activation-switch"]);
            assert.match(String(activation()?.outputs.active), problem);
            const fix = await up(config("1.0.0", "1.1.0"));
            assert.strictEqual(fix.error, undefined);
            assert.match(await served(), /"version": ?"1\.0\.0"/);
            const after = await driver.refresh({ previewOnly: true });
            assert.deepStrictEqual(after.drift.map((d) => d.name), [], "no drift after pulumi up");
        });
    }

    it("the deploy killed mid-switch: the host finishes the switch, serves 1.1.0 and records it; the re-run converges", async () => {
        await sh(`mkdir -p ${FAULTS} && rm -f ${FAULTS}/switch.reached && touch ${FAULTS}/switch`);
        let ended: OperationResult | undefined;
        const run = up(config("1.1.0", "1.0.0")).then((r) => (ended = r));
        try {
            await sh(`for i in $(seq 1 1200); do [ -s ${FAULTS}/switch.reached ] && exit 0; sleep 0.1; done; exit 1`);
            assert.strictEqual(ended, undefined, "the deploy was still running at the pause point");
            assert.ok(driver.killProvidersNow() > 0, "a provider process was running");
        } finally {
            await sh(`rm -f ${FAULTS}/switch`);
        }
        assert.match(String((await run).error), KILLED);
        await sh(`for i in $(seq 1 600); do tail -n 1 ${BASE}/revisions.log | grep -q 'version=1.1.0.*outcome=' && exit 0; sleep 0.1; done; exit 1`);
        assert.match(await lastRecord(), /version=1\.1\.0.*outcome=activated previous=1\.0\.0/);
        assert.match(await served(), /"version": ?"1\.1\.0"/);
        const again = await up(config("1.1.0", "1.0.0"));
        assert.strictEqual(again.error, undefined);
        assert.match(await lastRecord(), /version=1\.1\.0.*outcome=converged/);
    });
});
