import * as assert from "assert";
import { HISTORY_LIMIT, nextHistory, recordedHistory } from "../../../stacks/record";

const healthy = (version: string, ...names: string[]) => Object.fromEntries((names.length ? names : ["prod-1", "prod-2"]).map((n) => [n, { version, healthy: true }]));

/** Runs deployments one after another, each starting from the outputs the last one stored. */
function deployments(...steps: Array<{ version: string; hosts?: unknown }>): Record<string, unknown> {
    let outputs: Record<string, unknown> = {};
    for (const s of steps) {
        const next = nextHistory(outputs, s.version, s.hosts ?? healthy(s.version));
        outputs = { deployedVersion: s.version, ...next };
    }
    return outputs;
}

describe("prod's deploy record (stacks/record.ts)", () => {
    it("adds a version to history once, when every host runs it healthy", () => {
        assert.deepStrictEqual(deployments({ version: "1.0.0" }, { version: "1.1.0" }, { version: "1.1.0" }).history, ["1.0.0", "1.1.0"]);
    });

    it("changes nothing when a host does not report the version healthy (preview, a failed gate)", () => {
        const before = { deployedVersion: "1.0.0", history: ["1.0.0"], rolledBackFrom: [] };
        assert.deepStrictEqual(nextHistory(before, "1.1.0", { "prod-1": { version: "1.1.0", healthy: true }, "prod-2": { version: "1.0.0", healthy: true } }), { history: ["1.0.0"], rolledBackFrom: [] });
        assert.deepStrictEqual(nextHistory(before, "1.1.0", { "prod-1": { version: "1.1.0", healthy: false } }), { history: ["1.0.0"], rolledBackFrom: [] });
        assert.deepStrictEqual(nextHistory(before, "1.1.0", undefined), { history: ["1.0.0"], rolledBackFrom: [] });
    });

    it("records the version left by a rollback to an earlier one", () => {
        const r = deployments({ version: "1.0.0" }, { version: "1.1.0" }, { version: "1.0.0" });
        assert.deepStrictEqual([r.history, r.rolledBackFrom], [["1.0.0", "1.1.0"], ["1.1.0"]]);
    });

    it("records each step of a rollback further back", () => {
        const r = deployments({ version: "1.0.0" }, { version: "1.1.0" }, { version: "1.2.0" }, { version: "1.1.0" }, { version: "1.0.0" });
        assert.deepStrictEqual(r.rolledBackFrom, ["1.2.0", "1.1.0"]);
    });

    it("takes a version off rolledBackFrom once it runs healthy again, without calling the roll-forward a rollback", () => {
        const r = deployments({ version: "1.0.0" }, { version: "1.1.0" }, { version: "1.0.0" }, { version: "1.1.0" });
        assert.deepStrictEqual([r.history, r.rolledBackFrom], [["1.0.0", "1.1.0"], []]);
    });

    it("does not call a new version a rollback, whatever its number", () => {
        assert.deepStrictEqual(deployments({ version: "2.0.0" }, { version: "1.9.9-hotfix" }).rolledBackFrom, []);
    });

    it("reads a record from before history existed: deployedVersion and the pinned target, oldest first", () => {
        assert.deepStrictEqual(recordedHistory({ deployedVersion: "1.1.0", rollbackVersion: "1.0.0" }), { history: ["1.0.0", "1.1.0"], rolledBackFrom: [] });
        assert.deepStrictEqual(recordedHistory({ deployedVersion: "1.0.0", rollbackVersion: "1.1.0" }).history, ["1.0.0", "1.1.0"]);
        assert.deepStrictEqual(recordedHistory({}), { history: [], rolledBackFrom: [] });
        // Malformed outputs read as what can be trusted of them.
        assert.deepStrictEqual(recordedHistory({ history: "1.0.0", rolledBackFrom: [1, "1.1.0", "1.1.0"] }), { history: [], rolledBackFrom: ["1.1.0"] });
    });

    it(`keeps the last ${HISTORY_LIMIT} versions`, () => {
        const steps = Array.from({ length: HISTORY_LIMIT + 5 }, (_, i) => ({ version: `1.${i}.0` }));
        const h = deployments(...steps).history as string[];
        assert.strictEqual(h.length, HISTORY_LIMIT);
        assert.strictEqual(h[0], "1.5.0");
    });
});
