// npm run destroy -- --stack <env> [--yes]: `pulumi destroy` with the program inline (scripts/engine.ts).
// What it removes from each host, and what stays, is in docs/operations.md ("Destroying a stack").
// A protected stack (prod) is refused before the engine runs: nothing is removed.
// Exit 0: destroyed; 1: refused or aborted (nothing changed); 2: the destroy failed part way.
import { parseArgs } from "util";
import { errorMessage } from "../stacks/errors";
import { policyFor } from "../stacks/config";
import { exitWith, selectProjectStack, terminalIo } from "./automation";

const USAGE = "usage: npm run destroy -- --stack <env> [--yes]   (removes the stack's units, proxy and host program from every host)";

async function main(): Promise<number> {
    let args: { stack?: string | undefined; yes?: boolean | undefined; help?: boolean | undefined };
    try {
        args = parseArgs({ args: process.argv.slice(2), options: { stack: { type: "string", short: "s" }, yes: { type: "boolean", short: "y" }, help: { type: "boolean", short: "h" } }, strict: true }).values;
    } catch (e) {
        console.error(`destroy: ${errorMessage(e)}\n${USAGE}`);
        return 1;
    }
    if (args.help) {
        console.log(USAGE);
        return 0;
    }
    if (!args.stack) {
        console.error(`destroy: name the stack\n${USAGE}`);
        return 1;
    }
    const name = args.stack;
    // The engine would delete what is not protected (release records) before refusing the rest: refuse first.
    if (policyFor(name).protect) {
        console.error(
            `destroy of stack '${name}' refused: its resources are protected (production's policy). Nothing was removed. ` +
                `To decommission it on purpose: pulumi state unprotect --all --yes --stack ${name}, then npm run destroy -- --stack ${name}.`,
        );
        return 1;
    }
    let stack;
    try {
        stack = await selectProjectStack(name);
    } catch (e) {
        console.error(`destroy refused: ${errorMessage(e)}`);
        return 1;
    }
    if (args.yes !== true) {
        if (!terminalIo.interactive) {
            console.error(`destroy of stack '${name}' refused: no terminal to confirm on; pass --yes. Nothing was changed.`);
            return 1;
        }
        if (!(await terminalIo.confirm(`Destroy stack ${name}: stop the app and remove its units, proxy and host program from every host? Type "yes": `))) {
            console.error(`destroy of stack '${name}' aborted; nothing was changed.`);
            return 1;
        }
    }
    try {
        await stack.destroy({ onOutput: (o) => process.stdout.write(o) });
        console.log(`destroy: stack ${name} destroyed`);
        return 0;
    } catch (e) {
        const text = errorMessage(e);
        const refused = /protected/i.test(text);
        console.error(`destroy of stack '${name}' ${refused ? "refused (its resources are protected: prod's policy)" : "failed"}: ${text.trim()}`);
        return refused ? 1 : 2;
    }
}

exitWith(main, "destroy", 2);
