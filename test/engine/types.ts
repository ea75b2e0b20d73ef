import type { Json, PropertyMap } from "./props";

/** One resource registration as the engine received it (RegisterResourceRequest / ReadResourceRequest). */
export interface CapturedResource {
    type: string;
    name: string;
    urn: string;
    custom: boolean;
    /** true for ReadResource registrations (e.g. StackReference, `Resource.get`): not managed. */
    external: boolean;
    /** "" for the root stack. */
    parent: string;
    dependencies: string[];
    propertyDependencies: { [key: string]: string[] };
    /** Wire form: secrets as secret signature objects, `__provider` (dynamic resources) included. */
    inputs: PropertyMap;
    protect: boolean;
    deleteBeforeReplace: boolean;
    ignoreChanges: string[];
    replaceOnChanges: string[];
    additionalSecretOutputs: string[];
    retainOnDelete: boolean;
    /** Provider reference string ("" for default providers). */
    provider: string;
    /** What the mocks handed back to the program: id and state (wire form). */
    mockId: string;
    mockState: PropertyMap;
}

/** Prior engine state the child's mocks answer with (per URN, live resources only). */
export interface PriorOutputs {
    [urn: string]: { id: string; outputs: PropertyMap };
}

export interface EvalJob {
    /** Absolute path of the program entry (a .ts file or a directory). */
    program: string;
    project: string;
    stack: string;
    preview: boolean;
    prior: PriorOutputs;
    /** StackReference name -> outputs (plain values; names listed in secretOutputNames are secret). */
    stackReferences: { [name: string]: { outputs: PropertyMap; secretOutputNames?: string[] } };
    /** Invoke token -> result, for invokes the test allows. */
    invokes: { [token: string]: PropertyMap };
    /** Optional module (absolute path) exporting `MockPlugins` for per-type outputs and invokes. */
    mocksModule?: string | undefined;
    /** Where the child writes its EvalResult. */
    resultFile: string;
    timeoutMs: number;
}

export interface EvalResult {
    resources: CapturedResource[];
    /** Stack outputs in wire form (secrets wrapped). */
    outputs: PropertyMap;
    /** Program error (message), if the program failed. */
    error?: string | undefined;
}

/**
 * A module named by `mocksModule` default-exports (or exports as `plugins`) this shape. Outputs are
 * in wire form: wrap secrets with `secret()` from ./props.
 */
export interface MockPlugins {
    /** type token -> outputs for a new custom (non-dynamic) resource; return undefined to fall through. */
    outputs?: { [type: string]: (name: string, inputs: PropertyMap) => PropertyMap | undefined };
    /** invoke token -> result. */
    invokes?: { [token: string]: (inputs: PropertyMap) => PropertyMap };
}

export type { Json, PropertyMap };
