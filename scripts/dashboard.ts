// npm run dashboard -- --stack <env> [--port N] [--no-pulumi] [--key FILE]   (server: ops/dashboard/server.ts)
import { openTransport } from "../infra/transport";
import { LivePoller } from "../ops/live/poller";
import { DASHBOARD_USAGE, parseDashboardArgs, pollerSource, startDashboard } from "../ops/dashboard/server";
import { exitWith } from "./automation";
import { loadTarget, thenCloseConnections, untilInterrupted } from "./target";

const INTERVAL_MS = 1000;

async function main(): Promise<number> {
    let args;
    try {
        args = parseDashboardArgs(process.argv.slice(2));
    } catch (e) {
        console.error(e instanceof Error ? e.message : String(e));
        return 2;
    }
    if (args.help) {
        console.log(DASHBOARD_USAGE);
        return 0;
    }
    let target;
    try {
        target = await loadTarget(args);
    } catch (e) {
        console.error(`dashboard of stack '${args.stack}' could not start: ${e instanceof Error ? e.message : String(e)}`);
        return 2;
    }
    const targets = await Promise.all(
        target.connections.map(async (conn) => ({ name: conn.name, address: `${conn.address}:${conn.port}`, transport: await openTransport(conn) })),
    );
    const poller = new LivePoller(target.config, targets, { intervalMs: INTERVAL_MS });
    let dashboard;
    try {
        dashboard = await startDashboard(pollerSource(poller), { port: args.port, intervalMs: INTERVAL_MS });
    } catch (e) {
        console.error(`dashboard of stack '${args.stack}' could not listen on 127.0.0.1:${args.port}: ${e instanceof Error ? e.message : String(e)}`);
        return 2;
    }
    const running = dashboard;
    poller.start();
    console.log(`dashboard of stack ${target.config.stack}: ${running.url}  (read-only; Ctrl-C to stop)`);
    const code = await thenCloseConnections(async () => {
        await untilInterrupted();
        poller.stop();
        await running.close();
        return 0;
    });
    // An exec still in flight on a hung host would hold the process until its own timeout.
    process.exit(code);
}

exitWith(main, "dashboard", 2);
