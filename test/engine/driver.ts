// The engine for tests that run without the Pulumi CLI: the program's dynamic resources are applied
// through Pulumi's own dynamic provider server, following the engine's rules.
//
//  1. evaluate: the real program runs under Pulumi's mocks in a child process (child.ts), which
//     records every registration as the engine would receive it (inputs in wire form, dependencies,
//     parent, protect, ignoreChanges, additionalSecretOutputs ...);
//  2. apply: the captured dynamic resources go through Pulumi's own dynamic provider server with
//     Check/Diff/Create/Read/Update/Delete marshalled as the engine marshals them (provider.ts),
//     in dependency order with bounded parallelism (scheduler.ts), and the results land in an
//     engine-like state.
//
// The rest of the folder: types.ts (every type), props.ts (wire-form values), trace.ts (reading the
// provider log). The program tests no longer use this engine: they run under test/program/mocks.
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { errorMessage } from "../../stacks/errors";
import {
    annotateSecrets,
    applyAdditionalSecretOutputs,
    applyIgnoreChanges,
    changedKeys,
    deepEqual,
    mapForProvider,
    redactSecrets,
    unwrapSecrets,
    Json,
    PropertyMap,
} from "./props";
import { isDynamicType, ProviderServer } from "./provider";
import { DagItem, runDag } from "./scheduler";
import type {
    CapturedResource,
    Drift,
    DriverOptions,
    EngineState,
    EvalJob,
    EvalResult,
    KillTrigger,
    PreviewResult,
    PriorOutputs,
    ProgramConfig,
    ProviderLine,
    RefreshResult,
    StateResource,
    Step,
    StepOp,
    UpResult,
} from "./types";

export * from "./props";
export type * from "./types";

interface OperationContext {
    config: { [key: string]: string };
    secretKeys: string[];
    provider?: Promise<ProviderServer> | undefined;
    servers: ProviderServer[];
}

function encodeConfig(config: ProgramConfig): { [key: string]: string } {
    const out: { [key: string]: string } = {};
    for (const [k, v] of Object.entries(config)) {
        if (v === undefined) {
            continue;
        }
        out[k] = typeof v === "string" ? v : JSON.stringify(v);
    }
    return out;
}

function clone<T>(v: T): T {
    return JSON.parse(JSON.stringify(v)) as T;
}

function matchesReplaceOnChanges(diffs: readonly string[], replaceOnChanges: readonly string[]): boolean {
    if (replaceOnChanges.length === 0) {
        return false;
    }
    return diffs.some((d) => replaceOnChanges.some((r) => r === "*" || r === d || r.split(/[.[]/)[0] === d));
}

export class EngineDriver {
    readonly repoRoot: string;
    readonly program: string;
    readonly project: string;
    readonly stack: string;
    readonly parallel: number;
    state: EngineState = { resources: [] };
    /** Extra environment for the program and the provider process; may be changed between operations. */
    env: { [key: string]: string | undefined };
    private lastConfig: { config: ProgramConfig; secretKeys: string[] } = { config: {}, secretKeys: [] };
    private killTrigger?: KillTrigger | undefined;
    private shared?: Promise<ProviderServer> | undefined;
    private live = new Set<ProviderServer>();
    private readonly projectDefaults: ProgramConfig;

    constructor(private readonly opts: DriverOptions = {}) {
        this.repoRoot = path.resolve(opts.repoRoot ?? path.join(__dirname, "..", ".."));
        const pulumiYaml = this.readPulumiYaml();
        const program = opts.program ?? pulumiYaml.main ?? "index.ts";
        this.program = path.resolve(this.repoRoot, program);
        this.project = opts.project ?? pulumiYaml.name ?? "complinist";
        // Read once: every operation merges these under the test's config.
        this.projectDefaults = pulumiYaml.name === this.project ? pulumiYaml.config : {};
        this.stack = opts.stack ?? "dev";
        this.parallel = opts.parallel ?? 10;
        this.env = { ...opts.env };
        if (opts.stateFile && fs.existsSync(opts.stateFile)) {
            this.state = JSON.parse(fs.readFileSync(opts.stateFile, "utf8")) as EngineState;
        }
    }

    private readPulumiYaml(): { name?: string | undefined; main?: string | undefined; config: { [key: string]: unknown } } {
        const file = path.join(this.repoRoot, "Pulumi.yaml");
        if (!fs.existsSync(file)) {
            return { config: {} };
        }
        const YAML = require("yaml") as { parse(s: string): unknown };
        const doc = YAML.parse(fs.readFileSync(file, "utf8")) as { name?: unknown | undefined; main?: unknown | undefined; config?: unknown } | null;
        const name = typeof doc?.name === "string" ? doc.name : undefined;
        // Project-level config: `key: value` or `key: { type, default | value }`; keys without a
        // namespace belong to the project. The engine merges these under the stack's own values.
        const config: { [key: string]: unknown } = {};
        if (name && doc?.config && typeof doc.config === "object") {
            for (const [k, v] of Object.entries(doc.config as { [key: string]: unknown })) {
                const key = k.includes(":") ? k : `${name}:${k}`;
                if (v !== null && typeof v === "object" && !Array.isArray(v)) {
                    const spec = v as { default?: unknown | undefined; value?: unknown };
                    const value = spec.value !== undefined ? spec.value : spec.default;
                    if (value !== undefined) {
                        config[key] = value;
                    }
                } else if (v !== undefined && v !== null) {
                    config[key] = v;
                }
            }
        }
        return { name, main: typeof doc?.main === "string" ? doc.main : undefined, config };
    }

    /** The config the engine would pass: Pulumi.yaml project defaults (for this project) under the given values. */
    effectiveConfig(config: ProgramConfig): ProgramConfig {
        return { ...this.projectDefaults, ...config };
    }

    // ---------------------------------------------------------------- state

    /** Live (not pending-delete) state entry for a URN. */
    get(urn: string): StateResource | undefined {
        return this.state.resources.find((r) => r.urn === urn && !r.pendingDelete);
    }

    /** Live state entries with the given resource name (any type). */
    byName(name: string): StateResource[] {
        return this.state.resources.filter((r) => r.name === name && !r.pendingDelete);
    }

    /**
     * True when `text` appears in the state outside secret-wrapped values, i.e. it would be readable
     * in a checkpoint whose secrets are encrypted.
     */
    stateContainsPlaintext(text: string): boolean {
        return JSON.stringify(redactSecrets(this.state as unknown as Json)).includes(text);
    }

    private save(): void {
        if (this.opts.stateFile) {
            fs.writeFileSync(this.opts.stateFile, JSON.stringify(this.state, null, 2));
        }
    }

    private put(r: StateResource): void {
        const i = this.state.resources.findIndex((x) => x.urn === r.urn && !x.pendingDelete);
        if (i >= 0) {
            this.state.resources[i] = r;
        } else {
            this.state.resources.push(r);
        }
        this.save();
    }

    private remove(r: StateResource): void {
        this.state.resources = this.state.resources.filter((x) => x !== r);
        this.save();
    }

    // ---------------------------------------------------------------- provider lifecycle

    /** SIGKILL the next provider process (or the shared one) when the trigger fires. */
    killProvider(trigger: KillTrigger): void {
        this.killTrigger = trigger;
    }

    /**
     * SIGKILL every provider process started by this driver and still running, now: a deploy
     * killed at a moment the test chose (e.g. once a host reached a pause point). Returns how many.
     */
    killProvidersNow(): number {
        let n = 0;
        for (const s of this.live) {
            if (s.exited === undefined) {
                s.kill();
                n++;
            }
        }
        return n;
    }

    private newOperation(config: ProgramConfig, secretKeys: string[]): OperationContext {
        this.lastConfig = { config, secretKeys };
        return { config: encodeConfig(this.effectiveConfig(config)), secretKeys, servers: [] };
    }

    private provider(ctx: OperationContext): Promise<ProviderServer> {
        if (!ctx.provider) {
            if (this.opts.reuseProvider && this.shared) {
                ctx.provider = this.shared;
            } else {
                const kill = this.killTrigger;
                this.killTrigger = undefined;
                ctx.provider = ProviderServer.start({
                    repoRoot: this.repoRoot,
                    project: this.project,
                    config: ctx.config,
                    secretKeys: ctx.secretKeys,
                    env: this.env,
                    callTimeoutMs: this.opts.callTimeoutMs ?? 600000,
                    kill,
                });
                if (this.opts.reuseProvider) {
                    this.shared = ctx.provider;
                }
            }
            ctx.provider.then(
                (s) => {
                    ctx.servers.push(s);
                    this.live.add(s);
                },
                () => undefined,
            );
        }
        return ctx.provider;
    }

    private async endOperation(ctx: OperationContext): Promise<ProviderLine[]> {
        if (ctx.provider) {
            await ctx.provider.catch(() => undefined);
        }
        // Closed before the lines are taken: the gRPC answer to the last call can overtake the
        // stderr line the provider wrote during it, and only the pipe's end says nothing is left.
        if (!this.opts.reuseProvider) {
            for (const s of ctx.servers) {
                await s.close();
                this.live.delete(s);
            }
        }
        return ctx.servers.flatMap((s) => s.lines.splice(0));
    }

    /** Stops every provider process this driver started. */
    async close(): Promise<void> {
        for (const s of this.live) {
            await s.close();
        }
        this.live.clear();
        this.shared = undefined;
    }

    // ---------------------------------------------------------------- evaluation

    /** Runs the program once under mocks in a child process and returns what it registered. */
    async evaluate(config: ProgramConfig, secretKeys: string[] = [], preview = false): Promise<EvalResult & { programLog: string }> {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "engine-eval-"));
        const prior: PriorOutputs = {};
        for (const r of this.state.resources) {
            if (!r.pendingDelete) {
                prior[r.urn] = { id: r.id, outputs: r.outputs };
            }
        }
        const job: EvalJob = {
            program: this.program,
            project: this.project,
            stack: this.stack,
            preview,
            prior,
            stackReferences: this.opts.stackReferences ?? {},
            invokes: this.opts.invokes ?? {},
            mocksModule: this.opts.mocksModule ? path.resolve(this.repoRoot, this.opts.mocksModule) : undefined,
            resultFile: path.join(dir, "result.json"),
            timeoutMs: this.opts.evalTimeoutMs ?? 120000,
        };
        const jobFile = path.join(dir, "job.json");
        fs.writeFileSync(jobFile, JSON.stringify(job));
        const env: { [key: string]: string | undefined } = {
            ...process.env,
            ...this.env,
            PULUMI_CONFIG: JSON.stringify(encodeConfig(this.effectiveConfig(config))),
            PULUMI_CONFIG_SECRET_KEYS: JSON.stringify(secretKeys),
        };
        for (const k of ["PULUMI_NODEJS_MONITOR", "PULUMI_NODEJS_ENGINE", "PULUMI_NODEJS_PROJECT", "PULUMI_NODEJS_STACK", "PULUMI_NODEJS_DRY_RUN"]) {
            delete env[k];
        }
        const child = spawn(process.execPath, ["-r", "ts-node/register/transpile-only", path.join(__dirname, "child.ts"), jobFile], {
            cwd: this.repoRoot,
            env,
            stdio: ["ignore", "pipe", "pipe"],
        });
        let programLog = "";
        child.stdout.setEncoding("utf8").on("data", (d: string) => (programLog += d));
        child.stderr.setEncoding("utf8").on("data", (d: string) => (programLog += d));
        const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
        try {
            if (!fs.existsSync(job.resultFile)) {
                return { resources: [], outputs: {}, error: `program evaluation process exited with ${code} without a result:\n${programLog}`, programLog };
            }
            const result = JSON.parse(fs.readFileSync(job.resultFile, "utf8")) as EvalResult;
            return { ...result, programLog };
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    }

    // ---------------------------------------------------------------- planning

    private async plan(
        p: ProviderServer,
        rec: CapturedResource,
        old: StateResource,
        checked: PropertyMap,
    ): Promise<{ op: "same" | "update" | "replace"; diffs: string[]; replaces: string[]; deleteBeforeReplace: boolean }> {
        const d = await p.diff(rec.urn, old.id, mapForProvider(old.outputs), mapForProvider(checked), mapForProvider(old.inputs), rec.ignoreChanges);
        const inputDiffs = changedKeys(old.inputs, checked);
        let changes = d.changes;
        let diffs = d.diffs;
        if (changes === "unknown") {
            // The provider has no diff: the engine falls back to comparing old and new inputs.
            changes = inputDiffs.length > 0 ? "some" : "none";
            diffs = inputDiffs;
        } else if (changes === "some" && diffs.length === 0) {
            diffs = [...new Set([...d.replaces, ...inputDiffs])].sort();
        }
        if (changes === "none") {
            return { op: "same", diffs: [], replaces: [], deleteBeforeReplace: false };
        }
        const replaces = [...d.replaces];
        if (matchesReplaceOnChanges(diffs, rec.replaceOnChanges)) {
            replaces.push(...diffs.filter((k) => !replaces.includes(k)));
        }
        return {
            op: replaces.length > 0 ? "replace" : "update",
            diffs,
            replaces,
            deleteBeforeReplace: rec.deleteBeforeReplace || d.deleteBeforeReplace,
        };
    }

    private async check(p: ProviderServer, rec: CapturedResource, old: StateResource | undefined): Promise<PropertyMap> {
        let news = rec.inputs;
        if (old && rec.ignoreChanges.length > 0) {
            news = applyIgnoreChanges(news, old.inputs, rec.ignoreChanges);
        }
        const r = await p.check(rec.urn, old ? mapForProvider(old.inputs) : {}, mapForProvider(news));
        if (r.failures.length > 0) {
            throw new Error(`check failed: ${r.failures.map((f) => (f.property ? `${f.property}: ${f.reason}` : f.reason)).join("; ")}`);
        }
        return annotateSecrets(r.inputs, news);
    }

    private managed(res: CapturedResource[]): CapturedResource[] {
        return res.filter((r) => r.custom && !r.external);
    }

    /** State entries the program no longer declares, plus old copies left by replacements. */
    private condemned(declared: CapturedResource[]): StateResource[] {
        const urns = new Set(this.managed(declared).map((r) => r.urn));
        return this.state.resources.filter((r) => r.pendingDelete || !urns.has(r.urn));
    }

    private protectError(r: StateResource): Error {
        return new Error(
            `resource "${r.urn}" cannot be deleted\nbecause it is protected. To unprotect the resource, either remove the \`protect\` flag ` +
                `from the resource in your Pulumi program and run \`pulumi up\`, or use the command:\n\`pulumi state unprotect '${r.urn}'\``,
        );
    }

    // ---------------------------------------------------------------- preview

    /** Evaluates the program and plans every step (Check + Diff on the provider) without changing anything. */
    async preview(config: ProgramConfig, secretKeys: string[] = []): Promise<PreviewResult> {
        const ctx = this.newOperation(config, secretKeys);
        const ev = await this.evaluate(config, secretKeys, true);
        const steps: Step[] = [];
        const errors: string[] = ev.error ? [ev.error] : [];
        try {
            const items: DagItem[] = this.managed(ev.resources).map((rec) => ({
                key: rec.urn,
                deps: [],
                run: async () => {
                    const old = this.get(rec.urn);
                    const base = { urn: rec.urn, name: rec.name, type: rec.type };
                    if (!isDynamicType(rec.type)) {
                        steps.push({ ...base, op: !old ? "create" : deepEqual(old.inputs, rec.inputs) ? "same" : "update", diffs: old ? changedKeys(old.inputs, rec.inputs) : [] });
                        return;
                    }
                    const p = await this.provider(ctx);
                    const checked = await this.check(p, rec, old);
                    if (!old) {
                        steps.push({ ...base, op: "create", diffs: [] });
                        return;
                    }
                    const pl = await this.plan(p, rec, old, checked);
                    if (pl.op === "replace" && rec.protect) {
                        throw new Error(`unable to replace resource "${rec.urn}"\nas it is currently marked for protection. To unprotect the resource, remove the \`protect\` flag from the resource in your Pulumi program and run \`pulumi up\``);
                    }
                    steps.push({ ...base, op: pl.op, diffs: pl.diffs, ...(pl.op === "replace" ? { replaces: pl.replaces } : {}) });
                },
            }));
            const failures = await runDag(items, this.parallel);
            errors.push(...failures.map(errorMessage));
            if (!ev.error) {
                for (const r of this.condemned(ev.resources)) {
                    if (r.protect && !r.pendingDelete) {
                        errors.push(this.protectError(r).message);
                    }
                    steps.push({ urn: r.urn, name: r.name, type: r.type, op: "delete", diffs: [] });
                }
            }
        } catch (e) {
            errors.push(errorMessage(e));
        }
        const providerLog = await this.endOperation(ctx);
        return { steps, outputs: ev.outputs, resources: ev.resources, error: errors.length ? errors.join("\n") : undefined, providerLog, programLog: ev.programLog };
    }

    // ---------------------------------------------------------------- up

    /** Evaluates the program and applies it: creates/updates/replaces in dependency order, then deletes. */
    async up(config: ProgramConfig, secretKeys: string[] = []): Promise<UpResult> {
        const ctx = this.newOperation(config, secretKeys);
        const ev = await this.evaluate(config, secretKeys, false);
        const steps: Step[] = [];
        const errors: string[] = ev.error ? [ev.error] : [];
        const changed = new Set<string>();
        try {
            const declared = new Set(ev.resources.map((r) => r.urn));
            const items: DagItem[] = ev.resources.map((rec) => ({
                key: rec.urn,
                // A resource waits for its dependencies and its parent (the SDK awaits their URNs).
                deps: [...rec.dependencies, ...(rec.parent ? [rec.parent] : [])].filter((u) => declared.has(u) && u !== rec.urn),
                run: () => this.applyOne(ctx, rec, steps, changed),
            }));
            const failures = await runDag(items, this.parallel);
            errors.push(...failures.map(errorMessage));
            // The engine skips deletes when the program or any step failed.
            if (errors.length === 0) {
                const delErrors = await this.deleteAll(ctx, this.condemned(ev.resources), steps);
                errors.push(...delErrors);
            }
        } catch (e) {
            errors.push(errorMessage(e));
        }
        const providerLog = await this.endOperation(ctx);
        return {
            steps,
            outputs: ev.outputs,
            resources: ev.resources,
            error: errors.length ? errors.join("\n") : undefined,
            warnings: this.staleOutputWarnings(ev.resources, changed),
            providerLog,
            programLog: ev.programLog,
        };
    }

    private async applyOne(ctx: OperationContext, rec: CapturedResource, steps: Step[], changed: Set<string>): Promise<void> {
        if (!rec.custom || rec.external) {
            return;
        }
        const old = this.get(rec.urn);
        const base = { urn: rec.urn, name: rec.name, type: rec.type };
        const entry = (id: string, inputs: PropertyMap, outputs: PropertyMap, dynamic: boolean): StateResource => ({
            urn: rec.urn,
            type: rec.type,
            name: rec.name,
            id,
            parent: rec.parent,
            inputs,
            outputs: applyAdditionalSecretOutputs(annotateSecrets(outputs, inputs), rec.additionalSecretOutputs),
            dependencies: rec.dependencies,
            protect: rec.protect,
            retainOnDelete: rec.retainOnDelete,
            additionalSecretOutputs: rec.additionalSecretOutputs,
            dynamic,
        });
        if (!isDynamicType(rec.type)) {
            // No provider here: the mocks' answer is the resource's state.
            const op: StepOp = !old ? "create" : deepEqual(old.inputs, rec.inputs) ? "same" : "update";
            this.put(entry(rec.mockId, rec.inputs, clone(rec.mockState), false));
            steps.push({ ...base, op, diffs: old ? changedKeys(old.inputs, rec.inputs) : [], status: "ok" });
            return;
        }
        let op: StepOp = old ? "same" : "create";
        let diffs: string[] = [];
        let replaces: string[] = [];
        try {
            const p = await this.provider(ctx);
            const checked = await this.check(p, rec, old);
            if (!old) {
                const r = await p.create(rec.urn, mapForProvider(checked));
                this.put(entry(r.id, checked, r.outputs, true));
                changed.add(rec.urn);
            } else {
                const pl = await this.plan(p, rec, old, checked);
                op = pl.op;
                diffs = pl.diffs;
                replaces = pl.replaces;
                if (pl.op === "same") {
                    this.put({ ...entry(old.id, checked, clone(old.outputs), true) });
                } else if (pl.op === "update") {
                    const outs = await p.update(rec.urn, old.id, mapForProvider(old.outputs), mapForProvider(checked), mapForProvider(old.inputs), rec.ignoreChanges);
                    this.put(entry(old.id, checked, outs, true));
                    changed.add(rec.urn);
                } else {
                    if (rec.protect) {
                        throw new Error(`unable to replace resource "${rec.urn}"\nas it is currently marked for protection. To unprotect the resource, remove the \`protect\` flag from the resource in your Pulumi program and run \`pulumi up\``);
                    }
                    if (pl.deleteBeforeReplace) {
                        if (!old.retainOnDelete) {
                            await p.delete(rec.urn, old.id, mapForProvider(old.outputs), mapForProvider(old.inputs));
                        }
                        this.remove(old);
                        const r = await p.create(rec.urn, mapForProvider(checked));
                        this.put(entry(r.id, checked, r.outputs, true));
                    } else {
                        const r = await p.create(rec.urn, mapForProvider(checked));
                        old.pendingDelete = true;
                        this.state.resources.push(entry(r.id, checked, r.outputs, true));
                        this.save();
                    }
                    changed.add(rec.urn);
                }
            }
            steps.push({ ...base, op, diffs, ...(op === "replace" ? { replaces } : {}), status: "ok" });
        } catch (e) {
            const message = `${op === "same" ? "updating" : op === "create" ? "creating" : op === "update" ? "updating" : "replacing"} ${rec.urn}: ${errorMessage(e)}`;
            steps.push({ ...base, op, diffs, ...(op === "replace" ? { replaces } : {}), status: "failed", error: errorMessage(e) });
            throw new Error(message);
        }
    }

    /** Deletes in reverse dependency order (dependents and children first), in parallel where independent. */
    private async deleteAll(ctx: OperationContext, targets: StateResource[], steps: Step[]): Promise<string[]> {
        const keyOf = (r: StateResource): string => `${r.urn}#${targets.indexOf(r)}`;
        const items: DagItem[] = targets.map((r) => ({
            key: keyOf(r),
            deps: targets.filter((o) => o !== r && (o.dependencies.includes(r.urn) || o.parent === r.urn)).map(keyOf),
            run: async () => {
                const base = { urn: r.urn, name: r.name, type: r.type, op: "delete" as const, diffs: [] };
                try {
                    if (r.protect && !r.pendingDelete) {
                        throw this.protectError(r);
                    }
                    if (r.dynamic && !r.retainOnDelete) {
                        const p = await this.provider(ctx);
                        await p.delete(r.urn, r.id, mapForProvider(r.outputs), mapForProvider(r.inputs));
                    }
                    this.remove(r);
                    steps.push({ ...base, status: "ok" });
                } catch (e) {
                    steps.push({ ...base, status: "failed", error: errorMessage(e) });
                    throw new Error(`deleting ${r.urn}: ${errorMessage(e)}`);
                }
            },
        }));
        return (await runDag(items, this.parallel)).map(errorMessage);
    }

    private staleOutputWarnings(resources: CapturedResource[], changed: Set<string>): string[] {
        const warnings: string[] = [];
        const strip = (m: PropertyMap): Json => {
            const rest = { ...m };
            delete rest.__provider;
            return unwrapSecrets(rest);
        };
        for (const rec of resources) {
            if (!changed.has(rec.urn)) {
                continue;
            }
            const now = this.get(rec.urn);
            // Only dependents whose inputs were computed from this resource's outputs (propertyDependencies),
            // not those that merely wait for it (dependsOn).
            const dependents = resources.filter((o) => Object.values(o.propertyDependencies).some((urns) => urns.includes(rec.urn))).map((o) => o.name);
            if (now && dependents.length > 0 && !deepEqual(strip(now.outputs), strip(rec.mockState))) {
                warnings.push(`${rec.urn}: outputs changed during apply; dependents (${dependents.join(", ")}) saw the pre-apply values`);
            }
        }
        return warnings;
    }

    // ---------------------------------------------------------------- destroy

    /** Deletes every resource in state (reverse dependency order), as `pulumi destroy`. */
    async destroy(config?: ProgramConfig, secretKeys?: string[]): Promise<{ steps: Step[]; error?: string | undefined; providerLog: ProviderLine[] }> {
        const ctx = this.newOperation(config ?? this.lastConfig.config, secretKeys ?? this.lastConfig.secretKeys);
        const steps: Step[] = [];
        try {
            const errors = await this.deleteAll(ctx, [...this.state.resources], steps);
            return { steps, error: errors.length ? errors.join("\n") : undefined, providerLog: await this.endOperation(ctx) };
        } catch (e) {
            return { steps, error: errorMessage(e), providerLog: await this.endOperation(ctx) };
        }
    }

    // ---------------------------------------------------------------- refresh

    /**
     * Reads every dynamic resource in state through its provider and reports drift (output keys that
     * changed). Updates state as the engine does unless previewOnly (`pulumi refresh --preview-only`).
     * Uses the config of the last operation unless one is given (the provider process gets it).
     */
    async refresh(opts: { previewOnly?: boolean | undefined; config?: ProgramConfig | undefined; secretKeys?: string[] } = {}): Promise<RefreshResult> {
        const ctx = this.newOperation(opts.config ?? this.lastConfig.config, opts.secretKeys ?? this.lastConfig.secretKeys);
        const drift: Drift[] = [];
        const errors: string[] = [];
        try {
            const items: DagItem[] = this.state.resources
                .filter((r) => r.dynamic)
                .map((r, i) => ({
                    key: `${r.urn}#${i}`,
                    deps: [],
                    run: () => this.refreshOne(ctx, r, drift, opts.previewOnly === true).catch((e: unknown) => {
                        // Unlike up, refresh reads everything even when one read fails.
                        errors.push(`refreshing ${r.urn}: ${errorMessage(e)}`);
                    }),
                }));
            await runDag(items, this.parallel);
        } catch (e) {
            errors.push(errorMessage(e));
        }
        const providerLog = await this.endOperation(ctx);
        return { drift, error: errors.length ? errors.join("\n") : undefined, providerLog };
    }

    private async refreshOne(ctx: OperationContext, r: StateResource, drift: Drift[], previewOnly: boolean): Promise<void> {
        const p = await this.provider(ctx);
        const res = await p.read(r.urn, r.id, mapForProvider(r.outputs), mapForProvider(r.inputs));
        const base = { urn: r.urn, name: r.name, type: r.type };
        if (!res.id) {
            drift.push({ ...base, diffs: [], deleted: true });
            if (!previewOnly) {
                this.remove(r);
            }
            return;
        }
        const outputs = applyAdditionalSecretOutputs(annotateSecrets(res.outputs, r.outputs), r.additionalSecretOutputs);
        const inputs = res.inputs ? annotateSecrets(res.inputs, r.inputs) : r.inputs;
        const diffs = changedKeys(r.outputs, outputs);
        if (diffs.length > 0) {
            drift.push({ ...base, diffs, deleted: false });
        }
        if (!previewOnly) {
            Object.assign(r, { id: res.id, outputs, inputs });
            this.save();
        }
    }
}
