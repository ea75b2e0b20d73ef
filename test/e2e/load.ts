import * as cp from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import type { TestHost } from "../../dev/hosts";

/**
 * The load generator of the zero-downtime tests, run inside a test host: dev/loadgen.py,
 * 8 workers, a new connection per request to 127.0.0.1:5000<path>, until told to stop.
 */

/** What the generator saw: answers, failures by kind, and which version answered how often. */
export interface Load {
    ok: number;
    failed: number;
    failedByKind: Record<string, number>;
    versions: Record<string, number>;
}

/** Copies dev/loadgen.py into the host (/tmp/loadgen.py). */
export function installLoadgen(h: TestHost): void {
    cp.execFileSync("docker", ["cp", path.resolve(__dirname, "..", "..", "dev", "loadgen.py"), `${h.container}:/tmp/loadgen.py`]);
}

const sh = (h: TestHost, cmd: string) => h.run(cmd);

/** Runs `step` while the generator hits `pathOnHost` inside the host; returns both. Waits on conditions, not on time. */
export async function underLoad<T>(h: TestHost, pathOnHost: string, step: () => Promise<T>): Promise<{ result: T; load: Load }> {
    await sh(h, "rm -f /tmp/loadgen.stop /tmp/loadgen.out");
    await sh(h, `systemd-run --unit=loadgen-$RANDOM --collect --quiet sh -c 'python3 /tmp/loadgen.py 5000 ${pathOnHost} 8 /tmp/loadgen.stop > /tmp/loadgen.out'`);
    // The generator is running once it has answers; wait on that, not on time.
    await sh(h, "for i in $(seq 1 100); do pgrep -f /tmp/loadgen.py >/dev/null && break; sleep 0.1; done");
    const result = await step();
    await sh(h, "touch /tmp/loadgen.stop; for i in $(seq 1 200); do [ -s /tmp/loadgen.out ] && break; sleep 0.1; done");
    return { result, load: JSON.parse(await sh(h, "cat /tmp/loadgen.out")) as Load };
}

/** The host's address on Docker's network, where a client outside it reaches the service port. */
export function hostAddress(h: TestHost): string {
    const ip = cp.execFileSync("docker", ["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", h.container], { encoding: "utf8" }).trim().split(/\s+/)[0];
    if (!ip) throw new Error(`${h.container} has no address on a Docker network`);
    return ip;
}

/**
 * underLoad with the generator outside the host (on the test runner, through Docker's bridge to
 * the host's address): its requests' source is the bridge's gateway, not one of the host's own
 * addresses, so the proxy routes them as users' (the watch judges them) — unlike underLoad's,
 * which come from loopback and go to the proxy's host backend.
 */
export async function underOutsideLoad<T>(h: TestHost, pathOnHost: string, step: () => Promise<T>): Promise<{ result: T; load: Load }> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "loadgen-"));
    const stop = path.join(dir, "stop");
    const gen = cp.spawn("python3", [path.resolve(__dirname, "..", "..", "dev", "loadgen.py"), "5000", pathOnHost, "8", stop, hostAddress(h)], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    gen.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => gen.on("close", resolve));
    try {
        const result = await step();
        fs.writeFileSync(stop, "");
        const code = await exited;
        if (code !== 0) throw new Error(`the outside load generator exited ${String(code)}: ${out}`);
        return { result, load: JSON.parse(out) as Load };
    } finally {
        fs.writeFileSync(stop, "");
        await exited;
        fs.rmSync(dir, { recursive: true, force: true });
    }
}
