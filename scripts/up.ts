/**
 * `npm run up [-- --stack <env>] [pulumi up flags]`: the main job; the stack defaults to `local`.
 *
 * For `local` it first makes the embedded default real: the Docker engine and the
 * test-host image (scripts/ci-setup.sh), the sample artifacts, and a disposable
 * local host on 127.0.0.1:2222 with the demo-only keys from dev/keys/ — then runs
 * `pulumi up` against a file backend inside the repo with a dev-only passphrase.
 * Other stacks (dev, staging, prod) go straight to `pulumi up` with the operator's own backend.
 */
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { SYSTEMD_HOST_FLAGS, waitReady } from "../dev/container";
import { buildArtifacts } from "./build-artifacts";
import { errorMessage } from "../stacks/errors";

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

/** The embedded demo (Pulumi.local.yaml): what `npm run up` deploys without --stack. */
const DEFAULT_STACK = "local";

/** The stack named on the command line, else the demo; `pulumi up` always gets it explicitly. */
function stackArg(argv: string[]): { stack: string; upArgs: string[] } {
    const i = argv.findIndex((a) => a === "--stack" || a === "-s");
    const inline = argv.find((a) => a.startsWith("--stack="));
    if (inline === undefined && i < 0) return { stack: DEFAULT_STACK, upArgs: ["--stack", DEFAULT_STACK, ...argv] };
    const stack = inline?.slice("--stack=".length) ?? argv[i + 1];
    if (!stack) fail("name the stack after --stack: local (the default), dev, staging or prod");
    return { stack, upArgs: argv };
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

async function main(): Promise<void> {
    const argv = process.argv.slice(2);
    const { stack, upArgs } = stackArg(argv);
    const env: NodeJS.ProcessEnv = { ...process.env };

    if (stack === DEFAULT_STACK) {
        const setup = spawnSync("bash", [path.join(REPO, "scripts", "ci-setup.sh")], { stdio: "inherit" });
        if (setup.status !== 0) fail("could not start the Docker engine or build the test-host image (see above)");
        const built = await buildArtifacts(path.join(REPO, ".build", "artifacts"));
        for (const a of built) console.log(`up: artifact ${path.basename(a.file)} ${a.size} bytes sha256 ${a.sha256}`);
        await ensureDevHost();
        fs.mkdirSync(path.join(REPO, ".pulumi-state"), { recursive: true });
        env.PULUMI_BACKEND_URL ??= `file://${path.join(REPO, ".pulumi-state")}`;
        env.PULUMI_CONFIG_PASSPHRASE ??= DEV_PASSPHRASE;
    }

    if (spawnSync("pulumi", ["version"], { stdio: "ignore" }).status !== 0) {
        fail(
            "the Pulumi CLI is not installed. Install it (https://www.pulumi.com/docs/install/, e.g. `curl -fsSL https://get.pulumi.com | sh`), " +
                (stack === DEFAULT_STACK ? `then run this again: the demo host is up on 127.0.0.1:${DEV_HOST.port}.` : "then run this again."),
        );
    }
    const select = spawnSync("pulumi", ["stack", "select", "--create", stack], { cwd: REPO, env, stdio: "inherit" });
    if (select.status !== 0) fail(`could not select or create stack ${stack}`);
    const up = spawnSync("pulumi", ["up", ...upArgs], { cwd: REPO, env, stdio: "inherit" });
    process.exit(up.status ?? 1);
}

if (require.main === module) main().catch((e: unknown) => fail(errorMessage(e)));
