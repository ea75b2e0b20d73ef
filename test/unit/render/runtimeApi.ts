import * as fs from "fs";
import * as net from "net";
import * as path from "path";

/**
 * A stand-in for HAProxy's runtime API (the admin socket the host program's watch reads), for
 * tests without a proxy: it answers `show stat` as HAProxy 2.6 does (the real CSV header, one
 * row per server of the config file it is given, weights and MAINT from that file and from
 * `set server … state`), and counts simulated traffic: on each `show stat`, every server in
 * service gets the requests and errors set for its port with `traffic`. A config file replaced
 * since the last look (a new inode or mtime: the host program renames a new one over it, then
 * reloads) drops the runtime state changes, as a reload does.
 */

/** The CSV header HAProxy 2.6.12 (Debian bookworm) prints for `show stat`, captured from one. */
export const SHOW_STAT_HEADER = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,agg_check_status,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,h2_headers_rcvd,h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,h2_rst_stream_resp,h2_goaway_resp,h2_open_connections,h2_backend_open_streams,h2_total_connections,h2_backend_total_streams,h1_open_connections,h1_open_streams,h1_total_connections,h1_total_streams,h1_bytes_in,h1_bytes_out,h1_spliced_bytes_in,h1_spliced_bytes_out,";

export interface RuntimeApi {
    /** Each later `show stat` adds these to PORT's counters while its server is in service. */
    traffic(port: number, requests: number, errors: number): void;
    /** Every command received, in order. */
    readonly commands: string[];
    close(): Promise<void>;
}

interface ServerLine {
    readonly port: number;
    readonly weight: number;
    readonly disabled: boolean;
}

function serversOf(config: string): ServerLine[] {
    return [...config.matchAll(/^ {4}server i(\d+) 127\.0\.0\.1:\d+(?: weight (\d+) cookie i\d+)?( disabled)?$/gm)].map((m) => ({
        port: Number(m[1]),
        weight: m[2] !== undefined ? Number(m[2]) : 1,
        disabled: m[3] !== undefined,
    }));
}

export function startRuntimeApi(socketPath: string, configPath: string, service: string, opts: { header?: string } = {}): Promise<RuntimeApi> {
    const header = (opts.header ?? SHOW_STAT_HEADER).replace(/^# /, "").split(",");
    const counters = new Map<number, { req: number; err: number }>();
    const rates = new Map<number, { requests: number; errors: number }>();
    const commands: string[] = [];
    let runtimeState = new Map<number, "ready" | "maint">();
    let seenConfig = "";

    const readConfig = (): string => {
        if (!fs.existsSync(configPath)) return "";
        const st = fs.statSync(configPath);
        const identity = `${st.ino}:${st.mtimeMs}`;
        if (identity !== seenConfig) {
            seenConfig = identity;
            runtimeState = new Map();
        }
        return fs.readFileSync(configPath, "utf8");
    };
    const inService = (s: ServerLine) => (runtimeState.get(s.port) ?? (s.disabled ? "maint" : "ready")) === "ready";

    const showStat = (): string => {
        const servers = serversOf(readConfig());
        const rows = [`# ${header.join(",")}`];
        for (const s of servers) {
            const c = counters.get(s.port) ?? { req: 0, err: 0 };
            const r = rates.get(s.port);
            if (r !== undefined && inService(s)) {
                c.req += r.requests;
                c.err += r.errors;
            }
            counters.set(s.port, c);
            const values: Record<string, string> = {
                pxname: service,
                svname: `i${s.port}`,
                status: inService(s) ? "no check" : "MAINT",
                weight: String(s.weight),
                req_tot: String(c.req),
                hrsp_2xx: String(c.req - c.err),
                hrsp_5xx: String(c.err),
                econ: "0",
                eresp: "0",
            };
            rows.push(header.map((h) => values[h] ?? "0").join(","));
        }
        return `${rows.join("\n")}\n\n`;
    };

    const answer = (line: string): string => {
        commands.push(line);
        if (line === "show stat") return showStat();
        const m = /^set server ([^/]+)\/i(\d+) state (ready|maint)$/.exec(line);
        if (m !== null && m[1] === service && serversOf(readConfig()).some((s) => s.port === Number(m[2]))) {
            runtimeState.set(Number(m[2]), m[3] as "ready" | "maint");
            return "\n";
        }
        return m !== null ? "No such server.\n\n" : "Unknown command.\n\n";
    };

    fs.mkdirSync(path.dirname(socketPath), { recursive: true });
    const server = net.createServer((sock) => {
        let buf = "";
        sock.on("data", (d) => {
            buf += d.toString("utf8");
            const nl = buf.indexOf("\n");
            // Several commands on one line are separated by semicolons, as HAProxy takes them.
            if (nl >= 0) sock.end(buf.slice(0, nl).split(";").map((c) => answer(c.trim())).join(""));
        });
        sock.on("error", () => undefined);
    });
    return new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(socketPath, () =>
            resolve({
                traffic: (port, requests, errors) => void rates.set(port, { requests, errors }),
                commands,
                close: () => new Promise((done) => server.close(() => done())),
            }),
        );
    });
}
