// npm run drift -- --stack <env>   (decisions: ops/drift.ts)
import { checkDrift, DRIFT_EXIT, DRIFT_USAGE, DriftStack, parseDriftArgs } from "../ops/drift";
import { exitWith, selectProjectStack } from "./automation";
import { errorMessage } from "../stacks/errors";

const io = { out: (text: string) => console.log(text), err: (text: string) => console.error(text) };

async function main(): Promise<number> {
    let args;
    try {
        args = parseDriftArgs(process.argv.slice(2));
    } catch (e) {
        io.err(errorMessage(e));
        return DRIFT_EXIT.error;
    }
    if (args.help) {
        io.out(DRIFT_USAGE);
        return DRIFT_EXIT.clean;
    }
    let stack: DriftStack;
    try {
        stack = await selectProjectStack(args.stack);
    } catch (e) {
        io.err(`drift check failed: ${errorMessage(e)}`);
        return DRIFT_EXIT.error;
    }
    return checkDrift(stack, io);
}

exitWith(main, "drift", DRIFT_EXIT.error);
