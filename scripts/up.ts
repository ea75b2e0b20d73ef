/**
 * `npm run up [-- --stack <env>] [--yes]`: the main job; the stack defaults to `local`.
 *
 * For `local` it first makes the embedded default real: the Pulumi CLI (npm run toolchain,
 * built once into a cache), the host agent (npm run agent, into the same cache), the Docker
 * engine and the test-host image (scripts/ci-setup.sh), the sample artifacts, and a disposable
 * local host on 127.0.0.1:2222 with this checkout's own demo keys (generated once into
 * .build/demo-ssh/, 0600, git-ignored; its host key pinned in Pulumi.local.yaml) — then runs
 * `pulumi up` (the program inline, scripts/engine.ts) against a file backend inside the repo
 * (.pulumi-state/, 0700) with a dev-only passphrase, and prints the host's /health answer and the
 * stack outputs. Other stacks (dev,
 * staging, prod) use the operator's own backend and show the preview diff first; they apply
 * after a "yes" at the terminal, or with --yes.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { parseArgs } from "util";
import { SYSTEMD_HOST_FLAGS, waitReady } from "../dev/container";
import { DEMO_KEY_DIR, demoKeys } from "../dev/sshKeys";
import { StackFile } from "../ops/stackFile";
import { buildArtifacts } from "./build-artifacts";
import { errorMessage } from "../stacks/errors";
import { engineAgent, engineToolchain, openStack, privateStateDir } from "./engine";
import { terminalIo } from "./automation";
import { CONVERGE } from "../ops/operator";
import { CHECKOUT_DIR } from "../toolchain/checkout";

const REPO = CHECKOUT_DIR;
export const DEV_HOST = { container: "complinist-dev-1", port: 2222, image: "complinist-testhost:latest" };
const DEV_PASSPHRASE = "complinist-dev-only";

function fail(message: string): never {
    console.error(`up: ${message}`);
    process.exit(1);
}

/** How ensureDevHost reaches Docker and the files it keeps; the defaults are the real ones (tests pass stand-ins). */
export interface DevHostDeps {
    /** `docker <args>` with `input` on stdin. */
    readonly docker: (args: string[], input?: string) => { status: number; stdout: string; stderr: string };
    /** Resolves once systemd and sshd answer in the container (dev/container.ts). */
    readonly waitReady: (container: string, port: number, timeoutMs: number) => Promise<void>;
    /** Where the demo keys are kept (default .build/demo-ssh). */
    readonly keyDir: string;
    /** The stack file that pins the demo host's key (default Pulumi.local.yaml). */
    readonly stackFile: string;
    readonly log: (line: string) => void;
}

const realDocker: DevHostDeps["docker"] = (args, input) => {
    const r = spawnSync("docker", args, { encoding: "utf8", input });
    return { status: r.status ?? 1, stdout: r.stdout ?? "", stderr: r.stderr ?? String(r.error ?? "") };
};

/**
 * `text` (the demo stack file) with the host on 127.0.0.1:<DEV_HOST.port> pinned to `hostKey`,
 * everything else as it was; the same text when it already is.
 */
export function pinDemoHostKey(text: string, hostKey: string, file: string): string {
    const stack = new StackFile(text, file);
    const hosts = stack.get(["complinist:hosts"]);
    const i = Array.isArray(hosts) ? hosts.findIndex((h: { address?: unknown; port?: unknown }) => h?.address === "127.0.0.1" && Number(h?.port) === DEV_HOST.port) : -1;
    if (i < 0) throw new Error(`${file} lists no host on 127.0.0.1:${DEV_HOST.port} (the demo host of npm run up) under complinist:hosts`);
    if ((hosts as Array<{ hostKey?: unknown }>)[i]?.hostKey === hostKey) return text;
    stack.set(["complinist:hosts", String(i), "hostKey"], hostKey);
    return stack.toString();
}

/**
 * Start (or reuse) the demo host with this checkout's keys: its deploy key the only one root
 * authorizes, its host key installed and pinned in the demo stack file. Keys are generated once
 * per checkout (dev/sshKeys.ts), so no other user of the machine holds one that opens the host.
 * A running demo host with any other key (another checkout's, or the demo keys once committed
 * under dev/keys/) is replaced.
 */
export async function ensureDevHost(opts: Partial<DevHostDeps> = {}): Promise<void> {
    const d: DevHostDeps = { docker: realDocker, waitReady, keyDir: DEMO_KEY_DIR, stackFile: path.join(REPO, "Pulumi.local.yaml"), log: (line) => console.log(line), ...opts };
    const ok = (args: string[], input?: string): string => {
        const r = d.docker(args, input);
        if (r.status !== 0) throw new Error(`docker ${args.join(" ")} failed (${r.status}): ${r.stderr.trim()}`);
        return r.stdout;
    };
    const keys = demoKeys(d.keyDir);
    const text = fs.readFileSync(d.stackFile, "utf8");
    const pinned = pinDemoHostKey(text, keys.host.publicKey, path.basename(d.stackFile));
    if (pinned !== text) {
        fs.writeFileSync(d.stackFile, pinned);
        d.log(`up: ${path.basename(d.stackFile)} pins this checkout's demo host key (${keys.host.publicKey}, kept in ${d.keyDir})`);
    }
    const c = DEV_HOST.container;
    const running = d.docker(["inspect", "-f", "{{.State.Running}}", c]);
    if (running.status === 0 && running.stdout.trim() === "true") {
        const authorized = d.docker(["exec", c, "cat", "/root/.ssh/authorized_keys"]).stdout;
        const hostKey = d.docker(["exec", c, "cat", "/etc/ssh/ssh_host_ed25519_key.pub"]).stdout;
        if (authorized === `${keys.deploy.publicKey}\n` && hostKey.trim().split(/\s+/).slice(0, 2).join(" ") === keys.host.publicKey) {
            d.log(`up: dev host ${c} already running on 127.0.0.1:${DEV_HOST.port}`);
            return;
        }
        d.log(`up: dev host ${c} has other keys than this checkout's (${d.keyDir}): replacing it`);
    }
    if (running.status === 0) ok(["rm", "-f", c]);
    d.log(`up: starting dev host ${c} on 127.0.0.1:${DEV_HOST.port}`);
    // Started as the disposable test hosts are (systemd as PID 1), so the dev host behaves like them.
    ok(["run", "-d", "--name", c, "--hostname", "dev-1", ...SYSTEMD_HOST_FLAGS, "-p", `127.0.0.1:${DEV_HOST.port}:22`, DEV_HOST.image, "/sbin/init"]);
    await d.waitReady(c, DEV_HOST.port, 90000);
    // Keys travel on stdin (never in argv), written by root inside with 0600 from the start.
    ok(["exec", "-i", c, "sh", "-c", "umask 077 && cat > /etc/ssh/ssh_host_ed25519_key"], keys.host.privateKey);
    ok(["exec", "-i", c, "sh", "-c", "cat > /etc/ssh/ssh_host_ed25519_key.pub"], `${keys.host.publicKey}\n`);
    // Replaces authorized_keys: this checkout's deploy key is the only one root accepts.
    ok(["exec", "-i", c, "sh", "-c", "install -d -m 700 /root/.ssh && umask 077 && cat > /root/.ssh/authorized_keys"], `${keys.deploy.publicKey}\n`);
    ok(["exec", c, "sh", "-c", "chown root:root /etc/ssh/ssh_host_ed25519_key /etc/ssh/ssh_host_ed25519_key.pub /root/.ssh/authorized_keys && chmod 600 /etc/ssh/ssh_host_ed25519_key && systemctl restart ssh"]);
}

/**
 * The backend and passphrase of the demo: the operator's own when set, else a file backend in the
 * checkout (`.pulumi-state/`, 0700: whoever can write a backend runs code as whoever deploys from
 * it) with the dev-only passphrase.
 */
export function localBackendEnv(repo: string = REPO, env: Readonly<Record<string, string | undefined>> = process.env): Record<string, string> {
    return {
        PULUMI_BACKEND_URL: env.PULUMI_BACKEND_URL ?? `file://${privateStateDir(path.join(repo, ".pulumi-state"))}`,
        PULUMI_CONFIG_PASSPHRASE: env.PULUMI_CONFIG_PASSPHRASE ?? DEV_PASSPHRASE,
    };
}

/** The embedded demo (Pulumi.local.yaml): what `npm run up` deploys without --stack. */
const DEFAULT_STACK = "local";

export const UP_USAGE = `usage: npm run up [-- --stack <env>] [--yes]
  --stack <env>   local (the embedded demo, the default), dev, staging or prod
  --yes           apply without asking (other stacks than local show the preview diff and ask first)`;

export function parseUpArgs(argv: string[]): { stack: string; yes: boolean; help: boolean } {
    const { values } = parseArgs({ args: argv, options: { stack: { type: "string", short: "s" }, yes: { type: "boolean", short: "y" }, help: { type: "boolean", short: "h" } }, strict: true });
    if (values.stack === "") throw new Error("name the stack after --stack: local (the default), dev, staging or prod");
    return { stack: values.stack ?? DEFAULT_STACK, yes: values.yes === true, help: values.help === true };
}

async function main(): Promise<number> {
    let args;
    try {
        args = parseUpArgs(process.argv.slice(2));
    } catch (e) {
        console.error(`up: ${errorMessage(e)}\n${UP_USAGE}`);
        return 1;
    }
    if (args.help) {
        console.log(UP_USAGE);
        return 0;
    }
    const env: Record<string, string> = {};
    const local = args.stack === DEFAULT_STACK;
    // The CLI and the host agent first: a build (minutes, once per machine) must not wait on a host.
    const t = engineToolchain((line) => console.log(`up: ${line}`));
    console.log(`up: pulumi ${t.version} (${t.source}: ${t.cliDir})`);
    console.log(`up: host agent ${engineAgent().version}`);
    if (local) {
        const setup = spawnSync("bash", [path.join(REPO, "scripts", "ci-setup.sh")], { stdio: "inherit" });
        if (setup.status !== 0) fail("could not start the Docker engine or build the test-host image (see above)");
        const built = await buildArtifacts(path.join(REPO, ".build", "artifacts"));
        for (const a of built) console.log(`up: artifact ${path.basename(a.file)} ${a.size} bytes sha256 ${a.sha256}`);
        await ensureDevHost();
        Object.assign(env, localBackendEnv());
    }
    const stack = await openStack(args.stack, { create: local, env });
    const stream = (chunk: string): void => {
        process.stdout.write(chunk);
    };
    if (!local && !args.yes) {
        await stack.preview({ diff: true, ...CONVERGE, onOutput: stream });
        if (!terminalIo.interactive) fail(`stack ${args.stack}: no terminal to confirm on; pass --yes to apply the preview above. Nothing was changed.`);
        if (!(await terminalIo.confirm(`Apply the changes above to stack ${args.stack}? Type "yes": `))) fail("aborted; nothing was changed.");
    }
    const result = await stack.up({ ...CONVERGE, onOutput: stream });
    const changes = Object.entries(result.summary.resourceChanges ?? {}).filter(([op]) => op !== "same");
    console.log(changes.length === 0 ? `up: no changes (stack ${args.stack})` : `up: ${changes.map(([op, n]) => `${n} ${op}`).join(", ")} (stack ${args.stack})`);
    if (local) {
        const health = spawnSync("docker", ["exec", DEV_HOST.container, "curl", "-sS", "-m", "5", "http://127.0.0.1:5000/health"], { encoding: "utf8" });
        console.log(`up: ${DEV_HOST.container} http://127.0.0.1:5000/health → ${health.status === 0 ? health.stdout.trim() : `no answer: ${health.stderr.trim()}`}`);
    }
    for (const [k, v] of Object.entries(result.outputs)) console.log(`up: output ${k} = ${v.secret ? "[secret]" : JSON.stringify(v.value)}`);
    return 0;
}

if (require.main === module) {
    main().then(
        (code) => {
            process.exitCode = code;
        },
        (e: unknown) => fail(errorMessage(e)),
    );
}
