// npm run rollback -- --stack <env> [--to <version>] [--yes]   (decisions: ops/rollback.ts)
import * as readline from "readline";
import { OperatorIo, parseRollbackArgs, rollback, ROLLBACK_EXIT, ROLLBACK_USAGE, RollbackStack } from "../ops/rollback";
import { exitWith, selectProjectStack } from "./automation";
import { errorMessage } from "../stacks/errors";

const io: OperatorIo = {
    interactive: process.stdin.isTTY === true && process.stdout.isTTY === true,
    confirm: (question) =>
        new Promise((resolve) => {
            const rl = readline.createInterface({ input: process.stdin, output: process.stdout });
            rl.question(question, (answer) => {
                rl.close();
                resolve(/^(y|yes)$/i.test(answer.trim()));
            });
        }),
    stream: (chunk) => process.stdout.write(chunk),
    out: (text) => console.log(text),
    err: (text) => console.error(text),
};

async function main(): Promise<number> {
    let args;
    try {
        args = parseRollbackArgs(process.argv.slice(2));
    } catch (e) {
        console.error(errorMessage(e));
        return ROLLBACK_EXIT.refused;
    }
    if (args.help) {
        console.log(ROLLBACK_USAGE);
        return ROLLBACK_EXIT.ok;
    }
    let stack: RollbackStack;
    try {
        stack = await selectProjectStack(args.stack);
    } catch (e) {
        console.error(`rollback refused: ${errorMessage(e)}`);
        return ROLLBACK_EXIT.refused;
    }
    return rollback(stack, args, io);
}

exitWith(main, "rollback", ROLLBACK_EXIT.refused);
