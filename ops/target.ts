import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import type { ConfigValue } from "@pulumi/pulumi/automation";
import { parseStackConfig, type StackConfig } from "../stacks/config";
import type { Connection } from "../infra/transport";

/**
 * How the operator tools that read hosts (npm run status, npm run logs) find them and log in.
 *
 * With the Pulumi CLI the stack's config comes through the Automation API, secrets decrypted,
 * exactly as `pulumi up` sees it. Without it (`--no-pulumi`, or no `pulumi` on PATH) it comes
 * from Pulumi.<stack>.yaml itself: the same keys, validated by the same schema, but encrypted
 * values stay unreadable — the SSH key then comes from sshPrivateKeyPath, --key FILE or the
 * ssh-agent. Decisions are pure functions here; the scripts only wire files and the CLI.
 */

/** The part of `automation.Stack` used (test/unit/ops/target.test.ts makes tsc prove the real Stack fits). */
export interface ConfigSource {
    readonly name: string;
    /** Every config value, secrets decrypted (`pulumi config --show-secrets --json`). */
    getAllConfig(): Promise<Record<string, ConfigValue>>;
}

/** What stands in for an encrypted value read from a stack file: present for the schema, never usable. */
export const SECRET_PLACEHOLDER = "[encrypted: readable only through the Pulumi CLI]";
/** What stands in for a key the stack does not name: reading hosts may use --key or an agent instead. */
export const NO_KEY_PLACEHOLDER = "[no key in the stack's config]";

/**
 * parseStackConfig, except that a stack without any SSH key passes: the schema demands one
 * for `pulumi up`, but these tools can also log in with --key or an ssh-agent.
 */
function readableConfig(stack: string, raw: Record<string, string>, secretKeys: ReadonlyArray<string>): StackConfig {
    const named = raw["complinist:sshPrivateKey"] !== undefined || raw["complinist:sshPrivateKeyPath"] !== undefined;
    // Secrets these tools never use: encrypted, their placeholder would fail the schema's format checks.
    const usable = Object.fromEntries(Object.entries(raw).filter(([k, v]) => !(UNUSED_SECRETS.includes(k) && v.includes(SECRET_PLACEHOLDER))));
    // Secret keys as `pulumi up` marks them, so a schema error quotes none of their values.
    return parseStackConfig(stack, named ? usable : { ...usable, "complinist:sshPrivateKey": NO_KEY_PLACEHOLDER }, secretKeys);
}

/** The download header and the webhook: status and logs read hosts, they download and notify nothing. */
const UNUSED_SECRETS = ["complinist:releaseAuth", "complinist:notify"];

/** The options both tools share, in util.parseArgs form. */
export const TARGET_OPTIONS = {
    stack: { type: "string", short: "s" },
    "no-pulumi": { type: "boolean" },
    key: { type: "string" },
    help: { type: "boolean", short: "h" },
} as const;

export const TARGET_USAGE = `  --stack <env>   the stack whose hosts to read (dev, staging, prod)
  --no-pulumi     read hosts and settings from Pulumi.<env>.yaml, not through the Pulumi CLI
                  (automatic when no pulumi binary is on PATH; encrypted values are then unreadable)
  --key FILE      the SSH private key; default: complinist:sshPrivateKey, else sshPrivateKeyPath,
                  else the ssh-agent at SSH_AUTH_SOCK`;

export interface TargetArgs {
    readonly stack: string;
    readonly noPulumi: boolean;
    readonly key?: string | undefined;
}

/** The stack file of `stack`: Pulumi names it after the stack's last segment (org/project/staging → staging). */
export function stackFilePath(projectDir: string, stack: string): string {
    return path.join(projectDir, `Pulumi.${stack.split("/").pop() ?? stack}.yaml`);
}

/** Encrypted values (`{ secure: v1:… }`, at any depth) replaced by SECRET_PLACEHOLDER; the paths replaced are collected. */
function withoutSecrets(value: unknown, at: string, found: string[]): unknown {
    if (value === null || typeof value !== "object") return value;
    const entries = Object.entries(value as Record<string, unknown>);
    if (!Array.isArray(value) && entries.length === 1 && entries[0]?.[0] === "secure" && typeof entries[0][1] === "string") {
        found.push(at);
        return SECRET_PLACEHOLDER;
    }
    if (Array.isArray(value)) return value.map((v, i) => withoutSecrets(v, `${at}[${i}]`, found));
    return Object.fromEntries(entries.map(([k, v]) => [k, withoutSecrets(v, `${at}.${k}`, found)]));
}

/**
 * Pure: a stack file's text → the validated config, and which keys were encrypted. Values are
 * handed to the schema the way Pulumi hands them to the program: scalars as strings,
 * structured values as JSON text.
 */
export function configFromStackFile(stack: string, text: string, file = `Pulumi.${stack}.yaml`): { config: StackConfig; encrypted: string[] } {
    let doc: unknown;
    try {
        doc = YAML.parse(text);
    } catch (e) {
        throw new Error(`${file} is not valid YAML: ${e instanceof Error ? e.message : String(e)}`);
    }
    const config = (doc as { config?: unknown } | null)?.config;
    if (config === null || typeof config !== "object" || Array.isArray(config)) throw new Error(`${file} has no config: section`);
    const encrypted: string[] = [];
    const raw: Record<string, string> = {};
    for (const [k, v] of Object.entries(config as Record<string, unknown>)) {
        const plain = withoutSecrets(v, k, encrypted);
        raw[k] = typeof plain === "object" && plain !== null ? JSON.stringify(plain) : String(plain);
    }
    const secretKeys = [...new Set(encrypted.map((at) => at.split(/[.[]/)[0] ?? at))];
    return { config: readableConfig(stack, raw, secretKeys), encrypted };
}

/** The validated config through the Automation API, secrets decrypted. */
export async function configFromPulumi(source: ConfigSource): Promise<StackConfig> {
    const all = await source.getAllConfig();
    const secretKeys = Object.entries(all).filter(([, v]) => v.secret === true).map(([k]) => k);
    return readableConfig(source.name, Object.fromEntries(Object.entries(all).map(([k, v]) => [k, v.value])), secretKeys);
}

/** Whether an executable `pulumi` is on PATH. */
export function pulumiOnPath(pathEnv: string | undefined, isExecutable: (file: string) => boolean = executable): boolean {
    return (pathEnv ?? "").split(path.delimiter).some((dir) => dir !== "" && isExecutable(path.join(dir, "pulumi")));
}

function executable(file: string): boolean {
    try {
        fs.accessSync(file, fs.constants.X_OK);
        return fs.statSync(file).isFile();
    } catch {
        return false;
    }
}

/** What logs in to the hosts, and a description for messages (never the key itself). */
export interface Credential {
    readonly privateKey: string;
    readonly agent?: string;
    readonly describe: string;
}

export interface CredentialSources {
    /** --key FILE. */
    readonly keyFile?: string | undefined;
    /** SSH_AUTH_SOCK. */
    readonly agentSocket?: string | undefined;
    /** sshPrivateKeyPath is relative to it. */
    readonly projectDir: string;
    readonly readFile: (file: string) => string;
}

/** The key: --key FILE, else the config's sshPrivateKey (if readable), else sshPrivateKeyPath, else the ssh-agent. */
export function chooseCredential(c: StackConfig, s: CredentialSources): Credential {
    const read = (file: string, what: string): string => {
        const abs = path.resolve(s.projectDir, file);
        try {
            return s.readFile(abs);
        } catch (e) {
            throw new Error(`cannot read the SSH private key ${abs} (${what}): ${e instanceof Error ? e.message : String(e)}`);
        }
    };
    if (s.keyFile !== undefined) return { privateKey: read(s.keyFile, "--key"), describe: `key file ${path.resolve(s.projectDir, s.keyFile)} (--key)` };
    if (c.sshPrivateKey !== undefined && c.sshPrivateKey !== SECRET_PLACEHOLDER && c.sshPrivateKey !== NO_KEY_PLACEHOLDER) return { privateKey: c.sshPrivateKey, describe: "complinist:sshPrivateKey" };
    if (c.sshPrivateKeyPath !== undefined) {
        return { privateKey: read(c.sshPrivateKeyPath, "complinist:sshPrivateKeyPath"), describe: `key file ${path.resolve(s.projectDir, c.sshPrivateKeyPath)} (complinist:sshPrivateKeyPath)` };
    }
    if (s.agentSocket !== undefined && s.agentSocket !== "") return { privateKey: "", agent: s.agentSocket, describe: `the ssh-agent at ${s.agentSocket}` };
    const why =
        c.sshPrivateKey === SECRET_PLACEHOLDER
            ? `complinist:sshPrivateKey is encrypted in Pulumi.${c.stack}.yaml and only the Pulumi CLI can decrypt it`
            : `stack '${c.stack}' names no key`;
    throw new Error(`no SSH key for stack '${c.stack}': ${why}. Install and log in to the Pulumi CLI, pass --key FILE, or load the key into an ssh-agent (ssh-add; SSH_AUTH_SOCK must be set)`);
}

/** One pinned-host-key SSH connection per host of a release-mode stack. */
export function connectionsFor(c: StackConfig, cred: Credential): Connection[] {
    if (c.mode !== "release") {
        throw new Error(`stack '${c.stack}' is in ${c.mode} mode: status and logs read release-mode hosts (for containers see docs/container-mode.md)`);
    }
    return c.hosts.map((h) => {
        if (h.hostKey === undefined) throw new Error(`host ${h.name} of stack '${c.stack}' has no hostKey: SSH is never blind (ssh-keyscan -t ed25519 ${h.address})`);
        return {
            kind: "ssh",
            name: h.name,
            address: h.address,
            port: h.port,
            user: h.user,
            hostKey: h.hostKey,
            privateKey: cred.privateKey,
            ...(cred.agent !== undefined ? { agent: cred.agent } : {}),
        };
    });
}

export interface Target {
    readonly config: StackConfig;
    readonly connections: Connection[];
    /** "Pulumi CLI" or the stack file's path, and the credential: printed so the operator knows what was used. */
    readonly via: string;
}

export interface TargetDeps {
    readonly projectDir: string;
    readonly env: Readonly<Record<string, string | undefined>>;
    readonly selectStack: (stack: string) => Promise<ConfigSource>;
    readonly readFile: (file: string) => string;
    readonly isExecutable?: (file: string) => boolean;
}

/** The stack's config and a connection per host, through the Pulumi CLI when it is there and wanted. */
export async function resolveTarget(args: TargetArgs, deps: TargetDeps): Promise<Target> {
    const usePulumi = !args.noPulumi && pulumiOnPath(deps.env.PATH, deps.isExecutable);
    let config: StackConfig;
    let source: string;
    if (usePulumi) {
        let stack: ConfigSource;
        try {
            stack = await deps.selectStack(args.stack);
        } catch (e) {
            throw new Error(`${e instanceof Error ? e.message : String(e)} (to read ${path.basename(stackFilePath(deps.projectDir, args.stack))} directly instead, pass --no-pulumi)`);
        }
        config = await configFromPulumi(stack);
        source = "the Pulumi CLI";
    } else {
        const file = stackFilePath(deps.projectDir, args.stack);
        let text: string;
        try {
            text = deps.readFile(file);
        } catch {
            throw new Error(`no stack file ${file} for stack '${args.stack}' (stacks: the Pulumi.<env>.yaml files next to Pulumi.yaml)`);
        }
        config = configFromStackFile(args.stack, text, path.basename(file)).config;
        source = `${path.basename(file)}${args.noPulumi ? "" : " (no pulumi on PATH)"}`;
    }
    const cred = chooseCredential(config, { keyFile: args.key, agentSocket: deps.env.SSH_AUTH_SOCK, projectDir: deps.projectDir, readFile: deps.readFile });
    return { config, connections: connectionsFor(config, cred), via: `config from ${source}, SSH with ${cred.describe}` };
}
