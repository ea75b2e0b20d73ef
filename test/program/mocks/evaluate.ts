// The program tests' way to run the real program (index.ts): under Pulumi's mocks, in a fresh
// process per evaluation (child.ts), fast and without the Pulumi CLI, an engine or a backend. What it
// answers is every registration as the engine would receive it and the stack outputs. Operator flows
// (preview, up, refresh, destroy against real hosts) are tested through the real CLI in test/e2e.
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import type { EvalJob, EvalResult, Evaluation, PriorOutputs, ProgramConfig, StackReferences } from "./types";

export type * from "./types";
export * from "./wire";

export interface ProgramUnderMocksOptions {
    /** The stack the program believes it runs as. Default "dev". */
    stack?: string | undefined;
    /** Outputs of the stacks the program reads through StackReference (the promotion gate). */
    stackReferences?: StackReferences | undefined;
    /** Extra environment for the program (e.g. CI_COMMIT_SHA for the banner). */
    env?: { [key: string]: string | undefined } | undefined;
    /** Repository root: the program's cwd and where Pulumi.yaml is. Default: this repository. */
    repoRoot?: string | undefined;
    /** Default 120000: a hung program fails its evaluation rather than the test's timeout. */
    timeoutMs?: number | undefined;
}

/** The project as Pulumi.yaml declares it: name, entry, and project-level config defaults (namespaced). */
function readProject(repoRoot: string): { name: string; main: string; config: ProgramConfig } {
    const doc = YAML.parse(fs.readFileSync(path.join(repoRoot, "Pulumi.yaml"), "utf8")) as { name: string; main?: string; config?: { [key: string]: unknown } };
    const config: ProgramConfig = {};
    // `key: value` or `key: { type, default | value }`; keys without a namespace belong to the project.
    for (const [k, v] of Object.entries(doc.config ?? {})) {
        const key = k.includes(":") ? k : `${doc.name}:${k}`;
        const value = v !== null && typeof v === "object" && !Array.isArray(v) ? ((v as { value?: unknown }).value ?? (v as { default?: unknown }).default) : v;
        if (value !== undefined && value !== null) {
            config[key] = value;
        }
    }
    return { name: doc.name, main: doc.main ?? "index.ts", config };
}

/** PULUMI_CONFIG as the language host passes it: namespaced keys, non-string values JSON-encoded. */
function encodeConfig(config: ProgramConfig): { [key: string]: string } {
    const out: { [key: string]: string } = {};
    for (const [k, v] of Object.entries(config)) {
        if (v !== undefined) {
            out[k] = typeof v === "string" ? v : JSON.stringify(v);
        }
    }
    return out;
}

export class ProgramUnderMocks {
    readonly repoRoot: string;
    readonly stack: string;
    /** Outputs a previous deployment left, per URN: the mocks answer the program with these. May be changed between evaluations. */
    state: PriorOutputs = {};
    stackReferences: StackReferences;
    /** Extra environment for the program; may be changed between evaluations. */
    env: { [key: string]: string | undefined };
    private readonly project: { name: string; main: string; config: ProgramConfig };
    private readonly timeoutMs: number;
    private readonly running = new Set<ChildProcess>();

    constructor(opts: ProgramUnderMocksOptions = {}) {
        this.repoRoot = path.resolve(opts.repoRoot ?? path.join(__dirname, "..", "..", ".."));
        this.project = readProject(this.repoRoot);
        this.stack = opts.stack ?? "dev";
        this.stackReferences = opts.stackReferences ?? {};
        this.env = { ...opts.env };
        this.timeoutMs = opts.timeoutMs ?? 120000;
    }

    /** Runs the program once with Pulumi.yaml's defaults under `config`; `preview` is what pulumi.runtime.isDryRun() answers. */
    async evaluate(config: ProgramConfig, secretKeys: string[] = [], preview = false): Promise<Evaluation> {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "program-mocks-"));
        try {
            const job: EvalJob = {
                program: path.resolve(this.repoRoot, this.project.main),
                project: this.project.name,
                stack: this.stack,
                preview,
                prior: this.state,
                stackReferences: this.stackReferences,
                resultFile: path.join(dir, "result.json"),
                timeoutMs: this.timeoutMs,
            };
            const jobFile = path.join(dir, "job.json");
            fs.writeFileSync(jobFile, JSON.stringify(job));
            const env: { [key: string]: string | undefined } = {
                ...process.env,
                ...this.env,
                PULUMI_CONFIG: JSON.stringify(encodeConfig({ ...this.project.config, ...config })),
                PULUMI_CONFIG_SECRET_KEYS: JSON.stringify(secretKeys),
            };
            // A test run from inside `pulumi up` (or its Automation API) must not reach that engine.
            for (const k of ["PULUMI_NODEJS_MONITOR", "PULUMI_NODEJS_ENGINE", "PULUMI_NODEJS_PROJECT", "PULUMI_NODEJS_STACK", "PULUMI_NODEJS_DRY_RUN"]) {
                delete env[k];
            }
            const child = spawn(process.execPath, ["-r", "ts-node/register/transpile-only", path.join(__dirname, "child.ts"), jobFile], {
                cwd: this.repoRoot,
                env,
                stdio: ["ignore", "pipe", "pipe"],
            });
            this.running.add(child);
            let programLog = "";
            child.stdout.setEncoding("utf8").on("data", (d: string) => (programLog += d));
            child.stderr.setEncoding("utf8").on("data", (d: string) => (programLog += d));
            const code = await new Promise<number | null>((resolve) => child.on("close", (c) => resolve(c)));
            this.running.delete(child);
            if (!fs.existsSync(job.resultFile)) {
                return { resources: [], outputs: {}, error: `program evaluation process exited with ${code} without a result:\n${programLog}`, programLog };
            }
            const result = JSON.parse(fs.readFileSync(job.resultFile, "utf8")) as EvalResult;
            return { ...result, programLog };
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    }

    /** Kills any evaluation still running (a test that gave up on it). */
    close(): void {
        for (const child of this.running) {
            child.kill("SIGKILL");
        }
        this.running.clear();
    }
}
