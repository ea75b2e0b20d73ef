// npm run status -- --stack <env> [--json | --watch] [--no-pulumi] [--key FILE]   (decisions: ops/status.ts; live view: ops/live/)
import { openTransport } from "../infra/transport";
import { parseStatusArgs, STATUS_EXIT, STATUS_USAGE } from "../ops/status";
import { runStatus } from "../ops/statusView";
import { LivePoller } from "../ops/live/poller";
import { runWatch } from "../ops/live/watch";
import { exitWith } from "./automation";
import { loadTarget, thenCloseConnections, untilInterrupted } from "./target";

const WATCH_INTERVAL_MS = 1000;

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
    if (args.watch) {
        const poller = new LivePoller(target.config, targets, { intervalMs: WATCH_INTERVAL_MS });
        const code = await thenCloseConnections(() =>
            runWatch(poller, { write: (t) => process.stdout.write(t), columns: process.stdout.columns }, { intervalMs: WATCH_INTERVAL_MS, stopped: untilInterrupted() }),
        );
        // An exec still in flight on a hung host would hold the process until its own timeout.
        process.exit(code);
    }
    return thenCloseConnections(() => runStatus(target.config, targets, { json: args.json, via: target.via }, { out: (text) => console.log(text) }));
}

exitWith(main, "status", STATUS_EXIT.unreachable);
