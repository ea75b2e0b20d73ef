import * as assert from "assert";
import type * as pulumi from "@pulumi/pulumi";
import { activationProvider } from "../../../infra/providers/activation";
import { HostTarget, hostKeyFingerprint, sha256Hex } from "../../../infra/providers/host";
import { hostIdentityProvider } from "../../../infra/providers/hostIdentity";
import { imageReleaseProvider } from "../../../infra/providers/imageRelease";
import { releaseDirProvider } from "../../../infra/providers/release";
import { serviceUnitProvider } from "../../../infra/providers/service";
import { useTransportFactory } from "../../../infra/transport";

/**
 * Issue 29, finding 1: a host's new address or host key under the name it had would get the
 * env file (ServiceUnit), releaseAuth (ReleaseDir) and everything else the stack sends it. Every
 * provider with a `host` input refuses that in diff — which preview runs, before anything
 * connects — unless `complinist:acknowledgeHostChange` names the host.
 */

const KEY_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMHZNMVhu73rtnkCVV1dnWn09B3L5W/ZVMUBqhTkSJws";
const KEY_B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILMxuAaly8eQwFV2vVBtjn8iwfGxePCXbhpocofWyKh1";
const HOST: HostTarget = { name: "dev-1", address: "dev-1.complinist.example", port: 22, user: "deploy", hostKey: KEY_A };

/** The providers' old state and new inputs as the engine hands them to diff: only what the check reads differs between them. */
const PROVIDERS: ReadonlyArray<[string, pulumi.dynamic.ResourceProvider, Record<string, unknown>]> = [
    [
        "ServiceUnit (the env file)",
        serviceUnitProvider,
        {
            service: "complinist",
            baseDir: "/opt/complinist",
            user: "complinist",
            privateKey: "k",
            envText: "SECRET_KEY=x\n",
            // What an apply recorded: the env file's sha256 and the host's state.
            envSha256: sha256Hex("SECRET_KEY=x\n"),
            envMode: "600",
            enabled: "enabled",
            firewall: "loaded",
            allowServiceInterruption: false,
            agent: { version: "1", sha256: { amd64: "a", arm64: "b" } },
        },
    ],
    ["ReleaseDir (releaseAuth)", releaseDirProvider, { service: "complinist", baseDir: "/opt/complinist", version: "1.1.0", sha256: "a".repeat(64), artifact: { url: "https://gitlab.example.com/a.tar.gz" }, privateKey: "k", auth: "Deploy-Token: t", authOrigins: ["https://gitlab.example.com"] }],
    ["ImageReleaseDir", imageReleaseProvider, { service: "complinist", baseDir: "/opt/complinist", version: "1.1.0", image: "r/c@sha256:" + "a".repeat(64), privateKey: "k", complete: true }],
    ["Activation (settings, the hook)", activationProvider, { service: "complinist", baseDir: "/opt/complinist", version: "1.1.0", privateKey: "k", activeVersion: "1.1.0", active: "active", standby: false, rollbackVersion: "" }],
    ["HostIdentity (the gate a new release waits for)", hostIdentityProvider, { hostKeyFingerprint: hostKeyFingerprint(KEY_A) }],
];

describe("a host's new address or host key under the name it had", () => {
    let connections: string[];
    beforeEach(() => {
        connections = [];
        useTransportFactory((conn) => {
            connections.push(conn.address);
            throw new Error(`diff connected to ${conn.address}`);
        });
    });
    afterEach(() => {
        useTransportFactory(undefined);
        assert.deepStrictEqual(connections, [], "diff must never connect to a host");
    });

    const inputs = (rest: Record<string, unknown>, host: HostTarget, acknowledgeHostChange: string[] = []) => ({ ...rest, host, stack: "dev", acknowledgeHostChange });
    const moved = { ...HOST, address: "203.0.113.66", hostKey: KEY_B };

    for (const [what, provider, rest] of PROVIDERS) {
        describe(what, () => {
            const diff = (olds: object, news: object) => (provider.diff as NonNullable<pulumi.dynamic.ResourceProvider["diff"]>)("id", olds, news);

            it("is refused in diff, naming the host, the old and new address and key fingerprint, and the command that acknowledges it", async () => {
                await assert.rejects(diff(inputs(rest, HOST), inputs(rest, moved)), (e: Error) => {
                    for (const f of [
                        "host dev-1: ",
                        "its address from dev-1.complinist.example to 203.0.113.66",
                        `its host key from ${hostKeyFingerprint(KEY_A)} to ${hostKeyFingerprint(KEY_B)}`,
                        "its env file with the app's secrets, releaseAuth",
                        "Refused without an acknowledgement",
                        "ssh-keyscan -p 22 203.0.113.66 | ssh-keygen -lf -",
                        `pulumi config set complinist:acknowledgeHostChange '["dev-1"]' --stack dev`,
                        "pulumi config rm complinist:acknowledgeHostChange --stack dev",
                    ]) {
                        assert.ok(e.message.includes(f), `message lacks ${JSON.stringify(f)}:\n${e.message}`);
                    }
                    return true;
                });
            });

            it("is refused when only the address, or only the host key, changes", async () => {
                await assert.rejects(diff(inputs(rest, HOST), inputs(rest, { ...HOST, address: "10.9.9.9" })), /host dev-1: the config changes its address from dev-1\.complinist\.example to 10\.9\.9\.9 \(host key ssh-ed25519 SHA256:\S+ unchanged\)/);
                await assert.rejects(diff(inputs(rest, HOST), inputs(rest, { ...HOST, hostKey: KEY_B })), /host dev-1: the config changes its host key from ssh-ed25519 SHA256:\S+ to ssh-ed25519 SHA256:\S+ \(address dev-1\.complinist\.example unchanged\)/);
            });

            it("is refused when the acknowledgement names another host", async () => {
                await assert.rejects(diff(inputs(rest, HOST), inputs(rest, moved, ["dev-2"])), /host dev-1: the config changes/);
            });

            it("is a change shown in preview once acknowledged", async () => {
                const d = await diff(inputs(rest, HOST), inputs(rest, moved, ["dev-1"]));
                assert.strictEqual(d.changes, true);
                assert.deepStrictEqual(d.replaces ?? [], []);
            });

            it("needs no acknowledgement for the same machine, and the acknowledgement alone changes nothing", async () => {
                assert.strictEqual((await diff(inputs(rest, HOST), inputs(rest, HOST))).changes, false);
                assert.strictEqual((await diff(inputs(rest, HOST), inputs(rest, HOST, ["dev-1"]))).changes, false);
                // A state written before acknowledgeHostChange existed.
                const old: Record<string, unknown> = inputs(rest, HOST);
                delete old.acknowledgeHostChange;
                assert.strictEqual((await diff(old, inputs(rest, HOST))).changes, false);
            });
        });
    }

    it("the identity records the acknowledged machine, so the next preview needs no acknowledgement", async () => {
        const news = inputs({ hostKeyFingerprint: hostKeyFingerprint(KEY_B) }, moved, ["dev-1"]);
        const created = await hostIdentityProvider.create!(inputs({ hostKeyFingerprint: hostKeyFingerprint(KEY_A) }, HOST));
        assert.strictEqual(created.id, "dev-1");
        const updated = await hostIdentityProvider.update!("dev-1", created.outs, news);
        assert.strictEqual((await hostIdentityProvider.diff!("dev-1", updated.outs, { ...news, acknowledgeHostChange: [] })).changes, false);
        const read = await hostIdentityProvider.read!("dev-1", updated.outs);
        assert.deepStrictEqual([read.id, read.props], ["dev-1", updated.outs], "refresh keeps the record: the id, or the resource would leave state");
    });

    it("a fingerprint is OpenSSH's (ssh-keygen -lf)", () => {
        // ssh-keygen -lf of KEY_A: 256 SHA256:LTi8sxFwlP9rHCJijI3n3kd8RPtoikP5Y5mU6US/ZBY no comment (ED25519)
        assert.strictEqual(hostKeyFingerprint(KEY_A), "ssh-ed25519 SHA256:LTi8sxFwlP9rHCJijI3n3kd8RPtoikP5Y5mU6US/ZBY");
    });
});
