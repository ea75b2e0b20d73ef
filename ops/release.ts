import { parseArgs } from "util";
import { artifactFileName } from "./artifacts";
import { releaseUrlProblem, STACK_NAME_PATTERN, VERSION_PATTERN } from "../stacks/schema";
import { errorText, UsageError } from "./operator";
import { StackFile } from "./stackFile";

/**
 * `npm run release -- --stack <env> --version X`: the stack file side of a release.
 * The build job publishes each artifact and its SHA256SUMS to the project's generic
 * package registry; this writes the version's `releases` entry (URL + sha256 from
 * SHA256SUMS), makes it `version` and pins the version it replaces as
 * `rollbackVersion` — in the stack file, comments kept, for a merge request. The stack
 * files stay the source of truth; nothing is deployed here.
 */

export interface ReleaseArgs {
    readonly stack: string;
    readonly version: string;
    /** A local SHA256SUMS (default .build/artifacts/SHA256SUMS). */
    readonly sums?: string | undefined;
    /** SHA256SUMS in the package registry; the artifact is its sibling unless --base-url says otherwise. */
    readonly sumsUrl?: string | undefined;
    /** The package's base URL: the artifact is `<base-url>/<version>/<file>`. */
    readonly baseUrl?: string | undefined;
    readonly help: boolean;
}

export const RELEASE_USAGE = `usage: npm run release -- --stack <env> --version <version> [--sums FILE | --sums-url URL] [--base-url URL]

Writes <version>'s releases entry (url and sha256, from SHA256SUMS) into Pulumi.<env>.yaml, makes it
complinist:version and pins the version it replaces as complinist:rollbackVersion. Comments are kept;
commit the file in a merge request. SHA256SUMS comes from --sums (default .build/artifacts/SHA256SUMS)
or --sums-url (sent with the header in RELEASE_AUTH, e.g. 'PRIVATE-TOKEN: <token>', or JOB-TOKEN in CI):
the build job's artifact, as the publish job prints it (…/jobs/<id>/artifacts/.build/artifacts/SHA256SUMS),
never a package registry file (any job token may have uploaded that first).
The artifact URL: <base-url>/<version>/<file>; else next to --sums-url (not a job's artifact: those
expire); else the pattern of the stack's other url releases; else the project's package registry
(CI_API_V4_URL, CI_PROJECT_ID); a stack of local paths gets .build/artifacts/<file>. Exit: 0 written (or already there), 1 refused (nothing written).`;

/** A GitLab API path of the package registry (`/api/v4/projects/<id>/packages/…`). */
const PACKAGE_REGISTRY_PATH = /\/api\/v4\/projects\/[^/]+\/packages\//;
/** A GitLab API path of a job's artifacts (`/api/v4/projects/<id>/jobs/<job>/artifacts/…` or `…/jobs/artifacts/<ref>/…`). */
const JOB_ARTIFACT_PATH = /\/api\/v4\/projects\/[^/]+\/jobs\/(\d+\/)?artifacts\//;

/**
 * Why a release's sha256 may not come from `url`, or undefined. The sha256 a stack pins is the
 * one thing the hosts trust about an artifact, so it comes from the build job that made it (a job's
 * artifacts are that job's own), never from the package registry, where a package file is
 * whatever some job token uploaded first, a branch pipeline's included.
 */
export function sumsUrlProblem(url: string): string | undefined {
    let pathname: string;
    try {
        pathname = new URL(url).pathname;
    } catch {
        return `--sums-url ${JSON.stringify(url)} is not a URL`;
    }
    if (!PACKAGE_REGISTRY_PATH.test(pathname)) return undefined;
    const job = url.replace(/\/packages\/.*$/, "/jobs/<build job id>/artifacts/.build/artifacts/SHA256SUMS");
    return (
        `--sums-url ${url} is a package registry file: any job token, a branch pipeline's too, may have uploaded it first, so it does not say what the build made. ` +
        `Take the sha256 from the build job's artifact: ${job} (the publish job prints the exact command), with --base-url for the artifact's URL`
    );
}

export function parseReleaseArgs(argv: string[]): ReleaseArgs {
    let values: { stack?: string | undefined; version?: string | undefined; sums?: string | undefined; "sums-url"?: string | undefined; "base-url"?: string | undefined; help?: boolean | undefined };
    try {
        ({ values } = parseArgs({
            args: argv,
            options: { stack: { type: "string", short: "s" }, version: { type: "string" }, sums: { type: "string" }, "sums-url": { type: "string" }, "base-url": { type: "string" }, help: { type: "boolean", short: "h" } },
            strict: true,
            allowPositionals: false,
        }));
    } catch (e) {
        throw new UsageError(`${errorText(e)}\n${RELEASE_USAGE}`);
    }
    if (values.help) return { stack: "", version: "", help: true };
    if (values.stack === undefined || !STACK_NAME_PATTERN.test(values.stack)) throw new UsageError(`--stack <env> is required (dev, staging or prod)\n${RELEASE_USAGE}`);
    if (values.version === undefined || !VERSION_PATTERN.test(values.version)) throw new UsageError(`--version <version> is required: letters, digits and . + _ - (got ${JSON.stringify(values.version ?? "")})\n${RELEASE_USAGE}`);
    if (values.sums !== undefined && values["sums-url"] !== undefined) throw new UsageError(`give --sums or --sums-url, not both\n${RELEASE_USAGE}`);
    const problem = values["sums-url"] === undefined ? undefined : sumsUrlProblem(values["sums-url"]);
    if (problem !== undefined) throw new UsageError(problem);
    return { stack: values.stack, version: values.version, sums: values.sums, sumsUrl: values["sums-url"], baseUrl: values["base-url"], help: false };
}

/** `sha256sum` output: `<sha256>  <file>` (or ` *<file>` in binary mode) → file → sha256. */
export function parseSums(text: string): Map<string, string> {
    const out = new Map<string, string>();
    for (const line of text.split("\n")) {
        const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line.trim());
        if (m) out.set((m[2] as string).replace(/^.*\//, ""), m[1] as string);
    }
    return out;
}

export interface ReleaseInput {
    readonly stack: string;
    readonly version: string;
    /** The stack file's name (Pulumi.<stack>.yaml) and text. */
    readonly file: string;
    readonly stackText: string;
    readonly sums: ReadonlyMap<string, string>;
    readonly sumsUrl?: string | undefined;
    readonly baseUrl?: string | undefined;
    /** CI_API_V4_URL and CI_PROJECT_ID when run in a GitLab job. */
    readonly env: Readonly<Record<string, string | undefined>>;
}

type Entry = { readonly url: string; readonly sha256: string } | { readonly path: string; readonly sha256: string };

export type ReleasePlan =
    | { readonly ok: true; readonly text: string; readonly entry: Entry; readonly replaced?: string | undefined; readonly changed: boolean }
    | { readonly ok: false; readonly message: string };

const RELEASES = ["complinist:releases"];

/** Where the stack downloads `file` from, or why that cannot be told. */
function location(i: ReleaseInput, stackFile: StackFile, file: string): { url: string } | { path: string } | { problem: string } {
    const v = i.version;
    if (i.baseUrl !== undefined) return { url: `${i.baseUrl.replace(/\/+$/, "")}/${v}/${file}` };
    // A job's artifacts expire (and need an API token): the hosts download from the registry instead.
    if (i.sumsUrl !== undefined && !JOB_ARTIFACT_PATH.test(new URL(i.sumsUrl).pathname)) return { url: new URL(file, i.sumsUrl).toString() };
    const releases = (stackFile.get(RELEASES) ?? {}) as Record<string, { url?: unknown; path?: unknown }>;
    for (const [known, r] of Object.entries(releases)) {
        const suffix = `/${known}/${artifactFileName(known)}`;
        if (typeof r?.url === "string" && r.url.endsWith(suffix)) return { url: `${r.url.slice(0, -suffix.length)}/${v}/${file}` };
    }
    if (i.env.CI_API_V4_URL && i.env.CI_PROJECT_ID) return { url: `${i.env.CI_API_V4_URL}/projects/${i.env.CI_PROJECT_ID}/packages/generic/complinist/${v}/${file}` };
    const entries = Object.values(releases);
    if (entries.length > 0 && entries.every((r) => typeof r?.path === "string")) return { path: `.build/artifacts/${file}` };
    return { problem: "cannot tell where the hosts download it: pass --base-url https://<gitlab>/api/v4/projects/<id>/packages/generic/complinist" };
}

/** Pure: the stack file with `version` released, or why not. */
export function planRelease(i: ReleaseInput): ReleasePlan {
    const refuse = (why: string): ReleasePlan => ({ ok: false, message: `release ${i.version} for stack '${i.stack}' refused: ${why}. ${i.file} was not changed.` });
    let stackFile: StackFile;
    try {
        stackFile = new StackFile(i.stackText, i.file);
    } catch (e) {
        return refuse(errorText(e));
    }
    const sumsProblem = i.sumsUrl === undefined ? undefined : sumsUrlProblem(i.sumsUrl);
    if (sumsProblem !== undefined) return refuse(sumsProblem);
    const file = artifactFileName(i.version);
    const sha256 = i.sums.get(file);
    if (sha256 === undefined) return refuse(`SHA256SUMS has no line for ${file} (it lists: ${[...i.sums.keys()].join(", ") || "nothing"})`);
    const where = location(i, stackFile, file);
    if ("problem" in where) return refuse(where.problem);
    if ("url" in where) {
        const problem = releaseUrlProblem(where.url);
        if (problem !== undefined) return refuse(`the artifact URL ${where.url} ${problem}`);
    }
    const entry: Entry = { ...where, sha256 };
    const existing = stackFile.get([...RELEASES, i.version]) as { sha256?: unknown } | undefined;
    if (existing !== undefined && existing.sha256 !== sha256) {
        return refuse(
            `${i.file} already pins ${i.version} with sha256 ${String(existing.sha256)}, SHA256SUMS says ${sha256}: a version's artifact never changes ` +
                `(hosts refuse a new sha256 for an installed version); build and publish it as a new version`,
        );
    }
    const current = stackFile.get(["complinist:version"]);
    const replaced = typeof current === "string" && current !== i.version ? current : undefined;
    if (existing === undefined) stackFile.set([...RELEASES, i.version], entry);
    if (replaced !== undefined) {
        stackFile.set(["complinist:version"], i.version);
        stackFile.set(["complinist:rollbackVersion"], replaced);
    }
    const text = stackFile.toString();
    return { ok: true, text, entry: existing === undefined ? entry : (existing as Entry), replaced, changed: text !== i.stackText };
}

/** Redirects fetchSums follows after the first answer (each to https, none with the header). */
export const MAX_REDIRECTS = 5;

/**
 * SHA256SUMS from the package registry, with the credentials header when given (never in the
 * URL). The header goes to the configured URL only: fetch would resend it to whatever host a
 * redirect names (registries redirect downloads to object storage), so redirects are followed
 * here, without it, and only to https.
 */
export async function fetchSums(url: string, authHeader: string | undefined, timeoutMs = 30000): Promise<string> {
    const headers: Record<string, string> = {};
    if (authHeader !== undefined) {
        const m = /^([A-Za-z0-9-]+):\s*(.+)$/.exec(authHeader.trim());
        if (!m) throw new Error("RELEASE_AUTH must be one header line such as 'PRIVATE-TOKEN: <token>'");
        headers[m[1] as string] = m[2] as string;
    }
    const signal = AbortSignal.timeout(timeoutMs);
    let at = new URL(url);
    let redirected = false;
    let res = await fetch(at, { headers, redirect: "manual", signal });
    for (let hops = 1; res.status >= 300 && res.status < 400; hops++) {
        await res.body?.cancel();
        const location = res.headers.get("location");
        let next: URL | undefined;
        try {
            next = location === null ? undefined : new URL(location, at);
        } catch {
            next = undefined;
        }
        if (next === undefined) throw new Error(`GET ${url}: HTTP ${res.status} without a usable Location`);
        if (next.protocol !== "https:") throw new Error(`GET ${url}: redirected to ${next.protocol}//${next.host}, which is not https: a redirect is followed only to https, and never with RELEASE_AUTH`);
        if (hops > MAX_REDIRECTS) throw new Error(`GET ${url}: more than ${MAX_REDIRECTS} redirects`);
        at = next;
        redirected = true;
        res = await fetch(at, { redirect: "manual", signal });
    }
    if (!res.ok) {
        await res.body?.cancel();
        const hint = res.status === 401 || res.status === 403 || res.status === 404 ? " (a private project needs RELEASE_AUTH='PRIVATE-TOKEN: <token>' with read_api, or a deploy token)" : "";
        throw new Error(`GET ${url}${redirected ? ` (redirected to ${at.origin})` : ""}: HTTP ${res.status}${hint}`);
    }
    return res.text();
}
