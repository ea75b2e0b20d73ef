/**
 * `npm run bench`: what a deployment costs on real hosts. Not a test (mocha runs only *.test.ts):
 * it prints figures. It lives under test/ because it applies the program through the test engine.
 *
 * For 1 host and for 4 hosts in one batch (parallel), runs first deploy, upgrade,
 * rollback and an unchanged re-apply through the engine driver (the real program,
 * Pulumi's dynamic provider server, SSH to Debian + systemd test hosts) and reports
 * wall seconds of the apply (program evaluation excluded), bytes uploaded and SSH
 * handshakes, counted from the providers' trace lines.
 *
 * Then the traffic section (./traffic.ts): requests answered and failed during upgrade,
 * pinned rollback and a broken release, for the stack and for the previous
 * restart-in-place activation as the control, on two fresh hosts; then the same for
 * container mode, with the previous replace-in-place container mode as the control.
 */
import { execFileSync } from "child_process";
import * as path from "path";
import { startHosts, stopHosts, TestHost } from "../../dev/hosts";
import { loadImages, pushImages } from "../../dev/images";
import { BENCH_ARTIFACTS, buildArtifacts, BuiltArtifact } from "../../scripts/build-artifacts";
import { EngineDriver, ProgramConfig } from "../engine/driver";
import { handshakes, uploads } from "../engine/trace";
import { markdownTable } from "./table";
import { engineBench } from "./engine";
import { BENCH_VERSIONS, containerControlSteps, controlSteps, stackSteps, trafficTable } from "./traffic";
import { errorMessage } from "../../stacks/errors";

const REPO = path.resolve(__dirname, "..", "..");

interface Row {
    hosts: number;
    step: string;
    applySeconds: number;
    evalSeconds: number;
    bytes: number;
    handshakes: number;
    changes: number;
}

async function run(hosts: TestHost[], arts: Record<string, BuiltArtifact>): Promise<Row[]> {
    const driver = new EngineDriver({ stack: `bench${hosts.length}`, env: { COMPLINIST_TRACE: "1", COMPLINIST_DEPLOYER: "bench" } });
    // `releases` grows as versions ship, as in a real stack file.
    const cfg = (version: string, rollbackVersion: string | undefined, published: string[]): ProgramConfig => ({
        "complinist:version": version,
        "complinist:rollbackVersion": rollbackVersion,
        "complinist:releases": Object.fromEntries(published.map((v) => [v, { path: path.relative(REPO, (arts[v] as BuiltArtifact).file), sha256: (arts[v] as BuiltArtifact).sha256 }])),
        "complinist:hosts": hosts.map((h) => ({ name: h.name, address: h.address, port: h.sshPort, user: h.user, hostKey: h.hostKey })),
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
            const e0 = Date.now();
            await driver.evaluate(config, ["complinist:sshPrivateKey"]);
            const evalSeconds = (Date.now() - e0) / 1000;
            const t0 = Date.now();
            const r = await driver.up(config, ["complinist:sshPrivateKey"]);
            const total = (Date.now() - t0) / 1000;
            if (r.error) throw new Error(`${step} on ${hosts.length} host(s) failed: ${r.error}`);
            rows.push({
                hosts: hosts.length,
                step,
                // up evaluates the program once more before applying; report the apply alone.
                applySeconds: Math.max(0, total - evalSeconds),
                evalSeconds,
                bytes: uploads(r.providerLog).reduce((n, u) => n + u.bytes, 0),
                handshakes: handshakes(r.providerLog),
                changes: r.steps.filter((s) => s.op !== "same").length,
            });
        }
    } finally {
        await driver.close();
    }
    return rows;
}

async function applyTimes(): Promise<void> {
    const built = await buildArtifacts(path.join(REPO, ".build", "bench-artifacts"));
    const arts = Object.fromEntries(built.map((a) => [a.version, a]));
    const hosts = await startHosts(5, { names: ["bench-solo", "bench-1", "bench-2", "bench-3", "bench-4"] });
    try {
        const rows = [...(await run(hosts.slice(0, 1), arts)), ...(await run(hosts.slice(1), arts))];
        const header = ["hosts", "step", "apply s", "eval s", "bytes uploaded", "ssh handshakes", "changes"];
        const lines = rows.map((r) => [String(r.hosts), r.step, r.applySeconds.toFixed(2), r.evalSeconds.toFixed(2), String(r.bytes), String(r.handshakes), String(r.changes)]);
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

const SECTIONS = ["engine", "apply", "traffic", "containers"] as const;

/** `npm run bench` runs every section; `npm run bench -- engine|apply|traffic|containers` runs one. */
async function main(): Promise<void> {
    const only = process.argv[2];
    if (only !== undefined && !(SECTIONS as readonly string[]).includes(only)) throw new Error(`unknown bench section ${only}: use ${SECTIONS.join(", ")} (or nothing for all)`);
    if (only === undefined || only === "engine") await engineBench();
    if (only === undefined || only === "apply") await applyTimes();
    if (only === undefined || only === "traffic") await traffic();
    if (only === undefined || only === "containers") await containerTraffic();
}

main().catch((e: unknown) => {
    console.error(errorMessage(e));
    process.exit(1);
});
