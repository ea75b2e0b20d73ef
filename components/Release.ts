import * as pulumi from "@pulumi/pulumi";
import { HostTarget } from "../infra/providers/host";
import { ImageReleaseDir } from "../infra/providers/imageRelease";
import { ReleaseDir } from "../infra/providers/release";
import { childOptions } from "./options";

/** Where a release comes from: an artifact (release mode: its sha256 verified on the host) or an image (container mode). */
export type ReleaseSource =
    | {
          readonly kind: "artifact";
          readonly sha256: string;
          readonly artifact: { readonly path?: string; readonly url?: string };
          /** Secret: the releaseAuth header, "" for none. */
          readonly auth: pulumi.Input<string>;
          /** The origins `auth` is pinned to: it goes only with a download from one of them. */
          readonly authOrigins: ReadonlyArray<string>;
      }
    | { readonly kind: "image"; readonly image: string };

export interface ReleaseArgs {
    /** The host this release directory lives on. */
    readonly host: pulumi.Input<HostTarget>;
    /** SSH private key text (secret). */
    readonly privateKey: pulumi.Input<string>;
    /** Deployment root on the host; default /opt/complinist. */
    readonly baseDir: pulumi.Input<string>;
    /** Service name (host layout); default complinist. */
    readonly service: pulumi.Input<string>;
    /** The release version: the directory name under releases/. */
    readonly version: pulumi.Input<string>;
    readonly source: ReleaseSource;
    /** The stack, for the acknowledgement command a refused host change names. */
    readonly stack: string;
    /** `complinist:acknowledgeHostChange`: hosts whose new address or host key may be used (default none). */
    readonly acknowledgeHostChange: ReadonlyArray<string>;
}

/**
 * One release in `<baseDir>/releases/<version>`, never modified after it is complete:
 * an extracted artifact (uploaded only when the host lacks it, so a rollback to a kept
 * release uploads nothing), or in container mode a manifest pinning the image by ID
 * (pulled only when the engine lacks it).
 */
export class Release extends pulumi.ComponentResource {
    public readonly version: pulumi.Output<string>;
    /** The release's identity: the artifact's sha256, or the pinned image ID's digest. */
    public readonly sha256: pulumi.Output<string>;
    /** The dynamic resource holding the directory; activations depend on it. */
    public readonly directory: ReleaseDir | ImageReleaseDir;

    constructor(name: string, args: ReleaseArgs, opts?: pulumi.ComponentResourceOptions) {
        super("complinist:host:Release", name, {}, opts);
        const { source, ...where } = args;
        // The previous batch travels down, so a later batch uploads (or pulls) nothing early.
        this.directory =
            source.kind === "artifact"
                ? new ReleaseDir(`${name}-dir`, { ...where, sha256: source.sha256, artifact: source.artifact, auth: source.auth, authOrigins: source.authOrigins }, childOptions(this, opts))
                : new ImageReleaseDir(`${name}-image`, { ...where, image: source.image }, childOptions(this, opts));
        this.version = this.directory.version;
        this.sha256 = this.directory.sha256;
        this.registerOutputs({ version: this.version, sha256: this.sha256 });
    }
}
