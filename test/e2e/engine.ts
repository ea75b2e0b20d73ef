/**
 * The operator's engine in tests: the real Pulumi CLI (npm run toolchain) running the program
 * inline through the Automation API (scripts/engine.ts, the one way this repo runs it), on a
 * temporary file backend per instance. Each instance is one stack; stacks made with the same
 * `backend` share it (the promotion gate reads one stack from another).
 *
 * A test writes the whole config per operation (`up(config, secretKeys)`): the stack file is
 * written fresh (plain values as YAML, the structured ones as structured YAML like an operator's),
 * then the secret keys are set through the CLI, which encrypts them with the stack's passphrase.
 * Results are the engine's own events, read back into steps, drift and errors; the state is the
 * engine's export. Provider trace lines (COMPLINIST_TRACE, infra/transport/trace.ts) go to a file
 * of this instance's and come back per operation as `providerLog`.
 */
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import type { EngineEvent, Stack } from "@pulumi/pulumi/automation";
import { openStack, PROJECT_DIR } from "../../scripts/engine";
import { driftFromEvents } from "../../ops/drift";

export type ProgramConfig = { [key: string]: unknown };

export type StepOp = "create" | "update" | "replace" | "delete" | "same";

export interface Step {
    urn: string;
    name: string;
    type: string;
    op: StepOp;
    /** Changed top-level input keys, as the engine's diff reports them. */
    diffs: string[];
    status?: "ok" | "failed" | undefined;
}

export interface ProviderLine {
    line: string;
    /** ms since the operation started. */
    at: number;
}

export interface OperationResult {
    steps: Step[];
    /** The update's or preview's error (the CLI's message), undefined on success. */
    error?: string | undefined;
    /** Provider trace lines written during the operation. */
    providerLog: ProviderLine[];
    /** Everything the CLI printed. */
    output: string;
    /** Stack outputs after an up (plain values; secrets as "[secret]"). */
    outputs: Record<string, unknown>;
}

export interface Drift {
    urn: string;
    name: string;
    type: string;
    /** Keys whose value the read returned differently from state. */
    diffs: string[];
    /** The read found the resource gone. */
    deleted: boolean;
}

export interface RefreshResult {
    drift: Drift[];
    error?: string | undefined;
    providerLog: ProviderLine[];
}

/** A resource in the engine's checkpoint (secrets stay as the engine's encrypted objects). */
export interface StateResource {
    urn: string;
    type: string;
    name: string;
    id: string;
    parent: string;
    inputs: Record<string, unknown>;
    outputs: Record<string, unknown>;
    dependencies: string[];
    protect: boolean;
}

/** When to SIGKILL the provider processes of the next operation (the deploy process dying). */
export interface KillTrigger {
    /** A trace line (infra/transport/trace.ts) matching this. */
    onLine: RegExp | string | ((line: string) => boolean);
    /** Wait this long after the line before killing. */
    delayMs?: number | undefined;
}

export interface Backend {
    /** file:// URL of the backend directory. */
    readonly url: string;
    readonly dir: string;
}

/** A temporary file backend; `removeBackend` deletes it. */
export function makeBackend(): Backend {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "complinist-backend-"));
    return { dir, url: `file://${dir}` };
}

export function removeBackend(b: Backend): void {
    fs.rmSync(b.dir, { recursive: true, force: true });
}

export const E2E_PASSPHRASE = "complinist-e2e-only";

export interface RealEngineOptions {
    stack: string;
    /** Shared with other stacks (promotion); default: a backend of this instance's own, removed by close(). */
    backend?: Backend | undefined;
    /** Environment of the CLI and the provider processes it starts (COMPLINIST_DEPLOYER, COMPLINIST_COMMIT, …). */
    env?: { [key: string]: string | undefined };
    /**
     * The project directory, for a stack the npm scripts must find (they read Pulumi.<stack>.yaml
     * there); close() removes that stack file. Default: a temporary directory of its own.
     */
    inProject?: boolean | undefined;
}

const nameOf = (urn: string): string => urn.split("::").pop() ?? urn;

const STEP_OPS: Record<string, StepOp | undefined> = { same: "same", create: "create", update: "update", replace: "replace", delete: "delete" };

export class RealEngine {
    readonly stack: string;
    readonly backend: Backend;
    readonly workDir: string;
    /** Environment for the CLI and the providers; may be changed between operations. */
    env: { [key: string]: string | undefined };
    /** The last checkpoint read back after an operation. */
    state: { resources: StateResource[] } = { resources: [] };
    private readonly ownBackend: boolean;
    private readonly traceFile: string;
    private readonly scratch: string;
    private readonly inProject: boolean;
    private readonly runId = crypto.randomBytes(6).toString("hex");
    private stackHandle?: Promise<Stack>;
    private killTrigger?: KillTrigger | undefined;

    constructor(opts: RealEngineOptions) {
        this.stack = opts.stack;
        this.ownBackend = opts.backend === undefined;
        this.backend = opts.backend ?? makeBackend();
        this.scratch = fs.mkdtempSync(path.join(os.tmpdir(), `complinist-e2e-${opts.stack}-`));
        this.inProject = opts.inProject === true;
        this.workDir = this.inProject ? PROJECT_DIR : this.scratch;
        // The project file as the repo has it (project-level config defaults come with it), without
        // `main`: the CLI checks that it exists beside Pulumi.yaml, and the inline program needs no file.
        if (!this.inProject) {
            const project = YAML.parse(fs.readFileSync(path.join(PROJECT_DIR, "Pulumi.yaml"), "utf8")) as Record<string, unknown>;
            delete project.main;
            fs.writeFileSync(path.join(this.workDir, "Pulumi.yaml"), YAML.stringify(project));
        }
        this.traceFile = path.join(this.scratch, "trace.log");
        this.env = { ...opts.env };
    }

    private envVars(): Record<string, string> {
        const env: Record<string, string> = {
            PULUMI_BACKEND_URL: this.backend.url,
            PULUMI_CONFIG_PASSPHRASE: E2E_PASSPHRASE,
            COMPLINIST_TRACE: this.traceFile,
            COMPLINIST_E2E_RUN: this.runId,
        };
        for (const [k, v] of Object.entries(this.env)) if (v !== undefined) env[k] = v;
        return env;
    }

    /** The Automation API stack (created on first use); env changes apply from the next call. */
    async handle(): Promise<Stack> {
        this.stackHandle ??= openStack(this.stack, { workDir: this.workDir, create: true, env: this.envVars() });
        const s = await this.stackHandle;
        // The workspace's env is read per CLI call: keep it in step with this.env.
        Object.assign(s.workspace.envVars, this.envVars());
        return s;
    }

    /** The environment an npm script needs to reach this stack (backend, passphrase, trace). */
    scriptEnv(): Record<string, string> {
        return this.envVars();
    }

    stackFile(): string {
        return path.join(this.workDir, `Pulumi.${this.stack}.yaml`);
    }

    /** Writes the whole config: plain keys into the stack file, secret keys through the CLI (encrypted). */
    async setConfig(config: ProgramConfig, secretKeys: readonly string[] = []): Promise<void> {
        const s = await this.handle();
        const file = this.stackFile();
        const doc = (fs.existsSync(file) ? (YAML.parse(fs.readFileSync(file, "utf8")) as Record<string, unknown> | null) : null) ?? {};
        const plain: Record<string, unknown> = {};
        const secrets: Record<string, { value: string; secret: true }> = {};
        for (const [k, v] of Object.entries(config)) {
            if (v === undefined) continue;
            if (secretKeys.includes(k)) secrets[k] = { value: typeof v === "string" ? v : JSON.stringify(v), secret: true };
            else plain[k] = v;
        }
        fs.writeFileSync(file, YAML.stringify({ ...doc, config: plain }));
        if (Object.keys(secrets).length > 0) await s.setAllConfig(secrets);
    }

    // ---------------------------------------------------------------- operations

    async preview(config: ProgramConfig, secretKeys: string[] = []): Promise<OperationResult> {
        await this.setConfig(config, secretKeys);
        return this.operation(async (s, onEvent, onOutput) => {
            await s.preview({ diff: true, onEvent, onOutput });
            return {};
        });
    }

    async up(config: ProgramConfig, secretKeys: string[] = []): Promise<OperationResult> {
        await this.setConfig(config, secretKeys);
        return this.operation(async (s, onEvent, onOutput) => {
            const r = await s.up({ onEvent, onOutput });
            return Object.fromEntries(Object.entries(r.outputs).map(([k, v]) => [k, v.secret ? "[secret]" : v.value]));
        });
    }

    async destroy(): Promise<OperationResult> {
        return this.operation(async (s, onEvent, onOutput) => {
            await s.destroy({ onEvent, onOutput });
            return {};
        });
    }

    /**
     * `pulumi refresh` (applied to state) or `--preview-only`; a config given is written first.
     * `runProgram` (`--run-program`): the program runs, so the providers are configured from the
     * current config rather than the one saved with the last update.
     */
    async refresh(
        opts: { previewOnly?: boolean | undefined; runProgram?: boolean | undefined; config?: ProgramConfig | undefined; secretKeys?: string[] } = {},
    ): Promise<RefreshResult> {
        if (opts.config !== undefined) await this.setConfig(opts.config, opts.secretKeys ?? []);
        const events: EngineEvent[] = [];
        const r = await this.operation(async (s, onEvent, onOutput) => {
            const collect = (e: EngineEvent): void => {
                events.push(e);
                onEvent(e);
            };
            const runProgram = opts.runProgram === true;
            if (opts.previewOnly === true) await s.previewRefresh({ onEvent: collect, onOutput, runProgram });
            else await s.refresh({ onEvent: collect, onOutput, runProgram });
            return {};
        });
        const drift = driftFromEvents(events).map((d) => ({ urn: d.urn, name: d.name, type: d.type, diffs: d.keys, deleted: d.op === "delete" }));
        return { drift, error: r.error, providerLog: r.providerLog };
    }

    private async operation(
        run: (s: Stack, onEvent: (e: EngineEvent) => void, onOutput: (o: string) => void) => Promise<Record<string, unknown>>,
    ): Promise<OperationResult> {
        const s = await this.handle();
        const started = Date.now();
        const offset = fs.existsSync(this.traceFile) ? fs.statSync(this.traceFile).size : 0;
        const steps = new Map<string, Step>();
        let output = "";
        const onEvent = (e: EngineEvent): void => {
            const pre = e.resourcePreEvent?.metadata;
            if (pre !== undefined && !pre.type.startsWith("pulumi:providers:") && pre.type !== "pulumi:pulumi:Stack") {
                const op = STEP_OPS[pre.op];
                if (op !== undefined) steps.set(pre.urn, { urn: pre.urn, name: nameOf(pre.urn), type: pre.type, op, diffs: [...(pre.diffs ?? [])] });
            }
            const done = e.resOutputsEvent?.metadata;
            const step = done && steps.get(done.urn);
            if (step) step.status = "ok";
            const failed = e.resOpFailedEvent?.metadata;
            const fstep = failed && steps.get(failed.urn);
            if (fstep) fstep.status = "failed";
        };
        const onOutput = (o: string): void => {
            output += o;
        };
        const watcher = this.armKill(offset);
        let error: string | undefined;
        let outputs: Record<string, unknown> = {};
        try {
            outputs = await run(s, onEvent, onOutput);
        } catch (e) {
            error = e instanceof Error ? e.message : String(e);
        } finally {
            watcher?.stop();
        }
        await this.readState(s);
        return { steps: [...steps.values()], error, providerLog: this.traceSince(offset, started), output, outputs };
    }

    private traceSince(offset: number, started: number): ProviderLine[] {
        if (!fs.existsSync(this.traceFile)) return [];
        const text = fs.readFileSync(this.traceFile).subarray(offset).toString("utf8");
        return text
            .split("\n")
            .filter(Boolean)
            .map((line) => ({ line, at: Date.now() - started }));
    }

    private async readState(s: Stack): Promise<void> {
        const exported = await s.exportStack();
        const resources = ((exported.deployment as { resources?: Array<Record<string, unknown>> } | undefined)?.resources ?? []).map((r) => ({
            urn: String(r.urn),
            type: String(r.type),
            name: nameOf(String(r.urn)),
            id: String(r.id ?? ""),
            parent: String(r.parent ?? ""),
            inputs: (r.inputs ?? {}) as Record<string, unknown>,
            outputs: (r.outputs ?? {}) as Record<string, unknown>,
            dependencies: (r.dependencies ?? []) as string[],
            protect: r.protect === true,
        }));
        this.state = { resources };
    }

    // ---------------------------------------------------------------- state

    byName(name: string): StateResource[] {
        return this.state.resources.filter((r) => r.name === name);
    }

    /** True when `text` is anywhere in the backend's files (checkpoints, history, backups) in plain text. */
    stateContainsPlaintext(text: string): boolean {
        const hit = (dir: string): boolean =>
            fs.readdirSync(dir, { withFileTypes: true }).some((d) => {
                const p = path.join(dir, d.name);
                if (d.isDirectory()) return hit(p);
                const data = fs.readFileSync(p);
                // Backups may be gzipped.
                const plain = p.endsWith(".gz") ? (require("zlib") as typeof import("zlib")).gunzipSync(data) : data;
                return plain.includes(text);
            });
        return hit(this.backend.dir);
    }

    // ---------------------------------------------------------------- the deploy process dying

    /** The provider processes the engine started for this instance (found by its run id in their environment). */
    providerPids(): number[] {
        const pids: number[] = [];
        for (const entry of fs.readdirSync("/proc")) {
            if (!/^\d+$/.test(entry)) continue;
            try {
                const cmd = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8");
                if (!cmd.includes("dynamic-provider")) continue;
                const environ = fs.readFileSync(`/proc/${entry}/environ`, "utf8");
                if (environ.split("\0").includes(`COMPLINIST_E2E_RUN=${this.runId}`)) pids.push(Number(entry));
            } catch {
                // The process ended while being read.
            }
        }
        return pids;
    }

    /** SIGKILL this instance's provider processes now; how many there were. */
    killProvidersNow(): number {
        const pids = this.providerPids();
        for (const pid of pids) {
            try {
                process.kill(pid, "SIGKILL");
            } catch {
                // Already gone.
            }
        }
        return pids.length;
    }

    /** SIGKILL the provider processes during the next operation, when the trigger's trace line appears. */
    killProvider(trigger: KillTrigger): void {
        this.killTrigger = trigger;
    }

    private armKill(offset: number): { stop(): void } | undefined {
        const trigger = this.killTrigger;
        this.killTrigger = undefined;
        if (trigger === undefined) return undefined;
        const matches = (line: string): boolean =>
            typeof trigger.onLine === "string" ? line.includes(trigger.onLine) : typeof trigger.onLine === "function" ? trigger.onLine(line) : trigger.onLine.test(line);
        let fired = false;
        const timer = setInterval(() => {
            if (fired || !fs.existsSync(this.traceFile)) return;
            const lines = fs.readFileSync(this.traceFile).subarray(offset).toString("utf8").split("\n");
            if (!lines.some(matches)) return;
            fired = true;
            setTimeout(() => this.killProvidersNow(), trigger.delayMs ?? 0);
        }, 25);
        return { stop: () => clearInterval(timer) };
    }

    async close(): Promise<void> {
        if (this.inProject) fs.rmSync(this.stackFile(), { force: true });
        fs.rmSync(this.scratch, { recursive: true, force: true });
        if (this.ownBackend) removeBackend(this.backend);
    }
}
