import * as pulumi from "@pulumi/pulumi";
import { dynamicProps, InputsOf } from "./inputs";
import { hostLayout, releaseDir } from "../render/layout";
import { EXIT, parseKeyValues } from "../render/protocol";
import { releaseAuthGoesTo, renderReleaseDelete, renderReleaseInstall, renderReleaseProbe } from "../render/release";
import { renderBaseTrusted } from "../render/lock";
import { q } from "../render/shell";
import { deployCommit } from "../../stacks/source";
import type { Transport } from "../transport/transport";
import { configureCredentials, connect, deployer, HostChangeInputs, hostChangeRefusal, HostTarget, LOCKED_SCRIPT_TIMEOUT_MS, run } from "./host";
import { guarded } from "./guard";
import { readHostOnce } from "./hostRead";

/** A release directory `releases/<version>` on one host. */
export interface ReleaseDirState extends HostChangeInputs {
    readonly host: HostTarget;
    readonly privateKey: string;
    readonly baseDir: string;
    readonly service: string;
    readonly version: string;
    /** sha256 of the .tar.gz: the identity of the release (shown in preview, never the bytes). */
    readonly sha256: string;
    /** Local artifact (relative to the project directory) to upload, or a URL the host downloads. */
    readonly artifact: { readonly path?: string; readonly url?: string };
    /** Secret: an HTTP header line for the download (e.g. `Deploy-Token: …`), "" for none. Fed to curl on stdin. */
    readonly auth: string;
    /** `releaseAuth.origins`: `auth` goes with the download only when the URL's origin is one of them (shown in preview). */
    readonly authOrigins: ReadonlyArray<string>;
}

export interface ReleaseDirOutputs extends ReleaseDirState {
    /** False when refresh found the directory missing or its manifest not matching. */
    readonly complete: boolean;
    /** Bytes uploaded by the create that made this directory (0 when it was already there). */
    readonly uploadedBytes: number;
}

async function install(s: ReleaseDirState): Promise<ReleaseDirOutputs> {
    const path = require("path") as typeof import("path");
    const t = await connect(s.host, s.privateKey);
    const l = hostLayout(s.baseDir, s.service, t.root);
    const probe = parseKeyValues((await run(t, `probing release ${s.version}`, renderReleaseProbe(l, s.version))).stdout);
    if (probe.complete === "true" && probe.sha256 === s.sha256) {
        return { ...s, complete: true, uploadedBytes: 0 };
    }
    let uploadedBytes = 0;
    let source: { uploaded: string } | { url: string };
    if (s.artifact.path !== undefined) {
        const local = path.resolve(s.artifact.path);
        // Per invocation: two deploys of one version to one host never share an upload.
        const remote = path.posix.join(l.releasesDir, `.upload-${s.version}-${process.pid}-${Date.now().toString(36)}.tar.gz`);
        // Checked first: the upload writes under baseDir before the install takes the lock (which checks again).
        await run(t, "preparing the releases directory", `${renderBaseTrusted(l)}mkdir -p ${q(l.releasesDir)}\n`);
        const up = await t.upload(local, remote).catch(async (e: unknown) => {
            throw (await diskFull(t, l.releasesDir, s.version, "uploading", e instanceof Error ? e.message : String(e))) ?? e;
        });
        uploadedBytes = up.bytes;
        source = { uploaded: remote };
    } else if (s.artifact.url !== undefined) {
        source = { url: s.artifact.url };
    } else {
        throw new Error(`release ${s.version}: artifact needs a path or a url`);
    }
    // The header travels to the host only for a URL of a pinned origin: the same test the script makes.
    const authOrigins = "url" in source && s.auth !== "" ? (s.authOrigins ?? []) : [];
    const authOnStdin = "url" in source && releaseAuthGoesTo(source.url, authOrigins);
    const r = await t.exec(renderReleaseInstall(l, { version: s.version, sha256: s.sha256, source, authOrigins: authOnStdin ? authOrigins : [], who: deployer(), service: s.service, commit: deployCommit() }), {
        timeoutMs: 900000,
        ...(authOnStdin ? { stdin: Buffer.from(`${s.auth}\n`, "utf8") } : {}),
    });
    if (r.code === EXIT.locked) throw lockedInstall(t.host, s.version, r.stdout);
    if (r.code !== 0) {
        const why = (r.stderr || r.stdout).trim().slice(-800);
        throw (await diskFull(t, l.releasesDir, s.version, "extracting", why)) ?? new Error(`host ${t.host}: release ${s.version} was not installed: ${why} (nothing was left in ${releaseDir(l, s.version)})`);
    }
    return { ...s, complete: true, uploadedBytes };
}

/** An install refused because another operation holds the host lock (both kinds of release). */
export function lockedInstall(host: string, version: string, stdout: string): Error {
    return new Error(`host ${host}: release ${version} was not installed: the deploy lock is held by ${parseKeyValues(stdout).holder ?? "unknown"}; it frees itself when that process ends`);
}

/** Retention's delete of `releases/<version>` (both kinds of release): never the one in use (renderReleaseDelete). */
export async function deleteRelease(props: Pick<ReleaseDirState, "host" | "privateKey" | "baseDir" | "service" | "version">): Promise<void> {
    const t = await connect(props.host, props.privateKey);
    const l = hostLayout(props.baseDir, props.service, t.root);
    await run(t, `deleting release ${props.version}`, renderReleaseDelete(l, props.version, props.service, deployer()), undefined, LOCKED_SCRIPT_TIMEOUT_MS);
}

/**
 * A failure for lack of disk space, as an error naming the host, the directory, what is free
 * and what to do; undefined for any other failure. Both the upload and the install remove
 * their partial files on the way out, so nothing is left to clean up.
 */
async function diskFull(t: Transport, dir: string, version: string, doing: string, message: string): Promise<Error | undefined> {
    if (!/no space left on device/i.test(message)) return undefined;
    const df = await t.exec(`df -Pk ${q(dir)} | awk 'NR == 2 { print $4 " kB free on " $6 }'`, { timeoutMs: 30000 }).catch(() => undefined);
    const free = df?.stdout.trim() || "free space unknown";
    return new Error(
        `host ${t.host}: release ${version} was not installed: no space left on device while ${doing} into ${dir} (${free}); nothing was left half-installed and the live release keeps serving. ` +
            `Free space on the host (e.g. keep fewer releases: complinist:keepReleases) and run pulumi up again. (${message.split("\n").find((line) => /no space left/i.test(line))?.trim()})`,
    );
}

/** Why a local artifact cannot be installed (missing, unreadable, other sha256), or undefined when it can. */
async function localArtifactProblem(file: string, sha256: string): Promise<string | undefined> {
    const fs = require("fs") as typeof import("fs");
    const path = require("path") as typeof import("path");
    const crypto = require("crypto") as typeof import("crypto");
    const local = path.resolve(file);
    if (!fs.existsSync(local)) return `artifact ${file} not found (resolved to ${local}); build it (npm run artifacts) or fix releases.<version>.path`;
    const hash = crypto.createHash("sha256");
    for await (const chunk of fs.createReadStream(local)) hash.update(chunk as Buffer);
    const actual = hash.digest("hex");
    return actual === sha256 ? undefined : `artifact ${file} has sha256 ${actual}, but the config says ${sha256}: a release never changes after it is built`;
}

export const releaseDirProvider: pulumi.dynamic.ResourceProvider = {
    configure: configureCredentials,

    async check(olds: Partial<ReleaseDirOutputs>, news: ReleaseDirState) {
        if (olds.version === news.version && olds.sha256 !== undefined && olds.sha256 !== news.sha256) {
            return {
                inputs: news,
                failures: [
                    {
                        property: "sha256",
                        reason: `release ${news.version} is already installed with sha256 ${olds.sha256}; a release never changes after it is built: publish a new version instead`,
                    },
                ],
            };
        }
        // Before anything touches a host: a release about to be installed must have its artifact
        // here with the configured sha256. An installed release is not re-checked, so a rollback
        // works even after the local artifact was cleaned up.
        if (news.artifact.path !== undefined && olds.complete !== true) {
            const reason = await localArtifactProblem(news.artifact.path, news.sha256);
            if (reason) return { inputs: news, failures: [{ property: "artifact", reason: `release ${news.version}: ${reason}` }] };
        }
        return { inputs: news };
    },

    async diff(_id: string, olds: ReleaseDirOutputs, news: ReleaseDirState) {
        // In preview, before an update (a reinstall) could send releaseAuth to another machine.
        const moved = hostChangeRefusal(olds.host, news.host, news);
        if (moved !== undefined) throw new Error(moved);
        const replaces = (["version", "baseDir", "sha256"] as const).filter((k) => olds[k] !== news[k]);
        const changed = (["service", "artifact", "host", "privateKey"] as const).filter((k) => JSON.stringify(olds[k]) !== JSON.stringify(news[k]));
        const drift = olds.complete === false ? ["complete"] : [];
        const all = [...replaces, ...changed, ...drift];
        return { changes: all.length > 0, replaces, deleteBeforeReplace: false, ...(all.length ? { stables: [] } : {}) };
    },

    async create(inputs: ReleaseDirState) {
        const outs = await install(inputs);
        return { id: `${inputs.host.name}:${inputs.version}`, outs };
    },

    async update(_id: string, olds: ReleaseDirOutputs, news: ReleaseDirState) {
        // Host/artifact location changes only update state; a missing or broken directory is reinstalled.
        if (olds.complete === false) return { outs: await install(news) };
        return { outs: { ...news, complete: true, uploadedBytes: 0 } };
    },

    // From the host's one read (shared with its other resources): its manifest, never through a link.
    async read(id: string, props: ReleaseDirOutputs) {
        const complete = (await readHostOnce(props)).releases.get(props.version) === props.sha256;
        return { id, props: { ...props, complete } };
    },

    async delete(_id: string, props: ReleaseDirOutputs) {
        await deleteRelease(props);
    },
};

export type ReleaseDirArgs = InputsOf<ReleaseDirState>;

/** Dynamic resource for one release directory; see releaseDirProvider. */
export class ReleaseDir extends pulumi.dynamic.Resource {
    declare public readonly version: pulumi.Output<string>;
    declare public readonly sha256: pulumi.Output<string>;
    declare public readonly complete: pulumi.Output<boolean>;
    declare public readonly uploadedBytes: pulumi.Output<number>;

    constructor(name: string, args: ReleaseDirArgs, opts?: pulumi.CustomResourceOptions) {
        const [props, options] = dynamicProps(args, ["complete", "uploadedBytes"], opts, ["privateKey", "auth"]);
        super(guarded(releaseDirProvider), name, props, options, "complinist", "ReleaseDir");
    }
}
