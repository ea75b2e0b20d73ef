import * as pulumi from "@pulumi/pulumi";
import { dynamicProps, InputsOf } from "./inputs";
import { hostLayout } from "../render/layout";
import { EXIT, parseKeyValues } from "../render/protocol";
import { renderImageReleaseInstall, renderImageReleaseProbe } from "../render/release";
import { deployCommit } from "../../stacks/source";
import { configureCredentials, connect, connectForRead, deployer, HostChangeInputs, hostChangeRefusal, HostTarget, run } from "./host";
import { guarded } from "./guard";
import { deleteRelease, lockedInstall } from "./release";

/** Container mode's release on one host: `releases/<version>` pinning an image by ID. */
export interface ImageReleaseState extends HostChangeInputs {
    readonly host: HostTarget;
    readonly privateKey: string;
    readonly baseDir: string;
    readonly service: string;
    readonly version: string;
    /** The image reference in config, pinned by digest (`registry/complinist@sha256:…`): checked against the host's engine at install. */
    readonly image: string;
}

export interface ImageReleaseOutputs extends ImageReleaseState {
    /** The image ID the release pins (`sha256:…`): what its container runs, whatever the tag names later. */
    readonly imageId: string;
    /** The ID's digest: the release's identity in activations and revisions.log. */
    readonly sha256: string;
    /** False when refresh found the directory gone or its image removed from the engine. */
    readonly complete: boolean;
}

async function install(s: ImageReleaseState): Promise<ImageReleaseOutputs> {
    const t = await connect(s.host, s.privateKey);
    const l = hostLayout(s.baseDir, s.service, t.root);
    const r = await t.exec(renderImageReleaseInstall(l, { version: s.version, image: s.image, who: deployer(), service: s.service, commit: deployCommit() }), { timeoutMs: 900000 });
    if (r.code === EXIT.locked) throw lockedInstall(t.host, s.version, r.stdout);
    if (r.code !== 0) throw new Error(`host ${t.host}: release ${s.version} (image ${s.image}) was not installed: ${(r.stderr || r.stdout).trim().slice(-800)}`);
    const imageId = parseKeyValues(r.stdout).image ?? "";
    return { ...s, imageId, sha256: imageId.replace(/^sha256:/, ""), complete: true };
}

export const imageReleaseProvider: pulumi.dynamic.ResourceProvider = {
    configure: configureCredentials,

    async check(olds: Partial<ImageReleaseOutputs>, news: ImageReleaseState) {
        // A release installed from a tag may be pinned by digest later (the host checks that the digest
        // names the image it already pins); any other change of an installed release's image is refused.
        const pinning = olds.image !== undefined && !olds.image.includes("@") && news.image.includes("@");
        if (olds.version === news.version && olds.image !== undefined && olds.image !== news.image && olds.complete === true && !pinning) {
            return {
                inputs: news,
                failures: [{ property: "image", reason: `release ${news.version} is already installed from image ${olds.image}; a release never changes after it is built: publish a new version instead` }],
            };
        }
        return { inputs: news };
    },

    // A new image for the same version is an update (the host pins the digest in place, or refuses), never a
    // replace: a replace would create and then delete the same directory.
    async diff(_id: string, olds: ImageReleaseOutputs, news: ImageReleaseState) {
        const moved = hostChangeRefusal(olds.host, news.host, news);
        if (moved !== undefined) throw new Error(moved);
        const replaces = (["version", "baseDir"] as const).filter((k) => olds[k] !== news[k]);
        const changed = (["image", "service", "host", "privateKey"] as const).filter((k) => JSON.stringify(olds[k]) !== JSON.stringify(news[k]));
        const drift = olds.complete === false ? ["complete"] : [];
        const all = [...replaces, ...changed, ...drift];
        return { changes: all.length > 0, replaces, deleteBeforeReplace: false, ...(all.length ? { stables: [] } : {}) };
    },

    async create(inputs: ImageReleaseState) {
        return { id: `${inputs.host.name}:${inputs.version}`, outs: await install(inputs) };
    },

    async update(_id: string, olds: ImageReleaseOutputs, news: ImageReleaseState) {
        if (olds.complete === false || olds.image !== news.image) return { outs: await install(news) };
        return { outs: { ...olds, ...news } };
    },

    async read(id: string, props: ImageReleaseOutputs) {
        // Read-only: the host's shared read stays (connect would drop it).
        const t = await connectForRead(props.host, props.privateKey);
        const l = hostLayout(props.baseDir, props.service, t.root);
        const probe = parseKeyValues((await run(t, `reading release ${props.version}`, renderImageReleaseProbe(l, props.version))).stdout);
        const complete = probe.present === "true" && probe.image === props.imageId && probe.ref === props.image;
        return { id, props: { ...props, complete } };
    },

    // The directory goes (never the live one or the standby's); the image stays on the engine.
    async delete(_id: string, props: ImageReleaseOutputs) {
        await deleteRelease(props);
    },
};

/** Dynamic resource for one container-mode release; see imageReleaseProvider. */
export class ImageReleaseDir extends pulumi.dynamic.Resource {
    declare public readonly version: pulumi.Output<string>;
    declare public readonly imageId: pulumi.Output<string>;
    declare public readonly sha256: pulumi.Output<string>;
    declare public readonly complete: pulumi.Output<boolean>;

    constructor(name: string, args: InputsOf<ImageReleaseState>, opts?: pulumi.CustomResourceOptions) {
        const [props, options] = dynamicProps(args, ["imageId", "sha256", "complete"], opts, ["privateKey"]);
        super(guarded(imageReleaseProvider), name, props, options, "complinist", "ImageReleaseDir");
    }
}
