import * as pulumi from "@pulumi/pulumi";
import { HostTarget } from "../infra/providers/host";
import { ReleaseDir } from "../infra/providers/release";
import { childOptions } from "./options";

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
    /** sha256 of the .tar.gz artifact, verified on the host before extraction. */
    readonly sha256: pulumi.Input<string>;
    /** Where the artifact comes from: a local path (uploaded) or a URL (downloaded by the host). */
    readonly artifact: pulumi.Input<{ readonly path?: string; readonly url?: string }>;
    /** Secret HTTP header line for a URL download (`releaseAuth`), "" for none. */
    readonly auth: pulumi.Input<string>;
}

/**
 * One extracted artifact in `<baseDir>/releases/<version>`, never modified
 * after it is complete. Uploads only when the host lacks it, so a rollback to a
 * kept release uploads nothing.
 */
export class Release extends pulumi.ComponentResource {
    public readonly version: pulumi.Output<string>;
    public readonly sha256: pulumi.Output<string>;
    /** The dynamic resource holding the directory; activations depend on it. */
    public readonly directory: ReleaseDir;

    constructor(name: string, args: ReleaseArgs, opts?: pulumi.ComponentResourceOptions) {
        super("complinist:host:Release", name, {}, opts);
        // The previous batch travels down, so a later batch uploads nothing early.
        this.directory = new ReleaseDir(`${name}-dir`, args, childOptions(this, opts));
        this.version = this.directory.version;
        this.sha256 = this.directory.sha256;
        this.registerOutputs({ version: this.version, sha256: this.sha256 });
    }
}
