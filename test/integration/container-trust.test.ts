import * as assert from "assert";
import { pinnedSampleImages, TEST_REGISTRY } from "../../dev/images";
import { TestHost, useHosts, hostEntry } from "../../dev/hosts";
import { RealEngine } from "../e2e/engine";
import type { ProgramConfig, OperationResult as UpResult } from "../e2e/engine";

/**
 * Container mode's trust in its containers and images (issue 23, findings 5 and 6), on a real
 * Debian + systemd + sshd host with its own Docker engine, through the engine driver:
 * - a container runs as the service user's uid:gid (resolved on the host, never the image's
 *   USER nor root), with a read-only root, a tmpfs /tmp, memory and pid limits and Docker's
 *   own log of it rotated; changing service.user starts a new container through the gate;
 * - a release is an image pinned by digest: the host's engine must know the image by that repo
 *   digest (here from a registry on the host's loopback, Debian's docker-registry: dev/images.ts
 *   pushImages), else the release is refused and nothing is installed.
 * What runs is observed from the host through docker exec (the test's own channel): docker
 * inspect, and the kernel's view of the container's main process (/proc/<pid>).
 */

const BASE = "/opt/complinist";
const VERSIONS = ["1.0.0", "1.1.0"];

describe("container mode trust on a real host: service user, limits, images pinned by digest", function () {
    this.timeout(900000);
    const hosts: TestHost[] = useHosts(1, { names: ["ct-1"], dockerEngine: true });
    let driver: RealEngine;
    /** complinist:<v> → 127.0.0.1:5050/complinist@sha256:… (the registry's manifest digest). */
    let pinned: Record<string, string> = {};
    const imageIds: Record<string, string> = {};

    const host = () => hosts[0] as TestHost;
    const sh = (cmd: string) => host().run(cmd);
    const served = async () => sh("curl -sS -m 5 http://127.0.0.1:5000/health || true");
    const liveSlot = async () => sh(`sed -n 's/^    server i\\([0-9]*\\) 127.0.0.1:[0-9]*$/\\1/p' /etc/complinist/haproxy.cfg | head -n 1`);
    /** The kernel's view of the container's main process: "<uid> <gid>" (real ids). */
    const processIds = async (name: string) => sh(`pid=$(docker inspect --format '{{.State.Pid}}' ${name}) && awk '/^Uid:/ { u = $2 } /^Gid:/ { g = $2 } END { print u, g }' /proc/$pid/status`);
    /** Mount options of the container's / and /tmp, as its main process sees them. */
    const mounts = async (name: string) => sh(`pid=$(docker inspect --format '{{.State.Pid}}' ${name}) && awk '$5 == "/" || $5 == "/tmp" { for (i = 7; $i != "-"; i++) ; print $5, $6, $(i + 1) }' /proc/$pid/mountinfo | sort`);
    const settings = (name: string) =>
        sh(`docker inspect --format '{{.Config.User}}|{{.HostConfig.ReadonlyRootfs}}|{{.HostConfig.Memory}}|{{.HostConfig.MemorySwap}}|{{.HostConfig.PidsLimit}}|{{json .HostConfig.LogConfig}}|{{json .HostConfig.Tmpfs}}|{{.Image}}' ${name}`);

    /** The service settings the second test switches to, and every later one keeps. */
    const APPSVC = { user: "appsvc", container: { memory: "256m", pids: 128, logMaxSize: "5m", logMaxFiles: 2 } };

    function config(version: string, service: object = {}, releases: Record<string, string> = {}): ProgramConfig {
        const h = host();
        return {
            "complinist:mode": "container",
            "complinist:version": version,
            "complinist:releases": Object.fromEntries(VERSIONS.map((v) => [v, { image: releases[v] ?? (pinned[`complinist:${v}`] as string) }])),
            "complinist:hosts": [hostEntry(h)],
            "complinist:sshPrivateKey": h.privateKey,
            "complinist:service": { command: "bin/start", standby: false, ...service },
            "complinist:health": { timeoutSeconds: 20, intervalMs: 300, drainSeconds: 3 },
        };
    }
    const up = (c: ProgramConfig): Promise<UpResult> => driver.up(c, ["complinist:sshPrivateKey"]);

    before(async () => {
        const images = await pinnedSampleImages(host(), VERSIONS);
        Object.assign(imageIds, images.ids);
        pinned = images.pinned;
        driver = new RealEngine({ stack: "ct", env: { COMPLINIST_DEPLOYER: "ct", COMPLINIST_COMMIT: "c0ffee2" } });
    });
    after(async () => {
        await driver?.close();
    });

    it("the container runs as the service user's uid:gid (not root, not the image's user), read-only, with /tmp, memory, pid and log limits", async () => {
        const r = await up(config("1.0.0"));
        assert.strictEqual(r.error, undefined);
        assert.match(await served(), /"version": ?"1\.0\.0"/);
        const ids = await sh("echo $(id -u complinist) $(id -g complinist)");
        assert.doesNotMatch(ids, /^0 |^10001 /, "the service user is a host account, neither root nor the image's uid 10001");
        assert.strictEqual(await processIds("complinist-5001"), ids, "the app's process runs as the host's service user");
        assert.strictEqual(
            await settings("complinist-5001"),
            [
                ids.replace(" ", ":"),
                "true",
                String(512 * 1024 * 1024),
                String(512 * 1024 * 1024),
                "256",
                JSON.stringify({ Type: "json-file", Config: { "max-file": "3", "max-size": "10m" } }),
                JSON.stringify({ "/tmp": "rw,nosuid,nodev,noexec,size=64m" }),
                imageIds["1.0.0"],
            ].join("|"),
        );
        assert.strictEqual(await mounts("complinist-5001"), "/ ro,relatime overlay\n/tmp rw,nosuid,nodev,noexec,relatime tmpfs", "the kernel sees / read-only and /tmp a tmpfs");
    });

    it("changing service.user and the limits starts a new container through the gate, as the new user with the new limits", async () => {
        const before = await liveSlot();
        const r = await up(config("1.0.0", APPSVC));
        assert.strictEqual(r.error, undefined);
        const after = await liveSlot();
        assert.notStrictEqual(after, before, "a new container on the other slot took over");
        assert.match(await sh(`tail -n 1 ${BASE}/revisions.log`), /version=1\.0\.0.*outcome=activated previous=1\.0\.0 mode=started/);
        const ids = await sh("echo $(id -u appsvc) $(id -g appsvc)");
        assert.strictEqual(await processIds(`complinist-${after}`), ids);
        const [user, , memory, swap, pids, log] = (await settings(`complinist-${after}`)).split("|");
        assert.deepStrictEqual([user, memory, swap, pids, log], [ids.replace(" ", ":"), String(256 * 1024 * 1024), String(256 * 1024 * 1024), "128", JSON.stringify({ Type: "json-file", Config: { "max-file": "2", "max-size": "5m" } })]);
        assert.strictEqual(await sh(`docker inspect complinist-${before} >/dev/null 2>&1 && echo present || echo gone`), "gone", "the old user's container is gone (no standby configured)");
    });

    it("the release manifest pins the image ID and the repo digest from config", async () => {
        const manifest = await sh(`cat ${BASE}/releases/1.0.0/.complinist-release`);
        assert.match(manifest, new RegExp(`^image=${imageIds["1.0.0"]}$`, "m"));
        assert.match(manifest, new RegExp(`^digest=${(pinned["complinist:1.0.0"] as string).replace(/[.]/g, "\\.")}$`, "m"));
    });

    it("a live release installed from a tag (before digests were required) is pinned in place when the digest names its image: no container restarts", async () => {
        const file = `${BASE}/releases/1.0.0/.complinist-release`;
        await sh(`sed -i 's|^ref=.*|ref=complinist:1.0.0|; /^digest=/d' ${file}`);
        const live = await liveSlot();
        const running = await sh(`docker inspect --format '{{.Id}}' complinist-${live}`);
        const drift = await driver.refresh();
        assert.deepStrictEqual(drift.drift.map((d) => d.name), ["complinist-ct-1-release-1.0.0-image"]);
        const r = await up(config("1.0.0", APPSVC));
        assert.strictEqual(r.error, undefined);
        const manifest = await sh(`cat ${file}`);
        assert.match(manifest, new RegExp(`^ref=${(pinned["complinist:1.0.0"] as string).replace(/[.]/g, "\\.")}$`, "m"));
        assert.match(manifest, /^digest=127\.0\.0\.1:5050\/complinist@sha256:[0-9a-f]{64}$/m);
        assert.strictEqual(await sh(`docker inspect --format '{{.Id}}' complinist-${live}`), running, "the live container is the same one");
        assert.deepStrictEqual((await driver.refresh({ previewOnly: true })).drift.map((d) => d.name), []);
    });

    for (const [what, ref, seen] of [
        [
            "an image the engine knows only by a tag and ID (docker load: no repo digest), and no registry has",
            (id: string) => `complinist@${id}`,
            /image complinist@sha256:[0-9a-f]{64} is not on this host and docker pull of complinist@sha256:[0-9a-f]{64} failed .*Nothing was installed/,
        ],
        [
            "a digest the registry does not have",
            () => `${TEST_REGISTRY}/complinist@sha256:${"0".repeat(64)}`,
            /docker pull of 127\.0\.0\.1:5050\/complinist@sha256:0{64} failed .*Nothing was installed/,
        ],
    ] as const) {
        it(`a release pinned by ${what} is refused on the host: nothing installed, the live container untouched`, async () => {
            const live = await liveSlot();
            const running = await settings(`complinist-${live}`);
            const r = await up(config("1.1.0", APPSVC, { "1.1.0": ref(imageIds["1.1.0"] as string) }));
            assert.match(String(r.error), /release 1\.1\.0 \(image [^)]*\) was not installed/);
            assert.match(String(r.error), seen);
            assert.strictEqual(await sh(`ls -A ${BASE}/releases`), "1.0.0", "no release directory, no temp directory");
            assert.strictEqual(await settings(`complinist-${live}`), running);
            assert.match(await served(), /"version": ?"1\.0\.0"/);
        });
    }
});
