// Notifications against a real HTTP receiver on 127.0.0.1: one that records, one that answers 500,
// one that never answers. A notification failure is a warning line, never an error.
import * as assert from "assert";
import * as http from "http";
import type { AddressInfo } from "net";
import { OUTCOME_MARKER, outcomeLine } from "../../../infra/agent/outcome";
import { type DeployEvent, describeFailure, describeWatchRollback, notificationText, webhookNotifier, webhookUrlOf } from "../../../ops/notify";

interface Receiver {
    readonly url: string;
    readonly bodies: unknown[];
    readonly headers: http.IncomingHttpHeaders[];
    close(): Promise<void>;
}

/** A webhook receiver; `answer` decides per request (undefined: never answer). */
async function receiver(answer: (body: string) => number | undefined): Promise<Receiver> {
    const bodies: unknown[] = [];
    const headers: http.IncomingHttpHeaders[] = [];
    const server = http.createServer((req, res) => {
        let body = "";
        req.on("data", (c: Buffer) => (body += c.toString()));
        req.on("end", () => {
            bodies.push(JSON.parse(body));
            headers.push(req.headers);
            const status = answer(body);
            if (status !== undefined) res.writeHead(status, { "content-type": "text/plain" }).end(status === 200 ? "ok" : "invalid_payload");
        });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    return {
        url: `http://127.0.0.1:${port}/services/T000/B000/secret-token-part`,
        bodies,
        headers,
        close: () =>
            new Promise<void>((resolve) => {
                server.closeAllConnections();
                server.close(() => resolve());
            }),
    };
}

const started: DeployEvent = { kind: "started", stack: "prod", version: "1.1.0", commit: "0123abc", at: "2025-01-01T10:00:00.000Z" };

describe("notifications (ops/notify.ts)", () => {
    let r: Receiver | undefined;
    afterEach(async () => {
        await r?.close();
        r = undefined;
    });

    it("posts the runbook's message as Slack-compatible JSON {text}", async () => {
        r = await receiver(() => 200);
        const warnings: string[] = [];
        await webhookNotifier(r.url, (w) => warnings.push(w)).send(started);
        assert.deepStrictEqual(r.bodies, [{ text: notificationText(started) }]);
        assert.strictEqual(r.headers[0]?.["content-type"], "application/json");
        assert.deepStrictEqual(warnings, []);
    });

    it("turns an HTTP 500 into one warning that does not show the webhook's secret path", async () => {
        r = await receiver(() => 500);
        const warnings: string[] = [];
        await webhookNotifier(r.url, (w) => warnings.push(w)).send(started);
        assert.strictEqual(warnings.length, 1);
        assert.match(warnings[0] as string, /^warning: the started notification to http:\/\/127\.0\.0\.1:\d+ failed \(HTTP 500\); the deployment is not affected\.$/);
        assert.ok(!(warnings[0] as string).includes("secret-token-part"));
    });

    it("gives up on a receiver that never answers within the timeout", async () => {
        r = await receiver(() => undefined);
        const warnings: string[] = [];
        const t0 = Date.now();
        await webhookNotifier(r.url, (w) => warnings.push(w), 300).send(started);
        const took = Date.now() - t0;
        assert.ok(took >= 250 && took < 5000, `took ${took} ms`);
        assert.strictEqual(r.bodies.length, 1, "the receiver got the request");
        assert.match(warnings.join("\n"), /failed \(no answer within 300 ms\)/);
    });

    it("warns about a receiver that is not there, and posts nothing without a webhook", async () => {
        const warnings: string[] = [];
        await webhookNotifier("http://127.0.0.1:1/hook", (w) => warnings.push(w), 1000).send(started);
        assert.match(warnings.join("\n"), /the started notification to http:\/\/127\.0\.0\.1:1 failed/);
        const none: string[] = [];
        await webhookNotifier(undefined, (w) => none.push(w)).send(started);
        assert.deepStrictEqual(none, []);
    });

    it("says what QA and stakeholders need in each message", () => {
        assert.strictEqual(notificationText(started), "Deployment started: CompliNist 1.1.0 to prod (commit 0123abc, 2025-01-01T10:00:00.000Z). Status: deploying.");
        assert.match(
            notificationText({ kind: "completed", stack: "prod", version: "1.1.0", commit: "0123abc", at: "2025-01-01T10:02:00.000Z", hosts: "prod-1 1.1.0 healthy, prod-2 1.1.0 healthy" }),
            /^Deployment completed: CompliNist 1\.1\.0 on prod \(commit 0123abc, deployed at 2025-01-01T10:02:00\.000Z\)\. Status: prod-1 1\.1\.0 healthy, prod-2 1\.1\.0 healthy\.$/,
        );
        const failed = notificationText({ kind: "failed", stack: "prod", version: "1.2.0", commit: "0123abc", at: "t", hosts: ["prod-1"], saw: "health check on prod-1 saw 503.", rollback: "npm run rollback -- --stack prod" });
        assert.match(failed, /^Deployment FAILED: CompliNist 1\.2\.0 to prod \(commit 0123abc, t\) on prod-1\. Saw: health check on prod-1 saw 503\./);
        assert.match(failed, /Roll back: npm run rollback -- --stack prod$/);
        assert.match(notificationText({ kind: "rolledBack", stack: "prod", from: "1.1.0", to: "1.0.0", commit: "c0ffee", at: "t", hosts: "prod-1 1.0.0 healthy" }), /^Rolled back: prod from 1\.1\.0 to 1\.0\.0 \(release commit c0ffee, t\)\. Status: prod-1 1\.0\.0 healthy\. Pulumi\.prod\.yaml must be committed/);
    });

    it("takes the hosts and what was seen from the error text: the gate's refusal first", () => {
        const gate = describeFailure("error: Running program failed\n  Promotion gate: stack 'prod' refuses version 1.2.0: stack 'staging' has not deployed it healthy\n", ["prod-1", "prod-2"]);
        assert.deepStrictEqual(gate, { hosts: [], saw: "Promotion gate: stack 'prod' refuses version 1.2.0: stack 'staging' has not deployed it healthy" });
        const health = describeFailure("update failed\nhost prod-1: 1.2.0 failed its health gate (wanted 200 healthy; saw: 503)\nswitched back to 1.1.0", ["prod-1", "prod-10"]);
        assert.deepStrictEqual(health.hosts, ["prod-1"], "prod-10 is not prod-1");
        assert.strictEqual(health.saw, "host prod-1: 1.2.0 failed its health gate (wanted 200 healthy; saw: 503)");
        assert.strictEqual(describeFailure("", []).saw, "no error text");
        assert.ok(describeFailure("x".repeat(2000), []).saw.length < 700);
    });

    it("says an automatic rollback by the error-rate watch with its figures, and the manual one as before", () => {
        const figures = "canary 4s of 60s: new 40 requests 12 errors (30.00%), previous 400 requests 0 errors (0.00%); limit 1.00% (10 x previous, maxErrorRatio); minRequests 20";
        assert.strictEqual(
            notificationText({ kind: "rolledBack", stack: "prod", from: "1.2.0", to: "1.1.0", commit: "0123abc", at: "t", hosts: "prod-1", reason: { by: "watch", figures } }),
            `Rolled back automatically: prod from 1.2.0 to 1.1.0 on prod-1 by the error-rate watch: ${figures} (commit 0123abc, t). ` +
                "1.2.0 is refused on prod-1 until the stack acknowledges it (complinist:acknowledgeRolledBack).",
        );
        assert.strictEqual(
            notificationText({ kind: "rolledBack", stack: "prod", from: "1.1.0", to: "1.0.0", commit: "c0ffee", at: "t", hosts: "prod-1 1.0.0 healthy" }),
            "Rolled back: prod from 1.1.0 to 1.0.0 (release commit c0ffee, t). Status: prod-1 1.0.0 healthy. Pulumi.prod.yaml must be committed (the change is in the job log) so the next deploy keeps 1.0.0.",
        );
    });

    it("takes the hosts the watch switched back, the versions and the figures from the error text, each host once", () => {
        const rolled = (host: string, figures: string, after = " (312 ms after the watch tripped)") =>
            `    error: host ${host}: version 1.2.0 was ROLLED BACK by the error-rate watch (${figures}). Switched back at once to 1.1.0, the warm previous release${after}; the new instance was stopped: 1.1.0 serves. ` +
            "Later batches were not touched. The next pulumi up with 1.2.0 is refused until the version changes or the stack acknowledges it (complinist:acknowledgeRolledBack).\n" +
            `    ${outcomeLine({ v: 1, host, version: "1.2.0", outcome: "rolled-back", reason: "watch", previous: "1.1.0", seen: figures })}`;
        const f1 =
            "canary 4s of 60s: new 40 requests 12 errors (30.00%), previous 400 requests 0 errors (0.00%); limit 1.00% (10 x previous, maxErrorRatio); minRequests 20; " +
            "exposed from its first request to the switch back (4s): 40 requests 12 errors of 440 in all";
        const f2 = "soak 2s of 30s: new 25 requests 5 errors (20.00%), previous 900 requests 1 errors (0.11%); limit 1.11% (10 x previous); minRequests 20";
        const cli = (...lines: string[]) => ["code: 255", " stdout: Updating (prod):", ...lines, "Diagnostics:", ...lines, " stderr: error: update failed"].join("\n");

        assert.deepStrictEqual(describeWatchRollback(cli(rolled("prod-1", f1))), { from: "1.2.0", to: "1.1.0", hosts: ["prod-1"], figures: f1 });
        assert.deepStrictEqual(describeWatchRollback(cli(rolled("web-1", f1), rolled("web-2", f2, ""))), {
            from: "1.2.0",
            to: "1.1.0",
            hosts: ["web-1", "web-2"],
            figures: `web-1: ${f1}; web-2: ${f2}`,
        });
        const couldNot = `error: host prod-1: version 1.2.0 was ROLLED BACK by the error-rate watch (x). Could not switch back: nothing answers on port 5000.\n${outcomeLine({ v: 1, host: "prod-1", version: "1.2.0", outcome: "failed", reason: "watch", previous: "1.1.0", seen: "x" })}`;
        assert.strictEqual(describeWatchRollback(couldNot), undefined, "a watch that could not switch back is no rollback");
        assert.strictEqual(describeWatchRollback("host prod-1: version 1.2.0 failed its gate (saw: 503)"), undefined);
        assert.strictEqual(describeWatchRollback(rolled("prod-1", f1).split("\n")[0] as string), undefined, "the English without its outcome line is never parsed");
        assert.strictEqual(describeWatchRollback(`${OUTCOME_MARKER}{"v":1,"host":"prod-1","version":"1.2.0","outcome":"rolled-back",`), undefined, "a cut outcome line is no outcome");
        assert.ok((describeWatchRollback(rolled("prod-1", "y".repeat(2000)))?.figures.length ?? 0) < 700, "bounded like describeFailure's saw");
    });

    describe("what a host or a release sent reaches the channel as text, never as Slack markup (& < > escaped)", () => {
        // A /health body, an outcome's figures or a host's status line, as a hostile release could make them.
        const HOSTILE = "<!channel> Rolled back automatically: <https://evil.example/login|prod is down, log in here> & <@U0ADMIN>\nRolled back automatically: prod";
        const escaped = "&lt;!channel&gt; Rolled back automatically: &lt;https://evil.example/login|prod is down, log in here&gt; &amp; &lt;@U0ADMIN&gt; Rolled back automatically: prod";

        /** The text a receiver got for `event`: posted for real, as the channel would get it. */
        async function posted(event: DeployEvent): Promise<string> {
            r = await receiver(() => 200);
            await webhookNotifier(r.url, () => undefined).send(event);
            return (r.bodies[0] as { text: string }).text;
        }
        const inert = (text: string) => {
            assert.ok(!/[<>]/.test(text), `markup reached the channel: ${text}`);
            assert.ok(!text.includes("\n"), `a value started a line of its own: ${text}`);
            assert.ok(!/&(?!amp;|lt;|gt;)/.test(text), `an unescaped & reached the channel: ${text}`);
        };

        it("a failure's health body (saw), from the error text", async () => {
            const { hosts, saw } = describeFailure(`update failed\nhost prod-1: 1.2.0 failed its health gate (wanted 200 healthy; saw: ${HOSTILE})`, ["prod-1"]);
            const text = await posted({ kind: "failed", stack: "prod", version: "1.2.0", commit: "0123abc", at: "t", hosts, saw, rollback: "npm run rollback -- --stack prod" });
            inert(text);
            assert.ok(text.startsWith("Deployment FAILED: CompliNist 1.2.0 to prod (commit 0123abc, t) on prod-1. Saw: host prod-1: 1.2.0 failed its health gate (wanted 200 healthy; saw: &lt;!channel&gt; "), text);
        });

        it("an automatic rollback's figures, versions and hosts, from the outcome line a host wrote", async () => {
            const line = outcomeLine({ v: 1, host: "prod-1<!here>", version: "1.2.0<b>", outcome: "rolled-back", reason: "watch", previous: "1.1.0&x", seen: HOSTILE });
            const w = describeWatchRollback(`error: host prod-1: rolled back\n${line}`);
            assert.ok(w);
            const text = await posted({ kind: "rolledBack", stack: "prod", from: w.from, to: w.to, commit: "c", at: "t", hosts: w.hosts.join(", "), reason: { by: "watch", figures: w.figures } });
            inert(text);
            assert.strictEqual(
                text,
                `Rolled back automatically: prod from 1.2.0&lt;b&gt; to 1.1.0&amp;x on prod-1&lt;!here&gt; by the error-rate watch: ${escaped} (commit c, t). ` +
                    "1.2.0&lt;b&gt; is refused on prod-1&lt;!here&gt; until the stack acknowledges it (complinist:acknowledgeRolledBack).",
            );
        });

        it("the hosts' status after a deploy or a rollback", async () => {
            inert(await posted({ kind: "completed", stack: "prod", version: "1.1.0", commit: "c", at: "t", hosts: `prod-1 1.1.0 healthy ${HOSTILE}` }));
            const text = await posted({ kind: "rolledBack", stack: "prod", from: "1.1.0", to: "1.0.0", commit: "c", at: "t", hosts: `prod-1 ${HOSTILE}` });
            inert(text);
            assert.ok(text.includes(`Status: prod-1 ${escaped}. Pulumi.prod.yaml must be committed`), text);
        });

        it("a value reads in the order it is written: bidi controls are dropped", async () => {
            const text = await posted({ kind: "completed", stack: "prod", version: "1.1.0", commit: "c", at: "t", hosts: "prod-1 \u202e0.1.1\u202c \u2066healthy\u2069" });
            assert.ok(text.includes("Status: prod-1 0.1.1 healthy."), text);
        });

        it("text without markup reads as before", () => {
            assert.strictEqual(notificationText(started), "Deployment started: CompliNist 1.1.0 to prod (commit 0123abc, 2025-01-01T10:00:00.000Z). Status: deploying.");
        });
    });

    it("reads the webhook from the stack's secret config path, and none when it is not set", async () => {
        const asked: string[] = [];
        const set = { getConfig: async (key: string, path?: boolean) => (asked.push(`${key} path=${String(path)}`), { value: "https://hooks.example.com/x" }) };
        assert.strictEqual(await webhookUrlOf(set), "https://hooks.example.com/x");
        assert.deepStrictEqual(asked, ["complinist:notify.webhookUrl path=true"]);
        const unset = { getConfig: async (): Promise<{ value: string }> => Promise.reject(new Error("configuration key 'complinist:notify.webhookUrl' not found")) };
        assert.strictEqual(await webhookUrlOf(unset), undefined);
    });
});
