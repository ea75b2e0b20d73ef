import * as assert from "assert";
import { outcomeLine, parseOutcomes } from "../../../infra/agent/outcome";
import type { ActivationResult } from "../../../infra/agent/protocol";
import { failedOutcome, type FleetOutcome, fleetReport, peerOutcome } from "../../../infra/providers/allOrNone";
import { deploy, DEPLOY_EXIT } from "../../../ops/deploy";
import { describeFleetRollback, notificationText } from "../../../ops/notify";
import { FakeIo, FakeReporting, FakeStack } from "../ops/fakes";

const S = { version: "2.0.0", stack: "prod", host: { name: "web-3", address: "10.0.0.3", port: 22, user: "root", hostKey: "k" } };
const GATE = new Error(
    `host web-3: version 2.0.0 failed its gate (GET /health on the new instance within 8s, wanted 200 {"status":"healthy","version":"2.0.0"}; saw: HTTP 503). It never took a request: 1.0.0 serves. Later batches were not touched.\n` +
        outcomeLine({ v: 1, host: "web-3", version: "2.0.0", outcome: "failed", reason: "health-gate", previous: "1.0.0", seen: "HTTP 503" }),
);
/** A rollback-all answer as the agent prints it. */
const answer = (r: Partial<ActivationResult>): ActivationResult => ({ v: 1, done: true, exit: 0, previous: "", liveHealthy: false, standby: "", ...r });
const back = (host: string) => peerOutcome(host, "2.0.0", answer({ outcome: "rolled-back", reason: "rollback-all", previous: "2.0.0", liveHealthy: true, serving: "1.0.0", standby: "2.0.0" }));

describe("all hosts or none: the fleet's outcome after a failed activation", () => {
    it("each answer of a peer's rollback-all becomes its outcome", () => {
        assert.deepStrictEqual(back("web-1"), { host: "web-1", outcome: "switched-back", serving: "1.0.0", detail: "switched back to 1.0.0, its warm standby (2.0.0 stays warm)" });
        const unchanged = peerOutcome("web-1", "2.0.0", answer({ outcome: "unchanged", exit: 0, previous: "1.0.0", liveHealthy: false, serving: "1.0.0", seen: "2.0.0 is not live here (live: 1.0.0): left as it is" }));
        assert.deepStrictEqual([unchanged.outcome, unchanged.serving, unchanged.detail], ["unchanged", "1.0.0", "left as it was: 2.0.0 is not live here (live: 1.0.0): left as it is"]);
        const noStandby = peerOutcome("web-1", "2.0.0", answer({ outcome: "failed", reason: "rollback-all", exit: 7, previous: "2.0.0", liveHealthy: true, serving: "2.0.0", seen: "no warm standby on 5001" }));
        assert.deepStrictEqual([noStandby.outcome, noStandby.serving, noStandby.detail], ["not-switched", "2.0.0", "NOT switched back (rollback-all): no warm standby on 5001"]);
        const locked = peerOutcome("web-1", "2.0.0", answer({ outcome: "locked", holder: "ci@runner pid 7", exit: 75, previous: "", liveHealthy: false }));
        assert.deepStrictEqual([locked.outcome, locked.detail], ["not-switched", "NOT switched back: the deploy lock is held by ci@runner pid 7"]);
        const unreachable = peerOutcome("web-1", "2.0.0", new Error("host web-1: connection refused\nmore"));
        assert.deepStrictEqual([unreachable.outcome, unreachable.detail], ["not-switched", "could not be reached to switch back: host web-1: connection refused"]);
    });

    it("the failed host's outcome comes from its own outcome line, else the first line of its error", () => {
        assert.deepStrictEqual(failedOutcome("web-3", GATE), { host: "web-3", outcome: "failed", serving: "1.0.0", detail: "failed (health-gate); 1.0.0 serves" });
        assert.deepStrictEqual(failedOutcome("web-3", new Error("host web-3: connect ETIMEDOUT\nstack")), { host: "web-3", outcome: "failed", serving: "", detail: "failed: host web-3: connect ETIMEDOUT" });
    });

    it("the report names every host's outcome and says the fleet is on the previous release, and why the state says otherwise", () => {
        const later: FleetOutcome = { host: "web-4", outcome: "never-touched", serving: "", detail: "never touched" };
        const text = fleetReport(S, GATE, [back("web-1"), back("web-2"), failedOutcome("web-3", GATE), later]);
        const lines = text.split("\n");
        assert.strictEqual(lines[0], GATE.message.split("\n")[0], "the host's own error first");
        assert.deepStrictEqual(lines.slice(2, 8), [
            "All hosts or none (rollout.onFailure: rollback-all): web-3 failed, so every host this update switched goes back to its warm standby:",
            "  web-1: switched back to 1.0.0, its warm standby (2.0.0 stays warm)",
            "  web-2: switched back to 1.0.0, its warm standby (2.0.0 stays warm)",
            "  web-3: failed (health-gate); 1.0.0 serves",
            "  web-4: never touched",
            "The fleet is on the previous release 1.0.0. Pulumi's state still records 2.0.0 on web-1, web-2 until a refresh reads the hosts: npm run deploy refreshes first; with pulumi up, run pulumi refresh --stack prod before it.",
        ]);
        const data = parseOutcomes(text).filter((o) => o.reason === "rollback-all");
        assert.deepStrictEqual(data.map((o) => [o.host, o.version, o.previous, o.failedHost, o.fleet]), [["web-1", "2.0.0", "1.0.0", "web-3", "1.0.0"], ["web-2", "2.0.0", "1.0.0", "web-3", "1.0.0"]]);
    });

    it("a peer that could not switch back: the report says the fleet is NOT on one release, and which host is stuck", () => {
        const stuck = peerOutcome("web-2", "2.0.0", answer({ outcome: "failed", reason: "rollback-all", exit: 7, previous: "2.0.0", liveHealthy: true, serving: "2.0.0", seen: "no warm standby on 5001" }));
        const text = fleetReport(S, GATE, [back("web-1"), stuck, failedOutcome("web-3", GATE)]);
        assert.match(text, /\nThe fleet is NOT on one previous release \(web-1 1\.0\.0, web-2 2\.0\.0, web-3 1\.0\.0\): web-2 could not switch back\. Pulumi's state still records 2\.0\.0 on web-1 /);
        assert.deepStrictEqual(describeFleetRollback(text)?.fleet, "");
    });

    it("the notification says who failed and that the whole fleet is on the previous release", () => {
        const text = fleetReport(S, GATE, [back("web-1"), back("web-2"), failedOutcome("web-3", GATE)]);
        const f = describeFleetRollback(text);
        assert.deepStrictEqual(f, { by: "rollback-all", from: "2.0.0", to: "1.0.0", hosts: ["web-1", "web-2"], failedHost: "web-3", fleet: "1.0.0" });
        assert.strictEqual(
            notificationText({ kind: "rolledBack", stack: "prod", from: "2.0.0", to: "1.0.0", commit: "c0ffee", at: "T", hosts: "web-1, web-2", reason: { by: "rollback-all", failedHost: "web-3", fleet: "1.0.0" } }),
            "Rolled back automatically: prod from 2.0.0 to 1.0.0 on web-1, web-2 because web-3 failed (rollout.onFailure: rollback-all): the whole fleet is on 1.0.0, the previous release. (commit c0ffee, T)",
        );
        assert.strictEqual(describeFleetRollback(GATE.message), undefined, "a failure with nobody switched back is no fleet rollback");
    });

    it("npm run deploy: after the failure, the fleet's rollback notification, and the record introduced as what every host runs", async () => {
        const error = fleetReport(S, GATE, [back("web-1"), back("web-2"), failedOutcome("web-3", GATE)]);
        const stack = new FakeStack({ upError: `error: update failed\n${error}`, config: { "complinist:version": "2.0.0" }, outputs: { deployedVersion: "1.0.0" } });
        const io = new FakeIo(false);
        const reporting = new FakeReporting();
        assert.strictEqual(await deploy(stack, { yes: true }, io, reporting), DEPLOY_EXIT.upFailed);
        assert.deepStrictEqual(reporting.events.map((e) => e.kind), ["started", "failed", "rolledBack"]);
        assert.deepStrictEqual(reporting.events[2], { kind: "rolledBack", stack: "prod", from: "2.0.0", to: "1.0.0", commit: "feedbee", at: "2025-01-01T12:00:00.000Z", hosts: "web-1, web-2", reason: { by: "rollback-all", failedHost: "web-3", fleet: "1.0.0" } });
        assert.match(io.text, /The fleet is on the previous release 1\.0\.0 \(rollout\.onFailure: rollback-all switched every host back\): the deploy record below is what every host runs:\nDEPLOYED_VERSION=1\.0\.0\n/);
    });
});
