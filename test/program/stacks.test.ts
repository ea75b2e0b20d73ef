import * as assert from "assert";
import { CapturedResource, Evaluation, isSecret, Json, ProgramConfig, ProgramUnderMocks, redactSecrets } from "./mocks/evaluate";
import { stackFileConfig, USER_SECRET_KEY, withUserSecrets } from "./stackFile";

/**
 * The real program (index.ts) under Pulumi's mocks, once per committed
 * stack file, loaded from the YAML as a user has it.
 */

const T = {
    releaseDir: "pulumi-nodejs:dynamic/complinist:ReleaseDir",
    serviceUnit: "pulumi-nodejs:dynamic/complinist:ServiceUnit",
    activation: "pulumi-nodejs:dynamic/complinist:Activation",
    /** A record in state that never connects (test/program/host-change.test.ts): it carries no key. */
    identity: "pulumi-nodejs:dynamic/complinist:HostIdentity",
};

/** What the promotion gate reads in prod: staging runs the version healthy; prod has no record yet. */
function stackReferences(stack: string) {
    if (stack !== "prod") return {};
    const version = String(stackFileConfig("prod")["complinist:version"]);
    return { stackReferences: { staging: { outputs: { deployedVersion: version, hosts: { "staging-1": { version, healthy: true } } } }, prod: { outputs: {} } } };
}

async function evaluate(stack: string, config: ProgramConfig, secretKeys: string[]): Promise<Evaluation> {
    const program = new ProgramUnderMocks({ stack, ...stackReferences(stack) });
    try {
        return await program.evaluate(config, secretKeys);
    } finally {
        program.close();
    }
}

function byName(r: Evaluation, name: string): CapturedResource {
    const found = r.resources.find((x) => x.name === name);
    assert.ok(found, `no resource named ${name}; have: ${r.resources.map((x) => x.name).join(", ")}`);
    return found;
}

function ofType(r: Evaluation, type: string): CapturedResource[] {
    return r.resources.filter((x) => x.type === type);
}

const expectations: Record<string, { hosts: string[]; kept: string[]; protect: boolean }> = {
    // 1.2.0 is newer than both version and rollbackVersion: never uploaded before it is deployed.
    local: { hosts: ["local-1"], kept: ["1.1.0", "1.0.0"], protect: false },
    dev: { hosts: ["dev-1"], kept: ["1.1.0", "1.0.0"], protect: false },
    staging: { hosts: ["staging-1"], kept: ["1.1.0", "1.0.0"], protect: false },
    prod: { hosts: ["prod-1", "prod-2"], kept: ["1.1.0", "1.0.0"], protect: true },
};

for (const [stack, want] of Object.entries(expectations)) {
    describe(`the ${stack} stack file under mocks`, function () {
        this.timeout(120000);
        let r: Evaluation;
        let config: ProgramConfig;

        before(async () => {
            const s = withUserSecrets(stackFileConfig(stack));
            config = s.config;
            r = await evaluate(stack, s.config, s.secretKeys);
            assert.strictEqual(r.error, undefined, r.programLog);
        });

        it("declares a Release per host for version, the rollback target and the newest others up to keepReleases", () => {
            for (const h of want.hosts) {
                const versions = ofType(r, T.releaseDir)
                    .filter((x) => x.name.startsWith(`complinist-${h}-release-`))
                    .map((x) => (x.inputs as { version: string }).version);
                assert.deepStrictEqual(versions.sort(), [...want.kept].sort(), `host ${h}`);
            }
        });

        it("makes each Activation depend on its release and its unit", () => {
            for (const h of want.hosts) {
                const act = byName(r, `complinist-${h}-activation-switch`);
                const version = (act.inputs as { version: string }).version;
                assert.ok(act.dependencies.includes(byName(r, `complinist-${h}-release-${version}-dir`).urn), "depends on its release");
                assert.ok(act.dependencies.includes(byName(r, `complinist-${h}-service-unit`).urn), "depends on its unit");
            }
        });

        it("parents every host resource under its component chain", () => {
            const h = want.hosts[0] as string;
            const chain: string[] = [];
            let cur: CapturedResource | undefined = byName(r, `complinist-${h}-release-${want.kept[0]}-dir`);
            while (cur) {
                chain.push(cur.type);
                const parent: string = cur.parent;
                cur = r.resources.find((x) => x.urn === parent);
            }
            assert.deepStrictEqual(chain, [T.releaseDir, "complinist:host:Release", "complinist:host:HostDeployment", "complinist:deploy:ReleaseRollout", "pulumi:pulumi:Stack"]);
        });

        it(want.protect ? "protects every resource but the release directories (retention deletes those)" : "protects nothing", () => {
            for (const x of r.resources.filter((x) => x.custom && !x.external)) {
                const expected = want.protect && x.type !== T.releaseDir;
                assert.strictEqual(x.protect, expected, `${x.name} protect`);
            }
        });

        it("exports the deploy record", () => {
            for (const k of ["deployedVersion", "rollbackVersion", "deployedAt", "deployedCommit", "hosts", "releases"]) {
                assert.ok(k in r.outputs, `missing output ${k}`);
            }
            assert.strictEqual(r.outputs.deployedVersion, config["complinist:version"]);
            assert.deepStrictEqual(Object.keys(r.outputs.hosts as object).sort(), [...want.hosts].sort());
            assert.deepStrictEqual(r.outputs.releases, want.kept);
        });

        it("passes every secret as a secret: SSH key, generated secret, env file", () => {
            const generated = byName(r, "app-secret-key");
            // Made by its provider in create (test/unit/providers/generated-secret.test.ts); the engine keeps it secret.
            assert.strictEqual(generated.type, "pulumi-nodejs:dynamic/complinist:GeneratedSecret");
            assert.deepStrictEqual(generated.additionalSecretOutputs, ["value"]);
            assert.strictEqual(generated.inputs.length, 48);
            for (const x of r.resources.filter((x) => x.type.startsWith("pulumi-nodejs:dynamic") && x.name !== "app-secret-key" && x.type !== T.identity)) {
                assert.ok(isSecret(x.inputs.privateKey as Json), `${x.name}.privateKey must be secret`);
                const plain = JSON.stringify(redactSecrets(x.inputs as Json));
                assert.ok(!plain.includes("PRIVATE KEY"), `${x.name} carries the SSH key in clear`);
            }
            for (const u of ofType(r, T.serviceUnit)) assert.ok(isSecret(u.inputs.envText as Json), "env file text is secret");
            assert.ok(!JSON.stringify(redactSecrets(r.outputs as Json)).includes(USER_SECRET_KEY.slice(40, 70)));
        });

        it("shows the operator what matters in preview: version, sha256, unit text, never artifact bytes", () => {
            const rel = ofType(r, T.releaseDir)[0] as CapturedResource;
            assert.match(String(rel.inputs.sha256), /^[0-9a-f]{64}$/);
            const unit = ofType(r, T.serviceUnit)[0] as CapturedResource;
            assert.match(String(unit.inputs.unitText), /^WorkingDirectory=\/opt\/complinist\/instances\/%i$/m);
            assert.match(String(unit.inputs.proxyUnitText), /^ExecStart=\/usr\/sbin\/haproxy -Ws /m);
            const act = ofType(r, T.activation)[0] as CapturedResource;
            assert.match(JSON.stringify(act.inputs.health), /"path":"\/health"/);
            // The largest are the service unit's: its provider's serialized code (~130 KB); the host agent is named by its sha256, never carried; an artifact would be megabytes.
            for (const x of r.resources) assert.ok(JSON.stringify(x.inputs).length < 300000, `${x.name} inputs are small`);
        });

        it("evaluates to identical inputs twice (no timestamps, random ids or temp paths)", async () => {
            const s = withUserSecrets(stackFileConfig(stack));
            const again = await evaluate(stack, s.config, s.secretKeys);
            const strip = (e: Evaluation) => e.resources.map((x) => ({ urn: x.urn, inputs: redactSecrets(x.inputs as Json), deps: x.dependencies }));
            assert.deepStrictEqual(strip(again), strip(r));
            assert.ok(!JSON.stringify(r.resources.map((x) => redactSecrets(x.inputs as Json))).includes("/tmp/"));
        });
    });
}

describe("rollout batches under mocks", function () {
    this.timeout(120000);

    it("holds every resource of prod-2 back until prod-1's activation is done", async () => {
        const s = withUserSecrets(stackFileConfig("prod"));
        const r = await evaluate("prod", s.config, s.secretKeys);
        const first = byName(r, "complinist-prod-1-activation-switch").urn;
        // But its identity record, which touches no host: a moved prod-2 is refused before prod-1 changes.
        for (const x of r.resources.filter((x) => x.custom && x.name.startsWith("complinist-prod-2-") && x.type !== T.identity)) {
            assert.ok(x.dependencies.includes(first), `${x.name} must wait for prod-1's activation`);
        }
        for (const x of r.resources.filter((x) => x.custom && x.name.startsWith("complinist-prod-1-"))) {
            assert.ok(!x.dependencies.some((d) => d.includes("prod-2")), `${x.name} must not wait for prod-2`);
        }
    });

    it("activates all staging-style hosts together when batchSize covers them", async () => {
        const s = withUserSecrets(stackFileConfig("prod"));
        const r = await evaluate("prod", { ...s.config, "complinist:rollout": { batchSize: 2 } }, s.secretKeys);
        const first = byName(r, "complinist-prod-1-activation-switch").urn;
        assert.ok(!byName(r, "complinist-prod-2-activation-switch").dependencies.includes(first));
    });
});

describe("bad configuration through the program", function () {
    this.timeout(120000);

    it("fails before any resource is registered, naming stack, key and value", async () => {
        const s = withUserSecrets(stackFileConfig("staging"));
        const r = await evaluate("staging", { ...s.config, "complinist:version": "1.1.0;reboot" }, s.secretKeys);
        assert.ok(r.error, "the program must fail");
        assert.match(r.error, /Invalid configuration for stack 'staging'/);
        assert.match(r.error, /complinist:version: must be a version/);
        assert.match(r.error, /"1\.1\.0;reboot"/);
        assert.deepStrictEqual(r.resources.filter((x) => x.type !== "pulumi:pulumi:Stack").map((x) => x.name), []);
    });

    it("refuses a prod stack without promoteFrom before registering anything", async () => {
        const s = withUserSecrets(stackFileConfig("prod"));
        const r = await evaluate("prod", { ...s.config, "complinist:promoteFrom": undefined }, s.secretKeys);
        assert.match(r.error ?? "", /complinist:promoteFrom: is required for production stacks/);
        assert.deepStrictEqual(r.resources.filter((x) => x.type !== "pulumi:pulumi:Stack").length, 0);
    });
});
