import * as assert from "assert";
import { ConfigError, parseStackConfig } from "../../../stacks/config";
import { fleetAround } from "../../../components/rollout";

const SHA = "a".repeat(64);
const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMHZNMVhu73rtnkCVV1dnWn09B3L5W/ZVMUBqhTkSJws";
const HOSTS = [1, 2, 3, 4, 5].map((i) => ({ name: `web-${i}`, address: `10.0.0.${i}`, hostKey: KEY }));

function config(rollout: unknown): Record<string, string> {
    return {
        "complinist:version": "1.1.0",
        "complinist:rollbackVersion": "1.0.0",
        "complinist:releases": JSON.stringify({ "1.0.0": { path: "a.tar.gz", sha256: SHA }, "1.1.0": { path: "b.tar.gz", sha256: SHA } }),
        "complinist:hosts": JSON.stringify(HOSTS),
        "complinist:sshPrivateKey": "k",
        "complinist:service": JSON.stringify({ command: "bin/start" }),
        ...(rollout === undefined ? {} : { "complinist:rollout": JSON.stringify(rollout) }),
    };
}

describe("rollout.onFailure: all hosts or none", () => {
    it("defaults to rollback-all, with or without a rollout key", () => {
        assert.strictEqual(parseStackConfig("dev", config(undefined)).rollout.onFailure, "rollback-all");
        assert.strictEqual(parseStackConfig("dev", config({ batchSize: 2 })).rollout.onFailure, "rollback-all");
        assert.strictEqual(parseStackConfig("dev", config({ onFailure: "halt" })).rollout.onFailure, "halt");
    });

    it("refuses any other value, naming the key, the value and the two accepted ones", () => {
        for (const bad of ["rollback", "HALT", "", 1]) {
            assert.throws(
                () => parseStackConfig("staging", config({ onFailure: bad })),
                (e: unknown) => {
                    assert.ok(e instanceof ConfigError);
                    assert.match(e.message, /^Invalid configuration for stack 'staging'/);
                    assert.match(e.message, /complinist:rollout\.onFailure/);
                    assert.ok(e.message.includes(`(got ${JSON.stringify(bad)})`), e.message);
                    assert.match(e.message, /must be 'rollback-all' \(every host this update already switched goes back to its warm standby\) or 'halt'/);
                    return true;
                },
            );
        }
    });

    describe("which hosts a failure switches back (fleetAround)", () => {
        const names = (f: ReturnType<typeof fleetAround>) => [f.peers.map((p) => p.name), f.later];

        it("one host per batch: every earlier host is a peer, every later one never touched", () => {
            assert.deepStrictEqual(names(fleetAround(HOSTS.slice(0, 3).map(full), 1, "web-3", "rollback-all")), [["web-1", "web-2"], []]);
            assert.deepStrictEqual(names(fleetAround(HOSTS.slice(0, 3).map(full), 1, "web-2", "rollback-all")), [["web-1"], ["web-3"]]);
            assert.deepStrictEqual(names(fleetAround(HOSTS.slice(0, 3).map(full), 1, "web-1", "rollback-all")), [[], ["web-2", "web-3"]]);
        });

        it("batches of two: the earlier batches and the others of its own batch (which may have switched meanwhile) are peers", () => {
            assert.deepStrictEqual(names(fleetAround(HOSTS.map(full), 2, "web-3", "rollback-all")), [["web-1", "web-2", "web-4"], ["web-5"]]);
        });

        it("halt: nobody is switched back", () => {
            assert.deepStrictEqual(names(fleetAround(HOSTS.map(full), 1, "web-4", "halt")), [[], ["web-5"]]);
        });

        it("peers carry what reaching them takes: address, port, user and host key", () => {
            assert.deepStrictEqual(fleetAround(HOSTS.map(full), 1, "web-2", "rollback-all").peers, [{ name: "web-1", address: "10.0.0.1", port: 22, user: "root", hostKey: KEY }]);
        });

        it("refuses a host that is not in the rollout", () => {
            assert.throws(() => fleetAround(HOSTS.map(full), 1, "web-9", "rollback-all"), /host web-9 is not in the rollout/);
        });
    });
});

function full(h: (typeof HOSTS)[number]) {
    return { ...h, port: 22, user: "root" };
}
