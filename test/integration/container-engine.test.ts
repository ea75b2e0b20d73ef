import * as assert from "assert";
import { execFile, execFileSync } from "child_process";
import * as crypto from "crypto";
import * as http from "http";
import * as net from "net";
import * as path from "path";
import { CapturedResource, EngineDriver, Json, unwrapSecrets } from "../engine/driver";
import { testKeyPair, useHosts } from "../../dev/hosts";
import { stackFileConfig } from "../program/stackFile";

/**
 * Container mode against a real Docker engine. The Pulumi CLI (and with it the docker
 * provider binary) cannot be installed here, so the program is evaluated under mocks and
 * the Container it declares is translated, input by input, into `docker run` flags: the
 * image of the RemoteImage it references, its healthcheck, env, labels, restart policy,
 * stop signal, ports and volumes. Any input the translation does not know fails the test,
 * so the check cannot silently drift from the program. Deviations, all for isolation:
 * a unique container name, the port published on 127.0.0.1 at a free port (the container
 * port is the declared one), the log volume name prefixed per run, and a cleanup label.
 * `wait`/`waitTimeout` become this test's wait for Docker's "healthy", as the provider
 * polls it.
 */

const REPO = path.resolve(__dirname, "..", "..");
const FIXTURE = path.join(REPO, "test", "program", "fixtures", "Pulumi.container.yaml");
const MOCKS = "test/program/fixtures/docker-mocks.ts";
const RUN = `cet-${process.pid}-${crypto.randomBytes(3).toString("hex")}`;
const RUN_LABEL = `complinist-container-test=${RUN}`;
const GOOD = ["1.0.0", "1.1.0", "1.3.0", "1.4.0"];
const ALL = [...GOOD, "1.2.0", "0.9.0-nostart"];
/** Short, so the broken releases' "never healthy" costs seconds; the fixture's own values are 30 s / 500 ms. */
const HEALTH = { path: "/health", timeoutSeconds: 12, intervalMs: 500 };

function run(cmd: string, args: string[], timeoutMs = 60000): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
        execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
            const code = err ? (typeof (err as { code?: unknown }).code === "number" ? ((err as { code: number }).code) : 1) : 0;
            resolve({ code, stdout: String(stdout), stderr: String(stderr) });
        });
    });
}

async function docker(...args: string[]): Promise<string> {
    const r = await run("docker", args);
    if (r.code !== 0) throw new Error(`docker ${args.join(" ")} failed (${r.code}): ${r.stderr.trim()}`);
    return r.stdout.trim();
}

function engineAvailable(): boolean {
    try {
        execFileSync("docker", ["info"], { stdio: "ignore", timeout: 20000 });
        return true;
    } catch {
        return false;
    }
}

async function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const s = net.createServer();
        s.once("error", reject);
        s.listen(0, "127.0.0.1", () => {
            const p = (s.address() as net.AddressInfo).port;
            s.close(() => resolve(p));
        });
    });
}

function getHealth(port: number): Promise<{ code: number; body: Record<string, unknown> }> {
    return new Promise((resolve, reject) => {
        http.get({ host: "127.0.0.1", port, path: HEALTH.path, timeout: 5000 }, (res) => {
            let data = "";
            res.on("data", (d: Buffer) => (data += d.toString()));
            res.on("end", () => resolve({ code: res.statusCode ?? 0, body: JSON.parse(data) as Record<string, unknown> }));
        }).on("error", reject);
    });
}

interface Translated {
    /** `docker run` arguments (without `docker run`). */
    args: string[];
    /** The declared container name (the run uses a unique one). */
    declaredName: string;
    hostPort: number;
    containerPort: number;
    waitTimeoutSeconds: number;
    logPath: string;
}

/** The captured Container's inputs as `docker run -d` flags. Throws on any input it does not translate. */
async function translate(c: CapturedResource, resources: CapturedResource[], runName: string): Promise<Translated> {
    const i = unwrapSecrets(c.inputs) as Record<string, Json>;
    const known = new Set(["name", "image", "envs", "labels", "ports", "volumes", "healthcheck", "restart", "stopSignal", "wait", "waitTimeout", "mustRun", "destroyGraceSeconds"]);
    const unknown = Object.keys(i).filter((k) => !known.has(k));
    assert.deepStrictEqual(unknown, [], "Container inputs this check does not translate: extend translate()");
    const image = resources.find((r) => r.type === "docker:index/remoteImage:RemoteImage" && r.mockState.imageId === i.image && r.parent === c.parent);
    assert.ok(image, `no RemoteImage of this host provides image ${String(i.image)}`);
    const args = ["-d", "--name", runName, "--label", RUN_LABEL];
    for (const e of i.envs as string[]) args.push("-e", e);
    for (const l of i.labels as Array<{ label: string; value: string }>) args.push("--label", `${l.label}=${l.value}`);
    const ports = i.ports as Array<{ internal: number; external: number; ip: string; protocol: string }>;
    assert.strictEqual(ports.length, 1);
    const p = ports[0] as (typeof ports)[number];
    const hostPort = await freePort();
    args.push("-p", `127.0.0.1:${hostPort}:${p.internal}/${p.protocol}`);
    const volumes = i.volumes as Array<{ volumeName: string; containerPath: string }>;
    for (const v of volumes) args.push("-v", `${RUN}-${v.volumeName}:${v.containerPath}`);
    const hc = i.healthcheck as { tests: string[]; interval: string; timeout: string; startPeriod: string; retries: number };
    assert.strictEqual(hc.tests[0], "CMD-SHELL", "docker run --health-cmd is the shell form");
    args.push("--health-cmd", hc.tests[1] as string, "--health-interval", hc.interval, "--health-timeout", hc.timeout, "--health-start-period", hc.startPeriod, "--health-retries", String(hc.retries));
    args.push("--restart", String(i.restart), "--stop-signal", String(i.stopSignal));
    assert.strictEqual(i.wait, true, "the program must wait for healthy");
    assert.strictEqual(i.mustRun, true);
    args.push(String(image.inputs.name));
    return {
        args,
        declaredName: String(i.name),
        hostPort,
        containerPort: p.internal,
        waitTimeoutSeconds: Number(i.waitTimeout),
        logPath: (volumes[0] as (typeof volumes)[number]).containerPath,
    };
}

interface Observed {
    healthy: boolean;
    status: string;
    running: boolean;
    exitCode: number;
    restarts: number;
    lastProbe: string;
    elapsedMs: number;
}

/** Polls like the provider's `wait`: until Docker says healthy, or waitTimeout passes. */
async function waitHealthy(name: string, timeoutSeconds: number): Promise<Observed> {
    const start = Date.now();
    let o: Observed = { healthy: false, status: "", running: false, exitCode: 0, restarts: 0, lastProbe: "", elapsedMs: 0 };
    while (Date.now() - start < timeoutSeconds * 1000) {
        const raw = await docker("inspect", name);
        const s = (JSON.parse(raw) as Array<{ State: { Status: string; Running: boolean; ExitCode: number; Health?: { Status: string; Log?: Array<{ Output: string }> } }; RestartCount: number }>)[0];
        assert.ok(s);
        const log = s.State.Health?.Log ?? [];
        o = {
            healthy: s.State.Health?.Status === "healthy",
            status: s.State.Health?.Status ?? s.State.Status,
            running: s.State.Running,
            exitCode: s.State.ExitCode,
            restarts: s.RestartCount,
            lastProbe: (log[log.length - 1]?.Output ?? "").trim(),
            elapsedMs: Date.now() - start,
        };
        if (o.healthy) return o;
        await new Promise((r) => setTimeout(r, 250));
    }
    return o;
}

/** The exit code Docker records while the container is down (exited, or waiting to be restarted). */
async function exitCodeWhileDown(name: string, timeoutSeconds: number): Promise<number> {
    const start = Date.now();
    let last = "";
    while (Date.now() - start < timeoutSeconds * 1000) {
        // While Docker waits to restart it, State.Running stays true: Status is what says "down".
        last = await docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name);
        const [status, code] = last.split(" ");
        if (status === "restarting" || status === "exited") return Number(code);
        await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`${name} was never seen down within ${timeoutSeconds} s (last: ${last})`);
}

async function cleanup(): Promise<void> {
    const ids = (await run("docker", ["ps", "-aq", "--filter", `label=${RUN_LABEL}`])).stdout.split(/\s+/).filter(Boolean);
    if (ids.length) await run("docker", ["rm", "-f", "-v", ...ids]);
    const vols = (await run("docker", ["volume", "ls", "-q", "--filter", `name=${RUN}-`])).stdout.split(/\s+/).filter(Boolean);
    if (vols.length) await run("docker", ["volume", "rm", "-f", ...vols]);
}

describe("container mode on the local Docker engine", function () {
    this.timeout(300000);
    const declared: Record<string, { container: CapturedResource; resources: CapturedResource[] }> = {};
    const started: Record<string, { t: Translated; name: string; observed?: Observed }> = {};

    before(async function () {
        if (!engineAvailable()) {
            const why = "no Docker engine answers `docker info` (start dockerd)";
            if (process.env.CI) throw new Error(`${why}; CI is set, so this fails instead of skipping`);
            this.skip();
        }
        process.once("exit", () => {
            try {
                const ids = execFileSync("docker", ["ps", "-aq", "--filter", `label=${RUN_LABEL}`], { encoding: "utf8" }).split(/\s+/).filter(Boolean);
                if (ids.length) execFileSync("docker", ["rm", "-f", "-v", ...ids], { stdio: "ignore" });
            } catch {
                // best effort on exit
            }
        });
        // Idempotent: images whose artifact is unchanged keep their IDs.
        const built = await run("bash", [path.join(REPO, "scripts", "build-images.sh"), ...ALL], 600000);
        assert.strictEqual(built.code, 0, `scripts/build-images.sh failed:\n${built.stderr}`);

        // The program's own declaration, once per version, on one `local` host.
        const base = stackFileConfig("container", FIXTURE);
        await Promise.all(
            ALL.map(async (v) => {
                const driver = new EngineDriver({ stack: "container", mocksModule: MOCKS });
                try {
                    const r = await driver.evaluate({
                        ...base,
                        "complinist:version": v,
                        "complinist:rollbackVersion": v === "1.0.0" ? "1.1.0" : "1.0.0",
                        "complinist:releases": Object.fromEntries(ALL.map((x) => [x, { image: `complinist:${x}` }])),
                        "complinist:hosts": [{ name: "local-1", address: "local", hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMHZNMVhu73rtnkCVV1dnWn09B3L5W/ZVMUBqhTkSJws" }],
                        "complinist:health": HEALTH,
                    });
                    assert.strictEqual(r.error, undefined, r.programLog);
                    const container = r.resources.find((x) => x.type === "docker:index/container:Container");
                    assert.ok(container);
                    declared[v] = { container, resources: r.resources };
                } finally {
                    await driver.close();
                }
            }),
        );

        // Every version at once (plus an impostor: 1.3.0's declaration on 1.1.0's image); waits overlap.
        const jobs: Array<[string, CapturedResource, CapturedResource[], string | undefined]> = ALL.map((v) => [v, declared[v]!.container, declared[v]!.resources, undefined]);
        jobs.push(["impostor", declared["1.3.0"]!.container, declared["1.3.0"]!.resources, "complinist:1.1.0"]);
        for (const [key, c, resources, swapImage] of jobs) {
            const name = `${RUN}-${key}`;
            const t = await translate(c, resources, name);
            if (swapImage) t.args[t.args.length - 1] = swapImage;
            await docker("run", ...t.args);
            started[key] = { t, name };
        }
        await Promise.all(Object.values(started).map(async (s) => (s.observed = await waitHealthy(s.name, s.t.waitTimeoutSeconds))));
    });

    after(async function () {
        this.timeout(120000);
        await cleanup();
    });

    it("declares the container the runbook's way: name, log volume path, port", () => {
        const t = started["1.3.0"]?.t;
        assert.ok(t);
        assert.strictEqual(t.declaredName, "complinist");
        assert.strictEqual(t.logPath, "/var/log/complinist");
        assert.strictEqual(t.containerPort, 5000);
    });

    for (const v of GOOD) {
        it(`${v}: becomes healthy within waitTimeout and answers /health with its version on the published port`, async () => {
            const s = started[v];
            assert.ok(s?.observed);
            assert.ok(s.observed.healthy, `not healthy after ${s.observed.elapsedMs} ms: ${s.observed.status}; last probe: ${s.observed.lastProbe}`);
            assert.match(s.observed.lastProbe, new RegExp(`HTTP 200 status=healthy version=${v.replace(/\./g, "\\.")} want=`));
            const h = await getHealth(s.t.hostPort);
            assert.strictEqual(h.code, 200);
            assert.strictEqual(h.body.status, "healthy");
            assert.strictEqual(h.body.version, v);
            // The app user can write its log directory (the named volume takes the image's ownership).
            await docker("exec", s.name, "sh", "-c", `echo probe > ${s.t.logPath}/probe.log`);
            assert.strictEqual(await docker("exec", s.name, "id", "-un"), "complinist");
        });
    }

    it("1.2.0 never becomes healthy: Docker marks it unhealthy and the probe says why", () => {
        const o = started["1.2.0"]?.observed;
        assert.ok(o);
        assert.strictEqual(o.healthy, false);
        assert.strictEqual(o.status, "unhealthy");
        assert.match(o.lastProbe, /HTTP 503 status=unhealthy version=1\.2\.0 want=1\.2\.0/);
        assert.strictEqual(o.running, true, "Docker keeps an unhealthy container running: only the provider's wait turns this into a failed update");
    });

    it("a container answering with another version than declared never becomes healthy", () => {
        const o = started.impostor?.observed;
        assert.ok(o);
        assert.strictEqual(o.healthy, false);
        assert.match(o.lastProbe, /status=healthy version=1\.1\.0 want=1\.3\.0/);
    });

    it("0.9.0-nostart exits (exit code 1) and restart: unless-stopped retries it, never healthy", async () => {
        const s = started["0.9.0-nostart"];
        assert.ok(s?.observed);
        assert.strictEqual(s.observed.healthy, false);
        assert.ok(s.observed.restarts >= 1 || !s.observed.running, JSON.stringify(s.observed));
        // Docker resets State.ExitCode to 0 each time it restarts the container: read it while the
        // container is down between two restarts, not at whatever moment the health wait ended.
        assert.strictEqual(await exitCodeWhileDown(s.name, 60), 1);
        const logs = await run("docker", ["logs", s.name]);
        assert.match(logs.stdout + logs.stderr, /refusing to start/);
    });

    it("stops within seconds on the declared stop signal (SIGINT reaches python as PID 1)", async () => {
        const s = started["1.4.0"];
        assert.ok(s);
        const t0 = Date.now();
        await docker("stop", "-t", "10", s.name);
        const ms = Date.now() - t0;
        assert.ok(ms < 5000, `docker stop took ${ms} ms: the signal did not stop the app`);
        assert.strictEqual(await docker("inspect", "-f", "{{.State.ExitCode}}", s.name), "0");
    });
});

describe("container mode: the docker provider's ssh options against a real sshd", function () {
    this.timeout(180000);
    const hosts = useHosts(1, { names: ["docker-ssh"] });

    async function sshWith(hostKey: string): Promise<{ code: number; out: string }> {
        const h = hosts[0];
        assert.ok(h);
        const driver = new EngineDriver({ stack: "container", mocksModule: MOCKS });
        let opts: string[];
        let url: string;
        try {
            const r = await driver.evaluate({
                ...stackFileConfig("container", FIXTURE),
                "complinist:hosts": [{ name: "ssh-1", address: h.address, port: h.sshPort, user: h.user, hostKey }],
            });
            assert.strictEqual(r.error, undefined, r.programLog);
            const p = r.resources.find((x) => x.type === "pulumi:providers:docker");
            assert.ok(p);
            opts = JSON.parse(String(p.inputs.sshOpts)) as string[];
            url = String(p.inputs.host);
        } finally {
            await driver.close();
        }
        const m = /^ssh:\/\/([^@]+)@(.+):(\d+)$/.exec(url);
        assert.ok(m, url);
        const { privateKeyPath } = testKeyPair();
        // As docker's connhelper runs it: ssh <sshOpts> -l user -p port host -- <command>.
        const r = await run("ssh", [...opts, "-i", privateKeyPath, "-o", "IdentitiesOnly=yes", "-l", m[1] as string, "-p", m[3] as string, "--", m[2] as string, "echo pinned-ok"], 30000);
        return { code: r.code, out: r.stdout + r.stderr };
    }

    it("connects when the configured hostKey is the host's key", async () => {
        const h = hosts[0];
        assert.ok(h);
        const r = await sshWith(h.hostKey);
        assert.strictEqual(r.code, 0, r.out);
        assert.match(r.out, /pinned-ok/);
    });

    it("refuses a host whose key differs from the configured one (never blind)", async () => {
        const wrong = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBm1YRvCRgzl8Ie0XjJzHR0aeEUHdCqdcbGTbGbE5Pp2";
        const r = await sshWith(wrong);
        assert.notStrictEqual(r.code, 0);
        assert.match(r.out, /Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/);
        assert.doesNotMatch(r.out, /pinned-ok/);
    });
});
