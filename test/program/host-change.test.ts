import * as assert from "assert";
import * as path from "path";
import type * as pulumi from "@pulumi/pulumi";
import { activationProvider } from "../../infra/providers/activation";
import { hostIdentityProvider } from "../../infra/providers/hostIdentity";
import { imageReleaseProvider } from "../../infra/providers/imageRelease";
import { releaseDirProvider } from "../../infra/providers/release";
import { serviceUnitProvider } from "../../infra/providers/service";
import { CapturedResource, Evaluation, isSecret, Json, ProgramConfig, ProgramUnderMocks, unwrapSecrets } from "./mocks/evaluate";
import { stackFileConfig, withUserSecrets } from "./stackFile";

/**
 * Issue 29, finding 1, through the real program under Pulumi's mocks: what the program registers
 * for a host whose address or host key changed under the name it had, handed to each provider's
 * diff as the engine would hand it (the last evaluation's inputs as the old state). The engine
 * itself runs it in test/e2e; here it is the program's part: the inputs and the dependencies.
 */

const T = {
    identity: "pulumi-nodejs:dynamic/complinist:HostIdentity",
    releaseDir: "pulumi-nodejs:dynamic/complinist:ReleaseDir",
    image: "pulumi-nodejs:dynamic/complinist:ImageReleaseDir",
    serviceUnit: "pulumi-nodejs:dynamic/complinist:ServiceUnit",
    activation: "pulumi-nodejs:dynamic/complinist:Activation",
};
const PROVIDERS: Record<string, pulumi.dynamic.ResourceProvider> = {
    [T.identity]: hostIdentityProvider,
    [T.releaseDir]: releaseDirProvider,
    [T.image]: imageReleaseProvider,
    [T.serviceUnit]: serviceUnitProvider,
    [T.activation]: activationProvider,
};
const NEW_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMHZNMVhu73rtnkCVV1dnWn09B3L5W/ZVMUBqhTkSJws";
const TOKEN = "Deploy-Token: gldt-program-Zq9";

async function evaluate(stack: string, config: ProgramConfig, secretKeys: string[]): Promise<Evaluation> {
    const program = new ProgramUnderMocks({ stack });
    try {
        const r = await program.evaluate(config, secretKeys);
        return r;
    } finally {
        program.close();
    }
}

/** What a provider's diff gets: plain values (the engine decrypts), without the serialized provider. */
function plainInputs(x: CapturedResource): Record<string, unknown> {
    const inputs = { ...(unwrapSecrets(x.inputs as Json) as Record<string, unknown>) };
    delete inputs.__provider;
    return inputs;
}

const hostResources = (r: Evaluation, host: string) => r.resources.filter((x) => x.custom && x.name.startsWith(`complinist-${host}-`) && PROVIDERS[x.type] !== undefined);

/** With dev-1 moved to another machine: its address and host key. */
function moved(config: ProgramConfig, host: string): ProgramConfig {
    const hosts = (config["complinist:hosts"] as Array<Record<string, unknown>>).map((h) => (h.name === host ? { ...h, address: "203.0.113.66", hostKey: NEW_KEY } : h));
    return { ...config, "complinist:hosts": hosts };
}

for (const [stack, host, file] of [
    ["dev", "dev-1", undefined],
    ["container", "app-1", path.join(__dirname, "fixtures", "Pulumi.container.yaml")],
] as const) {
    describe(`a changed host under mocks (${stack}: ${host})`, function () {
        this.timeout(120000);
        const base = () => withUserSecrets(stackFileConfig(stack, file));
        let prior: Evaluation;

        before(async () => {
            const s = base();
            prior = await evaluate(stack, s.config, s.secretKeys);
            assert.strictEqual(prior.error, undefined, prior.programLog);
        });

        it("gives every provider that reaches the host the stack and the acknowledged hosts, and makes everything on the host wait for its identity", () => {
            const identity = prior.resources.find((x) => x.type === T.identity && x.name === `complinist-${host}-identity`);
            assert.ok(identity, `no identity for ${host}: ${prior.resources.map((x) => x.name).join(", ")}`);
            const types = new Set<string>();
            for (const x of hostResources(prior, host)) {
                types.add(x.type);
                assert.deepStrictEqual([x.inputs.stack, x.inputs.acknowledgeHostChange], [stack, []], x.name);
                if (x.type !== T.identity) assert.ok(x.dependencies.includes(identity.urn), `${x.name} must wait for the identity's diff`);
            }
            assert.deepStrictEqual([...types].sort(), [T.activation, T.identity, stack === "container" ? T.image : T.releaseDir, T.serviceUnit].sort());
        });

        it("a new address and host key are refused by the diff of every resource of that host, the other hosts untouched", async () => {
            const s = base();
            const after = await evaluate(stack, moved(s.config, host), s.secretKeys);
            assert.strictEqual(after.error, undefined, after.programLog);
            for (const x of hostResources(after, host)) {
                const old = prior.resources.find((y) => y.urn === x.urn);
                assert.ok(old, x.name);
                await assert.rejects((PROVIDERS[x.type] as Required<pulumi.dynamic.ResourceProvider>).diff("id", plainInputs(old), plainInputs(x)), (e: Error) => {
                    assert.match(e.message, new RegExp(`^host ${host}: the config changes its address from \\S+ to 203\\.0\\.113\\.66 and its host key from ssh-ed25519 SHA256:\\S+ to ssh-ed25519 SHA256:\\S+ under the same name`));
                    assert.ok(e.message.includes(`pulumi config set complinist:acknowledgeHostChange '["${host}"]' --stack ${stack}`), e.message);
                    return true;
                });
            }
            for (const x of after.resources.filter((y) => y.custom && PROVIDERS[y.type] !== undefined && !y.name.startsWith(`complinist-${host}-`))) {
                const old = prior.resources.find((y) => y.urn === x.urn) as CapturedResource;
                if (x.type === T.identity) assert.strictEqual((await hostIdentityProvider.diff!("id", plainInputs(old), plainInputs(x))).changes, false, x.name);
            }
        });

        it("acknowledged, the change goes through and shows in preview: the identity records the new machine", async () => {
            const s = base();
            const after = await evaluate(stack, { ...moved(s.config, host), "complinist:acknowledgeHostChange": [host] }, s.secretKeys);
            assert.strictEqual(after.error, undefined, after.programLog);
            for (const x of hostResources(after, host)) {
                const old = prior.resources.find((y) => y.urn === x.urn) as CapturedResource;
                const d = await (PROVIDERS[x.type] as Required<pulumi.dynamic.ResourceProvider>).diff("id", plainInputs(old), plainInputs(x));
                assert.strictEqual(d.changes, true, x.name);
                assert.deepStrictEqual(d.replaces ?? [], [], x.name);
            }
            const identity = after.resources.find((x) => x.type === T.identity && x.name === `complinist-${host}-identity`) as CapturedResource;
            assert.deepStrictEqual([(identity.inputs.host as { address: string }).address, identity.inputs.hostKeyFingerprint], ["203.0.113.66", "ssh-ed25519 SHA256:LTi8sxFwlP9rHCJijI3n3kd8RPtoikP5Y5mU6US/ZBY"]);
        });
    });
}

describe("releaseAuth through the program (dev downloads from its registry)", function () {
    this.timeout(120000);
    const ORIGIN = "https://gitlab.complinist.example";

    it("hands each ReleaseDir the header as a secret and its pinned origins in plain", async () => {
        const s = withUserSecrets(stackFileConfig("dev"));
        const r = await evaluate("dev", { ...s.config, "complinist:releaseAuth": { header: TOKEN, origins: [ORIGIN] } }, [...s.secretKeys, "complinist:releaseAuth"]);
        assert.strictEqual(r.error, undefined, r.programLog);
        const dirs = r.resources.filter((x) => x.type === T.releaseDir);
        assert.ok(dirs.length > 0);
        for (const x of dirs) {
            assert.ok(isSecret(x.inputs.auth), `${x.name}.auth must be secret`);
            assert.strictEqual(unwrapSecrets(x.inputs.auth as Json), TOKEN);
            assert.deepStrictEqual(x.inputs.authOrigins, [ORIGIN]);
        }
    });

    it("refuses the old one-line form and a release URL outside the origins before registering anything", async () => {
        const s = withUserSecrets(stackFileConfig("dev"));
        const old = await evaluate("dev", { ...s.config, "complinist:releaseAuth": TOKEN }, [...s.secretKeys, "complinist:releaseAuth"]);
        assert.match(old.error ?? "", /complinist:releaseAuth: must be \{ header, origins \}/);
        assert.ok(!(old.error ?? "").includes("gldt-program"), old.error);
        const outside = await evaluate("dev", { ...s.config, "complinist:releaseAuth": { header: TOKEN, origins: ["https://registry.example.com"] } }, [...s.secretKeys, "complinist:releaseAuth"]);
        assert.match(outside.error ?? "", /complinist:releases\.1\.1\.0\.url: is outside the origins releaseAuth is pinned to: its origin https:\/\/gitlab\.complinist\.example is not one of releaseAuth\.origins: https:\/\/registry\.example\.com/);
        for (const r of [old, outside]) assert.deepStrictEqual(r.resources.filter((x) => x.type !== "pulumi:pulumi:Stack").map((x) => x.name), []);
    });
});
