// npm run deploy -- --stack <env> [--yes] [--dotenv FILE]   (decisions: ops/deploy.ts)
import { deploy, DEPLOY_EXIT, DEPLOY_USAGE, parseDeployArgs } from "../ops/deploy";
import { exitWith, reportingFor, selectProjectStack, terminalIo } from "./automation";

async function main(): Promise<number> {
    let args;
    try {
        args = parseDeployArgs(process.argv.slice(2));
    } catch (e) {
        console.error(e instanceof Error ? e.message : String(e));
        return DEPLOY_EXIT.refused;
    }
    if (args.help) {
        console.log(DEPLOY_USAGE);
        return DEPLOY_EXIT.ok;
    }
    let stack;
    try {
        stack = await selectProjectStack(args.stack);
    } catch (e) {
        console.error(`deploy refused: ${e instanceof Error ? e.message : String(e)}`);
        return DEPLOY_EXIT.refused;
    }
    return deploy(stack, args, terminalIo, await reportingFor(stack));
}

exitWith(main, "deploy", DEPLOY_EXIT.refused);
