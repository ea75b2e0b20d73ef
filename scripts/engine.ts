/**
 * The one way this repo runs the Pulumi engine: the program (index.ts) inline through the
 * Automation API, with the pinned CLI (toolchain/toolchain.ts) and the dynamic-provider launcher
 * on PATH, and the host agent built (toolchain/agent.ts). Every npm script that runs Pulumi and
 * every end-to-end test comes through here.
 *
 * Inline: `LocalWorkspace` starts the SDK's own language runtime server in this process and passes
 * it to `pulumi up|preview|refresh|destroy` as `--client`, so no Node.js language host is needed
 * (it is not served here). An operator with the official CLI runs the same program with `pulumi up`.
 */
import * as fs from "fs";
import * as path from "path";
import { LocalWorkspace, type PulumiCommand, Stack } from "@pulumi/pulumi/automation";
import complinist = require("../index");
import { ensureToolchain, Toolchain } from "../toolchain/toolchain";
import { AgentBuild, agentBuild } from "../toolchain/agent";
import { trace } from "../infra/transport/trace";
import { cliCommand } from "./cliCommand";
import { CHECKOUT_DIR } from "../toolchain/checkout";

/** The project directory: Pulumi.yaml, Pulumi.<stack>.yaml, node_modules (the launcher runs from here). */
export const PROJECT_DIR = CHECKOUT_DIR;
export const PROJECT_NAME = "complinist";

export interface EngineOptions {
    /** Where Pulumi.yaml and Pulumi.<stack>.yaml are read (default: the project directory). */
    readonly workDir?: string;
    /** Environment for the CLI and the providers it starts (backend URL, passphrase, COMPLINIST_*). */
    readonly env?: Readonly<Record<string, string>>;
    /** Create the stack when it does not exist (default: it must exist). */
    readonly create?: boolean;
    /** Progress lines (a build of the CLI or of the host agent). */
    readonly log?: (line: string) => void;
}

let toolchain: Toolchain | undefined;
let agent: AgentBuild | undefined;
let command: Promise<PulumiCommand> | undefined;

/**
 * The CLI, built on first use when neither PATH nor the cache has a supported one; and the host
 * agent of agent/ as it is (npm run agent), built when the cache lacks it, before any program runs.
 */
export function engineToolchain(log: (line: string) => void = (line) => console.error(line)): Toolchain {
    toolchain ??= ensureToolchain(log);
    engineAgent(log);
    return toolchain;
}

/** The host agent the program installs (version and sha256 per architecture), built when missing. */
export function engineAgent(log: (line: string) => void = (line) => console.error(line)): AgentBuild {
    agent ??= agentBuild({ log });
    return agent;
}

function pulumiCommand(t: Toolchain): Promise<PulumiCommand> {
    command ??= cliCommand(path.join(t.cliDir, "pulumi"), t.version);
    return command;
}

/** The environment every CLI run gets: the launcher first on PATH, no update check, no plugin downloads. */
export function engineEnv(t: Toolchain, extra: Readonly<Record<string, string>> = {}): Record<string, string> {
    return {
        PATH: [t.launcherDir, t.cliDir, process.env.PATH ?? ""].join(path.delimiter),
        PULUMI_SKIP_UPDATE_CHECK: "true",
        // Every provider is our dynamic one (Pulumi's own server through the launcher): never download a plugin.
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
        COMPLINIST_PROJECT_DIR: PROJECT_DIR,
        COMPLINIST_NODE: process.execPath,
        ...extra,
    };
}

/** index.ts's program, unchanged; the trace marks when the engine ran it (npm run bench -- engine). */
async function inlineProgram(): ReturnType<typeof complinist> {
    trace("program", { phase: "start" });
    const outputs = await complinist();
    trace("program", { phase: "registered" });
    return outputs;
}

/** The stack, with index.ts as its inline program. */
export async function openStack(stackName: string, opts: EngineOptions = {}): Promise<Stack> {
    const t = engineToolchain(opts.log);
    const args = { stackName, projectName: PROJECT_NAME, program: inlineProgram };
    const wsOpts = { workDir: opts.workDir ?? PROJECT_DIR, pulumiCommand: await pulumiCommand(t), envVars: engineEnv(t, opts.env) };
    return opts.create === true ? LocalWorkspace.createOrSelectStack(args, wsOpts) : LocalWorkspace.selectStack(args, wsOpts);
}

/**
 * A file backend's root directory, made (or closed to) 0700 and checked to be this user's own real
 * directory. The backend is a code-execution boundary: every dynamic resource's state carries its
 * provider's code (`__provider`), which the engine runs on every refresh, read and delete, so
 * whoever can write the state runs code as the operator. Pulumi itself writes its files with the
 * umask (measured: directories 0755, files 0644 under umask 022), so the root is what keeps others out.
 */
export function privateStateDir(dir: string): string {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = fs.lstatSync(dir);
    const uid = process.getuid?.();
    if (st.isSymbolicLink()) throw new Error(`${dir} is a symbolic link: the backend's directory must be this checkout's own (remove it; npm run up makes it again)`);
    if (!st.isDirectory()) throw new Error(`${dir} is not a directory (remove it; npm run up makes it again)`);
    if (uid !== undefined && st.uid !== uid) throw new Error(`${dir} belongs to uid ${st.uid}, not to uid ${uid} who runs this: whoever owns it can change the state, and with it the provider code the engine runs (remove it, or run as its owner)`);
    if ((st.mode & 0o7777) !== 0o700) fs.chmodSync(dir, 0o700);
    return dir;
}
