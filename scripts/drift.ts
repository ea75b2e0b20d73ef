// npm run drift -- --stack <env>   (decisions: ops/drift.ts)
import * as path from "path";
import { LocalWorkspace } from "@pulumi/pulumi/automation";
import { checkDrift, DRIFT_EXIT, DRIFT_USAGE, DriftStack, parseDriftArgs } from "../ops/drift";

const io = { out: (text: string) => console.log(text), err: (text: string) => console.error(text) };

async function main(): Promise<number> {
    let args;
    try {
        args = parseDriftArgs(process.argv.slice(2));
    } catch (e) {
        io.err(e instanceof Error ? e.message : String(e));
        return DRIFT_EXIT.error;
    }
    if (args.help) {
        io.out(DRIFT_USAGE);
        return DRIFT_EXIT.clean;
    }
    let stack: DriftStack;
    try {
        stack = await LocalWorkspace.selectStack({ stackName: args.stack, workDir: path.join(__dirname, "..") });
    } catch (e) {
        io.err(`drift check failed: cannot select stack '${args.stack}' (is the Pulumi CLI installed and logged in to the backend?): ${e instanceof Error ? e.message : String(e)}`);
        return DRIFT_EXIT.error;
    }
    return checkDrift(stack, io);
}

main().then(
    (code) => {
        process.exitCode = code;
    },
    (e: unknown) => {
        io.err(`drift: unexpected error: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
        process.exitCode = DRIFT_EXIT.error;
    },
);
