import * as assert from "assert";
import { DiffKind, type EngineEvent, type OpMap, type Stack, type StepEventMetadata } from "@pulumi/pulumi/automation";
import { checkDrift, DRIFT_EXIT, DriftStack, driftFromEvents, parseDriftArgs } from "../../../ops/drift";

const URN = (type: string, name: string) => `urn:pulumi:prod::complinist::complinist:deploy:ReleaseRollout$complinist:host:HostDeployment$${type}::${name}`;
const ACTIVATION = URN("pulumi-nodejs:dynamic/complinist:Activation", "complinist-prod-1-activation-switch");
const RELEASE = URN("pulumi-nodejs:dynamic/complinist:ReleaseDir", "complinist-prod-1-release-1.0.0-dir");
const UNIT = URN("pulumi-nodejs:dynamic/complinist:ServiceUnit", "complinist-prod-1-service-unit");

let seq = 0;
function step(kind: "pre" | "outputs", m: Partial<StepEventMetadata> & { urn: string; op: StepEventMetadata["op"] }): EngineEvent {
    const type = m.urn.split("::")[2]?.split("$").pop() ?? "x";
    const metadata: StepEventMetadata = { type, provider: "", ...m };
    return kind === "pre" ? { sequence: seq++, timestamp: 0, resourcePreEvent: { metadata } } : { sequence: seq++, timestamp: 0, resOutputsEvent: { metadata } };
}

function state(urn: string, outputs: Record<string, unknown>) {
    return { type: "t", urn, id: "id", parent: "", inputs: {}, outputs, provider: "" };
}

/** What `pulumi refresh --preview-only` reports for one resource: a pre event without, an outputs event with the read-back state. */
function refreshed(urn: string, before: Record<string, unknown>, after: Record<string, unknown> | undefined): EngineEvent[] {
    return [
        step("pre", { urn, op: "refresh", old: state(urn, before) }),
        step("outputs", { urn, op: "refresh", old: state(urn, before), ...(after ? { new: state(urn, after) } : {}) }),
    ];
}

class FakeStack implements DriftStack {
    readonly name = "prod";
    calls = 0;
    constructor(
        private readonly events: EngineEvent[],
        private readonly summary: OpMap,
        private readonly error?: string,
    ) {}
    async previewRefresh(opts?: { onEvent?: (event: EngineEvent) => void }) {
        this.calls++;
        for (const e of this.events) opts?.onEvent?.(e);
        if (this.error) throw new Error(this.error);
        return { changeSummary: this.summary };
    }
}

function io() {
    const out: string[] = [];
    const err: string[] = [];
    return { out: (t: string) => out.push(t), err: (t: string) => err.push(t), text: () => [...out, ...err].join("\n") };
}

// The Automation API's Stack must satisfy DriftStack (the real CLI path hands one over): a
// type-level check, so `tsc --noEmit` fails when they drift apart; there is nothing to run.
void ((s: Stack) => s satisfies DriftStack);

describe("drift helper", () => {
    it("exits 0 and says so when every resource reads back as deployed", async () => {
        const events = [...refreshed(ACTIVATION, { activeVersion: "1.1.0", active: "active" }, { activeVersion: "1.1.0", active: "active" }), ...refreshed(RELEASE, { sha256: "a" }, { sha256: "a" })];
        const o = io();
        const stack = new FakeStack(events, { same: 12 });
        assert.strictEqual(await checkDrift(stack, o), DRIFT_EXIT.clean);
        assert.strictEqual(stack.calls, 1);
        assert.match(o.text(), /stack prod: no drift/);
    });

    it("exits 2 and lists each drifted resource with its URN and changed keys", async () => {
        const events = [
            // someone switched `current` back by hand and stopped the service
            ...refreshed(ACTIVATION, { activeVersion: "1.1.0", active: "active", activatedAt: "t" }, { activeVersion: "1.0.0", active: "inactive", activatedAt: "t" }),
            // someone deleted a release directory
            ...refreshed(RELEASE, { sha256: "a" }, undefined),
            ...refreshed(UNIT, { unitText: "x" }, { unitText: "x" }),
        ];
        const o = io();
        assert.strictEqual(await checkDrift(new FakeStack(events, { same: 10, update: 1, delete: 1 }), o), DRIFT_EXIT.drift);
        const text = o.text();
        assert.match(text, /DRIFT — 2 resource\(s\) differ/);
        assert.match(text, /update\s+complinist-prod-1-activation-switch\s+\(pulumi-nodejs:dynamic\/complinist:Activation\)\s+changed: active, activeVersion/);
        assert.match(text, /delete\s+complinist-prod-1-release-1\.0\.0-dir/);
        assert.ok(text.includes(ACTIVATION), "the URN is printed");
        assert.doesNotMatch(text, /service-unit/);
        assert.match(text, /pulumi up --stack prod/);
    });

    it("after an on-host emergency rollback, says which version the host serves and how to pin it or re-apply", async () => {
        const events = refreshed(ACTIVATION, { version: "1.1.0", activeVersion: "1.1.0", active: "active" }, { version: "1.1.0", activeVersion: "1.0.0", active: "live instance runs 1.0.0" });
        const o = io();
        assert.strictEqual(await checkDrift(new FakeStack(events, { same: 10, update: 1 }), o), DRIFT_EXIT.drift);
        const text = o.text();
        assert.match(text, /complinist-prod-1-activation-switch: the host serves 1\.0\.0, the stack declares 1\.1\.0/);
        assert.match(text, /To keep 1\.0\.0: npm run rollback -- --stack prod --to 1\.0\.0 \(pins it in Pulumi\.prod\.yaml; commit that\)/);
        assert.match(text, /To go back to 1\.1\.0: pulumi up --stack prod/);
    });

    it("uses the engine's diffs when it reports them, and steps reported as update", () => {
        const d = driftFromEvents([
            step("outputs", { urn: UNIT, op: "update", diffs: ["unitText"], detailedDiff: { "environment.PORT": { diffKind: DiffKind.update, inputDiff: false } } }),
            step("outputs", { urn: "urn:pulumi:prod::complinist::pulumi:pulumi:Stack::complinist-prod", op: "update", diffs: ["outputs"] }),
        ]);
        assert.deepStrictEqual(
            d.map((x) => [x.name, x.op, x.keys]),
            [["complinist-prod-1-service-unit", "update", ["environment", "unitText"]]],
        );
    });

    it("a component's outputs event that changes nothing (refresh --run-program re-registers them) is no drift", () => {
        const component = "urn:pulumi:prod::complinist::complinist:deploy:ReleaseRollout$complinist:host:Release::complinist-prod-1-release-1.0.0";
        const outputs = { version: "1.0.0", sha256: "a".repeat(64) };
        const d = driftFromEvents([step("outputs", { urn: component, op: "update", old: state(component, outputs), new: state(component, outputs) })]);
        assert.deepStrictEqual(d, []);
    });

    it("counts drift the summary reports but the events did not itemize", async () => {
        const o = io();
        assert.strictEqual(await checkDrift(new FakeStack([], { same: 3, update: 1 }), o), DRIFT_EXIT.drift);
        assert.match(o.text(), /1 more the engine counted but did not itemize/);
    });

    it("exits 1 when the refresh cannot run (host unreachable, stack missing)", async () => {
        const o = io();
        assert.strictEqual(await checkDrift(new FakeStack([], {}, "host prod-2: connect ECONNREFUSED"), o), DRIFT_EXIT.error);
        assert.match(o.text(), /drift check of stack 'prod' failed: host prod-2: connect ECONNREFUSED/);
    });

    it("parses its command line", () => {
        assert.deepStrictEqual(parseDriftArgs(["--stack", "staging"]), { stack: "staging", help: false });
        assert.throws(() => parseDriftArgs([]), /--stack <env> is required/);
        assert.throws(() => parseDriftArgs(["--stack", "prod", "--fix"]), /Unknown option/);
    });
});
