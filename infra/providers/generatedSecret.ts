import * as pulumi from "@pulumi/pulumi";
import { dynamicProps, InputsOf } from "./inputs";
import { guarded } from "./guard";

/**
 * A secret made once, in `create`, from the operating system's random source: the app's
 * SECRET_KEY, shared by every host so sessions stay valid behind a load balancer.
 *
 * It replaces @pulumi/random's RandomPassword, whose provider plugin cannot be had here (its Go
 * module is refused by the module proxy) and which an inline program would need as a plugin.
 * The value is an additionalSecretOutput, so state holds it encrypted and preview and the
 * CLI's output show `[secret]`; it never appears in an input, a diff or a log. It is stable:
 * only a change of `length` or `alphabet` makes a new one (a replacement, shown in preview).
 */
export interface GeneratedSecretInputs {
    /** Characters in the secret (16–256). */
    readonly length: number;
    /** `alphanumeric` (A–Z, a–z, 0–9): safe in an env file, a URL or a shell word unquoted. */
    readonly alphabet: "alphanumeric";
}

export interface GeneratedSecretOutputs extends GeneratedSecretInputs {
    readonly value: string;
}

const ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** `length` characters drawn uniformly from the alphabet (rejection sampling: no modulo bias). */
export function generateSecret(length: number): string {
    const crypto = require("crypto") as typeof import("crypto");
    let out = "";
    while (out.length < length) {
        for (const byte of crypto.randomBytes(length * 2)) {
            // 248 = 4 × 62: bytes at or above it would favour the first characters.
            if (byte < 248 && out.length < length) out += ALPHANUMERIC[byte % ALPHANUMERIC.length];
        }
    }
    return out;
}

export const generatedSecretProvider: pulumi.dynamic.ResourceProvider = {
    async check(_olds: GeneratedSecretInputs, news: GeneratedSecretInputs) {
        const failures: pulumi.dynamic.CheckFailure[] = [];
        if (!Number.isInteger(news.length) || news.length < 16 || news.length > 256) failures.push({ property: "length", reason: `length must be an integer from 16 to 256, got ${String(news.length)}` });
        if (news.alphabet !== "alphanumeric") failures.push({ property: "alphabet", reason: `alphabet must be 'alphanumeric', got '${String(news.alphabet)}'` });
        return { inputs: news, failures };
    },

    async diff(_id: string, olds: GeneratedSecretOutputs, news: GeneratedSecretInputs) {
        const replaces = (["length", "alphabet"] as const).filter((k) => olds[k] !== news[k]);
        return { changes: replaces.length > 0, replaces, deleteBeforeReplace: false };
    },

    async create(inputs: GeneratedSecretInputs) {
        const crypto = require("crypto") as typeof import("crypto");
        const outs: GeneratedSecretOutputs = { length: inputs.length, alphabet: inputs.alphabet, value: generateSecret(inputs.length) };
        return { id: crypto.randomUUID(), outs };
    },

    // Nothing lives outside state: what state holds is the secret (refresh keeps it as it is).
    async read(id: string, props: GeneratedSecretOutputs) {
        return { id, props };
    },
};

/** A generated secret; `value` is secret in state and output. */
export class GeneratedSecret extends pulumi.dynamic.Resource {
    declare public readonly value: pulumi.Output<string>;

    constructor(name: string, args: InputsOf<GeneratedSecretInputs>, opts?: pulumi.CustomResourceOptions) {
        const [props, options] = dynamicProps(args, ["value"], opts, ["value"]);
        super(guarded(generatedSecretProvider), name, props, options, "complinist", "GeneratedSecret");
    }
}
