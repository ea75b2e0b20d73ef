/**
 * `npm run bench -- scale`: what hosts cost beyond their own activations. For 1, 4 and 8 hosts,
 * in one batch and in batches of 2, it deploys 1.0.0, then measures an upgrade to 1.1.0 and an
 * unchanged re-apply through the real engine (test/e2e/engine.ts), and reads the providers'
 * trace lines (each stamped with epoch ms) for each host's activation (the provider's `activate`
 * to `activated`: start, gate, switch, drain, read back).
 *
 * The floor an upgrade cannot go under is the unchanged re-apply (CLI start, program, refresh,
 * checkpoint) plus, per batch, its slowest host's activation (batches run one after the other;
 * hosts of a batch in parallel). What the upgrade takes beyond that floor is the deploy side's
 * overhead (the goal: at most 10% of the floor at 8 hosts). It is split into where it goes:
 *   before   from the up's start to the first activation's start, beyond the unchanged re-apply
 *            (the release uploads and installs, the service apply: all per host, in parallel)
 *   between  gaps between one batch's last outcome and the next batch's first start (the engine
 *            registering and scheduling the next batch's steps)
 *   spread   within a batch, the later starts: how far the engine's parallelism (`--parallel`,
 *            default unbounded here) and the per-host connection setup stagger the hosts
 *   after    from the last outcome to the up's end (outputs, the checkpoint)
 * and the SSH handshakes and execs the upgrade needed. Printed, never asserted.
 *
 * Each run is its own stack with its own service (name, port, user, baseDir) on the same test
 * hosts, so runs never share a host's lock or its proxy, and no host is started twice.
 */
import * as path from "path";
import { startHosts, stopHosts, TestHost, hostEntry } from "../../dev/hosts";
import { buildArtifacts, BuiltArtifact } from "../../scripts/build-artifacts";
import { ProgramConfig, RealEngine, type ProviderLine } from "../e2e/engine";
import { handshakes, traced } from "../e2e/trace";
import { markdownTable } from "./table";

const REPO = path.resolve(__dirname, "..", "..");
const SIZES = [1, 4, 8] as const;

interface Run {
    readonly hosts: number;
    readonly batchSize: number;
}

interface Figures {
    readonly run: Run;
    readonly upgradeS: number;
    readonly unchangedS: number;
    /** Per batch, its slowest host's activation. */
    readonly slowestPerBatchS: number[];
    readonly beforeS: number;
    readonly betweenS: number;
    readonly spreadS: number;
    readonly afterS: number;
    readonly handshakes: number;
    readonly execs: number;
}

/** Each host's activation window (ms epoch) from the trace lines, in host order. */
function activations(log: readonly ProviderLine[]): Array<{ host: string; start: number; end: number }> {
    const starts = new Map<string, number>();
    const out: Array<{ host: string; start: number; end: number }> = [];
    for (const t of traced(log)) {
        const host = t.fields.host;
        const at = Number(t.fields.at);
        if (host === undefined || !Number.isFinite(at)) continue;
        if (t.event === "activate") starts.set(host, at);
        if (t.event === "activated" && starts.has(host)) out.push({ host, start: starts.get(host) as number, end: at });
    }
    return out;
}

/** The figures of one upgrade: its windows grouped into the batches the stack rolled out. */
export function overheadOf(run: Run, upStart: number, upEnd: number, unchangedS: number, log: readonly ProviderLine[]): Omit<Figures, "handshakes" | "execs"> {
    const windows = activations(log).sort((a, b) => a.start - b.start);
    if (windows.length !== run.hosts) throw new Error(`${run.hosts} host(s), batches of ${run.batchSize}: ${windows.length} activation(s) traced`);
    const batches: Array<typeof windows> = [];
    for (let i = 0; i < windows.length; i += run.batchSize) batches.push(windows.slice(i, i + run.batchSize));
    const first = (b: typeof windows) => Math.min(...b.map((w) => w.start));
    const last = (b: typeof windows) => Math.max(...b.map((w) => w.end));
    const slowest = batches.map((b) => Math.max(...b.map((w) => w.end - w.start)) / 1000);
    const between = batches.slice(1).reduce((s, b, i) => s + Math.max(0, first(b) - last(batches[i] as typeof windows)), 0) / 1000;
    // Within a batch: how much longer it ran than its slowest host (the later starts).
    const spread = batches.reduce((s, b) => s + (last(b) - first(b)) / 1000, 0) - slowest.reduce((a, b) => a + b, 0);
    return {
        run,
        upgradeS: (upEnd - upStart) / 1000,
        unchangedS,
        slowestPerBatchS: slowest,
        beforeS: (first(batches[0] as typeof windows) - upStart) / 1000 - unchangedS,
        betweenS: between,
        spreadS: spread,
        afterS: (upEnd - last(batches[batches.length - 1] as typeof windows)) / 1000,
    };
}

async function measure(index: number, run: Run, hosts: TestHost[], arts: Record<string, BuiltArtifact>): Promise<Figures> {
    const engine = new RealEngine({ stack: `scale${run.hosts}x${run.batchSize}`, env: { COMPLINIST_DEPLOYER: "bench" } });
    const service = `scale${index}`;
    const cfg = (version: string, rollbackVersion?: string): ProgramConfig => ({
        "complinist:version": version,
        "complinist:rollbackVersion": rollbackVersion,
        "complinist:releases": Object.fromEntries(["1.0.0", "1.1.0"].map((v) => [v, { path: path.relative(REPO, (arts[v] as BuiltArtifact).file), sha256: (arts[v] as BuiltArtifact).sha256 }])),
        "complinist:hosts": hosts.map(hostEntry),
        "complinist:sshPrivateKey": hosts[0]?.privateKey,
        "complinist:baseDir": `/opt/${service}`,
        "complinist:service": { name: service, user: service, port: 6000 + index * 10, command: "bin/start" },
        "complinist:health": { timeoutSeconds: 60, intervalMs: 200 },
        "complinist:rollout": { batchSize: run.batchSize },
    });
    const up = async (config: ProgramConfig) => {
        await engine.setConfig(config, ["complinist:sshPrivateKey"]);
        const start = Date.now();
        const r = await engine.up(config, ["complinist:sshPrivateKey"]);
        if (r.error) throw new Error(`${run.hosts} host(s), batches of ${run.batchSize}: ${r.error}`);
        return { r, start, end: Date.now() };
    };
    try {
        await up(cfg("1.0.0"));
        const upgrade = await up(cfg("1.1.0", "1.0.0"));
        const unchanged = await up(cfg("1.1.0", "1.0.0"));
        const unchangedS = (unchanged.end - unchanged.start) / 1000;
        return {
            ...overheadOf(run, upgrade.start, upgrade.end, unchangedS, upgrade.r.providerLog),
            handshakes: handshakes(upgrade.r.providerLog),
            execs: traced(upgrade.r.providerLog, "ssh-exec").length,
        };
    } finally {
        await engine.destroy().catch(() => undefined);
        await engine.close();
    }
}

export async function scaleBench(): Promise<void> {
    const built = await buildArtifacts(path.join(REPO, ".build", "bench-scale-artifacts"));
    const arts = Object.fromEntries(built.map((a) => [a.version, a]));
    const runs: Run[] = SIZES.flatMap((n) => (n <= 2 ? [{ hosts: n, batchSize: n }] : [{ hosts: n, batchSize: n }, { hosts: n, batchSize: 2 }]));
    const hosts = await startHosts(Math.max(...SIZES), { names: Array.from({ length: Math.max(...SIZES) }, (_, i) => `scale-${i + 1}`) });
    try {
        const rows: string[][] = [];
        for (const [i, run] of runs.entries()) {
            const f = await measure(i, run, hosts.slice(0, run.hosts), arts);
            const floor = f.unchangedS + f.slowestPerBatchS.reduce((a, b) => a + b, 0);
            const overhead = f.upgradeS - floor;
            rows.push([
                String(run.hosts),
                run.batchSize === run.hosts ? "one" : `of ${run.batchSize}`,
                f.upgradeS.toFixed(2),
                f.unchangedS.toFixed(2),
                f.slowestPerBatchS.map((s) => s.toFixed(2)).join(" + "),
                `${overhead.toFixed(2)} (${((100 * overhead) / floor).toFixed(0)}%)`,
                f.beforeS.toFixed(2),
                f.betweenS.toFixed(2),
                f.spreadS.toFixed(2),
                f.afterS.toFixed(2),
                String(f.handshakes),
                String(f.execs),
            ]);
        }
        const header = ["hosts", "batches", "upgrade s", "unchanged s", "slowest activation per batch s", "overhead s (of floor)", "before", "between", "spread", "after", "ssh handshakes", "ssh execs"];
        console.log("\nScale: an upgrade's cost beyond (unchanged re-apply + each batch's slowest activation); goal ≤ 10% at 8 hosts:\n");
        console.log(markdownTable(header, rows));
    } finally {
        await stopHosts(hosts);
    }
}
