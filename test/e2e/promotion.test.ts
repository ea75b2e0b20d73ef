import * as assert from "assert";
import * as path from "path";
import { buildArtifacts, BuiltArtifact } from "../../scripts/build-artifacts";
import { PROJECT_DIR } from "../../scripts/engine";
import { Backend, makeBackend, ProgramConfig, RealEngine, removeBackend } from "./engine";
import { TestHost, useHosts, hostEntry } from "../../dev/hosts";

/**
 * The promotion gate between two stacks on one backend, through the real engine: prod reads
 * staging's outputs with a real StackReference, takes only what staging runs healthy, and its
 * resources are protected, so `pulumi destroy` of prod is refused with nothing removed.
 */
describe("promotion from staging to prod on one backend", function () {
    this.timeout(600000);
    const hosts: TestHost[] = useHosts(2, { names: ["stg-1", "prd-1"] });
    let arts: Record<string, BuiltArtifact>;
    let backend: Backend;
    let staging: RealEngine;
    let prod: RealEngine;
    const SECRETS = ["complinist:sshPrivateKey"];

    const health = async (h: TestHost) => (await h.exec("curl -sS -m 5 http://127.0.0.1:5000/health || true")).stdout;

    function config(h: TestHost, version: string, rollbackVersion: string | undefined, extra: ProgramConfig = {}): ProgramConfig {
        const published = ["1.0.0", "1.1.0", "1.3.0"];
        return {
            "complinist:version": version,
            "complinist:rollbackVersion": rollbackVersion,
            "complinist:releases": Object.fromEntries(published.map((v) => [v, { path: path.relative(PROJECT_DIR, (arts[v] as BuiltArtifact).file), sha256: (arts[v] as BuiltArtifact).sha256 }])),
            "complinist:hosts": [hostEntry(h)],
            "complinist:sshPrivateKey": h.privateKey,
            "complinist:service": { command: "bin/start" },
            "complinist:health": { timeoutSeconds: 20, intervalMs: 300 },
            ...extra,
        };
    }
    const prodConfig = (version: string, rollbackVersion?: string) => config(hosts[1] as TestHost, version, rollbackVersion, { "complinist:promoteFrom": "staging" });

    before(async () => {
        const built = await buildArtifacts(path.join(PROJECT_DIR, ".build", "e2e-artifacts"));
        arts = Object.fromEntries(built.map((a) => [a.version, a]));
        backend = makeBackend();
        staging = new RealEngine({ stack: "staging", backend, env: { COMPLINIST_DEPLOYER: "e2e" } });
        prod = new RealEngine({ stack: "prod", backend, env: { COMPLINIST_DEPLOYER: "e2e" } });
    });
    after(async () => {
        await staging?.close();
        await prod?.close();
        if (backend) removeBackend(backend);
    });

    it("prod takes 1.0.0 once staging runs it healthy", async () => {
        assert.strictEqual((await staging.up(config(hosts[0] as TestHost, "1.0.0", undefined), SECRETS)).error, undefined);
        const r = await prod.up(prodConfig("1.0.0"), SECRETS);
        assert.strictEqual(r.error, undefined);
        assert.match(await health(hosts[1] as TestHost), /"version": ?"1\.0\.0"/);
        // Every resource but the releases (retention must be able to delete those: components/HostDeployment.ts).
        const unprotected = prod.state.resources.filter((x) => x.type.startsWith("pulumi-nodejs:dynamic") && !x.protect).map((x) => x.name);
        assert.deepStrictEqual(unprotected, ["complinist-prd-1-release-1.0.0-dir"]);
    });

    it("prod refuses 1.1.0 while staging has not deployed it: preview and up fail naming staging, prod's host unchanged", async () => {
        const preview = await prod.preview(prodConfig("1.1.0", "1.0.0"), SECRETS);
        assert.match(String(preview.error), /Promotion gate: stack 'prod' refuses version 1\.1\.0: stack 'staging' has not deployed it healthy/);
        const r = await prod.up(prodConfig("1.1.0", "1.0.0"), SECRETS);
        assert.match(String(r.error), /Promotion gate: stack 'prod' refuses version 1\.1\.0/);
        assert.deepStrictEqual(r.steps.filter((s) => s.op !== "same"), []);
        assert.match(await health(hosts[1] as TestHost), /"version": ?"1\.0\.0"/);
        assert.doesNotMatch((await (hosts[1] as TestHost).exec("ls /opt/complinist/releases")).stdout, /1\.1\.0/);
    });

    it("once staging runs 1.1.0 healthy, prod takes it", async () => {
        assert.strictEqual((await staging.up(config(hosts[0] as TestHost, "1.1.0", "1.0.0"), SECRETS)).error, undefined);
        const r = await prod.up(prodConfig("1.1.0", "1.0.0"), SECRETS);
        assert.strictEqual(r.error, undefined);
        assert.match(await health(hosts[1] as TestHost), /"version": ?"1\.1\.0"/);
    });

    it("pulumi destroy of prod is refused (protected): the host keeps serving and keeps both releases; the next up restores the state", async () => {
        const before = prod.state.resources.map((x) => x.name);
        const r = await prod.destroy();
        assert.match(String(r.error), /protected/);
        // The engine deletes what is not protected before it stops: the standby's release, which the
        // host keeps (never the live one or the standby); only the state forgets it until the next up.
        const gone = before.filter((n) => !prod.state.resources.some((x) => x.name === n));
        assert.deepStrictEqual(gone, ["complinist-prd-1-release-1.0.0", "complinist-prd-1-release-1.0.0-dir"]);
        const h = hosts[1] as TestHost;
        assert.match(await health(h), /"version": ?"1\.1\.0"/);
        assert.deepStrictEqual((await h.exec("ls /opt/complinist/releases")).stdout.trim().split("\n"), ["1.0.0", "1.1.0"]);
        const again = await prod.up(prodConfig("1.1.0", "1.0.0"), SECRETS);
        assert.strictEqual(again.error, undefined);
        assert.deepStrictEqual(prod.state.resources.map((x) => x.name).sort(), [...before].sort());
    });
});
