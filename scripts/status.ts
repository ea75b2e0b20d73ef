// npm run status -- --stack <env> [--json] [--no-pulumi] [--key FILE]   (decisions: ops/status.ts)
import { openTransport } from "../infra/transport";
import { parseStatusArgs, STATUS_EXIT, STATUS_USAGE } from "../ops/status";
import { runStatus } from "../ops/statusView";
import { exitWith } from "./automation";
import { loadTarget, thenCloseConnections } from "./target";

async function main(): Promise<number> {
    let args;
    try {
        args = parseStatusArgs(process.argv.slice(2));
    } catch (e) {
        console.error(e instanceof Error ? e.message : String(e));
        return STATUS_EXIT.unreachable;
    }
    if (args.help) {
        console.log(STATUS_USAGE);
        return STATUS_EXIT.ok;
    }
    let target;
    try {
        target = await loadTarget(args);
    } catch (e) {
        console.error(`status of stack '${args.stack}' could not start: ${e instanceof Error ? e.message : String(e)}`);
        return STATUS_EXIT.unreachable;
    }
    const targets = await Promise.all(
        target.connections.map(async (conn) => ({ name: conn.name, address: `${conn.address}:${conn.port}`, transport: await openTransport(conn) })),
    );
    return thenCloseConnections(() => runStatus(target.config, targets, { json: args.json, via: target.via }, { out: (text) => console.log(text) }));
}

exitWith(main, "status", STATUS_EXIT.unreachable);
