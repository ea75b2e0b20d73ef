// .gitlab-ci.yml mirrors the runbook. gitlab-ci-local (which could lint it by running GitLab's
// own job model) needs Node >= 22 (it fails at startup on Node 20, this project's floor), so the
// file is checked here against the keywords of GitLab's CI/CD YAML reference
// (https://docs.gitlab.com/ci/yaml/) and the job graph is asserted from the parsed YAML.
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";

/** Global keywords of the reference; every other top-level key is a job (or a hidden `.template`). */
const GLOBAL_KEYWORDS = ["default", "include", "stages", "variables", "workflow"];
/** Job keywords of the reference. */
const JOB_KEYWORDS = [
    "after_script", "allow_failure", "artifacts", "before_script", "cache", "coverage", "dast_configuration", "dependencies",
    "environment", "except", "extends", "hooks", "id_tokens", "identity", "image", "inherit", "interruptible", "manual_confirmation",
    "needs", "only", "pages", "parallel", "release", "resource_group", "retry", "rules", "script", "secrets", "services", "stage",
    "tags", "timeout", "trigger", "variables", "when",
];
const SUBKEYS: Record<string, string[]> = {
    environment: ["name", "url", "on_stop", "action", "auto_stop_in", "kubernetes", "deployment_tier"],
    artifacts: ["paths", "exclude", "expire_in", "expose_as", "name", "public", "access", "reports", "untracked", "when"],
    rule: ["if", "changes", "exists", "allow_failure", "needs", "variables", "when", "interruptible"],
};
const WHEN = ["on_success", "on_failure", "never", "always", "manual", "delayed"];
const ENVIRONMENT_ACTIONS = ["start", "prepare", "stop", "verify", "access"];

interface Rule {
    if?: string;
    when?: string;
    allow_failure?: boolean;
}

interface Job {
    stage?: string;
    extends?: string | string[];
    needs?: Array<string | { job: string }>;
    rules?: Rule[];
    when?: string;
    allow_failure?: boolean;
    only?: unknown;
    except?: unknown;
    environment?: string | { name: string; url?: string; action?: string; deployment_tier?: string };
    resource_group?: string;
    script?: string[];
    before_script?: string[];
    artifacts?: { paths?: string[]; when?: string; expose_as?: string; reports?: { dotenv?: string } };
    image?: string;
    tags?: string[];
    variables?: Record<string, string>;
    cache?: unknown;
}

const file = path.join(__dirname, "..", "..", ".gitlab-ci.yml");
const doc = YAML.parse(fs.readFileSync(file, "utf8")) as Record<string, unknown>;

/** Problems with one job's keys (unknown keywords and sub-keys, bad values); [] when valid. */
function keywordProblems(name: string, job: Record<string, unknown>): string[] {
    const problems: string[] = [];
    for (const k of Object.keys(job)) if (!JOB_KEYWORDS.includes(k)) problems.push(`${name}: unknown job keyword '${k}'`);
    const env = job.environment;
    if (env !== null && typeof env === "object") {
        for (const k of Object.keys(env)) if (!SUBKEYS.environment?.includes(k)) problems.push(`${name}: unknown environment keyword '${k}'`);
        const action = (env as { action?: string }).action;
        if (action !== undefined && !ENVIRONMENT_ACTIONS.includes(action)) problems.push(`${name}: environment:action '${action}'`);
    }
    const artifacts = job.artifacts;
    if (artifacts !== null && typeof artifacts === "object") for (const k of Object.keys(artifacts)) if (!SUBKEYS.artifacts?.includes(k)) problems.push(`${name}: unknown artifacts keyword '${k}'`);
    for (const r of (job.rules as Rule[] | undefined) ?? []) {
        for (const k of Object.keys(r)) if (!SUBKEYS.rule?.includes(k)) problems.push(`${name}: unknown rules keyword '${k}'`);
        if (r.when !== undefined && !WHEN.includes(r.when)) problems.push(`${name}: rules:when '${r.when}'`);
    }
    if (typeof job.when === "string" && !WHEN.includes(job.when)) problems.push(`${name}: when '${job.when}'`);
    return problems;
}

const jobNames = Object.keys(doc).filter((k) => !GLOBAL_KEYWORDS.includes(k) && !k.startsWith("."));

/** A job as GitLab runs it: its `extends` chain merged under it (hashes deep, everything else replaced). */
function job(name: string): Job {
    const own = doc[name] as Record<string, unknown> | undefined;
    assert.ok(own, `job ${name} is missing`);
    const parents = own.extends === undefined ? [] : Array.isArray(own.extends) ? (own.extends as string[]) : [own.extends as string];
    const merge = (base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> => {
        const out = { ...base };
        for (const [k, v] of Object.entries(over)) {
            const b = out[k];
            out[k] = v !== null && typeof v === "object" && !Array.isArray(v) && b !== null && typeof b === "object" && !Array.isArray(b) ? merge(b as Record<string, unknown>, v as Record<string, unknown>) : v;
        }
        return out;
    };
    let merged: Record<string, unknown> = {};
    for (const p of parents) merged = merge(merged, job(p) as Record<string, unknown>);
    return merge(merged, own) as Job;
}

/** A job's commands with the before_script GitLab uses (the job's, else default's). */
function commands(name: string): string[] {
    const j = job(name);
    return [...(j.before_script ?? (doc.default as Job).before_script ?? []), ...(j.script ?? [])];
}

function needs(name: string): string[] {
    return (job(name).needs ?? []).map((n) => (typeof n === "string" ? n : n.job));
}

function environment(name: string): { name?: string; url?: string; action?: string; deployment_tier?: string } {
    const e = job(name).environment;
    return typeof e === "string" ? { name: e } : e ?? {};
}

interface Pipeline {
    branch?: string;
    tag?: string;
    source?: string;
    /** CI_COMMIT_REF_PROTECTED: the ref is a protected branch or tag (GitLab sets "true" or "false"). */
    protected?: boolean;
}

/**
 * A rules:if expression of the forms used here, evaluated for one pipeline: `$VAR == "x"`,
 * `$VAR != "x"`, `$VAR` (set and not empty), `&&` before `||`, parentheses. Any other variable or
 * syntax fails the test rather than guess.
 */
function holds(expr: string, pipeline: Pipeline, where: string): boolean {
    const vars: Record<string, string | undefined> = {
        CI_PIPELINE_SOURCE: pipeline.source ?? "push",
        CI_COMMIT_BRANCH: pipeline.branch,
        CI_COMMIT_TAG: pipeline.tag,
        CI_COMMIT_REF_PROTECTED: pipeline.protected === true ? "true" : "false",
    };
    const tokens = expr.match(/\$\w+|"[^"]*"|==|!=|&&|\|\||\(|\)|\S+/g) ?? [];
    let at = 0;
    const fail = (): never => assert.fail(`unexpected rule in ${where}: ${expr}`);
    const operand = (): boolean => {
        const t = tokens[at++];
        if (t === "(") {
            const v = or();
            if (tokens[at++] !== ")") fail();
            return v;
        }
        if (t === undefined || !t.startsWith("$") || !(t.slice(1) in vars)) return fail();
        const value = vars[t.slice(1)];
        const op = tokens[at];
        if (op === "==" || op === "!=") {
            const lit = tokens[at + 1] ?? "";
            if (!/^"[^"]*"$/.test(lit)) fail();
            at += 2;
            return (value === lit.slice(1, -1)) === (op === "==");
        }
        return value !== undefined && value !== "";
    };
    const and = (): boolean => {
        let v = operand();
        while (tokens[at] === "&&") {
            at++;
            v = operand() && v;
        }
        return v;
    };
    const or = (): boolean => {
        let v = and();
        while (tokens[at] === "||") {
            at++;
            v = and() || v;
        }
        return v;
    };
    const v = or();
    if (at !== tokens.length) fail();
    return v;
}

/** Evaluates a job's rules for one pipeline: GitLab's first matching rule decides. */
function decide(name: string, pipeline: Pipeline): { when: string; allowFailure: boolean } {
    const j = job(name);
    for (const r of j.rules ?? []) {
        if (r.if === undefined || holds(r.if, pipeline, name)) {
            const when = r.when ?? j.when ?? "on_success";
            // GitLab: a manual job is allowed to fail by default only without rules.
            return { when, allowFailure: r.allow_failure ?? j.allow_failure ?? false };
        }
    }
    return { when: j.rules === undefined ? j.when ?? "on_success" : "never", allowFailure: j.allow_failure ?? false };
}
const whenFor = (name: string, pipeline: Pipeline) => decide(name, pipeline).when;

const DEPLOYS: Record<string, { stack: string; environment: string; url: RegExp }> = {
    "deploy:dev": { stack: "dev", environment: "dev", url: /^https:\/\/dev\./ },
    "deploy:staging": { stack: "staging", environment: "staging", url: /^https:\/\/staging\./ },
    "deploy:production": { stack: "prod", environment: "production", url: /^https:\/\/complinist\./ },
    "rollback:production": { stack: "prod", environment: "production", url: /^https:\/\/complinist\./ },
};
const DRIFT: Record<string, { stack: string; environment: string }> = {
    "drift:dev": { stack: "dev", environment: "dev" },
    "drift:staging": { stack: "staging", environment: "staging" },
    "drift:production": { stack: "prod", environment: "production" },
};
const JOBS = ["validate", "test", "build", "publish", "preview:production", ...Object.keys(DEPLOYS), ...Object.keys(DRIFT)];
const MANUAL = ["deploy:staging", "deploy:production", "rollback:production"];
/** Jobs that hold deploy credentials (the backend, its passphrase, the registry's write token): protected refs and the deploy runners only. */
const CREDENTIALED = ["publish", "preview:production", ...Object.keys(DEPLOYS), ...Object.keys(DRIFT)];
const DEPLOY_RUNNER_TAG = "complinist-deploy";
const MAIN: Pipeline = { branch: "main", protected: true };
const TAG: Pipeline = { tag: "v1.1.0", protected: true };
const SCHEDULE: Pipeline = { branch: "main", source: "schedule", protected: true };
/** Pipelines of code nobody with deploy rights reviewed yet: a branch, a tag anyone may push, a merge request (GitLab sets no CI_COMMIT_BRANCH there). */
const UNREVIEWED: Record<string, Pipeline> = {
    "a feature branch": { branch: "feature-x", protected: false },
    "an unprotected branch named main-ish": { branch: "main", protected: false },
    "an unprotected tag": { tag: "v9.9.9", protected: false },
    "a merge request": { source: "merge_request_event", protected: false },
    "a merge request from a protected branch": { source: "merge_request_event", protected: true },
    "an unprotected schedule": { branch: "feature-x", source: "schedule", protected: false },
};
/** A shell line that runs what it downloads: `curl … | sh`, `wget -O- … | bash`. */
const PIPE_TO_SHELL = /\b(curl|wget)\b[^|]*\|\s*(sudo\s+)?(ba|z|da)?sh\b/;

describe(".gitlab-ci.yml", () => {
    it("uses only keywords of GitLab's CI/CD YAML reference, in every job and template", () => {
        const problems = Object.keys(doc)
            .filter((k) => !GLOBAL_KEYWORDS.includes(k))
            .flatMap((k) => keywordProblems(k, doc[k] as Record<string, unknown>));
        assert.deepStrictEqual(problems, []);
    });

    it("refuses what GitLab would refuse: an unknown job key, environment key or when", () => {
        assert.deepStrictEqual(keywordProblems("j", { script: ["x"], allowfailure: true }), ["j: unknown job keyword 'allowfailure'"]);
        assert.deepStrictEqual(keywordProblems("j", { environment: { name: "x", URL: "y" } }), ["j: unknown environment keyword 'URL'"]);
        assert.deepStrictEqual(keywordProblems("j", { rules: [{ if: "$X", when: "manually" }] }), ["j: rules:when 'manually'"]);
        assert.deepStrictEqual(keywordProblems("j", { artifacts: { report: { dotenv: "x" } } }), ["j: unknown artifacts keyword 'report'"]);
    });

    it("runs the stages validate → test → build → deploy → verify, each job in its stage, no job beyond the runbook's", () => {
        assert.deepStrictEqual(doc.stages, ["validate", "test", "build", "deploy", "verify"]);
        const stages: Record<string, string> = { validate: "validate", test: "test", build: "build", publish: "build", ...Object.fromEntries(Object.keys(DRIFT).map((d) => [d, "verify"])) };
        for (const name of JOBS) assert.strictEqual(job(name).stage, stages[name] ?? "deploy", name);
        assert.deepStrictEqual([...jobNames].sort(), [...JOBS].sort());
        for (const name of jobNames) for (const n of needs(name)) assert.ok(jobNames.includes(n), `${name} needs unknown job ${n}`);
    });

    it("runs every job on a Node 20 image and never uses only/except", () => {
        assert.match((doc.default as Job).image ?? "", /^node:20/);
        for (const name of JOBS) {
            assert.strictEqual(job(name).image, undefined, `${name} overrides the image`);
            assert.strictEqual(job(name).only, undefined);
            assert.strictEqual(job(name).except, undefined);
        }
    });

    it("validates with npm ci, lint and the type check; tests with npm test", () => {
        const v = commands("validate").join("\n");
        assert.match(v, /npm ci/);
        assert.match(v, /npm run lint/);
        assert.match(v, /npm run typecheck|tsc --noEmit/);
        assert.match(commands("test").join("\n"), /bash \.ci\/run/);
        assert.match(fs.readFileSync(path.join(path.dirname(file), ".ci", "run"), "utf8"), /^npm test$/m, ".ci/run ends in the README's test command");
    });

    it("builds the artifacts and writes SHA256SUMS in every pipeline but publishes nothing itself; its own job id goes to the publish job", () => {
        const b = commands("build").join("\n");
        assert.match(b, /npm run artifacts/);
        assert.match(b, /\(cd \.build\/artifacts && sha256sum complinist-\*\.tar\.gz > SHA256SUMS\)/);
        assert.deepStrictEqual(job("build").artifacts?.paths, [".build/artifacts/"]);
        assert.ok(!b.includes("publish-artifacts.sh"), "the build job runs merge-request code too: it never holds the registry's write access");
        assert.match(b, /echo "BUILD_JOB_ID=\$CI_JOB_ID" > build\.env/);
        assert.strictEqual(job("build").artifacts?.reports?.dotenv, "build.env", "BUILD_JOB_ID reaches the jobs that need build");
    });

    it("publishes from a job of its own, on main and protected tags, with the SHA256SUMS of the build job's artifact after rebuilding it to the same bytes", () => {
        assert.deepStrictEqual(needs("publish"), ["build"], "publish takes build's artifact (.build/artifacts/, SHA256SUMS included)");
        assert.strictEqual(job("publish").stage, "build");
        const p = (job("publish").script ?? []).filter((l) => !l.startsWith("#"));
        const rebuild = p.findIndex((l) => /npm run artifacts -- \.build\/rebuilt/.test(l));
        const compare = p.findIndex((l) => /sha256sum complinist-\*\.tar\.gz\) \| diff -u \.build\/artifacts\/SHA256SUMS -/.test(l));
        const publish = p.findIndex((l) => l === "bash scripts/publish-artifacts.sh .build/artifacts");
        assert.ok(rebuild >= 0 && compare > rebuild && publish > compare, `publish rebuilds, compares with the build job's SHA256SUMS, then publishes: ${p.join(" / ")}`);
        assert.strictEqual(whenFor("publish", MAIN), "on_success");
        assert.strictEqual(whenFor("publish", TAG), "on_success");
        for (const name of ["deploy:dev", "deploy:staging"]) assert.deepStrictEqual(needs(name), ["publish"], `${name} after the artifacts are published`);
        assert.ok(fs.existsSync(path.join(path.dirname(file), "scripts", "publish-artifacts.sh")));
    });

    it("runs deploy, preview, publish, rollback and drift jobs only for protected refs, never for unreviewed code", () => {
        for (const name of CREDENTIALED) {
            for (const r of job(name).rules ?? []) {
                if (r.when === "never") continue;
                assert.match(r.if ?? "", /^\$CI_COMMIT_REF_PROTECTED == "true" && /, `${name}: every rule that runs it starts with the protected-ref condition (${r.if ?? "no if"})`);
            }
            for (const [what, pipeline] of Object.entries(UNREVIEWED)) assert.strictEqual(whenFor(name, pipeline), "never", `${name} in ${what}`);
        }
        assert.strictEqual(whenFor("deploy:dev", { branch: "main", protected: false }), "never");
        assert.deepStrictEqual(decide("deploy:staging", { tag: "v1.1.0", protected: false }), { when: "never", allowFailure: false });
    });

    it(`runs the credentialed jobs on the deploy runners only (tags: [${DEPLOY_RUNNER_TAG}]); no job that runs for unreviewed code carries that tag`, () => {
        for (const name of CREDENTIALED) assert.deepStrictEqual(job(name).tags, [DEPLOY_RUNNER_TAG], `${name} runs on a deploy runner, and on nothing else`);
        for (const name of jobNames.filter((n) => !CREDENTIALED.includes(n))) {
            assert.ok(!(job(name).tags ?? []).includes(DEPLOY_RUNNER_TAG), `${name} carries ${DEPLOY_RUNNER_TAG}`);
            assert.ok(Object.values(UNREVIEWED).some((p) => whenFor(name, p) !== "never"), `${name} is not a credentialed job, so it runs for merge requests too`);
        }
        for (const [what, pipeline] of Object.entries(UNREVIEWED)) {
            for (const name of jobNames.filter((n) => whenFor(n, pipeline) !== "never")) assert.ok(!(job(name).tags ?? []).includes(DEPLOY_RUNNER_TAG), `${name} runs in ${what} on a deploy runner`);
        }
        assert.deepStrictEqual(job("test").tags, ["privileged"], "the privileged runner is the test job's, which runs merge-request code");
    });

    it("builds the Pulumi CLI with npm run toolchain before every job that runs it, and pipes no download into a shell", () => {
        for (const name of [...Object.keys(DEPLOYS), "preview:production", ...Object.keys(DRIFT)]) {
            const c = commands(name);
            const install = c.findIndex((l) => /^npm run toolchain$/.test(l));
            const firstPulumi = c.findIndex((l) => /(^|')pulumi (up|preview|login)|npm run (--silent )?(deploy|rollback|drift|preview)/.test(l));
            assert.ok(firstPulumi >= 0, `${name} runs no pulumi command`);
            assert.ok(install >= 0 && install < firstPulumi, `${name} runs pulumi before building it`);
            assert.ok(c.some((l) => /npm ci/.test(l)), `${name} lacks npm ci (the program needs its dependencies)`);
        }
        const everyLine = Object.values(doc).flatMap((v) => {
            const j = v as Job | null;
            return j !== null && typeof j === "object" ? [...(j.before_script ?? []), ...(j.script ?? [])] : [];
        });
        assert.ok(everyLine.length > 20);
        assert.deepStrictEqual(everyLine.filter((l) => PIPE_TO_SHELL.test(l) || /get\.pulumi\.com/.test(l)), [], "no installer runs unchecked");
        assert.ok(PIPE_TO_SHELL.test("curl -fsSL https://get.pulumi.com | sh -s -- --version 3.270.0"));
    });

    it("keeps the toolchain build between the credentialed jobs in a cache keyed by its pins, apart from the npm cache", () => {
        const caches = job(".pulumi").cache as Array<{ key: { files: string[] }; paths: string[] }>;
        assert.ok(Array.isArray(caches), ".pulumi lists its caches");
        assert.deepStrictEqual(caches.map((c) => c.key.files), [["package-lock.json"], ["toolchain/go.mod", "toolchain/go.sum"]]);
        assert.deepStrictEqual(caches[1]?.paths, [".build/toolchain-cache/"], "under .build/: ignored by git and eslint");
        assert.match(job(".pulumi").variables?.COMPLINIST_TOOLCHAIN_CACHE ?? "", /^\$CI_PROJECT_DIR\/\.build\/toolchain-cache\//);
    });

    it("tells how to set up what the file cannot enforce: protected variables and a protected deploy runner (README, docs/operations.md)", () => {
        const readme = fs.readFileSync(path.join(path.dirname(file), "README.md"), "utf8");
        const ops = fs.readFileSync(path.join(path.dirname(file), "docs", "operations.md"), "utf8");
        for (const [name, text] of [["README.md", readme], ["docs/operations.md", ops]] as const) {
            assert.ok(text.includes(DEPLOY_RUNNER_TAG), `${name} names the runner tag`);
            assert.match(text, /[Pp]rotected runner|runner[^.]*\bprotected\b/, `${name}: the deploy runner is registered as protected`);
            assert.match(text, /every CI\/CD variable[^.]*protected|protected[^.]*every CI\/CD variable/i, `${name}: every variable, dev and staging too, is protected`);
        }
        const header = fs.readFileSync(file, "utf8").split("\n").filter((l) => l.startsWith("#")).join("\n");
        assert.match(header, /complinist-deploy/);
        assert.match(header, /all of them protected/);
    });

    it("deploys every environment through the deploy helper, which ends the log with the deploy record, saved as a dotenv report", () => {
        for (const [name, d] of Object.entries(DEPLOYS)) {
            const helper = name.startsWith("rollback") ? "rollback" : "deploy";
            assert.deepStrictEqual(job(name).script?.filter((l) => !l.startsWith("#")).slice(-1), [`npm run --silent ${helper} -- --stack ${d.stack} --yes --dotenv deploy.env`], name);
            assert.strictEqual(job(name).artifacts?.reports?.dotenv, "deploy.env", `${name} saves DEPLOYED_* as a dotenv report`);
            assert.strictEqual(job(name).artifacts?.when, "always", `${name} keeps the record of a failed deploy too`);
        }
    });

    it("gives every environment its name, url and resource group; production jobs share one", () => {
        const all: Record<string, { environment: string; url?: RegExp }> = { ...DEPLOYS, ...DRIFT, "preview:production": { environment: "production" } };
        for (const [name, d] of Object.entries(all)) {
            const e = environment(name);
            assert.strictEqual(e.name, d.environment, name);
            assert.match(e.url ?? "", d.url ?? /^https:\/\//, `${name} environment url`);
            assert.strictEqual(job(name).resource_group, d.environment, `${name} resource_group`);
        }
        assert.strictEqual(environment("preview:production").action, "prepare", "the preview does not count as a deployment");
        for (const name of Object.keys(DRIFT)) assert.strictEqual(environment(name).action, "verify", `${name} does not count as a deployment`);
        for (const name of ["deploy:production", "rollback:production"]) assert.strictEqual(environment(name).deployment_tier, "production");
    });

    it("deploys dev automatically on main only", () => {
        assert.strictEqual(whenFor("deploy:dev", MAIN), "on_success");
        assert.strictEqual(whenFor("deploy:dev", { branch: "feature-x", protected: true }), "never");
        assert.strictEqual(whenFor("deploy:dev", TAG), "never");
    });

    it("makes staging, production and the rollback manual without blocking the pipeline, never on feature branches", () => {
        for (const name of MANUAL) {
            assert.deepStrictEqual(decide(name, MAIN), { when: "manual", allowFailure: true }, name);
            assert.deepStrictEqual(decide(name, TAG), { when: "manual", allowFailure: true }, name);
            assert.strictEqual(whenFor(name, { branch: "feature-x", protected: true }), "never", name);
        }
        for (const name of jobNames) {
            const d = decide(name, MAIN);
            assert.ok(d.when !== "manual" || d.allowFailure, `${name} is manual without allow_failure: true (the pipeline would show as blocked)`);
        }
    });

    it("previews production after staging's deploy and saves the banner and diff as an artifact, failing when the preview fails", () => {
        assert.deepStrictEqual(needs("preview:production"), ["deploy:staging"]);
        assert.strictEqual(whenFor("preview:production", MAIN), "on_success");
        assert.strictEqual(decide("preview:production", MAIN).allowFailure, false, "a refused preview must show");
        const script = (job("preview:production").script ?? []).join("\n");
        assert.match(script, /npm run --silent preview -- --stack prod 2>&1/, "the banner is logged by the program: stderr too");
        assert.match(script, /pipefail/, "tee must not hide a failed preview (the promotion gate)");
        const saved = /tee ([\w.-]+)/.exec(script)?.[1];
        assert.ok(saved && job("preview:production").artifacts?.paths?.includes(saved), "the preview file is an artifact");
        assert.strictEqual(job("preview:production").artifacts?.when, "always", "a refused preview is kept too");
    });

    it("deploys production only after its preview, from the protected production environment; the rollback waits for nothing", () => {
        assert.deepStrictEqual(needs("deploy:production"), ["preview:production"]);
        assert.deepStrictEqual(needs("rollback:production"), []);
        assert.ok(job("rollback:production").artifacts?.paths?.includes("Pulumi.prod.yaml"), "the rolled-back stack file is kept to commit");
    });

    it("runs only the drift checks on a schedule, one per stack, failing on drift", () => {
        for (const name of jobNames) {
            assert.strictEqual(whenFor(name, SCHEDULE), name in DRIFT ? "on_success" : "never", `${name} on a scheduled pipeline`);
            if (name in DRIFT) assert.strictEqual(whenFor(name, MAIN), "never", `${name} on a push pipeline`);
        }
        for (const [name, d] of Object.entries(DRIFT)) {
            assert.deepStrictEqual(job(name).script, [`npm run drift -- --stack ${d.stack}`], name);
            assert.strictEqual(decide(name, SCHEDULE).allowFailure, false, `${name} must fail the pipeline on drift (exit 2)`);
            assert.deepStrictEqual(needs(name), [], `${name} waits for no build`);
        }
    });
});
