import * as http from "http";
import type { AddressInfo } from "net";
import { parseArgs } from "util";
import { STACK_NAME_PATTERN } from "../../stacks/schema";
import { TARGET_OPTIONS, TARGET_USAGE, type TargetArgs } from "../target";
import { dashboardData, type DashboardData } from "./shape";
import { PAGE_CSP, PAGE_HTML } from "./page";

/**
 * `npm run dashboard -- --stack X`: the live view on a local web page. Bound to 127.0.0.1 only
 * (the page shows every host's state without a login: from elsewhere, an SSH tunnel), read-only
 * (GET only, anything else 405), and a Host header other than this address is refused, so a
 * web page elsewhere cannot reach it by a DNS name pointed at 127.0.0.1.
 */

/** The one address it serves on. */
export const DASHBOARD_BIND = "127.0.0.1";
export const DASHBOARD_PORT = 8750;

export interface DashboardArgs extends TargetArgs {
    readonly port: number;
    readonly help: boolean;
}

export const DASHBOARD_USAGE = `usage: npm run dashboard -- --stack <env> [--port N] [--no-pulumi] [--key FILE]

Serves the live view of every host of <env> on http://127.0.0.1:<port>/ (read-only): each host's
phase, live, standby, canary share, requests, errors and response time per release, lock holder,
a chart of each release's error ratio and response time over the last minutes, recent revisions.
Reads each host once a second over its SSH connection. Ctrl-C stops it.
  --port N        the local port (default ${DASHBOARD_PORT}; 0: any free one)
  --bind ADDR     accepted only as ${DASHBOARD_BIND}: the dashboard never listens elsewhere
${TARGET_USAGE}`;

export function parseDashboardArgs(argv: string[]): DashboardArgs {
    let values: { stack?: string | undefined; port?: string | undefined; bind?: string | undefined; "no-pulumi"?: boolean | undefined; key?: string | undefined; help?: boolean | undefined };
    try {
        ({ values } = parseArgs({ args: argv, options: { ...TARGET_OPTIONS, port: { type: "string" }, bind: { type: "string" } }, strict: true, allowPositionals: false }));
    } catch (e) {
        throw new Error(`${e instanceof Error ? e.message : String(e)}\n${DASHBOARD_USAGE}`);
    }
    if (values.help) return { stack: "", port: DASHBOARD_PORT, noPulumi: false, help: true };
    if (values.stack === undefined || !STACK_NAME_PATTERN.test(values.stack)) throw new Error(`--stack <env> is required (dev, staging or prod)\n${DASHBOARD_USAGE}`);
    if (values.bind !== undefined && values.bind !== DASHBOARD_BIND) {
        throw new Error(
            `--bind ${JSON.stringify(values.bind)} is refused: the dashboard listens on ${DASHBOARD_BIND} only (it shows every host's state without a login). ` +
                `From another machine: ssh -L ${DASHBOARD_PORT}:${DASHBOARD_BIND}:${DASHBOARD_PORT} <this machine>`,
        );
    }
    const port = values.port === undefined ? DASHBOARD_PORT : Number(values.port);
    if (!/^\d{1,5}$/.test(values.port ?? "0") || !Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port ${JSON.stringify(values.port)}: accepted: 0 (any free port) to 65535`);
    return { stack: values.stack, port, noPulumi: values["no-pulumi"] === true, key: values.key, help: false };
}

/** Where the page's data comes from: the poller's view and history, shaped (ops/dashboard/shape.ts). */
export type DataSource = () => DashboardData;

export interface Dashboard {
    readonly url: string;
    close(): Promise<void>;
}

const SECURITY_HEADERS = { "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store", "X-Frame-Options": "DENY" };

/** Serves the page, its data as JSON (/data.json) and as Server-Sent Events every `intervalMs` (/events). */
export async function startDashboard(data: DataSource, opts: { readonly port: number; readonly intervalMs: number }): Promise<Dashboard> {
    const clients = new Set<http.ServerResponse>();
    let port = opts.port;
    const server = http.createServer((req, res) => {
        const send = (code: number, type: string, body: string, extra: Record<string, string> = {}) => {
            res.writeHead(code, { "Content-Type": type, ...SECURITY_HEADERS, ...extra });
            res.end(body);
        };
        const host = req.headers.host ?? "";
        if (host !== `${DASHBOARD_BIND}:${port}` && host !== `localhost:${port}`) {
            send(421, "text/plain; charset=utf-8", `this dashboard answers only as http://${DASHBOARD_BIND}:${port}/\n`);
            return;
        }
        if (req.method !== "GET") {
            send(405, "text/plain; charset=utf-8", "read-only: GET only\n", { Allow: "GET" });
            return;
        }
        const path = (req.url ?? "/").split("?")[0];
        if (path === "/") send(200, "text/html; charset=utf-8", PAGE_HTML, { "Content-Security-Policy": PAGE_CSP });
        else if (path === "/data.json") send(200, "application/json", JSON.stringify(data()));
        else if (path === "/events") {
            res.writeHead(200, { "Content-Type": "text/event-stream", ...SECURITY_HEADERS, Connection: "keep-alive" });
            res.write(`retry: 2000\n\ndata: ${JSON.stringify(data())}\n\n`);
            clients.add(res);
            req.on("close", () => clients.delete(res));
        } else send(404, "text/plain; charset=utf-8", "not found\n");
    });
    const tick = setInterval(() => {
        if (clients.size === 0) return;
        const message = `data: ${JSON.stringify(data())}\n\n`;
        for (const c of clients) c.write(message);
    }, opts.intervalMs);
    await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(opts.port, DASHBOARD_BIND, () => resolve());
    });
    port = (server.address() as AddressInfo).port;
    return {
        url: `http://${DASHBOARD_BIND}:${port}/`,
        close: () =>
            new Promise<void>((resolve) => {
                clearInterval(tick);
                for (const c of clients) c.end();
                clients.clear();
                server.close(() => resolve());
                server.closeAllConnections();
            }),
    };
}

/** The source of a running poller: its view and history, shaped for the page. */
export function pollerSource(p: { view(): import("../live/model").LiveView; readonly history: import("../live/history").History }): DataSource {
    return () => dashboardData(p.view(), p.history);
}
