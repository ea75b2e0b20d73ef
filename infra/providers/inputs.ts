import type * as pulumi from "@pulumi/pulumi";

/** A dynamic resource's args: its provider's inputs, each accepted as a pulumi.Input. */
export type InputsOf<T> = { readonly [K in keyof T]: pulumi.Input<T[K]> };

/**
 * The props a dynamic resource registers: its inputs plus every output key set to
 * undefined (so the engine exposes them as outputs), and the options marking the given
 * keys secret in state (returning pulumi.secret() from a provider's outs fails).
 */
export function dynamicProps<T extends object>(
    args: T,
    outputs: ReadonlyArray<string>,
    opts: pulumi.CustomResourceOptions | undefined,
    secrets: ReadonlyArray<string>,
): [Record<string, unknown>, pulumi.CustomResourceOptions] {
    return [{ ...args, ...Object.fromEntries(outputs.map((k) => [k, undefined])) }, { ...opts, additionalSecretOutputs: [...secrets] }];
}
