import { outcomeLine } from "../../../infra/agent/outcome";
import * as assert from "assert";
import * as http from "http";
import type { AddressInfo } from "net";
import type { Stack } from "@pulumi/pulumi/automation";
import { deploy, DEPLOY_EXIT, type DeployStack, parseDeployArgs } from "../../../ops/deploy";
import { webhookNotifier } from "../../../ops/notify";
import { UsageError } from "../../../ops/operator";
import { describeWatch } from "../../../ops/operator";
import { FakeIo, FakeReporting, FakeStack, WATCH_FIGURES } from "./fakes";

/** The last three lines a job log shows. */
function lastLines(io: FakeIo, n = 3): string[] {
    return io.lines.join("\n").split("\n").slice(-n);
}

describe("deploy helper (ops/deploy.ts)", () => {
    it("the Automation API's Stack satisfies DeployStack (checked by tsc)", () => {
        const fits: (s: Stack) => DeployStack = (s) => s;
        assert.strictEqual(typeof fits, "function");
    });

    it("runs up, notifies started and completed, and ends with the deploy record from the stack outputs", async () => {
        const stack = new FakeStack();
        const io = new FakeIo(false);
        const reporting = new FakeReporting();
        assert.strictEqual(await deploy(stack, { yes: true, dotenv: "deploy.env" }, io, reporting), DEPLOY_EXIT.ok, io.text);
        assert.deepStrictEqual(stack.actions, ["up version=1.1.0"], "--yes: no preview, no question");
        assert.deepStrictEqual(lastLines(io), ["DEPLOYED_VERSION=1.1.0", "DEPLOYED_COMMIT=abc123", "DEPLOYED_AT=2025-01-01T00:00:00.000Z"]);
        assert.strictEqual(reporting.files["deploy.env"], "DEPLOYED_VERSION=1.1.0\nDEPLOYED_COMMIT=abc123\nDEPLOYED_AT=2025-01-01T00:00:00.000Z\n");
        assert.deepStrictEqual(
            reporting.events.map((e) => e.kind),
            ["started", "completed"],
        );
        assert.deepStrictEqual(reporting.events[0], { kind: "started", stack: "prod", version: "1.1.0", commit: "feedbee", at: "2025-01-01T12:00:00.000Z" });
        assert.deepStrictEqual(reporting.events[1], { kind: "completed", stack: "prod", version: "1.1.0", commit: "abc123", at: "2025-01-01T00:00:00.000Z", hosts: "prod-1 1.1.0 healthy, prod-2 1.1.0 healthy" });
    });

    it("prints each host's error-rate watch figures before the record, which keeps its three one-word lines", async () => {
        const io = new FakeIo(false);
        const reporting = new FakeReporting();
        assert.strictEqual(await deploy(new FakeStack(), { yes: true, dotenv: "deploy.env" }, io, reporting), DEPLOY_EXIT.ok);
        assert.deepStrictEqual(lastLines(io, 7), [
            "Deployed stack prod: 1.1.0. Hosts: prod-1 1.1.0 healthy, prod-2 1.1.0 healthy.",
            "Error-rate watch, each host's last activation:",
            `  prod-1  ${WATCH_FIGURES}`,
            `  prod-2  ${WATCH_FIGURES}`,
            "DEPLOYED_VERSION=1.1.0",
            "DEPLOYED_COMMIT=abc123",
            "DEPLOYED_AT=2025-01-01T00:00:00.000Z",
        ]);
        assert.strictEqual(reporting.files["deploy.env"], "DEPLOYED_VERSION=1.1.0\nDEPLOYED_COMMIT=abc123\nDEPLOYED_AT=2025-01-01T00:00:00.000Z\n", "the dotenv report has the record alone");
    });

    it("prints no watch lines for hosts that report none (a stack updated before the watch existed)", async () => {
        const io = new FakeIo(false);
        await deploy(new FakeStack({ upHosts: { "prod-1": { version: "1.1.0", healthy: true }, "prod-2": { version: "1.1.0", healthy: true, watch: "" } } }), { yes: true }, io, new FakeReporting());
        assert.doesNotMatch(io.text, /Error-rate watch/);
        assert.deepStrictEqual(
            describeWatch({ "web-1": { watch: "off (no canary, no soak)" }, "web-10": { watch: "no canary: 1.0.0 was the warm standby (a rollback to what ran before)" }, "web-2": {} }),
            ["  web-1   off (no canary, no soak)", "  web-10  no canary: 1.0.0 was the warm standby (a rollback to what ran before)"],
        );
        assert.deepStrictEqual([describeWatch(undefined), describeWatch("x")], [[], []]);
    });

    it("on a failed update notifies the hosts and what was seen, and still ends with the record of what runs", async () => {
        const stack = new FakeStack({ upError: "error: update failed\nhost prod-1: 1.2.0 failed its health gate (saw 503)", config: { "complinist:version": "1.2.0" } });
        const io = new FakeIo(false);
        const reporting = new FakeReporting();
        assert.strictEqual(await deploy(stack, { yes: true, dotenv: "deploy.env" }, io, reporting), DEPLOY_EXIT.upFailed);
        const failed = reporting.events[1];
        assert.ok(failed?.kind === "failed");
        assert.deepStrictEqual([failed.hosts, failed.saw, failed.version], [["prod-1"], "host prod-1: 1.2.0 failed its health gate (saw 503)", "1.2.0"]);
        assert.strictEqual(failed.rollback, "npm run rollback -- --stack prod (GitLab: the rollback:production job)");
        assert.match(io.text, /FAILED: .*Roll back: npm run rollback -- --stack prod/s);
        assert.deepStrictEqual(lastLines(io), ["DEPLOYED_VERSION=1.1.0", "DEPLOYED_COMMIT=unknown", "DEPLOYED_AT=unknown"], "the last successful deployment's record");
        assert.ok(reporting.files["deploy.env"]?.startsWith("DEPLOYED_VERSION=1.1.0\n"));
    });

    it("when a host's error-rate watch rolled the release back, sends the rollback notification with its figures after the failure", async () => {
        const figures =
            "canary 4s of 60s: new 40 requests 12 errors (30.00%), previous 400 requests 0 errors (0.00%); limit 1.00% (10 x previous, maxErrorRatio); minRequests 20; " +
            "exposed from its first request to the switch back (4s): 40 requests 12 errors of 440 in all";
        const upError =
            "code: 255\n stdout: Updating (prod):\nDiagnostics:\n  pulumi-nodejs:dynamic:Resource (complinist-prod-1-activation):\n" +
            `    error: host prod-1: version 1.2.0 was ROLLED BACK by the error-rate watch (${figures}). Switched back at once to 1.1.0, the warm previous release (312 ms after the watch tripped); ` +
            "the new instance was stopped: 1.1.0 serves. Later batches were not touched. The next pulumi up with 1.2.0 is refused until the version changes or the stack acknowledges it (complinist:acknowledgeRolledBack).\n" +
            `    ${outcomeLine({ v: 1, host: "prod-1", version: "1.2.0", outcome: "rolled-back", reason: "watch", previous: "1.1.0", seen: figures, switchBackMs: 312 })}\n`;
        const stack = new FakeStack({ upError, config: { "complinist:version": "1.2.0" } });
        const io = new FakeIo(false);
        const reporting = new FakeReporting();
        assert.strictEqual(await deploy(stack, { yes: true }, io, reporting), DEPLOY_EXIT.upFailed);
        assert.deepStrictEqual(reporting.events.map((e) => e.kind), ["started", "failed", "rolledBack"]);
        assert.deepStrictEqual(reporting.events[2], { kind: "rolledBack", stack: "prod", from: "1.2.0", to: "1.1.0", commit: "feedbee", at: "2025-01-01T12:00:00.000Z", hosts: "prod-1", reason: { by: "watch", figures } });
        assert.deepStrictEqual(lastLines(io)[0], "DEPLOYED_VERSION=1.1.0", "the record is still the last successful deployment's");
    });

    it("sends no rollback notification for a failure the watch did not cause", async () => {
        const reporting = new FakeReporting();
        await deploy(new FakeStack({ upError: "error: update failed\nhost prod-1: version 1.2.0 failed its gate (saw: HTTP 503)", config: { "complinist:version": "1.2.0" } }), { yes: true }, new FakeIo(false), reporting);
        assert.deepStrictEqual(reporting.events.map((e) => e.kind), ["started", "failed"]);
    });

    it("reports a refusal of the promotion gate as what the gate saw, naming no host", async () => {
        const stack = new FakeStack({ upError: "error: preview failed\n    Promotion gate: stack 'prod' refuses version 1.2.0: prod rolled back from 1.2.0" });
        const reporting = new FakeReporting();
        assert.strictEqual(await deploy(stack, { yes: true }, new FakeIo(false), reporting), DEPLOY_EXIT.upFailed);
        const failed = reporting.events[1];
        assert.ok(failed?.kind === "failed");
        assert.deepStrictEqual([failed.hosts, failed.saw], [[], "Promotion gate: stack 'prod' refuses version 1.2.0: prod rolled back from 1.2.0"]);
    });

    it("shows the preview and asks on a terminal; a no deploys nothing and notifies nobody", async () => {
        const stack = new FakeStack();
        const io = new FakeIo(true, false);
        const reporting = new FakeReporting();
        assert.strictEqual(await deploy(stack, { yes: false }, io, reporting), DEPLOY_EXIT.refused);
        assert.deepStrictEqual(stack.actions, ["preview diff=true version=1.1.0"]);
        assert.match(io.questions[0] as string, /Deploy 1\.1\.0 to stack prod/);
        assert.deepStrictEqual(reporting.events, []);
    });

    it("refuses without a terminal unless --yes, and when the preview fails, before anything changes", async () => {
        const stack = new FakeStack();
        const io = new FakeIo(false);
        assert.strictEqual(await deploy(stack, { yes: false }, io, new FakeReporting()), DEPLOY_EXIT.refused);
        assert.deepStrictEqual(stack.calls, []);
        assert.match(io.text, /pass --yes/);
        const gated = new FakeStack({ previewError: "Promotion gate: stack 'prod' refuses version 1.1.0" });
        const io2 = new FakeIo(true, true);
        assert.strictEqual(await deploy(gated, { yes: false }, io2, new FakeReporting()), DEPLOY_EXIT.refused);
        assert.ok(!gated.actions.some((a) => a.startsWith("up")));
        assert.match(io2.text, /the preview failed: Promotion gate/);
    });

    it("deploys although the webhook never answers: a notification failure is a warning", async () => {
        const server = http.createServer(() => undefined);
        await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
        try {
            const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
            const io = new FakeIo(false);
            const reporting = Object.assign(new FakeReporting(), { notifier: webhookNotifier(url, (w) => io.err(w), 200) });
            assert.strictEqual(await deploy(new FakeStack(), { yes: true }, io, reporting), DEPLOY_EXIT.ok);
            assert.strictEqual(io.errors.filter((e) => /notification .* failed \(no answer within 200 ms\)/.test(e)).length, 2, io.text);
            assert.deepStrictEqual(lastLines(io)[0], "DEPLOYED_VERSION=1.1.0");
        } finally {
            server.closeAllConnections();
            server.close();
        }
    });

    it("parses its command line", () => {
        assert.deepStrictEqual(parseDeployArgs(["--stack", "staging", "--yes", "--dotenv", "deploy.env"]), { stack: "staging", yes: true, dotenv: "deploy.env", help: false });
        assert.throws(() => parseDeployArgs([]), (e: unknown) => e instanceof UsageError && /--stack <env> is required/.test(e.message));
        assert.throws(() => parseDeployArgs(["--stack", "prod", "--force"]), UsageError);
    });
});
