import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { hostProgramPart } from "../../../infra/render/hostProgram";
import { q } from "../../../infra/render/shell";
import { runBash, status } from "./bash";
import { type RuntimeApi, SHOW_STAT_HEADER, startRuntimeApi } from "./runtimeApi";

/**
 * The error-rate watch's decisions (host/watch.sh), without Docker or a proxy: the verdict's
 * arithmetic, the counters read from a stand-in for HAProxy's runtime API (./runtimeApi.ts,
 * HAProxy 2.6's real CSV header), a watch window over simulated traffic, and the rolled-back
 * verdict read back from revisions.log. The whole activation with a canary runs in
 * ./activate.test.ts; on real hosts with real load in test/e2e/canary.test.ts.
 */

const PARTS = ["record", "health", "proxy", "watch"].map((p) => hostProgramPart(p as "record")).join("\n");

function program(dir: string, settings: Record<string, string | number> = {}): string {
    const vars = {
        SERVICE: "complinist",
        ACTIVATIONS_DIR: path.join(dir, "activations"),
        PROXY_RUN_DIR: path.join(dir, "run"),
        REVISIONS_LOG: path.join(dir, "revisions.log"),
        DEPLOY_LOG: path.join(dir, "deploy.log"),
        VERSION: "1.1.0",
        WATCH_FACTOR: 10,
        WATCH_MIN_REQUESTS: 20,
        WATCH_MAX_RATIO: 0.01,
        ...settings,
    };
    return ["set -euo pipefail", ...Object.entries(vars).map(([k, v]) => `${k}=${q(v)}`), PARTS].join("\n");
}

async function judge(newReq: number, newErr: number, prevReq: number, prevErr: number, settings: Record<string, string | number> = {}): Promise<{ verdict: string; figures: string }> {
    const r = await runBash(`${program(os.tmpdir(), settings)}\nwatch_judge ${newReq} ${newErr} ${prevReq} ${prevErr}`);
    assert.strictEqual(r.code, 0, r.stderr);
    const [verdict = "", figures = ""] = r.stdout.replace(/\n$/, "").split("\t");
    return { verdict, figures };
}

describe("error-rate watch: the verdict (watch_judge)", () => {
    it("trips a release failing 30% against a previous one at 0%: the absolute limit applies", async () => {
        const j = await judge(40, 12, 400, 0);
        assert.strictEqual(j.verdict, "trip");
        assert.match(j.figures, /^new 40 requests 12 errors \(30\.00%\), previous 400 requests 0 errors \(0\.00%\); limit 1\.00% \(10 x previous, maxErrorRatio\); minRequests 20$/);
    });

    it("passes a release as good as the previous one, and one under the absolute limit", async () => {
        assert.strictEqual((await judge(200, 0, 1800, 0)).verdict, "ok");
        assert.strictEqual((await judge(200, 2, 1800, 0)).verdict, "ok", "1% is not above 1%");
        assert.strictEqual((await judge(200, 3, 1800, 0)).verdict, "trip", "1.5% is");
    });

    it("compares with the previous ratio times errorRateFactor: 10x normal trips, 5x does not", async () => {
        // previous 2%: the limit is 20%.
        assert.strictEqual((await judge(100, 10, 1000, 20)).verdict, "ok");
        assert.strictEqual((await judge(100, 21, 1000, 20)).verdict, "trip");
        const j = await judge(100, 21, 1000, 20);
        assert.match(j.figures, /limit 20\.00% \(10 x previous\)/);
        assert.strictEqual((await judge(100, 11, 1000, 20, { WATCH_FACTOR: 5 })).verdict, "trip", "errorRateFactor 5: above 10%");
    });

    it("decides nothing below minRequests, however bad the figures", async () => {
        const j = await judge(19, 19, 1000, 0);
        assert.strictEqual(j.verdict, "few");
        assert.strictEqual((await judge(5, 5, 1000, 0, { WATCH_MIN_REQUESTS: 5 })).verdict, "trip");
    });

    it("does not compare with a previous release that had too few requests: the absolute limit alone", async () => {
        const j = await judge(100, 5, 10, 5);
        assert.strictEqual(j.verdict, "trip", "a previous 50% over 10 requests does not raise the limit");
        assert.match(j.figures, /previous 10 requests 5 errors \(too few to compare\); limit 1\.00% \(previous not comparable, maxErrorRatio\)/);
        assert.strictEqual((await judge(100, 0, 0, 0)).verdict, "ok", "nothing before (a first deploy's soak): judged by the limit alone");
    });
});

describe("error-rate watch: counters from the proxy's runtime API (stand-in)", function () {
    this.timeout(30000);
    let dir: string;
    let api: RuntimeApi | undefined;
    const config = () => path.join(dir, "haproxy.cfg");
    const sock = () => path.join(dir, "run", "admin.sock");

    beforeEach(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "watch-"));
        fs.mkdirSync(path.join(dir, "activations"));
        fs.writeFileSync(config(), "backend complinist\n    server i5001 127.0.0.1:5001 weight 90 cookie i5001\n    server i5002 127.0.0.1:5002 weight 10 cookie i5002\n");
    });
    afterEach(async () => {
        await api?.close();
        api = undefined;
        fs.rmSync(dir, { recursive: true, force: true });
    });

    it("reads requests and errors per instance server by the CSV header's names", async () => {
        api = await startRuntimeApi(sock(), config(), "complinist");
        api.traffic(5001, 90, 1);
        api.traffic(5002, 10, 3);
        const r = await runBash(`${program(dir)}\nproxy_counts; proxy_counts`);
        assert.strictEqual(r.code, 0, r.stderr);
        assert.deepStrictEqual(r.stdout.trim().split("\n"), ["5001 90 1", "5002 10 3", "5001 180 2", "5002 20 6"]);
    });

    it("reads another column order the same way, and nothing from a header without the counters it needs", async () => {
        const cols = SHOW_STAT_HEADER.replace(/^# /, "").split(",");
        api = await startRuntimeApi(sock(), config(), "complinist", { header: `# ${[...cols].reverse().join(",")}` });
        api.traffic(5002, 10, 3);
        assert.strictEqual((await runBash(`${program(dir)}\nproxy_counts`)).stdout, "5001 0 0\n5002 10 3\n");
        await api.close();
        api = await startRuntimeApi(sock(), config(), "complinist", { header: `# ${cols.filter((c) => c !== "hrsp_5xx").join(",")}` });
        api.traffic(5002, 10, 3);
        const r = await runBash(`${program(dir)}\n${status("proxy_counts")}`);
        assert.strictEqual(r.stdout, "rc=0\n", "no figures: the watch sees none rather than wrong ones");
    });

    it("a proxy that does not answer gives no counters, within its bound", async () => {
        const r = await runBash(`${program(dir)}\nout=$(proxy_counts); echo "[$out]"`);
        assert.strictEqual(r.stdout, "[]\n");
    });

    it("a window trips as soon as the new release is over the limit, with the figures of both", async () => {
        api = await startRuntimeApi(sock(), config(), "complinist");
        api.traffic(5001, 90, 0);
        api.traffic(5002, 10, 3);
        const r = await runBash(`${program(dir)}\nok() { return 0; }\nrc=0; watch_window canary 60 5002 5001 ok || rc=$?\necho "rc=$rc verdict=$W_VERDICT"; echo "$W_FIGURES"; cat ${q(path.join(dir, "activations", "watch.now"))}`);
        const [line, figures, now] = r.stdout.trim().split("\n");
        assert.strictEqual(line, "rc=1 verdict=trip", r.stderr);
        assert.match(figures ?? "", /^canary \d+s of 60s: new (20|30) requests (6|9) errors \(30\.00%\), previous (180|270) requests 0 errors \(0\.00%\); limit 1\.00%/);
        assert.match(now ?? "", /^phase=canary version=1\.1\.0 port=5002 verdict=trip canary \d+s of 60s: new/, "status reads the live figures from here");
    });

    it("a window over a good release passes at its end; one with too few requests says so and decides nothing", async () => {
        api = await startRuntimeApi(sock(), config(), "complinist");
        // Enough per read that one read after the base makes minRequests: a slow machine reads fewer times a second.
        api.traffic(5001, 180, 0);
        api.traffic(5002, 20, 0);
        const good = await runBash(`${program(dir)}\nok() { return 0; }\nrc=0; watch_window canary 1 5002 5001 ok || rc=$?\necho "rc=$rc verdict=$W_VERDICT"; echo "$W_FIGURES"`);
        assert.match(good.stdout, /^rc=0 verdict=ok\ncanary \d+s of 1s: new \d+ requests 0 errors/);
        api.traffic(5002, 1, 1);
        const few = await runBash(`${program(dir)}\nok() { return 0; }\nrc=0; watch_window canary 1 5002 5001 ok || rc=$?\necho "rc=$rc verdict=$W_VERDICT"; echo "$W_FIGURES"`);
        assert.match(few.stdout, /^rc=0 verdict=few\ntoo few requests to judge \(\d of minRequests 20\), nothing decided: canary \d+s of 1s: new \d requests \d errors/);
        assert.match(fs.readFileSync(path.join(dir, "deploy.log"), "utf8"), /watch undecided: too few requests to judge/);
    });

    it("a window whose check fails ends at once (2), and one without the runtime API says it read nothing", async () => {
        api = await startRuntimeApi(sock(), config(), "complinist");
        const failed = await runBash(`${program(dir)}\nbad() { SEEN="port 5002 is also held by pid 9"; return 1; }\nrc=0; watch_window canary 60 5002 5001 bad || rc=$?\necho "rc=$rc $SEEN"`);
        assert.strictEqual(failed.stdout, "rc=2 port 5002 is also held by pid 9\n");
        await api.close();
        api = undefined;
        const none = await runBash(`${program(dir)}\nok() { return 0; }\nrc=0; watch_window soak 1 5002 "" ok || rc=$?\necho "rc=$rc"; echo "$W_FIGURES"`);
        assert.match(none.stdout, /^rc=0\nsoak \d+s of 1s: the proxy's runtime API \(.*admin\.sock\) gave no counters\n$/);
    });

    it("requests the check sends through the proxy itself (the soak's probes) never count as the new release's", async () => {
        api = await startRuntimeApi(sock(), config(), "complinist");
        // Exactly one request per read: the probe's own, which the check counts.
        api.traffic(5002, 1, 0);
        const r = await runBash(`${program(dir, { WATCH_MIN_REQUESTS: 2 })}\nprobe_own() { W_OWN=$((W_OWN + 1)); }\nrc=0; watch_window soak 2 5002 "" probe_own || rc=$?\necho "rc=$rc verdict=$W_VERDICT new=$W_NEW_REQ"`);
        assert.match(r.stdout, /^rc=0 verdict=few new=[01]\n/, r.stderr);
    });

    it("the soak compares with the previous release's figures from before the switch (watch_previous)", async () => {
        api = await startRuntimeApi(sock(), config(), "complinist");
        api.traffic(5001, 100, 5);
        // previous at 5%: a new release at 30% is under 10 x 5%.
        const r = await runBash(`${program(dir)}\nok() { return 0; }\nwatch_previous 5001\necho "prev=$W_PREV_REQ/$W_PREV_ERR"`);
        assert.strictEqual(r.stdout, "prev=100/5\n");
    });
});

describe("error-rate watch: the rolled-back verdict in revisions.log (rolled_back_verdict)", () => {
    let dir: string;
    beforeEach(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "watch-log-"));
    });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    const line = (version: string, outcome: string, at = "2026-12-06T10:00:00Z") => `${at}\tversion=${version}\tsha256=abc\tby=ci\t${outcome}\n`;
    const verdict = async (version: string) => {
        const r = await runBash(`${program(dir)}\n${status(`rolled_back_verdict ${q(version)}`)}`);
        return r.stdout;
    };

    it("names the watch's figures when the version's last outcome is a watch rollback", async () => {
        fs.writeFileSync(
            path.join(dir, "revisions.log"),
            line("1.1.0", "outcome=activated previous=1.0.0") + line("1.2.0", "outcome=rolled-back reason=watch live=1.1.0 serving=1.1.0 seen=canary 4s of 60s: new 40 requests 12 errors (30.00%)", "2026-12-06T11:00:00Z"),
        );
        assert.strictEqual(await verdict("1.2.0"), "2026-12-06T11:00:00Z live=1.1.0 serving=1.1.0 seen=canary 4s of 60s: new 40 requests 12 errors (30.00%)\nrc=0\n");
        assert.strictEqual(await verdict("1.1.0"), "rc=1\n");
        assert.strictEqual(await verdict("1.3.0"), "rc=1\n");
    });

    it("a later activation of the version (acknowledged) clears it; a refusal or a failed gate does not", async () => {
        const rolled = line("1.2.0", "outcome=rolled-back reason=watch seen=x");
        fs.writeFileSync(path.join(dir, "revisions.log"), rolled + line("1.2.0", "outcome=refused reason=watch-rolled-back") + line("1.2.0", "outcome=failed reason=health-gate"));
        assert.match(await verdict("1.2.0"), /rc=0\n$/);
        fs.appendFileSync(path.join(dir, "revisions.log"), line("1.2.0", "outcome=activated previous=1.1.0"));
        assert.strictEqual(await verdict("1.2.0"), "rc=1\n");
    });

    it("only root's own fields count: a release's text in another field or version never reads as a verdict", async () => {
        fs.writeFileSync(
            path.join(dir, "revisions.log"),
            line("1.2.0", "outcome=failed reason=health-gate seen=outcome=rolled-back reason=watch") +
                line("1.2.0x", "outcome=rolled-back reason=watch seen=x") +
                line("1.2.0", "outcome=failed-rolled-back reason=soak") +
                "garbage\tversion=1.2.0\toutcome=rolled-back reason=watch\n",
        );
        assert.strictEqual(await verdict("1.2.0"), "rc=1\n");
    });

    it("a host without revisions.log has no verdict", async () => {
        assert.strictEqual(await verdict("1.2.0"), "rc=1\n");
    });
});
