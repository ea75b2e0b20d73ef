import * as pulumi from "@pulumi/pulumi";
import { dynamicProps, InputsOf } from "./inputs";
import { HostChangeInputs, hostChangeRefusal, HostTarget } from "./host";
import { guarded } from "./guard";

/**
 * Which machine a host name stands for (its address and host key) as the last apply used it: a
 * record in state only, it never connects. Every other resource of the host depends on it, so a
 * release *created* for a host whose address or key changed (a new version: its ReleaseDir has no
 * old state whose diff could refuse, and would send releaseAuth) waits for this diff, which refuses
 * the change unless `complinist:acknowledgeHostChange` names the host.
 */
export interface HostIdentityState extends HostChangeInputs {
    readonly host: HostTarget;
    /** The host key's fingerprint ("ssh-ed25519 SHA256:…"): what preview shows change beside the key line. */
    readonly hostKeyFingerprint: string;
}

export const hostIdentityProvider: pulumi.dynamic.ResourceProvider = {
    async diff(_id: string, olds: HostIdentityState, news: HostIdentityState) {
        const moved = hostChangeRefusal(olds.host, news.host, news);
        if (moved !== undefined) throw new Error(moved);
        // An acknowledged move (or a new port or user) is recorded: preview shows it as this update.
        const changed = (["host", "hostKeyFingerprint"] as const).filter((k) => JSON.stringify(olds[k]) !== JSON.stringify(news[k]));
        return { changes: changed.length > 0, replaces: [], deleteBeforeReplace: false };
    },

    async create(inputs: HostIdentityState) {
        return { id: inputs.host.name, outs: inputs };
    },

    async update(_id: string, _olds: HostIdentityState, news: HostIdentityState) {
        return { outs: news };
    },

    // Nothing on a host to read: the record is what the last apply used.
    async read(id: string, props: HostIdentityState) {
        return { id, props };
    },

    async delete() {
        return;
    },
};

/** Dynamic resource recording a host's identity; see hostIdentityProvider. */
export class HostIdentity extends pulumi.dynamic.Resource {
    constructor(name: string, args: InputsOf<HostIdentityState>, opts?: pulumi.CustomResourceOptions) {
        const [props, options] = dynamicProps(args, [], opts, []);
        super(guarded(hostIdentityProvider), name, props, options, "complinist", "HostIdentity");
    }
}
