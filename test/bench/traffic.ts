/**
 * The traffic section of `npm run bench`: what users see during a switch. A load generator
 * inside the host (8 workers, a new connection per request to :5000/health, on loopback)
 * runs through each step, with releases that take 1.5 s to boot (BENCH_ARTIFACTS):
 *
 *   stack    the program applied by the real engine (test/e2e/engine.ts: the pinned Pulumi CLI,
 *            the program inline): proxy, gate, warm standby;
 *   control  the previous restart-in-place activation on a second host: one plain unit on
 *            port 5000, relink `current`, `systemctl restart`, poll until the version answers,
 *            and for a broken release switch back after a 20 s gate. It must show failures:
 *            that is the proof the generator sees them.
 */
import * as path from "path";
import { dockerOk } from "../../dev/container";
import { hostEntry, type TestHost } from "../../dev/hosts";
import type { BuiltArtifact } from "../../scripts/build-artifacts";
import { ProgramConfig, RealEngine } from "../e2e/engine";
import { LoadGenerator, LoadResult } from "./loadgen";
import { count, markdownTable } from "./table";

const REPO = path.resolve(__dirname, "..", "..");
/** How long a broken release may try before the switch back, in both setups. */
const GATE_SECONDS = 20;
const OLD = "2.0.0";
const NEW = "2.1.0";
const BROKEN = "2.2.0";

export interface TrafficRow {
    step: string;
    target: string;
    outcome: string;
    /** Unix seconds, on the host's clock (which the containers share). */
    start: number;
    end: number;
    /** When the host-side activation began (the stack: after the CLI's start, evaluation and upload; the control: at once). */
    activationStart: number | undefined;
    load: LoadResult;
}

function sleep(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms));
}

/** Load before, during and after one step: a second of steady state on either side. */
type StepTimes = Pick<TrafficRow, "start" | "end" | "activationStart" | "outcome">;

async function measure(lg: LoadGenerator, step: string, target: string, run: () => Promise<StepTimes>): Promise<TrafficRow> {
    await lg.start();
    let r: StepTimes;
    try {
        r = await run();
    } finally {
        await sleep(1000);
    }
    return { step, target, ...r, load: await lg.stop() };
}

/** When systemd started the step's transient activation unit (journal time, microseconds). */
async function activationStarted(host: TestHost, since: number): Promise<number | undefined> {
    const r = await host.exec(`journalctl -o short-unix --no-pager --since @${Math.floor(since)} -u 'complinist-activate-*' | grep -m1 ' Started '`);
    const t = Number(r.stdout.trim().split(/\s+/)[0]);
    return r.code === 0 && Number.isFinite(t) && t > 0 ? t : undefined;
}

/** How a bench stack names a release: release mode's artifact, or container mode's image pinned by digest (`complinist:<version>` → its digest reference). */
export type BenchRelease = { mode: "release"; arts: Record<string, BuiltArtifact> } | { mode: "container"; pinned: Record<string, string> };

function releaseConfig(r: BenchRelease, v: string): object {
    if (r.mode === "container") return { image: r.pinned[`complinist:${v}`] };
    const a = r.arts[v] as BuiltArtifact;
    return { path: path.relative(REPO, a.file), sha256: a.sha256 };
}

/** The stack on one host, in either mode, applied by `pulumi up` (the real engine). */
export async function stackSteps(host: TestHost, release: BenchRelease): Promise<TrafficRow[]> {
    const engine = new RealEngine({ stack: `bench-traffic-${release.mode}`, env: { COMPLINIST_DEPLOYER: "bench" } });
    const cfg = (version: string, rollbackVersion: string | undefined, published: string[]): ProgramConfig => ({
        "complinist:mode": release.mode,
        "complinist:version": version,
        "complinist:rollbackVersion": rollbackVersion,
        "complinist:releases": Object.fromEntries(published.map((v) => [v, releaseConfig(release, v)])),
        "complinist:hosts": [hostEntry(host)],
        "complinist:sshPrivateKey": host.privateKey,
        "complinist:service": { command: "bin/start" },
        "complinist:health": { timeoutSeconds: GATE_SECONDS, intervalMs: 200 },
    });
    const secrets = ["complinist:sshPrivateKey"];
    const rows: TrafficRow[] = [];
    try {
        const first = await engine.up(cfg(OLD, undefined, [OLD]), secrets);
        if (first.error) throw new Error(`bench traffic: first deploy of ${OLD} on ${host.name} failed: ${first.error}`);
        const lg = new LoadGenerator(host);
        await lg.install();
        const steps: Array<[string, string, ProgramConfig, boolean]> = [
            [`upgrade ${OLD} → ${NEW}`, NEW, cfg(NEW, OLD, [OLD, NEW]), false],
            [`pinned rollback → ${OLD}`, OLD, cfg(OLD, NEW, [OLD, NEW]), false],
            [`broken release ${BROKEN} (gate fails after ${GATE_SECONDS} s)`, BROKEN, cfg(BROKEN, OLD, [OLD, NEW, BROKEN]), true],
        ];
        for (const [step, target, config, broken] of steps) {
            rows.push(
                await measure(lg, step, target, async () => {
                    const start = Date.now() / 1000;
                    const r = await engine.up(config, secrets);
                    const end = Date.now() / 1000;
                    if (!broken && r.error) throw new Error(`bench traffic: ${step} on ${host.name} failed: ${r.error}`);
                    if (broken && !/failed its gate/.test(r.error ?? "")) throw new Error(`bench traffic: ${step} on ${host.name} should fail its gate; got: ${r.error ?? "success"}`);
                    return { start, end, activationStart: await activationStarted(host, start), outcome: broken ? `update failed, ${OLD} kept serving` : "activated" };
                }),
            );
        }
    } finally {
        await engine.close();
    }
    return rows;
}

const CONTROL_UNIT = `[Unit]
Description=restart-in-place control for npm run bench (the activation before the proxy)

[Service]
Type=simple
WorkingDirectory=/opt/control/current
Environment=PORT=5000
ExecStart=/bin/sh -c 'exec bin/start'
`;

/**
 * One control step, host-side: `switch` to the target, poll until its version answers; when
 * the gate fails, switch back. The two controls differ only in what `switch` does.
 */
function controlStep(switchTo: string): string {
    return `set -u
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# jq -e exits 0 on empty input: a refused connection must fail before it.
healthy() {
    local body
    body=$(curl -sf -m 2 http://127.0.0.1:5000/health) && [ -n "$body" ] &&
        jq -e --arg v "$1" '.status == "healthy" and .version == $v' <<<"$body" >/dev/null 2>&1
}
switch() { ${switchTo}; }
wait_healthy() {
    local deadline=$(( $(now_ms) + $2 * 1000 ))
    until healthy "$1"; do [ "$(now_ms)" -lt "$deadline" ] || return 1; sleep 0.2; done
}
start=$(date +%s.%N)
switch "$1"
if wait_healthy "$1" "$3"; then outcome=activated
elif switch "$2" && wait_healthy "$2" 60; then outcome="gate failed, switched back to $2"
else outcome="gate failed, $2 unhealthy after the switch back"; fi
echo "start=$start"
echo "end=$(date +%s.%N)"
echo "outcome=$outcome"
`;
}

/** Release mode's control: relink `current` and restart the one unit on port 5000. */
const RESTART_IN_PLACE = 'cd /opt/control && ln -sfn "releases/$1" current.tmp && mv -T current.tmp current && systemctl restart control';
/** Container mode's control (the previous container mode): replace the container `control` on port 5000 by the target image. */
const REPLACE_CONTAINER = 'docker rm -f control >/dev/null 2>&1; docker run -d --name control -p 5000:5000 -e PORT=5000 --stop-signal SIGINT "complinist:$1" >/dev/null';

type HostShell = (cmd: string) => Promise<string>;

function hostShell(host: TestHost, what: string): HostShell {
    return async (cmd: string): Promise<string> => {
        const r = await host.exec(cmd);
        if (r.code !== 0) throw new Error(`${what} on ${host.name}: ${cmd.split("\n")[0]} failed (${r.code}): ${r.stderr.trim()}`);
        return r.stdout;
    };
}

/** A control's three steps under load, after the control step script is installed and OLD brought up. */
async function controlRun(host: TestHost, sh: HostShell, what: string, switchTo: string, labels: { rollback: string; broken: string }): Promise<TrafficRow[]> {
    await sh(`cat >/opt/control-step.sh <<'STEP'\n${controlStep(switchTo)}STEP`);
    const step = async (target: string, back: string): Promise<StepTimes> => {
        const out = await sh(`bash /opt/control-step.sh ${target} ${back} ${GATE_SECONDS}`);
        const kv = Object.fromEntries(out.split("\n").filter((l) => l.includes("=")).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
        return { start: Number(kv.start), end: Number(kv.end), activationStart: Number(kv.start), outcome: kv.outcome ?? "?" };
    };
    const setup = await step(OLD, OLD);
    if (setup.outcome !== "activated") throw new Error(`${what} on ${host.name}: ${OLD} did not come up: ${setup.outcome}`);
    const lg = new LoadGenerator(host);
    await lg.install();
    return [
        await measure(lg, `upgrade ${OLD} → ${NEW}`, NEW, () => step(NEW, OLD)),
        await measure(lg, labels.rollback, OLD, () => step(OLD, NEW)),
        await measure(lg, labels.broken, BROKEN, () => step(BROKEN, OLD)),
    ];
}

/** The control on a second host: the same releases, the same load, restart in place. */
export async function controlSteps(host: TestHost, arts: Record<string, BuiltArtifact>): Promise<TrafficRow[]> {
    const sh = hostShell(host, "bench control");
    for (const v of [OLD, NEW, BROKEN]) {
        await dockerOk(["cp", (arts[v] as BuiltArtifact).file, `${host.container}:/tmp/control-${v}.tar.gz`]);
        await sh(`mkdir -p /opt/control/releases/${v} && tar -xzf /tmp/control-${v}.tar.gz -C /opt/control/releases/${v}`);
    }
    await sh(`cat >/etc/systemd/system/control.service <<'UNIT'\n${CONTROL_UNIT}UNIT\nsystemctl daemon-reload`);
    return controlRun(host, sh, "bench control", RESTART_IN_PLACE, { rollback: `rollback → ${OLD} (restart)`, broken: `broken release ${BROKEN} (gate fails after ${GATE_SECONDS} s)` });
}

/** The container control on a docker host whose engine has the bench images: replace in place. */
export async function containerControlSteps(host: TestHost): Promise<TrafficRow[]> {
    return controlRun(host, hostShell(host, "bench container control"), "bench container control", REPLACE_CONTAINER, {
        rollback: `rollback → ${OLD} (new container)`,
        broken: `broken image ${BROKEN} (gate fails after ${GATE_SECONDS} s)`,
    });
}

/** The bench releases, for the container sections. */
export const BENCH_VERSIONS = [OLD, NEW, BROKEN] as const;

const KIND: Record<string, string> = { refused: "refused", reset: "reset" };

function failedCell(l: LoadResult): string {
    if (l.failed === 0) return "0";
    const kinds = Object.entries(l.failedByKind)
        .sort((a, b) => b[1] - a[1])
        .map(([k, n]) => `${count(n)} ${KIND[k] ?? (/^http-\d+$/.test(k) ? `× HTTP ${k.slice(5)}` : `× ${k}`)}`);
    return `${count(l.failed)} (${kinds.join(", ")})`;
}

function firstCell(r: TrafficRow, from: number | undefined): string {
    const at = r.load.firstAnswered[r.target];
    if (at === undefined) return "never";
    if (from === undefined) return "?";
    const s = (r.load.startedAt + at - from).toFixed(2);
    return r.load.firstOk[r.target] === undefined ? `${s} s (unhealthy)` : `${s} s`;
}

export function trafficTable(rows: readonly TrafficRow[]): string {
    const header = ["step", "outcome", "requests ok", "failed", "longest gap without an answer", "versions answering", "target first answers, after step start", "after activation start", "step s"];
    return markdownTable(
        header,
        rows.map((r) => [
            r.step,
            r.outcome,
            count(r.load.ok),
            failedCell(r.load),
            `${r.load.longestGapSeconds.toFixed(2)} s`,
            Object.entries(r.load.versions)
                .sort((a, b) => a[0].localeCompare(b[0]))
                .map(([v, n]) => `${v} (${count(n)})`)
                .join(", "),
            firstCell(r, r.start),
            firstCell(r, r.activationStart),
            (r.end - r.start).toFixed(1),
        ]),
    );
}
