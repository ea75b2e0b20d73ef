import { parseStackConfig, type StackConfig } from "../../../stacks/config";
import type { AgentState } from "../../../infra/agent/state";

/** Test data of the live view: a stack of two hosts and the agent's `state` of a host in a canary. */

const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMHZNMVhu73rtnkCVV1dnWn09B3L5W/ZVMUBqhTkSJws";

export function liveConfig(version = "1.2.0"): StackConfig {
    return parseStackConfig("staging", {
        "complinist:version": version,
        "complinist:releases": JSON.stringify({ "1.1.0": { path: "b.tgz", sha256: "b".repeat(64) }, "1.2.0": { path: "c.tgz", sha256: "c".repeat(64) } }),
        "complinist:hosts": JSON.stringify([
            { name: "web-1", address: "10.0.0.1", hostKey: KEY },
            { name: "web-2", address: "10.0.0.2", hostKey: KEY },
        ]),
        "complinist:sshPrivateKeyPath": "key",
        "complinist:service": JSON.stringify({ command: "bin/start" }),
    });
}

type DeepMutable<T> = T extends ReadonlyArray<infer U> ? Array<DeepMutable<U>> : T extends object ? { -readonly [K in keyof T]: DeepMutable<T[K]> } : T;
export type MutableState = DeepMutable<AgentState>;

/** 1.1.0 live on 5001, 1.2.0 on 5002 in a 10% canary, its activation holding the lock since 12 s. */
export function canaryState(change: (s: MutableState) => void = () => undefined): MutableState {
    const release = (version: string, sha: string) => ({ version, sha256: sha.repeat(64), installedAt: "2025-01-10T09:00:00Z", commit: "0123abc" });
    const s: MutableState = {
        v: 1,
        agent: { version: "1.0.0+0123456789ab", sha256: "d".repeat(64) },
        service: "complinist",
        baseDir: "/opt/complinist",
        runtime: "process",
        now: "2025-01-12T10:00:12Z",
        current: { link: "releases/1.1.0", path: "/opt/complinist/releases/1.1.0", version: "1.1.0" },
        releases: [release("1.1.0", "b"), release("1.2.0", "c")],
        releaseDirs: ["1.1.0", "1.2.0"],
        instances: [
            { port: 5001, link: "../releases/1.1.0", path: "/opt/complinist/releases/1.1.0", version: "1.1.0", rev: "r-1", active: "active" },
            { port: 5002, link: "../releases/1.2.0", path: "/opt/complinist/releases/1.2.0", version: "1.2.0", rev: "r-2", active: "active" },
        ],
        units: { "complinist-proxy.service": "active", "complinist.service": "active", "complinist@5001.service": "active", "complinist@5002.service": "active" },
        proxy: { active: true, live: 5001, canary: 5002, percent: 10, counts: { "5001": { requests: 900, errors: 0, rtimeMs: 3 }, "5002": { requests: 100, errors: 2, rtimeMs: 5 } }, foreign: [] },
        live: { port: 5001, version: "1.1.0", active: "active", rev: "r-1" },
        standbyVersion: "",
        canaryVersion: "1.2.0",
        served: "1.1.0",
        health: { code: 200, seconds: 0.004, body: JSON.stringify({ status: "healthy", version: "1.1.0", uptime: 100 }) },
        root: { code: 200, seconds: 0.006 },
        lock: { held: "yes", owner: "ci@runner pid 42 since 2025-01-12T09:59:00Z" },
        watch: { phase: "canary", version: "1.2.0", port: 5002, verdict: "ok", figures: "canary 12s of 60s: new 100 requests 2 errors (2.00%)" },
        revisions: [`2025-01-11T10:00:00Z\tversion=1.1.0\tsha256=${"b".repeat(64)}\tby=ci@runner\toutcome=activated previous=1.0.0`],
        activation: { id: "1_2_0-abc", phase: "canary", step: "canary: 10% of new requests to 1.2.0 on 5002 for 60s", since: "2025-01-12T10:00:00Z" },
    };
    change(s);
    return s;
}

/** The same host after the canary: 1.2.0 live on 5002, 1.1.0 the warm standby, the lock free. */
export function idleState(change: (s: MutableState) => void = () => undefined): MutableState {
    return canaryState((s) => {
        s.current = { link: "releases/1.2.0", path: "/opt/complinist/releases/1.2.0", version: "1.2.0" };
        s.proxy = { ...s.proxy, live: 5002, canary: 0, percent: 0 };
        s.live = { port: 5002, version: "1.2.0", active: "active", rev: "r-2" };
        s.standbyVersion = "1.1.0";
        s.canaryVersion = "";
        s.served = "1.2.0";
        s.health = { code: 200, seconds: 0.004, body: JSON.stringify({ status: "healthy", version: "1.2.0", uptime: 100 }) };
        s.lock = { held: "no" };
        s.watch = null;
        delete s.activation;
        change(s);
    });
}
