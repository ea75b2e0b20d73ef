// The engine's data: what the program registered, the provider process, the driver's state and results.
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

// ---------------------------------------------------------------- provider process

/** One line the provider process printed. */
export interface ProviderLine {
    stream: "stdout" | "stderr";
    line: string;
    /** ms since the provider process started */
    at: number;
}

/** When to SIGKILL the provider process (crash simulation). */
export interface KillTrigger {
    /** Kill (SIGKILL) this many ms after the provider process has started. */
    afterMs?: number | undefined;
    /** Kill when a provider output line (stderr or stdout) matches (e.g. `isTrace("activate", {...})` from trace.ts). */
    onLine?: RegExp | string | ((line: string) => boolean) | undefined;
    /** With onLine: wait this long after the matching line before killing (e.g. mid health check). */
    delayMs?: number | undefined;
}

export interface ProviderServerOptions {
    repoRoot: string;
    project: string;
    /** Full stack config, namespaced keys, values as strings (the engine's PULUMI_CONFIG). */
    config: { [key: string]: string };
    secretKeys: readonly string[];
    env: { [key: string]: string | undefined };
    callTimeoutMs: number;
    kill?: KillTrigger | undefined;
}

// ---------------------------------------------------------------- driver

/** One resource in the driver's state (the engine's checkpoint, in wire form: secrets stay wrapped). */
export interface StateResource {
    urn: string;
    type: string;
    name: string;
    id: string;
    parent: string;
    /** Checked inputs (what the engine stores as `inputs`). */
    inputs: PropertyMap;
    outputs: PropertyMap;
    dependencies: string[];
    protect: boolean;
    retainOnDelete: boolean;
    additionalSecretOutputs: string[];
    /** false for mocked (non-dynamic) custom resources: no provider is ever called for them. */
    dynamic: boolean;
    /** An old copy left by a create-before-delete replacement, deleted at the end of the deployment. */
    pendingDelete?: boolean | undefined;
}

export interface EngineState {
    resources: StateResource[];
}

export type StepOp = "create" | "update" | "replace" | "delete" | "same";

export interface Step {
    urn: string;
    name: string;
    type: string;
    op: StepOp;
    /** Changed top-level input keys (update/replace), as the engine's diff reports them. */
    diffs: string[];
    /** Keys that force replacement (replace). */
    replaces?: string[] | undefined;
    /** up/destroy only. */
    status?: "ok" | "failed" | undefined;
    error?: string | undefined;
}

export interface PreviewResult {
    steps: Step[];
    /** Stack outputs in wire form (secrets wrapped). */
    outputs: PropertyMap;
    resources: CapturedResource[];
    error?: string | undefined;
    providerLog: ProviderLine[];
    programLog: string;
}

export interface UpResult extends PreviewResult {
    /** Dynamic resources whose outputs changed during apply while other resources depended on them:
     *  those dependents were evaluated against the pre-apply values (see limitations). */
    warnings: string[];
}

export interface Drift {
    urn: string;
    name: string;
    type: string;
    /** Output keys whose value Read returned differently from state. */
    diffs: string[];
    /** Read returned an empty id: the resource is gone (removed from state unless previewOnly). */
    deleted: boolean;
}

export interface RefreshResult {
    drift: Drift[];
    error?: string | undefined;
    providerLog: ProviderLine[];
}

/** Program config as a test writes it: namespaced keys; non-string values are JSON-encoded as the engine does. */
export type ProgramConfig = { [key: string]: unknown };

export interface DriverOptions {
    /** Repository root: cwd of the program and of the provider server. Default: the repository holding test/engine. */
    repoRoot?: string | undefined;
    /** Program entry (absolute, or relative to repoRoot). Default: `main` of Pulumi.yaml, else index.ts. */
    program?: string | undefined;
    /** Default: `name` of Pulumi.yaml, else "complinist". */
    project?: string | undefined;
    stack?: string | undefined;
    /** Concurrent provider steps (the engine's default is 10). */
    parallel?: number | undefined;
    /** Extra environment for the provider process (e.g. COMPLINIST_TRACE=1) and the program. */
    env?: { [key: string]: string | undefined };
    /** Persist state here after every step (loaded at construction when it exists). */
    stateFile?: string | undefined;
    /** StackReference name -> outputs. */
    stackReferences?: EvalJob["stackReferences"] | undefined;
    /** Invoke token -> result, for the invokes the program may make. */
    invokes?: EvalJob["invokes"] | undefined;
    /** Module exporting MockPlugins (per-type outputs for mocked custom resources, invokes). */
    mocksModule?: string | undefined;
    evalTimeoutMs?: number | undefined;
    callTimeoutMs?: number | undefined;
    /**
     * Keep one provider process across operations (the engine starts one per deployment). A line the
     * provider writes during an operation's last call may then land in the next operation's log.
     */
    reuseProvider?: boolean | undefined;
}

export type { Json, PropertyMap };
