// npm run rollback -- --stack <env> [--to <version>] [--yes]   (decisions: ops/rollback.ts)
import * as path from "path";
import * as readline from "readline";
import { LocalWorkspace } from "@pulumi/pulumi/automation";
import { OperatorIo, parseRollbackArgs, rollback, ROLLBACK_EXIT, ROLLBACK_USAGE, RollbackStack } from "../ops/rollback";

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
        console.error(e instanceof Error ? e.message : String(e));
        return ROLLBACK_EXIT.refused;
    }
    if (args.help) {
        console.log(ROLLBACK_USAGE);
        return ROLLBACK_EXIT.ok;
    }
    // The project directory: Pulumi.yaml and Pulumi.<stack>.yaml, where the pin is written.
    const workDir = path.join(__dirname, "..");
    let stack: RollbackStack;
    try {
        stack = await LocalWorkspace.selectStack({ stackName: args.stack, workDir });
    } catch (e) {
        console.error(`rollback refused: cannot select stack '${args.stack}' (is the Pulumi CLI installed and logged in to the backend?): ${e instanceof Error ? e.message : String(e)}`);
        return ROLLBACK_EXIT.refused;
    }
    return rollback(stack, args, io);
}

main().then(
    (code) => {
        process.exitCode = code;
    },
    (e: unknown) => {
        console.error(`rollback: unexpected error: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
        process.exitCode = ROLLBACK_EXIT.refused;
    },
);
