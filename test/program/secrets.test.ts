import * as assert from "assert";
import { CapturedResource, Evaluation, isSecret, Json, ProgramConfig, ProgramUnderMocks, redactSecrets, unwrapSecrets } from "./mocks/evaluate";
import { stackFileConfig, withUserSecrets } from "./stackFile";

/**
 * Values an operator set with `pulumi config set --secret` beyond the keys the program knows to be
 * secret: pulumi.runtime.isConfigSecret (PULUMI_CONFIG_SECRET_KEYS, as the language host passes it)
 * decides, and the value stays a secret in every registration, the banner and the errors.
 */

const ACTIVATION = "pulumi-nodejs:dynamic/complinist:Activation";
const SERVICE_UNIT = "pulumi-nodejs:dynamic/complinist:ServiceUnit";
const HOOK_SECRET = "hunter2-migrate-pw";
const HOOK = `bin/migrate --password ${HOOK_SECRET}`;
const ENV_SECRET = "s3cret-db-Passw0rd";

async function evaluate(config: ProgramConfig, secretKeys: string[]): Promise<Evaluation> {
    const program = new ProgramUnderMocks({ stack: "dev" });
    try {
        return await program.evaluate(config, secretKeys);
    } finally {
        program.close();
    }
}

/** The dev stack file with the user's SSH key, plus `extra`, and `secret` among the keys set with --secret. */
function devWith(extra: ProgramConfig, secret: string[]): { config: ProgramConfig; secretKeys: string[] } {
    const s = withUserSecrets(stackFileConfig("dev"));
    return { config: { ...s.config, ...extra }, secretKeys: [...s.secretKeys, ...secret] };
}

/** Everything the engine, the state and the preview would hold in clear: every input and output, secrets redacted. */
function inClear(r: Evaluation): string {
    return JSON.stringify([r.resources.map((x) => [redactSecrets(x.inputs as Json), redactSecrets(x.mockState as Json)]), redactSecrets(r.outputs as Json)]);
}

const activations = (r: Evaluation): CapturedResource[] => r.resources.filter((x) => x.type === ACTIVATION);

describe("config values set with --secret, under mocks", function () {
    this.timeout(120000);

    describe("a secret hooks.beforeActivate", () => {
        let r: Evaluation;
        before(async () => {
            const s = devWith({ "complinist:hooks": { beforeActivate: HOOK } }, ["complinist:hooks"]);
            r = await evaluate(s.config, s.secretKeys);
            assert.strictEqual(r.error, undefined, r.programLog);
        });

        it("is a secret input of every Activation, kept secret in its outputs, and marked hookSecret for the host", () => {
            assert.ok(activations(r).length > 0);
            for (const a of activations(r)) {
                assert.ok(isSecret(a.inputs.beforeActivate), `${a.name}.beforeActivate must be secret`);
                assert.strictEqual(unwrapSecrets(a.inputs.beforeActivate as Json), HOOK, "the host still gets the command");
                assert.ok(a.additionalSecretOutputs.includes("beforeActivate"), `${a.name}: additionalSecretOutputs ${JSON.stringify(a.additionalSecretOutputs)}`);
                assert.strictEqual(a.inputs.hookSecret, true);
            }
        });

        it("is nowhere in clear: no input, output or stack output, and not in the program's log", () => {
            assert.ok(!inClear(r).includes(HOOK_SECRET));
            assert.ok(!r.programLog.includes(HOOK_SECRET), r.programLog);
        });

        it("shows as [secret] in the banner", () => {
            assert.match(r.programLog, /\n {2}hook {10}\[secret\] \(before the switch, on every host, at most 600s; not on a rollback\)/);
        });
    });

    it("a hook set in plain text stays a plain input: its change shows in preview", async () => {
        const s = devWith({ "complinist:hooks": { beforeActivate: "bin/migrate" } }, []);
        const r = await evaluate(s.config, s.secretKeys);
        assert.strictEqual(r.error, undefined, r.programLog);
        for (const a of activations(r)) {
            assert.strictEqual(a.inputs.beforeActivate, "bin/migrate");
            assert.ok(!a.additionalSecretOutputs.includes("beforeActivate"));
            assert.ok(!("hookSecret" in a.inputs), "no new input for a stack that has no secret hook");
        }
        assert.match(r.programLog, /\n {2}hook {10}bin\/migrate \(/);
    });

    it("a secret service.environment value reaches only the env file, as a secret", async () => {
        const s = devWith({ "complinist:service": { command: "bin/start", environment: { COMPLINIST_ENV: "dev", DB_PASSWORD: ENV_SECRET } } }, ["complinist:service"]);
        const r = await evaluate(s.config, s.secretKeys);
        assert.strictEqual(r.error, undefined, r.programLog);
        const units = r.resources.filter((x) => x.type === SERVICE_UNIT);
        assert.ok(units.length > 0);
        for (const u of units) {
            assert.ok(isSecret(u.inputs.envText), "the env file is a secret input");
            assert.match(String(unwrapSecrets(u.inputs.envText as Json)), new RegExp(`^DB_PASSWORD="?${ENV_SECRET}"?$`, "m"), "and holds the value");
        }
        assert.ok(!inClear(r).includes(ENV_SECRET), "no plain input or output holds it");
        assert.ok(!r.programLog.includes(ENV_SECRET));
    });

    it("a schema error under a secret key never quotes its value", async () => {
        const s = devWith({ "complinist:service": { command: "bin/start", environment: { DB_PASSWORD: `${ENV_SECRET}\nX=1` } } }, ["complinist:service"]);
        const r = await evaluate(s.config, s.secretKeys);
        assert.match(r.error ?? "", /complinist:service\.environment\.DB_PASSWORD: values must be single-line \(got a secret value\)/);
        assert.ok(!(r.error ?? "").includes(ENV_SECRET) && !r.programLog.includes(ENV_SECRET), r.programLog);
        assert.deepStrictEqual(r.resources.filter((x) => x.type !== "pulumi:pulumi:Stack").length, 0);
    });
});
