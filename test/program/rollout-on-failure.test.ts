import * as assert from "assert";
import { activationProvider, type ActivationOutputs } from "../../infra/providers/activation";
import { CapturedResource, Evaluation, Json, ProgramConfig, ProgramUnderMocks, unwrapSecrets } from "./mocks/evaluate";
import { stackFileConfig, withUserSecrets } from "./stackFile";

/**
 * rollout.onFailure through the real program under Pulumi's mocks (prod's stack file: two hosts,
 * one per batch): what each host's Activation is told to do to the fleet when it fails, and that
 * the plan alone never changes a host (the provider's diff).
 */

const ACTIVATION = "pulumi-nodejs:dynamic/complinist:Activation";

function stackReferences() {
    const version = String(stackFileConfig("prod")["complinist:version"]);
    return { stackReferences: { staging: { outputs: { deployedVersion: version, hosts: { "staging-1": { version, healthy: true } } } }, prod: { outputs: {} } } };
}

async function evaluate(config: ProgramConfig, secretKeys: string[]): Promise<Evaluation> {
    const program = new ProgramUnderMocks({ stack: "prod", ...stackReferences() });
    try {
        return await program.evaluate(config, secretKeys);
    } finally {
        program.close();
    }
}

function fleetOf(r: Evaluation, host: string): { onFailure: string; peers: Array<{ name: string; address: string }>; later: string[] } {
    const x = r.resources.find((c: CapturedResource) => c.type === ACTIVATION && c.name === `complinist-${host}-activation-switch`);
    assert.ok(x, `no activation for ${host}`);
    return (unwrapSecrets(x.inputs as Json) as { fleet: ReturnType<typeof fleetOf> }).fleet;
}

describe("rollout.onFailure under mocks", function () {
    this.timeout(120000);

    it("by default (rollback-all) prod-2's activation may switch prod-1 back; prod-1's knows prod-2 was never touched", async () => {
        const s = withUserSecrets(stackFileConfig("prod"));
        const r = await evaluate(s.config, s.secretKeys);
        assert.strictEqual(r.error, undefined, r.programLog);
        const second = fleetOf(r, "prod-2");
        assert.deepStrictEqual([second.onFailure, second.peers.map((p) => p.name), second.later], ["rollback-all", ["prod-1"], []]);
        const first = fleetOf(r, "prod-1");
        assert.deepStrictEqual([first.onFailure, first.peers.map((p) => p.name), first.later], ["rollback-all", [], ["prod-2"]]);
    });

    it("halt: nobody is switched back", async () => {
        const s = withUserSecrets(stackFileConfig("prod"));
        const r = await evaluate({ ...s.config, "complinist:rollout": { batchSize: 1, onFailure: "halt" } }, s.secretKeys);
        assert.strictEqual(r.error, undefined, r.programLog);
        assert.deepStrictEqual(fleetOf(r, "prod-2"), { onFailure: "halt", peers: [], later: [] });
    });

    it("a change of the plan alone (halt → rollback-all, a host added) is no change of the activation", async () => {
        const s = withUserSecrets(stackFileConfig("prod"));
        const r = await evaluate(s.config, s.secretKeys);
        const x = r.resources.find((c) => c.type === ACTIVATION && c.name === "complinist-prod-2-activation-switch") as CapturedResource;
        const news = { ...(unwrapSecrets(x.inputs as Json) as Record<string, unknown>) };
        delete news.__provider;
        const olds = { ...news, fleet: { onFailure: "halt", peers: [], later: [] }, activeVersion: news.version, active: "active", standbyVersion: news.rollbackVersion } as unknown as ActivationOutputs;
        const d = await activationProvider.diff?.("id", olds, news);
        assert.strictEqual(d?.changes, false);
    });
});
