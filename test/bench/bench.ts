/**
 * `npm run bench`: what a deployment costs on real hosts. Not a test (mocha runs only *.test.ts):
 * it prints figures. It lives under test/ because it applies the program through the tests' engine.
 *
 * The apply section: for 1 host and for 4 hosts in one batch (parallel), runs first deploy,
 * upgrade, rollback and an unchanged re-apply through the real engine (test/e2e/engine.ts: the
 * pinned Pulumi CLI running the program inline, SSH to Debian + systemd test hosts) and reports
 * wall seconds of RealEngine.up ("up s": writing the stack's config, then the whole `pulumi up`:
 * CLI start, program, steps, checkpoint), what writing the config alone takes ("config s": the
 * stack file and one `pulumi config set-all` for the secret key, timed by a separate identical
 * write just before), the program's evaluation within the up ("program s", from the inline
 * program's start and registered trace lines), bytes uploaded and SSH handshakes, counted from
 * the providers' trace lines, and changes: every step the engine reported other than `same`,
 * component resources included (the engine driver counted fewer).
 * The engine driver's figures were "apply s" with a separately timed evaluation ("eval s")
 * subtracted; the real engine has no evaluate-only operation, and it runs steps while the
 * program is still registering, so the program's time is shown inside the up, never subtracted.
 *
 * Then the traffic section (./traffic.ts): requests answered and failed during upgrade,
 * pinned rollback and a broken release, for the stack and for the previous
 * restart-in-place activation as the control, on two fresh hosts; then the same for
 * container mode, with the previous replace-in-place container mode as the control.
 *
 * The canary section (./canary.ts): a release that fails 3 page requests in 10, under load,
 * with a 10% canary and the error-rate watch and without them (the gate only): how many
 * requests it answered, for how long, and how fast the watch switched back.
 *
 * The failover section (./failover.ts): the live instance stopped, hung and unhealthy under load:
 * the requests users saw fail and the seconds until the warm standby answered.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { startHosts, stopHosts, TestHost, hostEntry } from "../../dev/hosts";
import { loadImages, pushImages } from "../../dev/images";
import { BENCH_ARTIFACTS, buildArtifacts, BuiltArtifact } from "../../scripts/build-artifacts";
import { parseTraceLine } from "../../infra/transport/trace";
import { ProgramConfig, RealEngine } from "../e2e/engine";
import { handshakes, traced, uploads } from "../e2e/trace";
import { markdownTable } from "./table";
import { engineBench } from "./engine";
import { canaryBench } from "./canary";
import { scaleBench } from "./scale";
import { failoverBench } from "./failover";
import { BENCH_VERSIONS, containerControlSteps, controlSteps, stackSteps, trafficTable } from "./traffic";
import { errorMessage } from "../../stacks/errors";

const REPO = path.resolve(__dirname, "..", "..");

interface Row {
    hosts: number;
    step: string;
    upSeconds: number;
    configSeconds: number;
    programSeconds: number;
    bytes: number;
    handshakes: number;
    /** Scripts run over SSH (each one exec). */
    execs: number;
    changes: number;
}

/**
 * Seconds from the inline program's start to its registrations, read from the trace lines it writes.
 * The program runs in this process (the Automation API's inline program), so its trace goes where
 * this process's COMPLINIST_TRACE points; the engine's own COMPLINIST_TRACE reaches only the CLI and
 * the providers.
 */
function programSeconds(traceFile: string): number {
    const events = fs.readFileSync(traceFile, "utf8").split("\n").map(parseTraceLine);
    const at = (phase: string) => Number(events.find((e) => e?.event === "program" && e.fields.phase === phase)?.fields.at ?? NaN);
    return (at("registered") - at("start")) / 1000;
}

async function run(hosts: TestHost[], arts: Record<string, BuiltArtifact>): Promise<Row[]> {
    const engine = new RealEngine({ stack: `bench${hosts.length}`, env: { COMPLINIST_DEPLOYER: "bench" } });
    const traceDir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-apply-"));
    const traceFile = path.join(traceDir, "program.log");
    const previousTrace = process.env.COMPLINIST_TRACE;
    process.env.COMPLINIST_TRACE = traceFile;
    // `releases` grows as versions ship, as in a real stack file.
    const cfg = (version: string, rollbackVersion: string | undefined, published: string[]): ProgramConfig => ({
        "complinist:version": version,
        "complinist:rollbackVersion": rollbackVersion,
        "complinist:releases": Object.fromEntries(published.map((v) => [v, { path: path.relative(REPO, (arts[v] as BuiltArtifact).file), sha256: (arts[v] as BuiltArtifact).sha256 }])),
        "complinist:hosts": hosts.map(hostEntry),
        "complinist:sshPrivateKey": hosts[0]?.privateKey,
        "complinist:service": { command: "bin/start" },
        "complinist:health": { timeoutSeconds: 30, intervalMs: 200 },
        "complinist:rollout": { batchSize: hosts.length },
    });
    const steps: Array<[string, ProgramConfig]> = [
        ["first deploy 1.0.0", cfg("1.0.0", undefined, ["1.0.0"])],
        ["upgrade to 1.1.0", cfg("1.1.0", "1.0.0", ["1.0.0", "1.1.0"])],
        ["rollback to 1.0.0", cfg("1.0.0", "1.1.0", ["1.0.0", "1.1.0"])],
        ["unchanged re-apply", cfg("1.0.0", "1.1.0", ["1.0.0", "1.1.0"])],
    ];
    const rows: Row[] = [];
    try {
        for (const [step, config] of steps) {
            // up writes the config again, the same way: this write is timed to show its share.
            const c0 = Date.now();
            await engine.setConfig(config, ["complinist:sshPrivateKey"]);
            const configSeconds = (Date.now() - c0) / 1000;
            fs.writeFileSync(traceFile, "");
            const t0 = Date.now();
            const r = await engine.up(config, ["complinist:sshPrivateKey"]);
            const upSeconds = (Date.now() - t0) / 1000;
            if (r.error) throw new Error(`${step} on ${hosts.length} host(s) failed: ${r.error}`);
            rows.push({
                hosts: hosts.length,
                step,
                upSeconds,
                configSeconds,
                programSeconds: programSeconds(traceFile),
                bytes: uploads(r.providerLog).reduce((n, u) => n + u.bytes, 0),
                handshakes: handshakes(r.providerLog),
                execs: traced(r.providerLog, "ssh-exec").length,
                changes: r.steps.filter((s) => s.op !== "same").length,
            });
        }
        // `pulumi refresh` alone: every resource's Read, the round trips a refresh before an update costs.
        const t0 = Date.now();
        const refreshed = await engine.refresh({ previewOnly: true });
        if (refreshed.error) throw new Error(`refresh on ${hosts.length} host(s) failed: ${refreshed.error}`);
        rows.push({
            hosts: hosts.length,
            step: "refresh (preview only)",
            upSeconds: (Date.now() - t0) / 1000,
            configSeconds: 0,
            programSeconds: 0,
            bytes: 0,
            handshakes: handshakes(refreshed.providerLog),
            execs: traced(refreshed.providerLog, "ssh-exec").length,
            changes: refreshed.drift.length,
        });
    } finally {
        if (previousTrace === undefined) delete process.env.COMPLINIST_TRACE;
        else process.env.COMPLINIST_TRACE = previousTrace;
        fs.rmSync(traceDir, { recursive: true, force: true });
        await engine.close();
    }
    return rows;
}

async function applyTimes(): Promise<void> {
    const built = await buildArtifacts(path.join(REPO, ".build", "bench-artifacts"));
    const arts = Object.fromEntries(built.map((a) => [a.version, a]));
    const hosts = await startHosts(5, { names: ["bench-solo", "bench-1", "bench-2", "bench-3", "bench-4"] });
    try {
        const rows = [...(await run(hosts.slice(0, 1), arts)), ...(await run(hosts.slice(1), arts))];
        const header = ["hosts", "step", "up s", "config s", "program s", "bytes uploaded", "ssh handshakes", "ssh execs", "changes"];
        const lines = rows.map((r) => [String(r.hosts), r.step, r.upSeconds.toFixed(2), r.configSeconds.toFixed(2), r.programSeconds.toFixed(2), String(r.bytes), String(r.handshakes), String(r.execs), String(r.changes)]);
        console.log("\nThe real engine (pulumi up through the Automation API, the program inline):\n");
        console.log(markdownTable(header, lines));
    } finally {
        await stopHosts(hosts);
    }
}

async function traffic(): Promise<void> {
    // Releases that boot in 1.5 s, in their own directory: never the committed sample artifacts.
    const built = await buildArtifacts(path.join(REPO, ".build", "bench-traffic-artifacts"), BENCH_ARTIFACTS);
    const arts = Object.fromEntries(built.map((a) => [a.version, a]));
    const hosts = await startHosts(2, { names: ["bench-traffic", "bench-control"] });
    try {
        const [stackHost, controlHost] = hosts as [TestHost, TestHost];
        // One after the other: the two setups must not compete for the machine's cores.
        const stack = await stackSteps(stackHost, { mode: "release", arts });
        const control = await controlSteps(controlHost, arts);
        console.log("\nTraffic during a switch, stack (proxy, gate, warm standby):\n");
        console.log(trafficTable(stack));
        console.log("\nTraffic during a switch, control (restart in place):\n");
        console.log(trafficTable(control));
        const stackFailed = stack.reduce((n, r) => n + r.load.failed, 0);
        const controlFailed = control.reduce((n, r) => n + r.load.failed, 0);
        if (stackFailed > 0) console.log(`\nNOTE: the stack failed ${stackFailed} request(s) during its switches.`);
        if (controlFailed === 0) console.log("\nNOTE: the control failed no request: the load generator does not see failures, so the stack's 0 proves nothing.");
    } finally {
        await stopHosts(hosts);
    }
}

/**
 * Container mode, measured the same way: the same releases built into images
 * (scripts/build-images.sh), on two hosts with their own Docker engine; the control is
 * the previous container mode, which replaced the container in place.
 */
async function containerTraffic(): Promise<void> {
    const dir = path.join(REPO, ".build", "bench-traffic-artifacts");
    await buildArtifacts(dir, BENCH_ARTIFACTS);
    execFileSync("bash", [path.join(REPO, "scripts", "build-images.sh"), ...BENCH_VERSIONS], { stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, COMPLINIST_ARTIFACTS_DIR: dir } });
    const hosts = await startHosts(2, { names: ["bench-containers", "bench-container-control"], dockerEngine: true });
    try {
        const [stackHost, controlHost] = hosts as [TestHost, TestHost];
        for (const h of hosts) await loadImages(h, BENCH_VERSIONS.map((v) => `complinist:${v}`));
        const stack = await stackSteps(stackHost, { mode: "container", pinned: await pushImages(stackHost, BENCH_VERSIONS.map((v) => `complinist:${v}`)) });
        const control = await containerControlSteps(controlHost);
        console.log("\nTraffic during a switch, container mode (proxy, gate, warm standby container):\n");
        console.log(trafficTable(stack));
        console.log("\nTraffic during a switch, container control (replace the container in place):\n");
        console.log(trafficTable(control));
        const stackFailed = stack.reduce((n, r) => n + r.load.failed, 0);
        if (stackFailed > 0) console.log(`\nNOTE: container mode failed ${stackFailed} request(s) during its switches.`);
    } finally {
        await stopHosts(hosts);
    }
}

const SECTIONS = ["engine", "apply", "scale", "traffic", "containers", "canary", "failover"] as const;

/** `npm run bench` runs every section; `npm run bench -- engine|apply|scale|traffic|containers|canary|failover` runs one. */
async function main(): Promise<void> {
    const only = process.argv[2];
    if (only !== undefined && !(SECTIONS as readonly string[]).includes(only)) throw new Error(`unknown bench section ${only}: use ${SECTIONS.join(", ")} (or nothing for all)`);
    if (only === undefined || only === "engine") await engineBench();
    if (only === undefined || only === "apply") await applyTimes();
    if (only === undefined || only === "scale") await scaleBench();
    if (only === undefined || only === "traffic") await traffic();
    if (only === undefined || only === "containers") await containerTraffic();
    if (only === undefined || only === "canary") await canaryBench();
    if (only === undefined || only === "failover") await failoverBench();
}

main().catch((e: unknown) => {
    console.error(errorMessage(e));
    process.exit(1);
});
