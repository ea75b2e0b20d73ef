/** Images for test hosts started with `dockerEngine` (dev/hosts.ts). */
import { execFileSync, spawn } from "child_process";
import * as path from "path";
import type { TestHost } from "./hosts";
import { CHECKOUT_DIR } from "../toolchain/checkout";

/**
 * The sample releases as images on this machine's engine (scripts/build-images.sh, cached by
 * content): version → image ID.
 */
export function buildImages(versions: readonly string[]): Record<string, string> {
    const out = execFileSync("bash", [path.join(CHECKOUT_DIR, "scripts", "build-images.sh"), ...versions], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], timeout: 600000 });
    const ids: Record<string, string> = {};
    for (const line of out.trim().split("\n")) {
        const [tag, id] = line.split("\t");
        if (tag && id) ids[tag.replace(/^complinist:/, "")] = id;
    }
    return ids;
}

/**
 * The sample releases built, loaded into a docker test host and pinned by the digest its
 * registry gives them (as container mode requires): version → image ID, and
 * `complinist:<version>` → `127.0.0.1:5050/complinist@sha256:…`.
 */
export async function pinnedSampleImages(host: TestHost, versions: readonly string[]): Promise<{ ids: Record<string, string>; pinned: Record<string, string> }> {
    const ids = buildImages(versions);
    const refs = versions.map((v) => `complinist:${v}`);
    await loadImages(host, refs);
    return { ids, pinned: await pushImages(host, refs) };
}

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

/** Where pushImages' registry listens inside a test host: its own loopback, never the app's ports (5000-5002). */
export const TEST_REGISTRY = "127.0.0.1:5050";

/**
 * Makes images already in a test host's engine (loadImages) resolvable by digest, as a real
 * registry would: Debian's docker-registry (baked into complinist-dockerhost, disabled) is
 * started on the host's loopback as a transient unit, each ref is pushed to it, and the host's
 * engine then carries `127.0.0.1:5050/<name>@sha256:<manifest digest>` as a RepoDigest of that
 * image — the digest the registry computed, not a made-up one. (`docker load` keeps no
 * RepoDigest; the engine treats 127.0.0.0/8 registries as insecure by default, so no TLS.)
 * Returns ref → digest reference, e.g. `complinist:1.0.0` → `127.0.0.1:5050/complinist@sha256:…`.
 */
export async function pushImages(host: TestHost, refs: string[]): Promise<Record<string, string>> {
    const sh = async (what: string, cmd: string): Promise<string> => {
        const r = await host.exec(cmd);
        if (r.code !== 0) throw new Error(`test host ${host.name}: ${what} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().slice(-600)}`);
        return r.stdout.trim();
    };
    await sh(
        `starting the test registry on ${TEST_REGISTRY}`,
        [
            "set -euo pipefail",
            "command -v docker-registry >/dev/null || { echo 'docker-registry is missing from this host image: rebuild it (scripts/build-docker-host-image.sh)' >&2; exit 1; }",
            "if ! systemctl is-active --quiet complinist-test-registry; then",
            `  printf 'version: 0.1\\nstorage:\\n  filesystem:\\n    rootdirectory: /var/lib/complinist-test-registry\\nhttp:\\n  addr: ${TEST_REGISTRY}\\n' > /etc/complinist-test-registry.yml`,
            "  systemd-run --quiet --collect --unit=complinist-test-registry /usr/bin/docker-registry serve /etc/complinist-test-registry.yml",
            "fi",
            `for i in $(seq 1 100); do curl -fsS -m 2 http://${TEST_REGISTRY}/v2/ >/dev/null 2>&1 && exit 0; sleep 0.1; done`,
            `echo "the registry did not answer on ${TEST_REGISTRY}/v2/" >&2; exit 1`,
        ].join("\n"),
    );
    const out: Record<string, string> = {};
    for (const ref of refs) {
        const name = ref.replace(/[:@].*$/, "");
        const target = `${TEST_REGISTRY}/${ref}`;
        await sh(`pushing ${ref}`, `set -euo pipefail; docker tag '${ref}' '${target}' && docker push -q '${target}' >/dev/null`);
        const digests = await sh(`reading the repo digest of ${ref}`, `docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' '${target}'`);
        const pinned = digests.split("\n").find((d) => d.startsWith(`${TEST_REGISTRY}/${name}@sha256:`));
        if (pinned === undefined) throw new Error(`test host ${host.name}: ${target} was pushed but carries no repo digest of ${TEST_REGISTRY}/${name} (has: ${digests || "none"})`);
        out[ref] = pinned;
    }
    return out;
}
