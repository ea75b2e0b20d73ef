import * as assert from "assert";
import { type ActivationInputs, type ActivationOutputs, activationProvider } from "../../../infra/providers/activation";

/**
 * Issue 29, finding 12: a hooks.beforeActivate set with --secret is a secret input of the Activation,
 * marked `hookSecret` (present only then). The state follows the marking both ways: an update rewrites
 * the command encrypted when it becomes secret, and drops the marking when it no longer is.
 */

const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMHZNMVhu73rtnkCVV1dnWn09B3L5W/ZVMUBqhTkSJws";

const INPUTS = {
    host: { name: "dev-1", address: "dev-1.complinist.example", port: 22, user: "deploy", hostKey: KEY },
    privateKey: "k",
    stack: "dev",
    baseDir: "/opt/complinist",
    service: "complinist",
    user: "complinist",
    version: "1.1.0",
    sha256: "a".repeat(64),
    port: 5000,
    health: { path: "/health", timeoutSeconds: 60, intervalMs: 1000, soakSeconds: 0, drainSeconds: 30, checks: [] },
    rollbackVersion: "",
    standby: false,
    beforeActivate: "bin/migrate",
    hookTimeoutSeconds: 600,
    hookHere: true,
    hookOnRollback: false,
    serviceRevision: "0123456789abcdef",
    canary: { percent: 0, seconds: 0 },
    watch: { errorRateFactor: 10, minRequests: 20, maxErrorRatio: 0.01 },
    acknowledged: false,
    acknowledgeHostChange: [],
} as unknown as ActivationInputs;

/** What an activation of `inputs` left in state. */
const stateOf = (inputs: ActivationInputs): ActivationOutputs => ({
    ...inputs,
    activeVersion: inputs.version,
    active: "active",
    standbyVersion: "",
    activatedAt: "2024-01-01T00:00:00Z",
    activatedCommit: "c",
    liveContainer: "",
    watchResult: "",
});

const changes = async (olds: ActivationOutputs, news: ActivationInputs) => {
    const d = await (activationProvider.diff as NonNullable<typeof activationProvider.diff>)("id", olds, news);
    return d.changes;
};

describe("the Activation's hookSecret marking", () => {
    it("an unchanged stack shows no change, with or without a secret hook", async () => {
        assert.strictEqual(await changes(stateOf(INPUTS), INPUTS), false);
        const secret = { ...INPUTS, hookSecret: true as const };
        assert.strictEqual(await changes(stateOf(secret), secret), false);
    });

    it("a hook that becomes secret is a change (the update rewrites the state with the command encrypted)", async () => {
        assert.strictEqual(await changes(stateOf(INPUTS), { ...INPUTS, hookSecret: true }), true);
    });

    it("a hook that is no longer secret is a change too (the host stops writing [secret] for it)", async () => {
        assert.strictEqual(await changes(stateOf({ ...INPUTS, hookSecret: true }), INPUTS), true);
    });

    it("an update that only changes the marking touches no host and keeps or drops it as the inputs say", async () => {
        const update = activationProvider.update as NonNullable<typeof activationProvider.update>;
        // Nothing to restart or converge: update returns without connecting (a connection would fail: no transport).
        const secret = await update("id", stateOf(INPUTS), { ...INPUTS, hookSecret: true });
        assert.strictEqual((secret.outs as ActivationOutputs).hookSecret, true);
        const plain = await update("id", stateOf({ ...INPUTS, hookSecret: true }), INPUTS);
        assert.ok(!("hookSecret" in (plain.outs as object)), JSON.stringify(plain.outs));
        assert.strictEqual((plain.outs as ActivationOutputs).activatedAt, "2024-01-01T00:00:00Z", "not a new activation");
    });
});
