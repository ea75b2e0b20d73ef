import * as pulumi from "@pulumi/pulumi";
import { SECRET_MARK, type StackConfig } from "./config";
import type { HostConfig } from "./schema";
import { sourceInfo, type SourceInfo } from "./source";
import type { CanaryConfig, WatchConfig } from "./watchSchema";

/**
 * The runbook's deployment banner, printed at the start of every preview and up so
 * the log of a CI job says what it deployed where: stack, version, source commit,
 * hosts, rollback target, batch size, and the canary and error-rate watch each host runs.
 */

/** What the banner shows of a host: how it is reached, not its key. */
export type BannerHost = Pick<HostConfig, "name" | "address" | "port" | "user">;

export interface BannerData {
    readonly stack: string;
    readonly production: boolean;
    readonly mode: string;
    readonly version: string;
    readonly commit: string;
    readonly branch: string;
    readonly tag?: string | undefined;
    readonly hosts: ReadonlyArray<BannerHost>;
    readonly rollbackVersion?: string | undefined;
    readonly batchSize: number;
    readonly promoteFrom?: string | undefined;
    /** Absent: the full switch right after the gate. */
    readonly canary?: CanaryConfig | undefined;
    readonly watch: WatchConfig;
    /** `health.soakSeconds`: the watch's second window, after the full switch. */
    readonly soakSeconds: number;
    /** hooks.beforeActivate and when it runs; its command is SECRET_MARK when set with --secret. Absent: no hook. */
    readonly hook?: BannerHook | undefined;
}

export interface BannerHook {
    readonly command: string;
    readonly once: boolean;
    readonly onRollback: boolean;
    readonly timeoutSeconds: number;
}

/** The hook as the banner shows it: a command set with --secret never leaves the config. */
function bannerHook(c: Pick<StackConfig, "hooks" | "secretKeys">): BannerHook | undefined {
    const h = c.hooks;
    if (h.beforeActivate === undefined) return undefined;
    const command = c.secretKeys.includes("hooks") ? SECRET_MARK : h.beforeActivate;
    return { command, once: h.once, onRollback: h.onRollback, timeoutSeconds: h.timeoutSeconds };
}

export function bannerData(c: StackConfig, src: SourceInfo): BannerData {
    return {
        stack: c.stack,
        production: c.policy.protect,
        mode: c.mode,
        version: c.version,
        commit: src.commit,
        branch: src.branch,
        tag: src.tag,
        hosts: c.hosts.map((h) => ({ name: h.name, address: h.address, port: h.port, user: h.user })),
        rollbackVersion: c.rollbackVersion,
        batchSize: c.batchSize,
        promoteFrom: c.promoteFrom,
        canary: c.canary,
        watch: c.watch,
        soakSeconds: c.health.soakSeconds,
        hook: bannerHook(c),
    };
}

/** The hook row: the command (or SECRET_MARK), where, how long, and whether a rollback runs it. */
function hookText(h: BannerHook): string {
    return `${h.command} (before the switch, ${h.once ? "on the first host only" : "on every host"}, at most ${h.timeoutSeconds}s; ${h.onRollback ? "on a rollback too" : "not on a rollback"})`;
}

/** The canary row: what share of new requests the new release takes after its gate, and for how long. */
function canaryText(d: Pick<BannerData, "canary">): string {
    return d.canary === undefined ? "none (the full switch after the gate)" : `${d.canary.percent}% of new requests for ${d.canary.seconds}s after the gate, then the full switch`;
}

/**
 * The watch row, in the words of infra/render/host/watch.sh's verdict: the limit is the larger of
 * the factor times the previous ratio and maxErrorRatio (printed as the host prints it, %.2f).
 */
function watchText(d: Pick<BannerData, "canary" | "watch" | "soakSeconds">): string {
    const windows = `${d.canary !== undefined ? `canary ${d.canary.seconds}s` : "no canary"}, soak ${d.soakSeconds}s`;
    if (d.canary === undefined && d.soakSeconds === 0) return `off: nothing to watch (${windows})`;
    const w = d.watch;
    return (
        `switch back when the new release's error ratio is above ${w.errorRateFactor} x the previous one's and above ${(100 * w.maxErrorRatio).toFixed(2)}%, ` +
        `over at least ${w.minRequests} requests (${windows})`
    );
}

/** Pure: the banner text. */
export function renderBanner(d: BannerData): string {
    const row = (label: string, value: string) => `  ${label.padEnd(13)} ${value}`;
    const nameWidth = Math.max(...d.hosts.map((h) => h.name.length), 4);
    const batches = Math.ceil(d.hosts.length / Math.max(d.batchSize, 1));
    const lines = [
        `CompliNist deployment: stack ${d.stack}${d.production ? " (PRODUCTION)" : ""}`,
        row("version", d.version),
        row("commit", d.commit),
        row("branch", d.branch),
        row("tag", d.tag ?? "none"),
        row("mode", d.mode),
        row("rollback to", d.rollbackVersion !== undefined ? `${d.rollbackVersion} (npm run rollback -- --stack ${d.stack})` : "none pinned"),
        row("batch size", `${d.batchSize} of ${d.hosts.length} host${d.hosts.length === 1 ? "" : "s"} (${batches} batch${batches === 1 ? "" : "es"})`),
        row("canary", canaryText(d)),
        row("watch", watchText(d)),
        ...(d.promoteFrom !== undefined ? [row("promote from", `${d.promoteFrom} (only a version it runs healthy)`)] : []),
        ...(d.hook !== undefined ? [row("hook", hookText(d.hook))] : []),
        row("hosts", ""),
        ...d.hosts.map((h) => `    ${h.name.padEnd(nameWidth)}  ${h.user}@${h.address}:${h.port}`),
    ];
    return lines.map((l) => l.trimEnd()).join("\n");
}

/** Logs the banner through the engine, so it shows in `pulumi preview` and `pulumi up`. */
export function logBanner(c: StackConfig): void {
    pulumi.log.info(renderBanner(bannerData(c, sourceInfo())));
}
