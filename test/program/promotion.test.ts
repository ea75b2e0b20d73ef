// The promotion gate (stacks/promotion.ts): the pure rule, the gate under Pulumi's own mocks with
// the StackReference mocked as Pulumi documents it, and the whole program under mocks
// (mocks/evaluate.ts) for the prod stack — a refusal registers no resource at all; prod's record (history,
// rolledBackFrom) carried from one deployment to the next.
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import * as YAML from "yaml";
import { ProgramUnderMocks } from "./mocks/evaluate";
import type { CapturedResource, PriorOutputs, PropertyMap } from "./mocks/evaluate";
import { evaluatePromotion, PromotionInput, promotionGate, PromotionRefused, StackOutputs } from "../../stacks/promotion";

const REPO = path.join(__dirname, "..", "..");

function staging(version: string, hosts: Record<string, { version: string; healthy: boolean }> = { "staging-1": { version, healthy: true } }): StackOutputs {
    return { deployedVersion: version, rollbackVersion: "1.0.0", hosts, releases: [version] };
}

function input(overrides: Partial<PromotionInput>): PromotionInput {
    return { stack: "prod", source: "staging", version: "1.2.0", rollbackVersion: "1.1.0", sourceOutputs: staging("1.2.0"), ownOutputs: {}, ...overrides };
}

function refused(i: PromotionInput): string {
    const d = evaluatePromotion(i);
    assert.strictEqual(d.ok, false, `expected a refusal, got: ${d.ok ? d.reason : ""}`);
    return d.ok ? "" : d.message;
}

describe("promotion gate: the rule", () => {
    it("passes a version staging deployed and every staging host serves healthy", () => {
        const d = evaluatePromotion(input({}));
        assert.ok(d.ok);
        assert.match(d.reason, /staging runs 1\.2\.0 healthy on every host/);
    });

    it("refuses a version staging has not deployed, naming both stacks, the version and what staging reports", () => {
        const m = refused(input({ version: "1.3.0" }));
        for (const part of ["stack 'prod' refuses version 1.3.0", "stack 'staging'", "staging reports deployedVersion 1.2.0; hosts: staging-1 1.2.0 healthy", "Nothing was changed"]) {
            assert.ok(m.includes(part), `message lacks ${JSON.stringify(part)}:\n${m}`);
        }
        assert.match(m, /pulumi up --stack staging/);
    });

    it("refuses when one staging host serves another version or is unhealthy", () => {
        const split = staging("1.2.0", { "staging-1": { version: "1.2.0", healthy: true }, "staging-2": { version: "1.1.0", healthy: true } });
        assert.match(refused(input({ sourceOutputs: split })), /staging-2 1\.1\.0 healthy/);
        const sick = staging("1.2.0", { "staging-1": { version: "1.2.0", healthy: false } });
        assert.match(refused(input({ sourceOutputs: sick })), /staging-1 1\.2\.0 UNHEALTHY/);
    });

    it("refuses when staging reports no hosts or no deploy record at all", () => {
        assert.match(refused(input({ sourceOutputs: { deployedVersion: "1.2.0", hosts: {} } })), /no hosts/);
        assert.match(refused(input({ sourceOutputs: {} })), /deployedVersion none; hosts: no hosts/);
    });

    it("lets an emergency rollback to prod's pinned rollback target through although staging moved on", () => {
        const d = evaluatePromotion(
            input({ version: "1.0.0", rollbackVersion: "1.1.0", sourceOutputs: staging("1.2.0"), ownOutputs: { deployedVersion: "1.1.0", rollbackVersion: "1.0.0" } }),
        );
        assert.ok(d.ok);
        assert.match(d.reason, /pinned rollback target/);
    });

    it("lets prod re-apply the version it already runs (a config change, a replaced host)", () => {
        const d = evaluatePromotion(input({ version: "1.1.0", rollbackVersion: "1.0.0", sourceOutputs: staging("1.2.0"), ownOutputs: { deployedVersion: "1.1.0", rollbackVersion: "1.0.0" } }));
        assert.ok(d.ok);
    });

    it("refuses a rollback to a version prod never ran nor had pinned", () => {
        const m = refused(input({ version: "0.9.0", rollbackVersion: "1.1.0", sourceOutputs: staging("1.2.0"), ownOutputs: { deployedVersion: "1.1.0", rollbackVersion: "1.0.0" } }));
        assert.match(m, /neither what prod runs \(1\.1\.0\) nor its pinned rollback target \(1\.0\.0\)/);
        assert.match(m, /npm run rollback -- --stack prod/);
    });

    it("refuses pinning an unproven rollback target, which would otherwise open a two-step bypass", () => {
        const m = refused(input({ version: "1.2.0", rollbackVersion: "1.3.0-untested", ownOutputs: { deployedVersion: "1.1.0", rollbackVersion: "1.0.0" } }));
        assert.match(m, /refuses rollbackVersion 1\.3\.0-untested/);
        // The normal promotion pins what prod ran before.
        assert.ok(evaluatePromotion(input({ version: "1.2.0", rollbackVersion: "1.1.0", ownOutputs: { deployedVersion: "1.1.0", rollbackVersion: "1.0.0" } })).ok);
    });

    it("accepts the stack file's pin on the first deployment, when prod has no record yet", () => {
        assert.ok(evaluatePromotion(input({ version: "1.2.0", rollbackVersion: "1.0.0", ownOutputs: {} })).ok);
        // ...but the version itself must still come from staging.
        refused(input({ version: "1.0.0", rollbackVersion: undefined, ownOutputs: {} }));
    });
});

describe("promotion gate: a rollback that sticks, and prod's own history", () => {
    const rolledBack = { deployedVersion: "1.0.0", rollbackVersion: "1.1.0", history: ["1.0.0", "1.1.0"], rolledBackFrom: ["1.1.0"] };

    it("refuses a version prod rolled back from although staging runs it healthy, naming the acknowledgement command", () => {
        const m = refused(input({ version: "1.1.0", rollbackVersion: "1.0.0", sourceOutputs: staging("1.1.0"), ownOutputs: rolledBack }));
        assert.match(m, /^Promotion gate: stack 'prod' refuses version 1\.1\.0: prod rolled back from 1\.1\.0 \(its rolledBackFrom output: 1\.1\.0; it runs 1\.0\.0\)/);
        assert.ok(m.includes("pulumi config set --path 'complinist:acknowledgeRolledBack[0]' 1.1.0 --stack prod"), m);
        assert.match(m, /Nothing was changed/);
    });

    it("numbers the acknowledgement after the ones already listed", () => {
        const m = refused(input({ version: "1.1.0", rollbackVersion: "1.0.0", acknowledged: ["0.9.0"], sourceOutputs: staging("1.1.0"), ownOutputs: rolledBack }));
        assert.ok(m.includes("'complinist:acknowledgeRolledBack[1]' 1.1.0"), m);
    });

    it("lets the acknowledged version through, and warns about acknowledgements that no longer apply", () => {
        const d = evaluatePromotion(input({ version: "1.1.0", rollbackVersion: "1.0.0", acknowledged: ["1.1.0"], sourceOutputs: staging("1.1.0"), ownOutputs: rolledBack }));
        assert.ok(d.ok);
        assert.deepStrictEqual(d.warnings, []);
        const later = evaluatePromotion(
            input({ version: "1.1.0", rollbackVersion: "1.0.0", acknowledged: ["1.1.0"], sourceOutputs: staging("1.1.0"), ownOutputs: { ...rolledBack, deployedVersion: "1.1.0", rolledBackFrom: [] } }),
        );
        assert.ok(later.ok);
        assert.match(later.warnings.join("\n"), /lists 1\.1\.0, which prod has not rolled back from .*remove it from Pulumi\.prod\.yaml/);
        // Deploying a version a host's error-rate watch rolled back: prod's record does not show it, the acknowledgement is in use.
        const watched = evaluatePromotion(input({ version: "1.1.0", rollbackVersion: "1.0.0", acknowledged: ["1.1.0"], sourceOutputs: staging("1.1.0"), ownOutputs: { ...rolledBack, rolledBackFrom: [] } }));
        assert.ok(watched.ok);
        assert.deepStrictEqual(watched.warnings, []);
    });

    it("accepts any version prod ran healthy before (method 2: an older pipeline), whatever staging runs now", () => {
        const own = { deployedVersion: "1.2.0", rollbackVersion: "1.1.0", history: ["0.9.0", "1.0.0", "1.1.0", "1.2.0"], rolledBackFrom: [] };
        const d = evaluatePromotion(input({ version: "1.0.0", rollbackVersion: "0.9.0", sourceOutputs: staging("1.3.0"), ownOutputs: own }));
        assert.ok(d.ok, d.ok ? "" : d.message);
        assert.match(d.reason, /1\.0\.0 ran healthy on prod before \(its history: 0\.9\.0, 1\.0\.0, 1\.1\.0, 1\.2\.0/);
    });

    it("still refuses an older commit's rollback target that prod never ran", () => {
        const own = { deployedVersion: "1.2.0", rollbackVersion: "1.1.0", history: ["1.0.0", "1.1.0", "1.2.0"], rolledBackFrom: [] };
        assert.match(refused(input({ version: "1.0.0", rollbackVersion: "0.8.0", sourceOutputs: staging("1.3.0"), ownOutputs: own })), /refuses rollbackVersion 0\.8\.0.*history: 1\.0\.0, 1\.1\.0, 1\.2\.0/);
    });

    it("reads a record from before the history existed as deployedVersion and the pinned target", () => {
        const d = evaluatePromotion(input({ version: "1.0.0", rollbackVersion: "1.1.0", sourceOutputs: staging("1.2.0"), ownOutputs: { deployedVersion: "1.1.0", rollbackVersion: "1.0.0" } }));
        assert.ok(d.ok);
    });
});

describe("promotion gate: container mode compares image digests, not only versions", () => {
    const digest = (c: string) => `sha256:${c.repeat(64)}`;
    const ref = (c: string, repo = "registry.example.com/complinist") => `${repo}@${digest(c)}`;
    /** Staging running `version` healthy from the image `image` (its `images` output). */
    const stagingFrom = (version: string, image: string | undefined): StackOutputs => ({ ...staging(version), ...(image ? { images: { [version]: image } } : {}) });
    const prodImages = { "1.1.0": ref("1"), "1.2.0": ref("2") };

    it("passes a version staging runs healthy from the same digest, even under another registry name", () => {
        const d = evaluatePromotion(input({ images: prodImages, sourceOutputs: stagingFrom("1.2.0", ref("2", "staging-registry.example.com/complinist")) }));
        assert.ok(d.ok, d.ok ? "" : d.message);
        assert.match(d.reason, new RegExp(`staging runs 1\\.2\\.0 healthy on every host from the same image \\(${digest("2")}\\)`));
    });

    it("refuses a version staging runs healthy from another image (a re-pushed version), naming both images and the fix", () => {
        const m = refused(input({ images: prodImages, sourceOutputs: stagingFrom("1.2.0", ref("f")) }));
        assert.ok(m.startsWith(`Promotion gate: stack 'prod' refuses version 1.2.0: releases.1.2.0.image ${ref("2")} (digest ${digest("2")}) is not the image that proved itself as 1.2.0`), m);
        assert.ok(m.includes(`'staging' runs 1.2.0 healthy from ${ref("f")}`), m);
        assert.ok(m.includes(`pulumi config set --path 'complinist:releases.1.2.0.image' ${ref("f")} --stack prod`), m);
        assert.match(m, /Nothing was changed/);
    });

    it("refuses when staging recorded no digest for the version (release mode, or a record from before digests)", () => {
        const m = refused(input({ images: prodImages, sourceOutputs: stagingFrom("1.2.0", undefined) }));
        assert.match(m, /'staging' runs 1\.2\.0 healthy from an image it recorded no digest for/);
        assert.match(m, /deploy 1\.2\.0 to staging from registry\.example\.com\/complinist@sha256:2{64} first/);
    });

    it("refuses re-applying or rolling back to a version whose digest prod's own record holds differently; accepts the same one", () => {
        const own = { deployedVersion: "1.1.0", rollbackVersion: "1.0.0", history: ["1.0.0", "1.1.0"], rolledBackFrom: [], images: { "1.0.0": ref("0"), "1.1.0": ref("1") } };
        const images = { "1.0.0": ref("0"), "1.1.0": ref("1") };
        assert.ok(evaluatePromotion(input({ version: "1.1.0", rollbackVersion: "1.0.0", images, sourceOutputs: staging("1.3.0"), ownOutputs: own })).ok);
        assert.match(refused(input({ version: "1.1.0", rollbackVersion: "1.0.0", images: { ...images, "1.1.0": ref("e") }, sourceOutputs: staging("1.3.0"), ownOutputs: own })), /refuses version 1\.1\.0: .*prod recorded registry\.example\.com\/complinist@sha256:1{64} for 1\.1\.0/);
        assert.match(refused(input({ version: "1.1.0", rollbackVersion: "1.0.0", images: { ...images, "1.0.0": ref("e") }, sourceOutputs: staging("1.3.0"), ownOutputs: own })), /refuses rollbackVersion 1\.0\.0: releases\.1\.0\.0\.image/);
    });

    it("release mode (no images) keeps comparing versions only", () => {
        assert.ok(evaluatePromotion(input({ sourceOutputs: stagingFrom("1.2.0", ref("f")) })).ok);
    });
});

/** Pulumi's documented mocks: StackReference is a read of type pulumi:pulumi:StackReference whose state carries `outputs`. */
class GateMocks implements pulumi.runtime.Mocks {
    readonly references: string[] = [];
    constructor(private readonly outputs: Record<string, StackOutputs>) {}
    newResource(args: pulumi.runtime.MockResourceArgs): pulumi.runtime.MockResourceResult {
        if (args.type !== "pulumi:pulumi:StackReference") throw new Error(`unexpected resource ${args.type} ${args.name}`);
        const name = String(args.inputs.name);
        const outputs = this.outputs[name];
        if (outputs === undefined) throw new Error(`unexpected StackReference to ${name}`);
        this.references.push(name);
        return { id: name, state: { name, outputs, secretOutputNames: [] } };
    }
    call(args: pulumi.runtime.MockCallArgs): pulumi.runtime.MockCallResult {
        throw new Error(`unexpected call ${args.token}`);
    }
}

async function settle(gate: pulumi.Input<pulumi.Resource[]>): Promise<pulumi.Resource[]> {
    // Output.promise() is internal API but the documented way tests unwrap outputs (pulumi/examples testing-unit-ts).
    return pulumi.Output.isInstance(gate) ? (gate as unknown as { promise(): Promise<pulumi.Resource[]> }).promise() : (gate as pulumi.Resource[]);
}

describe("promotion gate: under Pulumi's mocks", () => {
    const cfg = { stack: "prod", version: "1.2.0", rollbackVersion: "1.1.0", promoteFrom: "staging" };

    it("reads the source stack and the stack's own record, and resolves when staging runs the version healthy", async () => {
        const mocks = new GateMocks({ staging: staging("1.2.0"), prod: { deployedVersion: "1.1.0", rollbackVersion: "1.0.0" } });
        await pulumi.runtime.setMocks(mocks, "complinist", "prod", true);
        assert.deepStrictEqual(await settle(promotionGate(cfg)), []);
        assert.deepStrictEqual(mocks.references.sort(), ["prod", "staging"]);
    });

    it("rejects with the refusal when staging runs something else", async () => {
        const mocks = new GateMocks({ staging: staging("1.1.0"), prod: {} });
        await pulumi.runtime.setMocks(mocks, "complinist", "prod", true);
        await assert.rejects(settle(promotionGate(cfg)), (e: unknown) => {
            assert.ok(e instanceof PromotionRefused);
            assert.match((e as Error).message, /stack 'prod' refuses version 1\.2\.0: stack 'staging' has not deployed it healthy \(staging reports deployedVersion 1\.1\.0/);
            return true;
        });
    });

    it("keeps its message when the SDK's serializer tries to prefix it", () => {
        const e = new PromotionRefused("refused");
        e.message = `error serializing property "x": ${e.message}`;
        assert.strictEqual(e.message, "refused");
        assert.ok(pulumi.RunError.isInstance(e));
    });

    it("reads nothing for a stack without promoteFrom", async () => {
        const mocks = new GateMocks({});
        await pulumi.runtime.setMocks(mocks, "complinist", "staging", true);
        assert.deepStrictEqual(await settle(promotionGate({ stack: "staging", version: "1.2.0", rollbackVersion: undefined, promoteFrom: undefined })), []);
        assert.deepStrictEqual(mocks.references, []);
    });
});

/** Pulumi.prod.yaml as the engine would pass it, plus a stand-in for the secret key. */
function prodConfig(overrides: Record<string, unknown> = {}): Record<string, unknown> {
    const doc = YAML.parse(fs.readFileSync(path.join(REPO, "Pulumi.prod.yaml"), "utf8")) as { config: Record<string, unknown> };
    return { ...doc.config, "complinist:sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-key\n-----END OPENSSH PRIVATE KEY-----", ...overrides };
}

function managed(resources: CapturedResource[]): CapturedResource[] {
    return resources.filter((r) => !r.external && r.type !== "pulumi:pulumi:Stack");
}

describe("promotion gate: the prod program (under mocks)", function () {
    this.timeout(60000);

    async function previewProd(refs: Record<string, StackOutputs>, config: Record<string, unknown> = prodConfig()) {
        const stackReferences: Record<string, { outputs: PropertyMap }> = {};
        for (const [k, v] of Object.entries(refs)) stackReferences[k] = { outputs: v as PropertyMap };
        const program = new ProgramUnderMocks({ repoRoot: REPO, stack: "prod", stackReferences, env: { CI_COMMIT_SHA: "0123abc", CI_COMMIT_REF_NAME: "main", CI_COMMIT_TAG: "v1.1.0" } });
        try {
            return await program.evaluate(config, ["complinist:sshPrivateKey"], true);
        } finally {
            program.close();
        }
    }

    it("deploys a version staging runs healthy, every resource waiting on the gate", async () => {
        const r = await previewProd({ staging: staging("1.1.0"), prod: {} });
        assert.strictEqual(r.error, undefined, r.error);
        const refs = r.resources.filter((x) => x.type === "pulumi:pulumi:StackReference");
        assert.deepStrictEqual(refs.map((x) => x.mockId).sort(), ["prod", "staging"]);
        const source = refs.find((x) => x.mockId === "staging") as CapturedResource;
        // The roots wait for the gate; every other resource is their descendant and waits for its parent.
        for (const name of ["app-secret-key", "complinist"]) {
            const root = r.resources.find((x) => x.name === name) as CapturedResource;
            assert.ok(root.dependencies.includes(source.urn), `${name} does not depend on the gate`);
        }
        const roots = managed(r.resources).filter((x) => !r.resources.some((p) => p.urn === x.parent && p.type !== "pulumi:pulumi:Stack"));
        assert.deepStrictEqual(roots.map((x) => x.name).sort(), ["app-secret-key", "complinist"]);
        assert.match(r.programLog, /Promotion gate: prod may take 1\.1\.0: staging runs 1\.1\.0 healthy/);
        // The banner is logged by the program, so preview and up show it.
        assert.match(r.programLog, /CompliNist deployment: stack prod \(PRODUCTION\)/);
        assert.match(r.programLog, /commit\s+0123abc/);
    });

    it("refuses a version staging does not run before any resource registers", async () => {
        const r = await previewProd({ staging: staging("1.2.0"), prod: { deployedVersion: "1.0.0", rollbackVersion: null } }, prodConfig({ "complinist:rollbackVersion": undefined }));
        assert.deepStrictEqual(managed(r.resources), []);
        const errors = [...new Set((r.error ?? "").split("\n").filter((l) => l !== ""))];
        assert.strictEqual(errors.length, 1, `one clear error expected, got:\n${errors.join("\n")}`);
        assert.match(errors[0] as string, /^Promotion gate: stack 'prod' refuses version 1\.1\.0: stack 'staging' has not deployed it healthy \(staging reports deployedVersion 1\.2\.0; hosts: staging-1 1\.2\.0 healthy\)/);
    });

    it("lets the rollback helper's config (version = pinned target) through while staging runs something newer", async () => {
        const config = prodConfig({ "complinist:version": "1.0.0", "complinist:rollbackVersion": "1.1.0" });
        const r = await previewProd({ staging: staging("1.2.0"), prod: { deployedVersion: "1.1.0", rollbackVersion: "1.0.0" } }, config);
        assert.strictEqual(r.error, undefined, r.error);
        assert.ok(managed(r.resources).length > 0);
        assert.match(r.programLog, /1\.0\.0 is prod's pinned rollback target/);
    });
});

const ACTIVATION = "pulumi-nodejs:dynamic/complinist:Activation";

interface StepResult {
    error?: string | undefined;
    outputs: StackOutputs;
    resources: CapturedResource[];
    programLog: string;
}

/** The outputs a healthy apply of `version` leaves: every Activation reports it active, as infra/providers/activation.ts does after a switch. */
function appliedState(resources: CapturedResource[], version: string): PriorOutputs {
    const state: PriorOutputs = {};
    for (const r of managed(resources).filter((r) => r.custom)) {
        state[r.urn] = { id: `${r.name}-id`, outputs: r.type === ACTIVATION ? { ...r.inputs, activeVersion: version, active: "active" } : r.mockState };
    }
    return state;
}

/**
 * One prod deployment under mocks, the engine's apply stood in for: the program runs
 * against the state a healthy apply of the configured version leaves (built from the
 * resources the program declared), so its stack outputs are the ones `pulumi up` would
 * store. `declared` carries the resources from one step to the next (the first step
 * evaluates once more to learn them).
 */
class ProdHistory {
    private declared: CapturedResource[] = [];
    constructor(private readonly secrets = ["complinist:sshPrivateKey"]) {}

    async deploy(prod: StackOutputs, stagingRuns: string, config: Record<string, unknown>): Promise<StepResult> {
        const version = String(config["complinist:version"]);
        const program = new ProgramUnderMocks({ repoRoot: REPO, stack: "prod", stackReferences: { staging: { outputs: staging(stagingRuns) as PropertyMap }, prod: { outputs: prod as PropertyMap } } });
        try {
            if (this.declared.length === 0) {
                const planned = await program.evaluate(config, this.secrets, false);
                if (planned.error !== undefined) return planned;
                this.declared = planned.resources;
            }
            program.state = appliedState(this.declared, version);
            const applied = await program.evaluate(config, this.secrets, false);
            if (applied.error !== undefined) return applied;
            this.declared = applied.resources;
            const hosts = Object.values((applied.outputs.hosts ?? {}) as Record<string, { version?: string; healthy?: boolean }>);
            assert.ok(hosts.length > 0 && hosts.every((h) => h.version === version && h.healthy === true), `the simulated apply no longer reads as healthy (Activation outputs changed?): ${JSON.stringify(hosts)}`);
            return applied;
        } finally {
            program.close();
        }
    }
}

describe("promotion gate: prod's record carried from one deployment to the next (under mocks)", function () {
    // Six evaluations, each a fresh process: generous, so a loaded machine slows it without failing it.
    this.timeout(900000);
    const v = (version: string, rollback?: string, extra: Record<string, unknown> = {}) => prodConfig({ "complinist:version": version, "complinist:rollbackVersion": rollback, ...extra });

    it("deploy 1.0.0, deploy 1.1.0, roll back to 1.0.0: 1.1.0 is refused until acknowledged; an older commit's config deploys its version", async () => {
        const prodHistory = new ProdHistory();
        const deployProd = (prod: StackOutputs, stagingRuns: string, config: Record<string, unknown>) => prodHistory.deploy(prod, stagingRuns, config);
        const first = await deployProd({}, "1.0.0", v("1.0.0"));
        assert.strictEqual(first.error, undefined, first.error);
        assert.deepStrictEqual([first.outputs.history, first.outputs.rolledBackFrom], [["1.0.0"], []]);

        const upgraded = await deployProd(first.outputs, "1.1.0", v("1.1.0", "1.0.0"));
        assert.strictEqual(upgraded.error, undefined, upgraded.error);
        assert.deepStrictEqual([upgraded.outputs.history, upgraded.outputs.rolledBackFrom], [["1.0.0", "1.1.0"], []]);

        // Method 1: what npm run rollback pins (staging still runs 1.1.0).
        const back = await deployProd(upgraded.outputs, "1.1.0", v("1.0.0", "1.1.0"));
        assert.strictEqual(back.error, undefined, back.error);
        assert.strictEqual(back.outputs.deployedVersion, "1.0.0");
        assert.deepStrictEqual([back.outputs.history, back.outputs.rolledBackFrom], [["1.0.0", "1.1.0"], ["1.1.0"]]);

        // The next pipeline still carries 1.1.0, and staging runs it healthy: refused, nothing registered.
        const again = await deployProd(back.outputs, "1.1.0", v("1.1.0", "1.0.0"));
        assert.deepStrictEqual(managed(again.resources), []);
        assert.match(again.error ?? "", /refuses version 1\.1\.0: prod rolled back from 1\.1\.0/);
        assert.ok((again.error ?? "").includes("pulumi config set --path 'complinist:acknowledgeRolledBack[0]' 1.1.0 --stack prod"), again.error);

        const acknowledged = await deployProd(back.outputs, "1.1.0", v("1.1.0", "1.0.0", { "complinist:acknowledgeRolledBack": ["1.1.0"] }));
        assert.strictEqual(acknowledged.error, undefined, acknowledged.error);
        assert.strictEqual(acknowledged.outputs.deployedVersion, "1.1.0");
        assert.deepStrictEqual([acknowledged.outputs.history, acknowledged.outputs.rolledBackFrom], [["1.0.0", "1.1.0"], []], "a roll-forward is not a rollback");

        // A fixed release goes out normally; then it misbehaves and the operator retries the
        // first pipeline's deploy job (method 2: its config says 1.0.0, nothing pinned).
        const releases = { ...(prodConfig()["complinist:releases"] as Record<string, unknown>), "1.3.0": { path: ".build/artifacts/complinist-1.3.0.tar.gz", sha256: "7683f768e934ff5b0981a8d173424da726f7bd8c862a70c11edde5f000ce7bff" } };
        const fixed = await deployProd(acknowledged.outputs, "1.3.0", v("1.3.0", "1.1.0", { "complinist:releases": releases }));
        assert.strictEqual(fixed.error, undefined, fixed.error);
        const retried = await deployProd(fixed.outputs, "1.3.0", v("1.0.0"));
        assert.strictEqual(retried.error, undefined, retried.error);
        assert.match(retried.programLog, /prod may take 1\.0\.0: 1\.0\.0 ran healthy on prod before/);
        const activations = retried.resources.filter((r) => r.type === ACTIVATION).map((r) => r.inputs.version);
        assert.deepStrictEqual(activations, ["1.0.0", "1.0.0"], "both hosts switch to the retried version");
        assert.deepStrictEqual([retried.outputs.deployedVersion, retried.outputs.history, retried.outputs.rolledBackFrom], ["1.0.0", ["1.0.0", "1.1.0", "1.3.0"], ["1.3.0"]], "method 2 is a rollback too: it sticks");
    });

    it("exports no record for a stack without a promotion gate", async () => {
        const program = new ProgramUnderMocks({ repoRoot: REPO, stack: "staging" });
        try {
            const r = await program.evaluate({ ...YAML.parse(fs.readFileSync(path.join(REPO, "Pulumi.staging.yaml"), "utf8")).config, "complinist:sshPrivateKey": "k" }, ["complinist:sshPrivateKey"], false);
            assert.strictEqual(r.error, undefined, r.error);
            assert.ok(!("history" in r.outputs) && !("rolledBackFrom" in r.outputs), JSON.stringify(Object.keys(r.outputs)));
        } finally {
            program.close();
        }
    });
});
