import * as pulumi from "@pulumi/pulumi";
import type { StackConfig } from "../stacks/config";

/**
 * The runbook's deployment banner, printed at the start of every preview and up so
 * the log of a CI job says what it deployed where: stack, version, source commit,
 * hosts, rollback target and batch size.
 */

export interface BannerHost {
    readonly name: string;
    readonly address: string;
    readonly port: number;
    readonly user: string;
}

export interface BannerData {
    readonly stack: string;
    readonly production: boolean;
    readonly mode: string;
    readonly version: string;
    readonly commit: string;
    readonly branch: string;
    readonly tag?: string | undefined;
    readonly hosts: ReadonlyArray<BannerHost>;
    readonly rollbackVersion?: string | undefined;
    readonly batchSize: number;
    readonly promoteFrom?: string | undefined;
}

/** Where the code being deployed came from. */
export interface SourceInfo {
    readonly commit: string;
    readonly branch: string;
    readonly tag?: string | undefined;
}

/** Runs git with the given arguments; undefined when git or the repository is unavailable. */
export type GitRunner = (args: string[]) => string | undefined;

const runGit: GitRunner = (args) => {
    try {
        const cp = require("child_process") as typeof import("child_process");
        const out = cp.execFileSync("git", args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 5000 }).trim();
        return out === "" ? undefined : out;
    } catch {
        return undefined;
    }
};

/** GitLab CI's variables first (a CI checkout is a detached HEAD), then git, then "unknown". */
export function sourceInfo(env: Readonly<Record<string, string | undefined>> = process.env, git: GitRunner = runGit): SourceInfo {
    const nonEmpty = (v: string | undefined) => (v === undefined || v === "" ? undefined : v);
    const commit = nonEmpty(env.CI_COMMIT_SHA) ?? git(["rev-parse", "HEAD"]) ?? "unknown";
    const rawBranch = nonEmpty(env.CI_COMMIT_REF_NAME) ?? git(["rev-parse", "--abbrev-ref", "HEAD"]);
    const branch = rawBranch === undefined || rawBranch === "HEAD" ? "unknown" : rawBranch;
    // In CI an empty CI_COMMIT_TAG means "not a tag pipeline": do not second-guess it with git.
    const tag = env.CI_COMMIT_TAG !== undefined ? nonEmpty(env.CI_COMMIT_TAG) : git(["describe", "--tags", "--exact-match", "HEAD"]);
    return { commit, branch, ...(tag !== undefined ? { tag } : {}) };
}

export function bannerData(c: StackConfig, src: SourceInfo): BannerData {
    return {
        stack: c.stack,
        production: c.policy.protect,
        mode: c.mode,
        version: c.version,
        commit: src.commit,
        branch: src.branch,
        tag: src.tag,
        hosts: c.hosts.map((h) => ({ name: h.name, address: h.address, port: h.port, user: h.user })),
        rollbackVersion: c.rollbackVersion,
        batchSize: c.batchSize,
        promoteFrom: c.promoteFrom,
    };
}

/** Pure: the banner text. */
export function renderBanner(d: BannerData): string {
    const row = (label: string, value: string) => `  ${label.padEnd(13)} ${value}`;
    const nameWidth = Math.max(...d.hosts.map((h) => h.name.length), 4);
    const batches = Math.ceil(d.hosts.length / Math.max(d.batchSize, 1));
    const lines = [
        `CompliNist deployment: stack ${d.stack}${d.production ? " (PRODUCTION)" : ""}`,
        row("version", d.version),
        row("commit", d.commit),
        row("branch", d.branch),
        row("tag", d.tag ?? "none"),
        row("mode", d.mode),
        row("rollback to", d.rollbackVersion !== undefined ? `${d.rollbackVersion} (npm run rollback -- --stack ${d.stack})` : "none pinned"),
        row("batch size", `${d.batchSize} of ${d.hosts.length} host${d.hosts.length === 1 ? "" : "s"} (${batches} batch${batches === 1 ? "" : "es"})`),
        ...(d.promoteFrom !== undefined ? [row("promote from", `${d.promoteFrom} (only a version it runs healthy)`)] : []),
        row("hosts", ""),
        ...d.hosts.map((h) => `    ${h.name.padEnd(nameWidth)}  ${h.user}@${h.address}:${h.port}`),
    ];
    return lines.map((l) => l.trimEnd()).join("\n");
}

/** Logs the banner through the engine, so it shows in `pulumi preview` and `pulumi up`. */
export function logBanner(c: StackConfig): void {
    pulumi.log.info(renderBanner(bannerData(c, sourceInfo())));
}
