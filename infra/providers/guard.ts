import type * as pulumi from "@pulumi/pulumi";
import { linesSafe } from "../../ops/terminalText";

const wrappers = new WeakMap<pulumi.dynamic.ResourceProvider, pulumi.dynamic.ResourceProvider>();

/**
 * A dynamic provider whose errors are safe to print: Pulumi prints a provider's error message
 * (and its stack, which repeats it) to the operator's terminal and the CI log, and those messages
 * carry host text — a script's stderr, a registry's answer, what a release's /health said. Every
 * method's error is rethrown with each line made inert (ops/terminalText.ts: escape sequences,
 * control characters, bidi controls removed), its line breaks kept. One wrapper at the class, so
 * no throw site can forget it.
 */
export function guarded<P extends pulumi.dynamic.ResourceProvider>(provider: P): P {
    // One wrapper per provider: @pulumi/pulumi caches a provider's serialized closure by the
    // object (dynamic/index.js, a WeakMap), so a new wrapper per resource serialized the whole
    // closure (~85,000 characters, about 1 s on a loaded machine) again for every resource.
    const known = wrappers.get(provider);
    if (known !== undefined) return known as P;
    const wrapped: P = { ...provider };
    wrappers.set(provider, wrapped);
    for (const name of Object.keys(provider) as Array<keyof P>) {
        const method = provider[name];
        if (typeof method !== "function") continue;
        wrapped[name] = (async (...args: unknown[]) => {
            try {
                return await method.apply(provider, args);
            } catch (e) {
                throw safeError(e);
            }
        }) as P[keyof P];
    }
    return wrapped;
}

/** The error with its message made inert line by line; its own fields (e.g. a retryable flag) kept. */
export function safeError(e: unknown): Error {
    const message = linesSafe(e instanceof Error ? e.message : String(e));
    if (e instanceof Error && message === e.message) return e;
    return Object.assign(new Error(message), e instanceof Error ? { ...e, message } : {});
}
