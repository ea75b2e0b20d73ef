// npm run rollback -- --stack <env> [--to <version>] [--yes] [--dotenv FILE]   (decisions: ops/rollback.ts)
import { parseRollbackArgs, rollback, ROLLBACK_EXIT, ROLLBACK_USAGE } from "../ops/rollback";
import { exitWith, reportingFor, selectProjectStack, stackFileOf, terminalIo } from "./automation";

async function main(): Promise<number> {
    let args;
    try {
        args = parseRollbackArgs(process.argv.slice(2));
    } catch (e) {
        console.error(e instanceof Error ? e.message : String(e));
        return ROLLBACK_EXIT.refused;
    }
    if (args.help) {
        console.log(ROLLBACK_USAGE);
        return ROLLBACK_EXIT.ok;
    }
    let stack;
    try {
        stack = await selectProjectStack(args.stack);
    } catch (e) {
        console.error(`rollback refused: ${e instanceof Error ? e.message : String(e)}`);
        return ROLLBACK_EXIT.refused;
    }
    return rollback(stack, args, terminalIo, { reporting: await reportingFor(stack), stackFile: stackFileOf(args.stack) });
}

exitWith(main, "rollback", ROLLBACK_EXIT.refused);
