import type { StackConfig } from "../stacks/config";
import { collectStatus, statusExit, type HostStatus, type Probe, type StatusTarget, type WatchNow } from "./status";
import { terminalSafe } from "./terminalText";

/** How `npm run status` shows what ./status.ts decided: a table per host, or one JSON document. */

/** "3h 12m 5s" for a number of seconds; a string uptime is shown as the app wrote it. */
export function formatUptime(uptime: number | string | undefined): string {
    if (uptime === undefined) return "unknown";
    if (typeof uptime === "string") return uptime;
    const total = Math.max(0, Math.floor(uptime));
    const units: Array<[string, number]> = [["d", Math.floor(total / 86400)], ["h", Math.floor(total / 3600) % 24], ["m", Math.floor(total / 60) % 60], ["s", total % 60]];
    // Three units from the largest non-zero one: "2d 1h 0m", "1h 2m 5s", "5s".
    const first = units.findIndex(([, n]) => n > 0);
    return units.slice(first === -1 ? 3 : first, (first === -1 ? 3 : first) + 3).map(([u, n]) => `${n}${u}`).join(" ");
}

function timing(p: Probe | undefined): string {
    if (p === undefined) return "not probed";
    if (p.error !== undefined) return `no answer (${p.error})`;
    return `HTTP ${p.code} in ${p.seconds.toFixed(3)} s`;
}

/** The watch's verdict so far, in words (infra/render/host/watch.sh watch_judge). */
const VERDICT_WORDS: Record<string, string> = {
    ok: "under the limit so far",
    few: "too few requests to judge yet",
    trip: "TRIPPED: switching back to the previous release",
};

/** `canary of 1.2.0 on :5002, under the limit so far: canary 12s of 60s: new 80 requests …`. */
export function watchText(w: WatchNow): string {
    return `${w.phase} of ${w.version} on :${w.port}, ${VERDICT_WORDS[w.verdict] ?? `verdict ${w.verdict}`}: ${w.figures}`;
}

function hostBlock(h: HostStatus, c: Pick<StackConfig, "service" | "health">): string[] {
    const title = `${h.host} (${h.address})  ${h.state === "ok" ? "OK" : h.state.toUpperCase()}`;
    if (h.state === "unreachable") return [title, `  error       ${h.error ?? "unknown"}`];
    const row = (label: string, value: string) => `  ${label.padEnd(11)} ${value}`;
    const lines = [title];
    const live = h.current === undefined ? "none (no current link)" : h.current.version ?? `dangling: current -> ${h.current.link}`;
    lines.push(row("live", `${live}${h.current?.version ? `  (current -> ${h.current.link})` : ""}`));
    const standby = h.instances.filter((i) => i.role === "standby");
    lines.push(row("standby", standby.length > 0 ? standby.map((i) => `${i.version} on :${i.port}`).join(", ") : "none"));
    if (h.canaryVersion !== undefined) {
        const port = h.instances.find((i) => i.role === "canary")?.port;
        lines.push(row("canary", `${h.canaryVersion}${port !== undefined ? ` on :${port}` : ""} takes a share of new requests (an activation in progress; the full switch follows)`));
    }
    if (h.watch !== undefined) lines.push(row("watch", watchText(h.watch)));
    if (h.instances.some((i) => i.link !== "" || i.active === "active")) {
        lines.push(row("instances", h.instances.map((i) => `:${i.port} ${i.version ?? (i.link || "-")} ${i.active} (${i.role})`).join(" · ")));
    }
    lines.push(row("releases", h.releases.length > 0 ? h.releases.join(" ") : "none"));
    const hp = h.health;
    const healthText = hp?.status !== undefined ? `${hp.status} ${hp.version ?? "(no version)"}, up ${formatUptime(hp.uptime)}` : hp?.body !== undefined ? `not JSON: ${hp.body}` : "";
    lines.push(row("health", `${healthText}${healthText ? " · " : ""}${timing(hp)}  (${c.health.path} on :${c.service.port})`));
    lines.push(row("/", timing(h.root)));
    lines.push(row("units", Object.entries(h.units).map(([u, s]) => `${u} ${s}`).join(" · ") || "unknown"));
    const lock = h.lock === undefined ? "unknown" : h.lock.held === "yes" ? `HELD by ${h.lock.owner ?? "unknown"}` : h.lock.held === "no" ? "free" : "unknown (could not test)";
    lines.push(row("lock", lock));
    if (h.revisions.length === 0) lines.push(row("revisions", "none"));
    // The full sha256 is in --json; 12 hex digits tell releases apart in a table.
    h.revisions.forEach((r, i) => lines.push(row(i === 0 ? "revisions" : "", r.replace(/\t/g, "  ").replace(/(sha256=[0-9a-f]{12})[0-9a-f]{52}/, "$1…"))));
    for (const p of h.problems) lines.push(row("PROBLEM", p));
    for (const w of h.warnings) lines.push(row("warning", w));
    return lines;
}

export function renderStatusTable(c: Pick<StackConfig, "stack" | "version" | "service" | "health">, hosts: ReadonlyArray<HostStatus>, via?: string): string {
    const code = statusExit(hosts);
    const verdict =
        code === 0
            ? `every host healthy on ${c.version}`
            : `${hosts.filter((h) => h.state !== "ok").map((h) => `${h.host} ${h.state}`).join(", ")}`;
    const out = [`stack ${c.stack}: declared version ${c.version}${via ? ` (${via})` : ""}`, ""];
    for (const h of hosts) out.push(...hostBlock(h, c), "");
    out.push(`${code === 0 ? "OK" : "NOT OK"}: ${verdict}`);
    if (code !== 0) {
        out.push(
            `Next: npm run logs -- --stack ${c.stack} (app log, deploy log, journal); to return to the pinned release: npm run rollback -- --stack ${c.stack}`,
        );
    }
    // Every line carries what hosts and releases answered: each is made safe as a whole.
    return out.map(terminalSafe).join("\n");
}

export function renderStatusJson(c: Pick<StackConfig, "stack" | "version">, hosts: ReadonlyArray<HostStatus>): string {
    // JSON escapes C0 controls itself, not DEL and C1: those are removed, the document stays valid.
    return JSON.stringify({ stack: c.stack, declaredVersion: c.version, exitCode: statusExit(hosts), hosts }, null, 2).split("\n").map(terminalSafe).join("\n");
}

/** The whole command once the hosts are known; returns the exit code (STATUS_EXIT). */
export async function runStatus(
    c: StackConfig,
    targets: ReadonlyArray<StatusTarget>,
    opts: { readonly json: boolean; readonly via?: string },
    io: { out(text: string): void },
): Promise<number> {
    const hosts = await collectStatus(c, targets);
    io.out(opts.json ? renderStatusJson(c, hosts) : renderStatusTable(c, hosts, opts.via));
    return statusExit(hosts);
}
