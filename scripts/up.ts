/**
 * `npm run up [-- --stack <env>] [--yes]`: the main job; the stack defaults to `local`.
 *
 * For `local` it first makes the embedded default real: the Pulumi CLI (npm run toolchain,
 * built once into a cache), the host agent (npm run agent, into the same cache), the Docker
 * engine and the test-host image (scripts/ci-setup.sh), the sample artifacts, and a disposable
 * local host on 127.0.0.1:2222 with the demo-only keys from dev/keys/ — then runs `pulumi up`
 * (the program inline, scripts/engine.ts) against a file backend inside the repo with a dev-only
 * passphrase, and prints the host's /health answer and the stack outputs. Other stacks (dev,
 * staging, prod) use the operator's own backend and show the preview diff first; they apply
 * after a "yes" at the terminal, or with --yes.
 */
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { parseArgs } from "util";
import { SYSTEMD_HOST_FLAGS, waitReady } from "../dev/container";
import { buildArtifacts } from "./build-artifacts";
import { errorMessage } from "../stacks/errors";
import { engineAgent, engineToolchain, openStack } from "./engine";
import { terminalIo } from "./automation";
import { CONVERGE } from "../ops/operator";

const REPO = path.resolve(__dirname, "..");
export const DEV_HOST = { container: "complinist-dev-1", port: 2222, image: "complinist-testhost:latest" };
const DEV_PASSPHRASE = "complinist-dev-only";

function fail(message: string): never {
    console.error(`up: ${message}`);
    process.exit(1);
}

function docker(args: string[], input?: string): string {
    return execFileSync("docker", args, { encoding: "utf8", input, stdio: ["pipe", "pipe", "pipe"] }).trim();
}

/** Start (or reuse) the dev host with the pinned dev host key and the dev deploy key authorized. */
export async function ensureDevHost(): Promise<void> {
    const running = spawnSync("docker", ["inspect", "-f", "{{.State.Running}}", DEV_HOST.container], { encoding: "utf8" });
    if (running.status === 0 && running.stdout.trim() === "true") {
        console.log(`up: dev host ${DEV_HOST.container} already running on 127.0.0.1:${DEV_HOST.port}`);
        return;
    }
    if (running.status === 0) docker(["rm", "-f", DEV_HOST.container]);
    console.log(`up: starting dev host ${DEV_HOST.container} on 127.0.0.1:${DEV_HOST.port}`);
    // Started as the disposable test hosts are (systemd as PID 1), so the dev host behaves like them.
    docker(["run", "-d", "--name", DEV_HOST.container, "--hostname", "dev-1", ...SYSTEMD_HOST_FLAGS, "-p", `127.0.0.1:${DEV_HOST.port}:22`, DEV_HOST.image, "/sbin/init"]);
    const keys = path.join(REPO, "dev", "keys");
    await waitReady(DEV_HOST.container, DEV_HOST.port, 90000);
    docker(["cp", path.join(keys, "dev_host_ed25519_key"), `${DEV_HOST.container}:/etc/ssh/ssh_host_ed25519_key`]);
    docker(["cp", path.join(keys, "dev_host_ed25519_key.pub"), `${DEV_HOST.container}:/etc/ssh/ssh_host_ed25519_key.pub`]);
    const pub = fs.readFileSync(path.join(keys, "deploy_ed25519.pub"), "utf8");
    docker(
        ["exec", "-i", DEV_HOST.container, "sh", "-c", "chown root:root /etc/ssh/ssh_host_ed25519_key* && chmod 600 /etc/ssh/ssh_host_ed25519_key && install -d -m 700 /root/.ssh && cat > /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys && systemctl restart ssh"],
        pub,
    );
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
        fs.mkdirSync(path.join(REPO, ".pulumi-state"), { recursive: true });
        env.PULUMI_BACKEND_URL = process.env.PULUMI_BACKEND_URL ?? `file://${path.join(REPO, ".pulumi-state")}`;
        env.PULUMI_CONFIG_PASSPHRASE = process.env.PULUMI_CONFIG_PASSPHRASE ?? DEV_PASSPHRASE;
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
