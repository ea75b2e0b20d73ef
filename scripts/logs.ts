// npm run logs -- --stack <env> [--host NAME] [--lines N] [--follow]   (decisions: ops/logs.ts)
import { openTransport } from "../infra/transport";
import { LOGS_EXIT, LOGS_USAGE, parseLogsArgs, selectHosts, showLogs } from "../ops/logs";
import { exitWith } from "./automation";
import { loadTarget, thenCloseConnections } from "./target";

async function main(): Promise<number> {
    let args;
    try {
        args = parseLogsArgs(process.argv.slice(2));
    } catch (e) {
        console.error(e instanceof Error ? e.message : String(e));
        return LOGS_EXIT.failed;
    }
    if (args.help) {
        console.log(LOGS_USAGE);
        return LOGS_EXIT.ok;
    }
    let target;
    let connections;
    try {
        target = await loadTarget(args);
        connections = selectHosts(args.stack, target.connections, args.host);
    } catch (e) {
        console.error(`logs of stack '${args.stack}' could not start: ${e instanceof Error ? e.message : String(e)}`);
        return LOGS_EXIT.failed;
    }
    const targets = await Promise.all(connections.map(async (conn) => ({ name: conn.name, transport: await openTransport(conn) })));
    // Ctrl-C ends the follow on every host (their readers quit when their stdin closes), then
    // we exit 0; a second Ctrl-C does not wait for that.
    const stop = new AbortController();
    const onSignal = () => (stop.signal.aborted ? process.exit(130) : stop.abort());
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    const io = { out: (t: string) => console.log(t), err: (t: string) => console.error(t) };
    return thenCloseConnections(() => showLogs(target.config, targets, { lines: args.lines, follow: args.follow }, io, stop.signal));
}

exitWith(main, "logs", LOGS_EXIT.failed);
