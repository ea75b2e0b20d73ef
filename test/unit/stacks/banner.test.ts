import * as assert from "assert";
import { bannerData, renderBanner, type BannerData } from "../../../stacks/banner";
import { parseStackConfig } from "../../../stacks/config";
import { deployCommit, sourceInfo, type GitRunner } from "../../../stacks/source";

const SHA = "a".repeat(64);
const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMHZNMVhu73rtnkCVV1dnWn09B3L5W/ZVMUBqhTkSJws";

const PROD: BannerData = {
    stack: "prod",
    production: true,
    mode: "release",
    version: "1.1.0",
    commit: "5407e1a3e97ff9be5d0df28c80edd261c7473122",
    branch: "main",
    tag: "v1.1.0",
    hosts: [
        { name: "prod-1", address: "prod-1.complinist.example", port: 22, user: "deploy" },
        { name: "prod-2", address: "prod-2.complinist.example", port: 2222, user: "deploy" },
    ],
    rollbackVersion: "1.0.0",
    batchSize: 1,
    promoteFrom: "staging",
    canary: { percent: 10, seconds: 60 },
    watch: { errorRateFactor: 10, minRequests: 20, maxErrorRatio: 0.01 },
    soakSeconds: 30,
};

/** A git that answers from a table and fails (undefined) for anything else. */
function fakeGit(answers: Record<string, string>): GitRunner & { asked: string[] } {
    const asked: string[] = [];
    const run = (args: string[]) => {
        asked.push(args.join(" "));
        return answers[args.join(" ")];
    };
    return Object.assign(run, { asked });
}

describe("deployment banner", () => {
    it("renders the production summary an operator checks before confirming", () => {
        assert.strictEqual(
            renderBanner(PROD),
            [
                "CompliNist deployment: stack prod (PRODUCTION)",
                "  version       1.1.0",
                "  commit        5407e1a3e97ff9be5d0df28c80edd261c7473122",
                "  branch        main",
                "  tag           v1.1.0",
                "  mode          release",
                "  rollback to   1.0.0 (npm run rollback -- --stack prod)",
                "  batch size    1 of 2 hosts (2 batches)",
                "  canary        10% of new requests for 60s after the gate, then the full switch",
                "  watch         switch back when the new release's error ratio is above 10 x the previous one's and above 1.00%, over at least 20 requests (canary 60s, soak 30s)",
                "  promote from  staging (only a version it runs healthy)",
                "  hosts",
                "    prod-1  deploy@prod-1.complinist.example:22",
                "    prod-2  deploy@prod-2.complinist.example:2222",
            ].join("\n"),
        );
    });

    it("says so when no tag, no rollback target and no promotion apply", () => {
        const text = renderBanner({ ...PROD, stack: "dev", production: false, tag: undefined, rollbackVersion: undefined, promoteFrom: undefined, batchSize: 2 });
        assert.match(text, /^CompliNist deployment: stack dev\n/);
        assert.match(text, /tag {11}none/);
        assert.match(text, /rollback to {3}none pinned/);
        assert.match(text, /batch size {4}2 of 2 hosts \(1 batch\)/);
        assert.doesNotMatch(text, /promote from/);
        assert.doesNotMatch(text, /PRODUCTION/);
    });

    it("says when no canary runs, when only one of canary and soak is watched, and when the watch has nothing to watch", () => {
        const rowsOf = (over: Partial<BannerData>) => renderBanner({ ...PROD, ...over }).split("\n").filter((l) => /^ {2}(canary|watch) /.test(l));
        assert.deepStrictEqual(rowsOf({ canary: undefined }), [
            "  canary        none (the full switch after the gate)",
            "  watch         switch back when the new release's error ratio is above 10 x the previous one's and above 1.00%, over at least 20 requests (no canary, soak 30s)",
        ]);
        assert.deepStrictEqual(rowsOf({ soakSeconds: 0, watch: { errorRateFactor: 2.5, minRequests: 100, maxErrorRatio: 0.005 } }), [
            "  canary        10% of new requests for 60s after the gate, then the full switch",
            "  watch         switch back when the new release's error ratio is above 2.5 x the previous one's and above 0.50%, over at least 100 requests (canary 60s, soak 0s)",
        ]);
        assert.deepStrictEqual(rowsOf({ canary: undefined, soakSeconds: 0 }), ["  canary        none (the full switch after the gate)", "  watch         off: nothing to watch (no canary, soak 0s)"]);
    });

    it("takes commit, branch and tag from GitLab CI's variables without asking git", () => {
        const git = fakeGit({});
        const s = sourceInfo({ CI_COMMIT_SHA: "abc123", CI_COMMIT_REF_NAME: "release-1.1", CI_COMMIT_TAG: "v1.1.0" }, git);
        assert.deepStrictEqual(s, { commit: "abc123", branch: "release-1.1", tag: "v1.1.0" });
        assert.deepStrictEqual(git.asked, []);
    });

    it("treats an empty CI_COMMIT_TAG as 'no tag' rather than asking git", () => {
        const git = fakeGit({ "describe --tags --exact-match HEAD": "v9" });
        assert.strictEqual(sourceInfo({ CI_COMMIT_SHA: "abc", CI_COMMIT_REF_NAME: "main", CI_COMMIT_TAG: "" }, git).tag, undefined);
    });

    it("falls back to git outside CI, and to 'unknown' without git or on a detached HEAD", () => {
        const git = fakeGit({ "rev-parse HEAD": "deadbeef", "rev-parse --abbrev-ref HEAD": "feature-x", "describe --tags --exact-match HEAD": "v2.0.0" });
        assert.deepStrictEqual(sourceInfo({}, git), { commit: "deadbeef", branch: "feature-x", tag: "v2.0.0" });
        assert.deepStrictEqual(sourceInfo({}, fakeGit({ "rev-parse --abbrev-ref HEAD": "HEAD" })), { commit: "unknown", branch: "unknown" });
    });

    it("looks the commit up one way for the banner and the activation: COMPLINIST_COMMIT, CI_COMMIT_SHA, git, 'unknown'", () => {
        const git = fakeGit({ "rev-parse HEAD": "deadbeef" });
        const cases: Array<[Record<string, string>, string]> = [
            [{ COMPLINIST_COMMIT: "override", CI_COMMIT_SHA: "abc123" }, "override"],
            [{ COMPLINIST_COMMIT: "", CI_COMMIT_SHA: "abc123" }, "abc123"],
            [{ CI_COMMIT_SHA: "" }, "deadbeef"],
        ];
        for (const [env, commit] of cases) {
            assert.strictEqual(deployCommit(env, git), commit, JSON.stringify(env));
            assert.strictEqual(sourceInfo(env, git).commit, commit, JSON.stringify(env));
        }
        assert.strictEqual(deployCommit({}, fakeGit({})), "unknown");
    });

    describe("the hook row", () => {
        const MIGRATE = "bin/migrate --dsn postgres://app:hunter2-db@db/app";
        const withHook = (hooks: Record<string, unknown>, secretKeys: string[]) =>
            parseStackConfig(
                "staging",
                {
                    "complinist:version": "1.1.0",
                    "complinist:releases": JSON.stringify({ "1.1.0": { url: "https://x.example/1.1.0.tar.gz", sha256: SHA } }),
                    "complinist:hosts": JSON.stringify([{ name: "s-1", address: "10.0.0.3", hostKey: KEY }]),
                    "complinist:sshPrivateKey": "k",
                    "complinist:service": JSON.stringify({ command: "bin/start" }),
                    "complinist:hooks": JSON.stringify(hooks),
                },
                secretKeys,
            );
        const hookRow = (text: string) => text.split("\n").filter((l) => l.startsWith("  hook "));

        it("shows the hook command, where and how long it runs", () => {
            const text = renderBanner(bannerData(withHook({ beforeActivate: "bin/migrate", once: true }, []), { commit: "c", branch: "b" }));
            assert.deepStrictEqual(hookRow(text), ["  hook          bin/migrate (before the switch, on the first host only, at most 600s; not on a rollback)"]);
        });

        it("shows a hook set with --secret as [secret], never its text", () => {
            const d = bannerData(withHook({ beforeActivate: MIGRATE, onRollback: true, timeoutSeconds: 60 }, ["complinist:hooks"]), { commit: "c", branch: "b" });
            const text = renderBanner(d);
            assert.deepStrictEqual(hookRow(text), ["  hook          [secret] (before the switch, on every host, at most 60s; on a rollback too)"]);
            assert.ok(!JSON.stringify(d).includes("hunter2"), "the banner's data never holds the secret");
        });

        it("has no hook row without a hook", () => {
            assert.deepStrictEqual(hookRow(renderBanner(bannerData(withHook({}, []), { commit: "c", branch: "b" }))), []);
            assert.deepStrictEqual(hookRow(renderBanner(PROD)), []);
        });
    });

    it("is built from the validated config: hosts with their addresses, batch size after defaults", () => {
        const cfg = parseStackConfig("prod", {
            "complinist:version": "1.1.0",
            "complinist:rollbackVersion": "1.0.0",
            "complinist:promoteFrom": "staging",
            "complinist:releases": JSON.stringify({ "1.0.0": { url: "https://x.example/1.0.0.tar.gz", sha256: SHA }, "1.1.0": { url: "https://x.example/1.1.0.tar.gz", sha256: SHA } }),
            "complinist:hosts": JSON.stringify([
                { name: "prod-1", address: "10.0.0.1", user: "deploy", hostKey: KEY },
                { name: "prod-2", address: "10.0.0.2", hostKey: KEY },
            ]),
            "complinist:sshPrivateKey": "k",
            "complinist:service": JSON.stringify({ command: "bin/start" }),
        });
        const d = bannerData(cfg, { commit: "c", branch: "b" });
        assert.strictEqual(d.batchSize, 1, "prod defaults to one host per batch");
        assert.deepStrictEqual(d.hosts, [
            { name: "prod-1", address: "10.0.0.1", port: 22, user: "deploy" },
            { name: "prod-2", address: "10.0.0.2", port: 22, user: "root" },
        ]);
        const text = renderBanner(d);
        assert.match(text, /\(PRODUCTION\)/);
        assert.match(text, /rollback to {3}1\.0\.0/);
        assert.match(text, /\n {2}canary {8}none \(the full switch after the gate\)\n/, "no complinist:canary: no canary");
        assert.match(text, /\n {2}watch {9}off: nothing to watch \(no canary, soak 0s\)\n/, "the watch's defaults with health.soakSeconds 0");
        const canaried = bannerData(
            parseStackConfig("staging", {
                "complinist:version": "1.1.0",
                "complinist:releases": JSON.stringify({ "1.1.0": { url: "https://x.example/1.1.0.tar.gz", sha256: SHA } }),
                "complinist:hosts": JSON.stringify([{ name: "s-1", address: "10.0.0.3", hostKey: KEY }]),
                "complinist:sshPrivateKey": "k",
                "complinist:service": JSON.stringify({ command: "bin/start" }),
                "complinist:health": JSON.stringify({ soakSeconds: 15 }),
                "complinist:canary": JSON.stringify({ percent: 5, seconds: 120 }),
                "complinist:watch": JSON.stringify({ minRequests: 50 }),
            }),
            { commit: "c", branch: "b" },
        );
        assert.deepStrictEqual([canaried.canary, canaried.watch, canaried.soakSeconds], [{ percent: 5, seconds: 120 }, { errorRateFactor: 10, minRequests: 50, maxErrorRatio: 0.01 }, 15]);
        assert.ok(!text.includes("sshPrivateKey") && !text.includes(" k\n"), "no secret in the banner");
    });
});
