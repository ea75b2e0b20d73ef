// The stack and the SSH connections of npm run status / npm run logs (decisions: ops/target.ts).
import * as fs from "fs";
import * as path from "path";
import { closeAllConnections } from "../infra/transport";
import { resolveTarget, type Target, type TargetArgs } from "../ops/target";
import { findToolchain } from "../toolchain/toolchain";
import { CHECKOUT_DIR } from "../toolchain/checkout";

function withToolchainPath(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
    const t = findToolchain();
    return t === undefined ? env : { ...env, PATH: [t.cliDir, env.PATH ?? ""].join(path.delimiter) };
}

export async function loadTarget(args: TargetArgs): Promise<Target> {
    return resolveTarget(args, {
        projectDir: CHECKOUT_DIR,
        // The CLI npm run toolchain built counts as installed: it is the one the engine runs.
        env: withToolchainPath(process.env),
        // Loaded only on this path: the stack-file path never needs the Automation API.
        selectStack: async (stack) => (await import("./automation")).selectProjectStack(stack),
        readFile: (file) => fs.readFileSync(file, "utf8"),
    });
}

/**
 * Runs `work` and closes the SSH connections after it. The exit code is set before closing:
 * idle pooled sockets are unref'd, so the process may end while the close is still pending,
 * and a code set only afterwards would be lost (the process would exit 0).
 */
export async function thenCloseConnections(work: () => Promise<number>): Promise<number> {
    let code: number | undefined;
    try {
        code = await work();
        process.exitCode = code;
        return code;
    } finally {
        await closeAllConnections();
    }
}

/** Resolves at the first Ctrl-C (SIGINT) or SIGTERM: the live view and the dashboard end there, with 0. */
export function untilInterrupted(): Promise<void> {
    return new Promise((resolve) => {
        const done = (): void => {
            process.off("SIGINT", done);
            process.off("SIGTERM", done);
            resolve();
        };
        process.on("SIGINT", done);
        process.on("SIGTERM", done);
    });
}
