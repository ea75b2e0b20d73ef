/** Images for test hosts started with `dockerEngine` (dev/hosts.ts). */
import { spawn } from "child_process";
import type { TestHost } from "./hosts";

/**
 * Copies images from this machine's engine into a host started with `dockerEngine`:
 * `docker save <refs>` piped into `docker load` inside the host, streamed (images are
 * hundreds of MB). Rejects naming the refs, with both sides' stderr.
 */
export async function loadImages(host: TestHost, refs: string[], timeoutMs = 300000): Promise<void> {
    if (refs.length === 0) return;
    const what = `loading ${refs.join(", ")} into test host ${host.name} (${host.container})`;
    await new Promise<void>((resolve, reject) => {
        // save's stdout becomes load's stdin directly (a kernel pipe, no copy through JS);
        // the parent's end is closed so save gets EPIPE if load dies first.
        const save = spawn("docker", ["save", ...refs], { stdio: ["ignore", "pipe", "pipe"] });
        const load = spawn("docker", ["exec", "-i", host.container, "docker", "load", "-q"], { stdio: [save.stdout, "ignore", "pipe"] });
        save.stdout.destroy();
        const saveErr: Buffer[] = [];
        const loadErr: Buffer[] = [];
        save.stderr.on("data", (d: Buffer) => saveErr.push(d));
        load.stderr?.on("data", (d: Buffer) => loadErr.push(d));

        const codes: { save?: number; load?: number } = {};
        let settled = false;
        const finish = (err?: Error): void => {
            if (settled) return;
            if (!err && (codes.save === undefined || codes.load === undefined)) return;
            settled = true;
            clearTimeout(timer);
            if (err) {
                save.kill("SIGKILL");
                load.kill("SIGKILL");
                reject(err);
            } else if (codes.save !== 0 || codes.load !== 0) {
                const detail = [
                    `docker save exited ${codes.save}: ${Buffer.concat(saveErr).toString().trim()}`,
                    `docker load exited ${codes.load}: ${Buffer.concat(loadErr).toString().trim()}`,
                ].join("; ");
                reject(new Error(`${what} failed: ${detail}`));
            } else {
                resolve();
            }
        };
        const timer = setTimeout(() => finish(new Error(`${what} did not finish within ${timeoutMs} ms`)), timeoutMs);
        save.on("error", (e) => finish(new Error(`${what}: cannot run docker save: ${e.message}`)));
        load.on("error", (e) => finish(new Error(`${what}: cannot run docker exec: ${e.message}`)));
        save.on("close", (code) => {
            codes.save = code ?? 1;
            finish();
        });
        load.on("close", (code) => {
            codes.load = code ?? 1;
            finish();
        });
    });
}
