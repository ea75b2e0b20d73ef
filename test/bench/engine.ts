/**
 * `npm run bench -- engine`: what an operator waits for, through the real engine. For a warm
 * pinned rollback, an upgrade and an unchanged `up`, it runs the operator's command
 * (`npm run up -- --stack S --yes`, the program inline through the Automation API and the pinned
 * CLI) on a stack shaped like `local` (one host, health.intervalMs 500) and measures from the
 * command's start to the moment the target version answers on the service port, and to the
 * command's exit, with a breakdown read from the trace lines the processes write
 * (infra/transport/trace.ts, each stamped with epoch ms):
 *   start      process start, ts-node, the toolchain check, the CLI's start, until the program runs
 *   program    the program's evaluation (registrations)
 *   engine     the engine's own steps: everything not in the other columns
 *   ssh        SSH handshakes (count; their time is inside engine/activation)
 *   activation the host's activation as the provider saw it (start → outcome read back)
 * Figures are printed against the goals (pinned rollback ≤ 3 s, unchanged up ≤ 3 s), never asserted.
 */
import { spawn } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { startHosts, stopHosts, TestHost, hostEntry } from "../../dev/hosts";
import { buildArtifacts, BuiltArtifact } from "../../scripts/build-artifacts";
import { PROJECT_DIR } from "../../scripts/engine";
import { parseTraceLine } from "../../infra/transport/trace";
import { ProgramConfig, RealEngine } from "../e2e/engine";
import { markdownTable } from "./table";

interface Timing {
    step: string;
    answersS: number;
    exitS: number;
    startS: number;
    programS: number;
    engineS: number;
    activationS: number;
    handshakes: number;
    changes: string;
}

/** Polls the host's service port until `version` answers; resolves with the epoch ms it did. */
async function answers(h: TestHost, version: string, stop: { done: boolean }): Promise<number | undefined> {
    while (!stop.done) {
        const r = await h.exec("curl -s -m 1 http://127.0.0.1:5000/health || true");
        if (r.stdout.includes(`"version": "${version}"`) || r.stdout.includes(`"version":"${version}"`)) return Date.now();
    }
    return undefined;
}

function runUp(stack: string, env: Record<string, string>): Promise<{ code: number; out: string; exitAt: number }> {
    return new Promise((resolve, reject) => {
        const p = spawn("npm", ["run", "-s", "up", "--", "--stack", stack, "--yes"], { cwd: PROJECT_DIR, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
        let out = "";
        p.stdout.on("data", (d: Buffer) => (out += d.toString()));
        p.stderr.on("data", (d: Buffer) => (out += d.toString()));
        p.on("error", reject);
        p.on("close", (code) => resolve({ code: code ?? -1, out, exitAt: Date.now() }));
    });
}

export async function engineBench(): Promise<void> {
    const built = await buildArtifacts(path.join(PROJECT_DIR, ".build", "bench-engine-artifacts"));
    const arts: Record<string, BuiltArtifact> = Object.fromEntries(built.map((a) => [a.version, a]));
    const [h] = (await startHosts(1, { names: ["bench-engine"] })) as [TestHost];
    const stack = `e2e-bench-${crypto.randomBytes(3).toString("hex")}`;
    const engine = new RealEngine({ stack, inProject: true, env: { COMPLINIST_DEPLOYER: "bench" } });
    const cfg = (version: string, rollbackVersion: string, published: string[]): ProgramConfig => ({
        "complinist:version": version,
        ...(rollbackVersion !== "" ? { "complinist:rollbackVersion": rollbackVersion } : {}),
        "complinist:releases": Object.fromEntries(published.map((v) => [v, { path: path.relative(PROJECT_DIR, (arts[v] as BuiltArtifact).file), sha256: (arts[v] as BuiltArtifact).sha256 }])),
        "complinist:hosts": [hostEntry(h)],
        "complinist:sshPrivateKey": h.privateKey,
        "complinist:service": { command: "bin/start", port: 5000 },
        "complinist:health": { timeoutSeconds: 30, intervalMs: 500 },
    });
    const secrets = ["complinist:sshPrivateKey"];
    const rows: Timing[] = [];
    try {
        // Set-up, not measured: 1.1.0 live with 1.0.0 warm.
        for (const c of [cfg("1.0.0", "", ["1.0.0"]), cfg("1.1.0", "1.0.0", ["1.0.0", "1.1.0"])]) {
            const r = await engine.up(c, secrets);
            if (r.error) throw new Error(`bench set-up failed: ${r.error}`);
        }
        const steps: Array<[string, ProgramConfig, string]> = [
            ["warm pinned rollback 1.1.0 → 1.0.0", cfg("1.0.0", "1.1.0", ["1.0.0", "1.1.0"]), "1.0.0"],
            ["upgrade 1.0.0 → 1.3.0", cfg("1.3.0", "1.0.0", ["1.0.0", "1.1.0", "1.3.0"]), "1.3.0"],
            ["unchanged up", cfg("1.3.0", "1.0.0", ["1.0.0", "1.1.0", "1.3.0"]), "1.3.0"],
        ];
        const traceFile = path.join(fs.mkdtempSync(path.join(require("os").tmpdir() as string, "bench-trace-")), "trace.log");
        for (const [step, config, target] of steps) {
            await engine.setConfig(config, secrets);
            fs.writeFileSync(traceFile, "");
            const stop = { done: false };
            const t0 = Date.now();
            const watching = answers(h, target, stop);
            const run = await runUp(stack, { ...engine.scriptEnv(), COMPLINIST_TRACE: traceFile });
            stop.done = true;
            const answeredAt = await watching;
            if (run.code !== 0) throw new Error(`${step}: npm run up exited ${run.code}:\n${run.out.slice(-2000)}`);
            const events = fs.readFileSync(traceFile, "utf8").split("\n").map(parseTraceLine).filter((e) => e !== undefined);
            const at = (event: string, phase?: string) => Number(events.find((e) => e.event === event && (phase === undefined || e.fields.phase === phase))?.fields.at ?? NaN);
            const programStart = at("program", "start");
            const programDone = at("program", "registered");
            const activation = Number.isNaN(at("activate")) ? 0 : at("activated") - at("activate");
            const exitS = (run.exitAt - t0) / 1000;
            const startS = (programStart - t0) / 1000;
            const programS = (programDone - programStart) / 1000;
            rows.push({
                step,
                answersS: answeredAt === undefined ? NaN : Math.max(0, (answeredAt - t0) / 1000),
                exitS,
                startS,
                programS,
                activationS: activation / 1000,
                engineS: exitS - startS - programS - activation / 1000,
                handshakes: events.filter((e) => e.event === "ssh-handshake").length,
                changes: /up: (.*) \(stack/.exec(run.out)?.[1] ?? "?",
            });
        }
        fs.rmSync(path.dirname(traceFile), { recursive: true, force: true });
    } finally {
        await engine.close();
        await stopHosts([h]);
    }
    const f = (n: number) => (Number.isNaN(n) ? "—" : n.toFixed(2));
    console.log("\nThe real engine, command start → target version answers (npm run up -- --stack S --yes, one host):\n");
    console.log(
        markdownTable(
            ["step", "answers s", "exit s", "start s", "program s", "engine s", "activation s", "ssh handshakes", "changes"],
            rows.map((r) => [r.step, f(r.answersS), f(r.exitS), f(r.startS), f(r.programS), f(r.engineS), f(r.activationS), String(r.handshakes), r.changes]),
        ),
    );
    const goal = (name: string, value: number) => console.log(`goal: ${name} ≤ 3 s end to end: ${f(value)} s ${value <= 3 ? "(met)" : "(NOT met)"}`);
    goal("pinned rollback", rows[0]?.answersS ?? NaN);
    goal("unchanged up", rows[2]?.exitS ?? NaN);
}
