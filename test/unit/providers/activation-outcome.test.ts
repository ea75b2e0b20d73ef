import * as assert from "assert";
import { OUTCOME_MARKER, parseOutcomes } from "../../../infra/agent/outcome";
import type { ActivationResult } from "../../../infra/agent/protocol";
import type { ActivationInputs } from "../../../infra/providers/activation";
import { activationOutcome } from "../../../infra/providers/activationOutcome";
import { describeWatchRollback } from "../../../ops/notify";

/** The operator-facing reading of a host's activation result (infra/providers/activationOutcome.ts). */

const inputs = {
    stack: "prod",
    version: "1.2.0",
    port: 5000,
    health: { path: "/health", timeoutSeconds: 60, intervalMs: 1000, soakSeconds: 30, drainSeconds: 30, checks: [] },
    canary: { percent: 10, seconds: 60 },
} as unknown as ActivationInputs;

/** The agent's result with the fields a test sets. */
function result(r: Partial<ActivationResult>): ActivationResult {
    return { v: 1, done: true, exit: 6, previous: "", liveHealthy: true, standby: "", ...r };
}

/** The whole error text (the message, then its outcome line). */
function fullErrorOf(r: Partial<ActivationResult>): string {
    try {
        activationOutcome(inputs, "prod-1", "/opt/complinist/.deploy.lock", result(r));
    } catch (e) {
        return e instanceof Error ? e.message : String(e);
    }
    assert.fail("no error");
}

/** The operator-facing message: the error text without its outcome line. */
function errorOf(r: Partial<ActivationResult>): string {
    const text = fullErrorOf(r);
    const [message, outcome, ...rest] = text.split("\n");
    assert.ok(outcome?.startsWith(OUTCOME_MARKER) && rest.length === 0, `one outcome line after the message: ${text}`);
    return message as string;
}

describe("activation outcome: what a host's result means for the operator", () => {
    const figures = "canary 3s of 60s: new 93 requests 28 errors (30.11%), previous 841 requests 0 errors (0.00%); limit 1.00% (10 x previous, maxErrorRatio); minRequests 20";

    it("a failed deploy on a host that failed over names the failover: the standby keeps serving", () => {
        const failedOver = "2026-12-08T04:00:00Z to 1.1.0: outcome=failed-over reason=live-unhealthy";
        const text = errorOf({ outcome: "failed", reason: "health-gate", previous: "1.1.0", serving: "1.1.0", seen: "HTTP 503 status=unhealthy", failedOver });
        assert.match(text, /failed its gate/);
        assert.ok(text.includes(`the host failed over to its warm standby by itself (${failedOver}), away from the declared 1.2.0: 1.2.0 did not come back healthy, so the host stays on the release it failed over to.`), text);
        assert.doesNotMatch(errorOf({ outcome: "failed", reason: "health-gate", previous: "1.1.0", serving: "1.1.0", seen: "x" }), /failed over/);
    });

    it("a watch rollback names the figures, the switch back's time and the refusal to come, and the deploy's notification reads it back", () => {
        const r = { outcome: "rolled-back", reason: "watch", previous: "1.1.0", serving: "1.1.0", seen: figures, trippedAt: 1000, switchedBackAt: 1045 };
        const text = errorOf(r);
        assert.strictEqual(
            text,
            `host prod-1: version 1.2.0 was ROLLED BACK by the error-rate watch (${figures}). Switched back at once to 1.1.0, the warm previous release (45 ms after the watch tripped); ` +
                "the new instance was stopped: 1.1.0 serves. Later batches were not touched. The next pulumi up with 1.2.0 is refused until the version changes or the stack acknowledges it (complinist:acknowledgeRolledBack).",
        );
        assert.strictEqual(describeWatchRollback(text), undefined, "the English alone is never parsed");
        const n = describeWatchRollback(fullErrorOf(r));
        assert.deepStrictEqual([n?.hosts, n?.from, n?.to, n?.figures], [["prod-1"], "1.2.0", "1.1.0", figures]);
        assert.deepStrictEqual(parseOutcomes(fullErrorOf(r)), [{ v: 1, host: "prod-1", version: "1.2.0", outcome: "rolled-back", reason: "watch", previous: "1.1.0", seen: figures, switchBackMs: 45 }]);
    });

    it("a refusal names the verdict and the exact command that acknowledges the version", () => {
        const text = errorOf({ outcome: "refused", reason: "watch-rolled-back", previous: "1.1.0", serving: "1.1.0", seen: `2026-12-06T11:00:00Z live=1.1.0 serving=1.1.0 seen=${figures}` });
        assert.match(text, /^host prod-1: version 1\.2\.0 is refused: the error-rate watch rolled it back on this host \(2026-12-06T11:00:00Z .*\)\. Nothing was changed \(1\.1\.0 serves\)\./);
        assert.ok(text.endsWith("pulumi config set --path 'complinist:acknowledgeRolledBack[0]' 1.2.0 --stack prod"), text);
        assert.strictEqual(describeWatchRollback(fullErrorOf({ outcome: "refused", reason: "watch-rolled-back", previous: "1.1.0", serving: "1.1.0", seen: figures })), undefined, "a refusal is no rollback");
    });

    it("a failed check during the canary says so, and a watch that could not switch back is no rollback for the notification", () => {
        assert.match(errorOf({ outcome: "failed-rolled-back", reason: "canary", previous: "1.1.0", serving: "1.1.0", seen: "during the canary: port 5002 is also held by pid 9" }), /failed after the switch \(the 10% canary of 60s; saw: during the canary: .*\)\. Switched back at once: 1\.1\.0 serves\./);
        const stuck = { outcome: "failed", reason: "watch", previous: "1.1.0", serving: "1.2.0", seen: `${figures}; could not switch back` };
        assert.match(errorOf(stuck), /Could not switch back: 1\.2\.0 serves\./);
        assert.strictEqual(describeWatchRollback(fullErrorOf(stuck)), undefined);
    });

    it("a listener beside the proxy on the service port: not switched, naming it and what to do", () => {
        const text = errorOf({ outcome: "failed", reason: "service-port", previous: "1.1.0", serving: "1.1.0", seen: "the service port 5000 is also held by pid 77 (node, uid 1000, cgroup /user.slice/x)" });
        assert.match(text, /^host prod-1: version 1\.2\.0 was not switched to: someone besides the proxy listens on the service port \(the service port 5000 is also held by pid 77 .*\)\. Nothing was switched \(1\.1\.0 serves\)\. Stop that process/);
    });

    it("a listener on the idle instance port that is not the service's own (issue 29 finding 10): not started, naming it", () => {
        const seen = "the idle instance port 5002 is held by pid 91 (nc, uid 1000, cgroup /user.slice/x) - not by this service's own units, so not ended here: stop it, then deploy again";
        const text = errorOf({ outcome: "failed", reason: "idle-port", previous: "1.1.0", serving: "1.1.0", seen });
        assert.match(text, /^host prod-1: version 1\.2\.0 was not started: the idle instance port 5002 is held by pid 91 \(nc, uid 1000, cgroup \/user\.slice\/x\) .*stop it, then deploy again\. Nothing was changed \(1\.1\.0 serves\)/);
        assert.doesNotMatch(text, /failed its gate/);
    });

    it("the reasons the agent reports choose the message, not words in what a release answered", () => {
        assert.match(errorOf({ outcome: "failed", reason: "release-incomplete", seen: "release 1.2.0 is not complete on the host" }), /release 1\.2\.0 is not complete on the host \(no manifest\)/);
        assert.match(errorOf({ outcome: "failed", reason: "beforeActivate-hook", seen: "hooks.beforeActivate failed: migration 7 failed" }), /^host prod-1: hooks\.beforeActivate failed: migration 7 failed; nothing was switched/);
        assert.match(errorOf({ outcome: "failed", reason: "health-gate", previous: "1.1.0", serving: "1.1.0", seen: "HTTP 200 from x: status=healthy version=not complete; hooks.beforeActivate" }), /failed its gate/);
    });
});
