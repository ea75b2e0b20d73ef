/**
 * Where the code being deployed came from, looked up one way for the banner and for the
 * commit an activation records. The commit: COMPLINIST_COMMIT (set by whoever runs
 * Pulumi), then GitLab CI's CI_COMMIT_SHA (a CI checkout is a detached HEAD), then git
 * HEAD, then "unknown". The activation's provider calls deployCommit at apply time, so
 * this module is serialized with it: node modules are required inside functions.
 */

/** Runs git with the given arguments; undefined when git or the repository is unavailable. */
export type GitRunner = (args: string[]) => string | undefined;

export type Env = Readonly<Record<string, string | undefined>>;

/** Where the code being deployed came from. */
export interface SourceInfo {
    readonly commit: string;
    readonly branch: string;
    readonly tag?: string | undefined;
}

const runGit: GitRunner = (args) => {
    try {
        const cp = require("child_process") as typeof import("child_process");
        const out = cp.execFileSync("git", args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 5000 }).trim();
        return out === "" ? undefined : out;
    } catch {
        return undefined;
    }
};

/** An empty variable counts as unset (CI defines some of them empty). */
function nonEmpty(v: string | undefined): string | undefined {
    return v === undefined || v === "" ? undefined : v;
}

/** The commit being deployed. Read at apply time, never a resource input (it would change every resource on every commit). */
export function deployCommit(env: Env = process.env, git: GitRunner = runGit): string {
    return nonEmpty(env.COMPLINIST_COMMIT) ?? nonEmpty(env.CI_COMMIT_SHA) ?? git(["rev-parse", "HEAD"]) ?? "unknown";
}

/** Commit, branch and tag: GitLab CI's variables first, then git. */
export function sourceInfo(env: Env = process.env, git: GitRunner = runGit): SourceInfo {
    const commit = deployCommit(env, git);
    const rawBranch = nonEmpty(env.CI_COMMIT_REF_NAME) ?? git(["rev-parse", "--abbrev-ref", "HEAD"]);
    const branch = rawBranch === undefined || rawBranch === "HEAD" ? "unknown" : rawBranch;
    // In CI an empty CI_COMMIT_TAG means "not a tag pipeline": do not second-guess it with git.
    const tag = env.CI_COMMIT_TAG !== undefined ? nonEmpty(env.CI_COMMIT_TAG) : git(["describe", "--tags", "--exact-match", "HEAD"]);
    return { commit, branch, ...(tag !== undefined ? { tag } : {}) };
}
