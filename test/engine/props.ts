// Property values as the Pulumi engine sees them on the wire (google.protobuf.Struct as JSON),
// with the SDK's "special signature" objects for secrets, resource references, assets and unknowns.
// The helpers mirror the engine's marshalling (sdk/go/common/resource/plugin/rpc.go and
// provider_plugin.go): what is sent to a provider that does not accept secrets, and how the
// secret bit is carried back onto what it returns (annotateSecrets).

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type PropertyMap = { [key: string]: Json };

export const SIG_KEY = "4dabf18193072939515e22adb298388d";
export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
export const RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e";
export const OUTPUT_SIG = "d0e6a833031e9bbcd3f4e8bde6ca49a4";
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

export function isObject(v: Json | undefined): v is { [key: string]: Json } {
    return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function isSecret(v: Json | undefined): boolean {
    return isObject(v) && v[SIG_KEY] === SECRET_SIG;
}

/** Wraps a value in the secret signature object (no double wrapping). */
export function secret(v: Json): Json {
    return isSecret(v) ? v : { [SIG_KEY]: SECRET_SIG, value: v };
}

/** True when the value is, or contains, a secret. */
export function containsSecrets(v: Json | undefined): boolean {
    if (isSecret(v)) {
        return true;
    }
    if (Array.isArray(v)) {
        return v.some(containsSecrets);
    }
    if (isObject(v)) {
        return Object.values(v).some(containsSecrets);
    }
    return false;
}

/**
 * Marshals a value for a provider that accepts neither secrets nor resource references (the Node.js
 * dynamic provider answers Configure with acceptSecrets=false): secrets become their plain element,
 * resource references their id (custom resources) or URN (components), output values their value.
 */
export function forProvider(v: Json): Json {
    if (Array.isArray(v)) {
        return v.map(forProvider);
    }
    if (!isObject(v)) {
        return v;
    }
    const sig = v[SIG_KEY];
    if (sig === SECRET_SIG) {
        return forProvider(v.value ?? null);
    }
    if (sig === RESOURCE_SIG) {
        const id = v.id;
        return typeof id === "string" && id !== "" ? id : (v.urn ?? null);
    }
    if (sig === OUTPUT_SIG) {
        return v.value === undefined ? UNKNOWN : forProvider(v.value);
    }
    const out: { [key: string]: Json } = {};
    for (const [k, e] of Object.entries(v)) {
        out[k] = forProvider(e);
    }
    return out;
}

export function mapForProvider(m: PropertyMap): PropertyMap {
    return forProvider(m) as PropertyMap;
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

/**
 * The engine's annotateSecrets: copies "secretness" from ins to outs for keys present in both;
 * recurses when both are objects; otherwise marks the whole out value secret when the in value
 * contains a secret. Mutates and returns outs.
 */
export function annotateSecrets(outs: PropertyMap, ins: PropertyMap | undefined): PropertyMap {
    if (!ins) {
        return outs;
    }
    for (const [key, inValue] of Object.entries(ins)) {
        if (!(key in outs)) {
            continue;
        }
        const outValue = outs[key];
        if (isObject(outValue) && !isSecret(outValue) && isObject(inValue) && !isSecret(inValue)) {
            annotateSecrets(outValue, inValue);
        } else if (!isSecret(outValue) && containsSecrets(inValue)) {
            outs[key] = secret(outValue);
        }
    }
    return outs;
}

/** Marks the listed top-level outputs secret, as the step executor does for additionalSecretOutputs. */
export function applyAdditionalSecretOutputs(outs: PropertyMap, keys: readonly string[]): PropertyMap {
    for (const k of keys) {
        if (k !== "id" && k in outs && !isSecret(outs[k])) {
            outs[k] = secret(outs[k]);
        }
    }
    return outs;
}

/** Canonical JSON (sorted keys) for deep equality that respects the secret bit, like PropertyValue.DeepEquals. */
export function canonical(v: Json | undefined): string {
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

export function deepEqual(a: Json | undefined, b: Json | undefined): boolean {
    return canonical(a) === canonical(b);
}

/** Top-level keys whose values differ (added, removed or changed), sorted. */
export function changedKeys(olds: PropertyMap, news: PropertyMap): string[] {
    const keys = new Set([...Object.keys(olds), ...Object.keys(news)]);
    return [...keys].filter((k) => !deepEqual(olds[k], news[k])).sort();
}

/**
 * The engine's processIgnoreChanges, for top-level keys and dotted paths into objects: the value at
 * each ignored path in news is replaced by the old value (or removed when there was none).
 */
export function applyIgnoreChanges(news: PropertyMap, olds: PropertyMap, ignoreChanges: readonly string[]): PropertyMap {
    const result = JSON.parse(JSON.stringify(news)) as PropertyMap;
    for (const pathText of ignoreChanges) {
        if (pathText === "*") {
            return JSON.parse(JSON.stringify(olds)) as PropertyMap;
        }
        const parts = pathText.split(".");
        let src: Json | undefined = olds;
        let dst: Json | undefined = result;
        for (let i = 0; i < parts.length - 1; i++) {
            src = isObject(src) ? src[parts[i]] : undefined;
            dst = isObject(dst) ? dst[parts[i]] : undefined;
        }
        const last = parts[parts.length - 1];
        if (!isObject(dst)) {
            continue;
        }
        if (isObject(src) && last in src) {
            dst[last] = JSON.parse(JSON.stringify(src[last])) as Json;
        } else {
            delete dst[last];
        }
    }
    return result;
}

/**
 * Serializes a value with every secret-wrapped value redacted: what an encrypted checkpoint would
 * reveal. Used by stateContainsPlaintext.
 */
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
