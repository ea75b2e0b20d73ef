// Property values as the program's registrations carry them on the wire (google.protobuf.Struct as
// JSON, secrets as the SDK's secret signature objects), and the few helpers the program tests read
// them with. The program tests assert on what the program registers, so they see it in this form.

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type PropertyMap = { [key: string]: Json };

const SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

function isObject(v: Json | undefined): v is { [key: string]: Json } {
    return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function isSecret(v: Json | undefined): boolean {
    return isObject(v) && v[SIG_KEY] === SECRET_SIG;
}

/** Wraps a value in the secret signature object (no double wrapping). */
export function secret(v: Json): Json {
    return isSecret(v) ? v : { [SIG_KEY]: SECRET_SIG, value: v };
}

/** Removes every secret wrapper (deep): the plain values a program or a test would see. */
export function unwrapSecrets(v: Json): Json {
    if (Array.isArray(v)) {
        return v.map(unwrapSecrets);
    }
    if (!isObject(v)) {
        return v;
    }
    if (isSecret(v)) {
        return unwrapSecrets(v.value ?? null);
    }
    const out: { [key: string]: Json } = {};
    for (const [k, e] of Object.entries(v)) {
        out[k] = unwrapSecrets(e);
    }
    return out;
}

/** Every secret-wrapped value redacted (deep): what an encrypted checkpoint would reveal. */
export function redactSecrets(v: Json): Json {
    if (Array.isArray(v)) {
        return v.map(redactSecrets);
    }
    if (!isObject(v)) {
        return v;
    }
    if (isSecret(v)) {
        return { [SIG_KEY]: SECRET_SIG, ciphertext: "[encrypted]" };
    }
    const out: { [key: string]: Json } = {};
    for (const [k, e] of Object.entries(v)) {
        out[k] = redactSecrets(e);
    }
    return out;
}

/** Canonical JSON (sorted keys): equality that respects the secret bit, like the engine's PropertyValue.DeepEquals. */
function canonical(v: Json | undefined): string {
    if (v === undefined) {
        return "undefined";
    }
    if (Array.isArray(v)) {
        return `[${v.map(canonical).join(",")}]`;
    }
    if (isObject(v)) {
        return `{${Object.keys(v)
            .sort()
            .map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`)
            .join(",")}}`;
    }
    return JSON.stringify(v);
}

/** Top-level keys whose values differ (added, removed or changed), sorted: what the engine's diff would name. */
export function changedKeys(olds: PropertyMap, news: PropertyMap): string[] {
    const keys = new Set([...Object.keys(olds), ...Object.keys(news)]);
    return [...keys].filter((k) => canonical(olds[k]) !== canonical(news[k])).sort();
}

const DYNAMIC_TYPE_PREFIX = "pulumi-nodejs:dynamic";

/** True for the type token of a `pulumi.dynamic.Resource` (the bare one or a named subtype). */
export function isDynamicType(type: string): boolean {
    return type === DYNAMIC_TYPE_PREFIX + ":Resource" || type.startsWith(DYNAMIC_TYPE_PREFIX + "/") || type.startsWith(DYNAMIC_TYPE_PREFIX + ":");
}
