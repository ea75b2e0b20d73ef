/**
 * dev/loadgen.py run inside a test host on loopback, so what it sees is the host's own
 * switch and not Docker's port forwarding: start it, let the caller do a step, stop it and
 * read its one JSON line.
 */
import * as cp from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { dockerOk } from "../../dev/container";
import type { TestHost } from "../../dev/hosts";

export interface LoadResult {
    ok: number;
    failed: number;
    failedByKind: Record<string, number>;
    /** Answers per version, any HTTP status (a 503 from a broken release counts here). */
    versions: Record<string, number>;
    /** Seconds from the generator's start until each version first answered (any status) … */
    firstAnswered: Record<string, number>;
    /** … and first answered 200. */
    firstOk: Record<string, number>;
    longestGapSeconds: number;
    /** Unix time of the generator's start (the host's clock is the container's). */
    startedAt: number;
    seconds: number;
    /** Per version, read from the JSON body or else the Server header (an HTML page counts too). */
    served: Record<string, ServedBy>;
    /** Unix time of the run's first failed request (null: none failed). */
    firstFailedAt: number | null;
    /** Entry i: the requests completed in second [i, i+1) after startedAt. */
    perSecond: SecondCounts[];
}

/** What one version answered (any status), on the generator's clock (Unix seconds, request completion). */
export interface ServedBy {
    answered: number;
    failed: number;
    firstAt: number;
    lastAt: number;
    firstFailedAt: number | null;
}

export interface SecondCounts {
    ok: number;
    failed: number;
    failedByKind: Record<string, number>;
    /** Answers per version, as `served` reads them. */
    versions: Record<string, number>;
}

const SCRIPT = "/tmp/complinist-loadgen.py";
const STOP = "/tmp/complinist-loadgen.stop";
const OUT = "/tmp/complinist-loadgen.out";
const ERR = "/tmp/complinist-loadgen.err";

function sleep(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms));
}

export class LoadGenerator {
    private running = false;

    private local: { dir: string; child: cp.ChildProcess; exited: Promise<void> } | undefined;

    /**
     * With `outside` (the host's address on Docker's bridge), the generator runs on this machine
     * instead, its requests arriving as users' do: the host's own requests (loopback) go to the
     * proxy's host backend, which the error-rate watch does not judge.
     */
    constructor(
        private readonly host: TestHost,
        private readonly port = 5000,
        private readonly urlPath = "/health",
        private readonly workers = 8,
        private readonly outside?: string,
    ) {}

    async install(): Promise<void> {
        if (this.outside !== undefined) return;
        await dockerOk(["cp", path.resolve(__dirname, "..", "..", "dev", "loadgen.py"), `${this.host.container}:${SCRIPT}`]);
    }

    /** Starts the workers, detached from the docker exec session, and lets them run for a second. */
    async start(): Promise<void> {
        if (this.outside !== undefined) {
            const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-loadgen-"));
            const out = fs.openSync(path.join(dir, "out"), "w");
            const child = cp.spawn("python3", [path.resolve(__dirname, "..", "..", "dev", "loadgen.py"), String(this.port), this.urlPath, String(this.workers), path.join(dir, "stop"), this.outside], { stdio: ["ignore", out, "inherit"] });
            fs.closeSync(out);
            this.local = { dir, child, exited: new Promise((r) => child.on("close", () => r())) };
            this.running = true;
            await sleep(1000);
            if (child.exitCode !== null) throw new Error(`the outside load generator exited at start (${child.exitCode})`);
            return;
        }
        const r = await this.host.exec(
            `rm -f ${STOP} ${OUT} ${ERR}; setsid nohup python3 ${SCRIPT} ${this.port} ${this.urlPath} ${this.workers} ${STOP} >${OUT} 2>${ERR} </dev/null & echo $!`,
        );
        if (r.code !== 0) throw new Error(`${this.host.name}: starting the load generator failed: ${r.stderr.trim()}`);
        this.running = true;
        const pid = r.stdout.trim();
        // Python takes a moment to start; a baseline of steady load before the step (the
        // caller's) covers it, and a generator that died at once is caught here.
        await sleep(1000);
        if ((await this.host.exec(`grep -q loadgen /proc/${pid}/cmdline 2>/dev/null`)).code !== 0) {
            throw new Error(`${this.host.name}: the load generator (pid ${pid}) exited at start: ${await this.stderr()}`);
        }
    }

    /** Stops the workers (each finishes its request in flight) and returns what they saw. */
    async stop(): Promise<LoadResult> {
        if (!this.running) throw new Error("the load generator is not running");
        this.running = false;
        if (this.local !== undefined) {
            const { dir, exited } = this.local;
            fs.writeFileSync(path.join(dir, "stop"), "");
            await exited;
            const out = fs.readFileSync(path.join(dir, "out"), "utf8").trim();
            fs.rmSync(dir, { recursive: true, force: true });
            this.local = undefined;
            return JSON.parse(out) as LoadResult;
        }
        await this.host.exec(`touch ${STOP}`);
        const deadline = Date.now() + 30000;
        for (;;) {
            const out = (await this.host.exec(`cat ${OUT} 2>/dev/null || true`)).stdout.trim();
            if (out) return JSON.parse(out) as LoadResult;
            if (Date.now() > deadline) throw new Error(`${this.host.name}: the load generator printed nothing within 30 s of the stop file: ${await this.stderr()}`);
            await sleep(200);
        }
    }

    private async stderr(): Promise<string> {
        return (await this.host.exec(`tail -n 5 ${ERR} 2>/dev/null || true`)).stdout.trim() || "(no stderr)";
    }
}
