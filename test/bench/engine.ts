/**
 * `npm run bench -- engine`: what an operator waits for, through the real engine, on a stack shaped
 * like `local` (one host, health.intervalMs 500). Each step runs the operator's own command as they
 * type it (`npm run up|rollback -- --stack S --yes`: the compiled program inline through the
 * Automation API and the pinned CLI) and measures from the command's start to the moment the target
 * version answers on the service port (a loop on the host itself, stamped with the host's clock:
 * the test hosts share this machine's), and to the command's exit. The breakdown comes from the
 * trace lines the processes write (infra/transport/trace.ts, each stamped with epoch ms):
 *   start       process start (npm, node, the dist/ check, loading the program), the toolchain and
 *               host-agent checks, and the CLI runs before the update, until the program runs
 *   program     the program's evaluation (registrations)
 *   engine      the engine's own steps: everything not in the other columns (refresh included)
 *   activation  the host's activation as the provider saw it (start → outcome read back)
 *   pulumi      CLI processes the command started (scripts/cliCommand.ts traces each) and their
 *               wall seconds, the update's own included
 *   ssh         SSH handshakes and execs (infra/transport/ssh)
 * The steps: a pinned rollback through `npm run up` (config pinned by hand), an upgrade, an
 * unchanged `up`, the runbook's `npm run rollback -- --yes`, and the emergency path: `complinist
 * rollback` on the host over OpenSSH (`ssh root@host /usr/local/sbin/complinist rollback`), timed until
 * the warm standby answers. Figures are printed against the goals, never asserted.
 */
import { spawn } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { startHosts, stopHosts, TestHost, hostEntry } from "../../dev/hosts";
import { buildArtifacts, BuiltArtifact } from "../../scripts/build-artifacts";
import { PROJECT_DIR } from "../../scripts/engine";
import { parseTraceLine, TraceEvent } from "../../infra/transport/trace";
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
    pulumi: number;
    pulumiS: number;
    pulumiWhat: string;
    handshakes: number;
    execs: number;
    changes: string;
}

/**
 * Starts a loop on the host, detached (docker exec, not SSH: it must not queue behind the deploy's
 * connections; detached: a command may outlast docker exec's own timeout on a loaded machine), and
 * resolves once it runs, with a function that waits for the epoch ms (the host's clock) at which
 * `version` first answered on the service port.
 */
async function watching(h: TestHost, version: string): Promise<() => Promise<number>> {
    const out = `/tmp/bench-probe-${crypto.randomBytes(4).toString("hex")}`;
    const probe = `curl -s -m 1 http://127.0.0.1:5000/health | grep -Eq '"version": ?"${version.replace(/\./g, "\\.")}"'`;
    const loop = `touch ${out}.ready; until ${probe}; do sleep 0.02; done; date +%s%3N > ${out}.tmp; mv ${out}.tmp ${out}`;
    await h.run(`nohup timeout 900 bash -c '${loop.replace(/'/g, `'\\''`)}' >/dev/null 2>&1 &`);
    const until = async (file: string, what: string, ms: number): Promise<string> => {
        const deadline = Date.now() + ms;
        for (;;) {
            const r = await h.exec(`cat ${file} 2>/dev/null || true`);
            if (r.stdout.trim() !== "" || (file.endsWith(".ready") && (await h.exec(`test -e ${file} && echo yes || true`)).stdout.trim() === "yes")) return r.stdout.trim();
            if (Date.now() > deadline) throw new Error(`${what} on ${h.name} within ${ms / 1000} s`);
            await new Promise((r) => setTimeout(r, 100));
        }
    };
    await until(`${out}.ready`, "the probe loop did not start", 60000);
    return async () => {
        const at = Number(await until(out, `${version} did not answer on the service port`, 60000));
        await h.exec(`rm -f ${out} ${out}.ready`);
        return at;
    };
}

function runCommand(command: string, args: string[], env: Record<string, string>): Promise<{ code: number; out: string; exitAt: number }> {
    return new Promise((resolve, reject) => {
        const p = spawn(command, args, { cwd: PROJECT_DIR, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
        let out = "";
        p.stdout.on("data", (d: Buffer) => (out += d.toString()));
        p.stderr.on("data", (d: Buffer) => (out += d.toString()));
        p.on("error", reject);
        p.on("close", (code) => resolve({ code: code ?? -1, out, exitAt: Date.now() }));
    });
}

function breakdown(step: string, t0: number, run: { out: string; exitAt: number }, answeredAt: number, events: TraceEvent[]): Timing {
    const at = (event: string, phase?: string) => Number(events.find((e) => e.event === event && (phase === undefined || e.fields.phase === phase))?.fields.at ?? NaN);
    const programStart = at("program", "start");
    const programDone = at("program", "registered");
    const activation = Number.isNaN(at("activate")) ? 0 : at("activated") - at("activate");
    const exitS = (run.exitAt - t0) / 1000;
    const startS = (programStart - t0) / 1000;
    const programS = (programDone - programStart) / 1000;
    const cli = events.filter((e) => e.event === "pulumi");
    const byCommand = new Map<string, number>();
    for (const e of cli) byCommand.set(e.fields.command ?? "?", (byCommand.get(e.fields.command ?? "?") ?? 0) + 1);
    return {
        step,
        answersS: Math.max(0, (answeredAt - t0) / 1000),
        exitS,
        startS,
        programS,
        activationS: activation / 1000,
        engineS: exitS - startS - programS - activation / 1000,
        pulumi: cli.length,
        pulumiS: cli.reduce((n, e) => n + Number(e.fields.ms ?? 0), 0) / 1000,
        pulumiWhat: [...byCommand].map(([c, n]) => (n > 1 ? `${c} ×${n}` : c)).join(", "),
        handshakes: events.filter((e) => e.event === "ssh-handshake").length,
        execs: events.filter((e) => e.event === "ssh-exec").length,
        changes: /(?:up|preview): (.*?) \(stack/.exec(run.out)?.[1] ?? (/Rolled back stack \S+ to (\S+)\./.test(run.out) ? "rolled back" : "?"),
    };
}

/** `complinist rollback` typed on the host over OpenSSH; the connection alone is timed just before. */
async function emergencyRollback(h: TestHost, target: string, dir: string): Promise<Timing> {
    const key = path.join(dir, "id");
    const known = path.join(dir, "known_hosts");
    fs.writeFileSync(key, h.privateKey.endsWith("\n") ? h.privateKey : `${h.privateKey}\n`, { mode: 0o600 });
    fs.writeFileSync(known, `[127.0.0.1]:${h.sshPort} ${h.hostKey}\n`);
    const ssh = (remote: string) => runCommand("ssh", ["-i", key, "-p", String(h.sshPort), "-o", `UserKnownHostsFile=${known}`, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", `root@127.0.0.1`, remote], {});
    const c0 = Date.now();
    const conn = await ssh("true");
    if (conn.code !== 0) throw new Error(`ssh to ${h.name} failed: ${conn.out}`);
    const connectS = (conn.exitAt - c0) / 1000;
    const answered = await watching(h, target);
    const t0 = Date.now();
    const run = await ssh("/usr/local/sbin/complinist rollback");
    const answeredAt = await answered();
    if (run.code !== 0) throw new Error(`complinist rollback on ${h.name} exited ${run.code}:\n${run.out}`);
    const exitS = (run.exitAt - t0) / 1000;
    return { step: `complinist rollback on the host (→ ${target})`, answersS: Math.max(0, (answeredAt - t0) / 1000), exitS, startS: connectS, programS: NaN, engineS: NaN, activationS: exitS - connectS, pulumi: 0, pulumiS: 0, pulumiWhat: "", handshakes: 1, execs: 1, changes: "switched" };
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
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-engine-"));
    const traceFile = path.join(dir, "trace.log");
    const load = os.loadavg()[0] ?? NaN;
    try {
        // Set-up, not measured: 1.1.0 live with 1.0.0 warm.
        for (const c of [cfg("1.0.0", "", ["1.0.0"]), cfg("1.1.0", "1.0.0", ["1.0.0", "1.1.0"])]) {
            const r = await engine.up(c, secrets);
            if (r.error) throw new Error(`bench set-up failed: ${r.error}`);
        }
        const all = ["1.0.0", "1.1.0", "1.3.0"];
        // [step, config written before the command (none: the command pins it), target, command]
        const steps: Array<[string, ProgramConfig | undefined, string, string]> = [
            ["pinned rollback by up 1.1.0 → 1.0.0", cfg("1.0.0", "1.1.0", ["1.0.0", "1.1.0"]), "1.0.0", "up"],
            ["upgrade 1.0.0 → 1.3.0", cfg("1.3.0", "1.0.0", all), "1.3.0", "up"],
            ["unchanged up", cfg("1.3.0", "1.0.0", all), "1.3.0", "up"],
            ["npm run rollback --yes 1.3.0 → 1.0.0", undefined, "1.0.0", "rollback"],
        ];
        for (const [step, config, target, command] of steps) {
            if (config !== undefined) await engine.setConfig(config, secrets);
            fs.writeFileSync(traceFile, "");
            const answered = await watching(h, target);
            const t0 = Date.now();
            const run = await runCommand("npm", ["run", "-s", command, "--", "--stack", stack, "--yes"], { ...engine.scriptEnv(), COMPLINIST_TRACE: traceFile });
            if (run.code !== 0) throw new Error(`${step}: npm run ${command} exited ${run.code}:\n${run.out.slice(-3000)}`);
            const answeredAt = await answered().catch((e: unknown) => {
                throw new Error(`${step}: ${e instanceof Error ? e.message : String(e)}; the command printed:\n${run.out.slice(-3000)}`);
            });
            const events = fs.readFileSync(traceFile, "utf8").split("\n").map(parseTraceLine).filter((e): e is TraceEvent => e !== undefined);
            rows.push(breakdown(step, t0, run, answeredAt, events));
        }
        // The stack now runs 1.0.0 with 1.3.0 warm: the host's own emergency switch back to 1.3.0.
        rows.push(await emergencyRollback(h, "1.3.0", dir));
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
        await engine.close();
        await stopHosts([h]);
    }
    const f = (n: number) => (Number.isNaN(n) ? "—" : n.toFixed(2));
    console.log(`\nThe real engine, command start → target version answers (one host; load average ${load.toFixed(2)} on ${os.cpus().length} cores at the start):\n`);
    console.log(
        markdownTable(
            ["step", "answers s", "exit s", "start s", "program s", "engine s", "activation s", "pulumi processes (s)", "ssh handshakes / execs", "changes"],
            rows.map((r) => [r.step, f(r.answersS), f(r.exitS), f(r.startS), f(r.programS), f(r.engineS), f(r.activationS), `${r.pulumi} (${f(r.pulumiS)})`, `${r.handshakes} / ${r.execs}`, r.changes]),
        ),
    );
    console.log("\nCLI processes per step (scripts/cliCommand.ts traces each):");
    for (const r of rows) if (r.pulumiWhat !== "") console.log(`  ${r.step}: ${r.pulumiWhat}`);
    console.log("The emergency row: start = one OpenSSH connection alone (`ssh … true`), activation = the rest of the command (the agent's re-check and switch).\n");
    const goal = (name: string, value: number, limit: number, what: string) => console.log(`goal: ${name} ≤ ${limit.toFixed(2)} s ${what}: ${f(value)} s ${value <= limit ? "(met)" : "(NOT met)"}`);
    const [pinned, upgrade, unchanged, rollback, emergency] = rows;
    goal("npm run rollback --yes", rollback?.answersS ?? NaN, 3, "command → target answers");
    goal("pinned rollback by up", pinned?.answersS ?? NaN, 3, "command → target answers");
    goal("unchanged up", unchanged?.exitS ?? NaN, 3, "to exit");
    if (upgrade !== undefined) goal("upgrade", upgrade.answersS, upgrade.activationS + 3, `(activation: boot + gate + switch ${f(upgrade.activationS)} s, + 3 s) command → target answers`);
    goal("complinist rollback on the host", emergency?.answersS ?? NaN, 1, "command → target answers");
}
