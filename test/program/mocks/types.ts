// What crosses between evaluate.ts and the child process that runs the program (child.ts): the job
// it is given and the registrations it reports, as the engine would have received them.
import type { PropertyMap } from "./wire";

/** Program config as a test writes it: namespaced keys; non-string values are JSON-encoded as the engine does. */
export type ProgramConfig = { [key: string]: unknown };

/** One resource registration as the engine would receive it (RegisterResourceRequest / ReadResourceRequest). */
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

/** Outputs of resources a previous deployment left, per URN: what the mocks answer the program with. */
export interface PriorOutputs {
    [urn: string]: { id: string; outputs: PropertyMap };
}

/** StackReference name -> its outputs (plain values; names listed in secretOutputNames are secret). */
export interface StackReferences {
    [name: string]: { outputs: PropertyMap; secretOutputNames?: string[] };
}

export interface EvalJob {
    /** Absolute path of the program entry. */
    program: string;
    project: string;
    stack: string;
    preview: boolean;
    prior: PriorOutputs;
    stackReferences: StackReferences;
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

/** An EvalResult with everything the program printed (its log, the banner, errors). */
export interface Evaluation extends EvalResult {
    programLog: string;
}
