// npm run preview -- --stack <env>: `pulumi preview --diff` with the program inline (scripts/engine.ts).
// Exit 0: the diff is printed; 1: the preview failed (bad config, the promotion gate, a host unreachable).
import { parseArgs } from "util";
import { errorMessage } from "../stacks/errors";
import { exitWith, selectProjectStack } from "./automation";
import { CONVERGE } from "../ops/operator";

const USAGE = "usage: npm run preview -- --stack <env>   (pulumi preview --diff: every change the next up makes; touches no host)";

async function main(): Promise<number> {
    let stackName: string | undefined;
    try {
        const { values } = parseArgs({ args: process.argv.slice(2), options: { stack: { type: "string", short: "s" }, help: { type: "boolean", short: "h" } }, strict: true });
        if (values.help) {
            console.log(USAGE);
            return 0;
        }
        stackName = values.stack;
    } catch (e) {
        console.error(`preview: ${errorMessage(e)}\n${USAGE}`);
        return 1;
    }
    if (!stackName) {
        console.error(`preview: name the stack\n${USAGE}`);
        return 1;
    }
    try {
        const stack = await selectProjectStack(stackName);
        // As npm run up and deploy run (CONVERGE): the diff includes what converging a hand-made change takes.
        const r = await stack.preview({ diff: true, ...CONVERGE, onOutput: (o) => process.stdout.write(o) });
        const changes = Object.entries(r.changeSummary).filter(([op]) => op !== "same");
        console.log(changes.length === 0 ? `preview: no changes (stack ${stackName})` : `preview: ${changes.map(([op, n]) => `${n} to ${op}`).join(", ")} (stack ${stackName})`);
        return 0;
    } catch (e) {
        console.error(`preview of stack '${stackName}' failed: ${errorMessage(e).trim()}`);
        return 1;
    }
}

exitWith(main, "preview", 1);
