// .gitlab-ci.yml mirrors the runbook. gitlab-ci-local (which could lint it by running GitLab's
// own job model) needs Node >= 22 (it fails at startup on Node 20, this project's floor), so the
// structure is asserted here from the parsed YAML instead.
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";

interface Rule {
    if?: string;
    when?: string;
}

interface Job {
    stage?: string;
    extends?: string | string[];
    needs?: Array<string | { job: string }>;
    rules?: Rule[];
    when?: string;
    only?: unknown;
    except?: unknown;
    environment?: string | { name: string; action?: string; deployment_tier?: string };
    script?: string[];
    before_script?: string[];
    artifacts?: { paths?: string[]; when?: string };
    image?: string;
    variables?: Record<string, string>;
}

const file = path.join(__dirname, "..", "..", ".gitlab-ci.yml");
const doc = YAML.parse(fs.readFileSync(file, "utf8")) as Record<string, unknown>;

function job(name: string): Job {
    const j = doc[name] as Job | undefined;
    assert.ok(j, `job ${name} is missing`);
    return j;
}

/** A job's script with its template's before_script, as GitLab runs it. */
function commands(name: string): string[] {
    const j = job(name);
    const templates = j.extends === undefined ? [] : Array.isArray(j.extends) ? j.extends : [j.extends];
    const before = j.before_script ?? templates.flatMap((t) => (doc[t] as Job).before_script ?? []);
    const fallback = before.length > 0 ? before : ((doc.default as Job).before_script ?? []);
    return [...fallback, ...(j.script ?? [])];
}

function needs(name: string): string[] {
    return (job(name).needs ?? []).map((n) => (typeof n === "string" ? n : n.job));
}

function envName(name: string): string | undefined {
    const e = job(name).environment;
    return typeof e === "string" ? e : e?.name;
}

/** Evaluates the rule conditions used here (branch / tag comparisons) for one pipeline. */
function whenFor(name: string, pipeline: { branch?: string; tag?: string }): string {
    for (const r of job(name).rules ?? []) {
        const cond = (r.if ?? "true")
            .replace(/\$CI_COMMIT_BRANCH == "([^"]+)"/g, (_, b: string) => String(pipeline.branch === b))
            .replace(/\$CI_COMMIT_TAG/g, String(pipeline.tag !== undefined));
        assert.match(cond, /^[a-z|&() ]+$/, `unexpected rule in ${name}: ${r.if}`);
        const holds = cond.split("||").some((part) => part.split("&&").every((t) => t.trim().replace(/[()]/g, "") === "true"));
        if (holds) return r.when ?? "on_success";
    }
    return "never";
}

const JOBS = ["validate", "test", "build", "deploy:dev", "deploy:staging", "preview:production", "deploy:production", "rollback:production"];

describe(".gitlab-ci.yml", () => {
    it("runs the stages validate → test → build → deploy, each job in its stage", () => {
        assert.deepStrictEqual(doc.stages, ["validate", "test", "build", "deploy"]);
        const stages: Record<string, string> = { validate: "validate", test: "test", build: "build" };
        for (const name of JOBS) assert.strictEqual(job(name).stage, stages[name] ?? "deploy", name);
        const jobs = Object.keys(doc).filter((k) => !["stages", "default", "variables", "include", "workflow"].includes(k) && !k.startsWith("."));
        assert.deepStrictEqual(jobs.sort(), [...JOBS].sort(), "no job beyond the runbook's");
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

    it("builds the artifacts, prints their sha256 and keeps them as job artifacts", () => {
        const b = commands("build").join("\n");
        assert.match(b, /npm run artifacts/);
        assert.match(b, /sha256sum/);
        assert.deepStrictEqual(job("build").artifacts?.paths, [".build/artifacts/"]);
    });

    it("installs the Pulumi CLI before every job that runs it", () => {
        for (const name of ["deploy:dev", "deploy:staging", "preview:production", "deploy:production", "rollback:production"]) {
            const c = commands(name);
            const install = c.findIndex((l) => /get\.pulumi\.com/.test(l));
            const firstPulumi = c.findIndex((l) => /(^|')pulumi (up|preview)|npm run rollback/.test(l));
            assert.ok(install >= 0 && install < firstPulumi, `${name} runs pulumi before installing it`);
            assert.ok(c.some((l) => /npm ci/.test(l)), `${name} lacks npm ci (the program needs its dependencies)`);
        }
    });

    it("deploys dev automatically on main only", () => {
        assert.strictEqual(whenFor("deploy:dev", { branch: "main" }), "on_success");
        assert.strictEqual(whenFor("deploy:dev", { branch: "feature-x" }), "never");
        assert.strictEqual(whenFor("deploy:dev", { tag: "v1.1.0" }), "never");
        assert.ok(job("deploy:dev").script?.includes("pulumi up --yes --stack dev"));
    });

    it("makes staging, production and the rollback manual, and never offers them on feature branches", () => {
        for (const name of ["deploy:staging", "deploy:production", "rollback:production"]) {
            assert.strictEqual(whenFor(name, { branch: "main" }), "manual", name);
            assert.strictEqual(whenFor(name, { branch: "feature-x" }), "never", name);
        }
        assert.ok(job("deploy:staging").script?.includes("pulumi up --yes --stack staging"));
        assert.ok(job("deploy:production").script?.includes("pulumi up --yes --stack prod"));
        assert.ok(job("rollback:production").script?.includes("npm run rollback -- --stack prod --yes"));
    });

    it("previews production after the build and saves the diff as an artifact, failing when the preview fails", () => {
        assert.deepStrictEqual(needs("preview:production"), ["build"]);
        const script = (job("preview:production").script ?? []).join("\n");
        assert.match(script, /pulumi preview --diff --stack prod/);
        assert.match(script, /pipefail/, "tee must not hide a failed preview (the promotion gate)");
        const saved = /tee ([\w.-]+)/.exec(script)?.[1];
        assert.ok(saved && job("preview:production").artifacts?.paths?.includes(saved), "the preview file is an artifact");
        assert.strictEqual(job("preview:production").artifacts?.when, "always", "a refused preview is kept too");
    });

    it("deploys production only after its preview, from the protected production environment", () => {
        assert.deepStrictEqual(needs("deploy:production"), ["preview:production"]);
        for (const name of ["preview:production", "deploy:production", "rollback:production"]) {
            assert.strictEqual(envName(name), "production", `${name} is not a production-environment job`);
        }
        const prep = job("preview:production").environment as { action?: string };
        assert.strictEqual(prep.action, "prepare", "the preview does not count as a deployment");
        assert.deepStrictEqual(needs("rollback:production"), [], "a rollback waits for nothing");
        assert.strictEqual(envName("deploy:staging"), "staging");
        assert.strictEqual(envName("deploy:dev"), "dev");
    });
});
