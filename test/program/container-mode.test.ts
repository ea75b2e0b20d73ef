import * as assert from "assert";
import * as path from "path";
import { CapturedResource, changedKeys, Evaluation, isSecret, Json, ProgramConfig, ProgramUnderMocks, unwrapSecrets } from "./mocks/evaluate";
import { stackFileConfig, withUserSecrets } from "./stackFile";

/**
 * The real program (index.ts) in container mode, under Pulumi's mocks in a child process
 * (mocks/evaluate.ts), from the example stack file a user would start from. Container
 * mode takes release mode's path: per host the kept releases (images pinned by ID on the
 * host), the units and host program, and one Activation.
 */

const FIXTURE = path.join(__dirname, "fixtures", "Pulumi.container.yaml");
const T = {
    image: "pulumi-nodejs:dynamic/complinist:ImageReleaseDir",
    releaseDir: "pulumi-nodejs:dynamic/complinist:ReleaseDir",
    serviceUnit: "pulumi-nodejs:dynamic/complinist:ServiceUnit",
    activation: "pulumi-nodejs:dynamic/complinist:Activation",
};

const base = (): { config: ProgramConfig; secretKeys: string[] } => withUserSecrets(stackFileConfig("container", FIXTURE));
/** The fixture's image of a version, as its releases pin it. */
function pinnedImage(version: string): string {
    const releases = base().config["complinist:releases"] as Record<string, { image: string }>;
    return (releases[version] as { image: string }).image;
}

async function evaluate(config: ProgramConfig, secretKeys: string[]): Promise<Evaluation> {
    const program = new ProgramUnderMocks({ stack: "container" });
    try {
        return await program.evaluate(config, secretKeys);
    } finally {
        program.close();
    }
}

const ofType = (r: Evaluation, type: string): CapturedResource[] => r.resources.filter((x) => x.type === type);
function named(r: Evaluation, name: string): CapturedResource {
    const found = r.resources.find((x) => x.name === name);
    assert.ok(found, `no resource named ${name}; have: ${r.resources.map((x) => x.name).join(", ")}`);
    return found;
}
const plain = (v: Json | undefined): Json => unwrapSecrets(v ?? null);

describe("container mode (program under mocks)", function () {
    this.timeout(120000);
    const hosts = ["app-1", "app-2"];
    let r: Evaluation;

    before(async () => {
        const { config, secretKeys } = base();
        r = await evaluate(config, secretKeys);
        assert.strictEqual(r.error, undefined, `program failed:\n${r.error}\n${r.programLog}`);
    });

    it("declares per host an image release per kept version, the units and one activation; no artifact, no docker provider", () => {
        assert.deepStrictEqual(ofType(r, T.releaseDir), []);
        assert.deepStrictEqual(r.resources.filter((x) => x.type.startsWith("docker:") || x.type === "pulumi:providers:docker"), []);
        for (const h of hosts) {
            const images = ofType(r, T.image).filter((x) => x.name.startsWith(`complinist-${h}-`));
            // version, rollbackVersion, then the newest other up to keepReleases (3): the same retention as release mode.
            assert.deepStrictEqual(
                images.map((x) => [x.inputs.version, x.inputs.image]).sort(),
                ["1.1.0", "1.2.0", "1.3.0"].map((v) => [v, pinnedImage(v)]),
            );
            assert.match(pinnedImage("1.3.0"), /^registry\.example\.com\/complinist@sha256:[0-9a-f]{64}$/);
            assert.ok(named(r, `complinist-${h}-service-unit`));
            const a = named(r, `complinist-${h}-activation-switch`);
            assert.strictEqual(a.inputs.version, "1.3.0");
            assert.strictEqual(a.inputs.rollbackVersion, "1.1.0");
            assert.strictEqual(a.inputs.port, 5000);
        }
    });

    it("runs each instance slot as a container of the release's pinned image, published on loopback, under the proxy", () => {
        const unit = named(r, "complinist-app-1-service-unit");
        const instance = String(plain(unit.inputs.unitText));
        assert.match(instance, /^ExecStart=\/usr\/local\/sbin\/complinist container-run %i --user complinist --memory 512m --pids 256 --tmp-size 64m --log-max-size 10m --log-max-files 3 --app-log-bound 64m$/m);
        assert.match(instance, /^Requires=docker\.service$/m);
        assert.match(instance, /^PartOf=complinist\.service$/m);
        // The host agent runs the slots as containers (its docker run flags: agent/internal/host/docker_test.go).
        assert.deepStrictEqual(JSON.parse(String(plain(unit.inputs.agentConfigText))), { v: 1, baseDir: "/opt/complinist", runtime: "docker" });
        assert.match(String(plain(unit.inputs.proxyUnitText)), /haproxy -Ws/);
    });

    it("shows the host agent by its version and each architecture's sha256, never its bytes", () => {
        const agent = plain(named(r, "complinist-app-1-service-unit").inputs.agent) as { version: string; sha256: Record<string, string> };
        assert.match(agent.version, /^1\.0\.0\+[0-9a-f]{12}$/);
        assert.deepStrictEqual(Object.keys(agent.sha256).sort(), ["amd64", "arm64"]);
        for (const sha of Object.values(agent.sha256)) assert.match(sha, /^[0-9a-f]{64}$/);
    });

    it("exports every kept version's image pinned by digest (the next stack's promotion gate compares them)", () => {
        assert.deepStrictEqual(plain(r.outputs.images), Object.fromEntries(["1.3.0", "1.1.0", "1.2.0"].map((v) => [v, pinnedImage(v)])));
    });

    for (const [what, service] of [
        ["service.user", { user: "appsvc" }],
        ["a container limit", { container: { memory: "1g" } }],
    ] as const) {
        it(`a change of ${what} changes the instance unit and the service revision: a new container through the gate on every host`, async () => {
            const { config, secretKeys } = base();
            const next = await evaluate({ ...config, "complinist:service": { ...(config["complinist:service"] as object), ...service } }, secretKeys);
            assert.strictEqual(next.error, undefined, next.programLog);
            for (const h of hosts) {
                const unit = String(plain(named(next, `complinist-${h}-service-unit`).inputs.unitText));
                assert.match(unit, "user" in service ? /container-run %i --user appsvc / : /container-run %i --user complinist --memory 1g /);
                const act = changedKeys(named(r, `complinist-${h}-activation-switch`).inputs, named(next, `complinist-${h}-activation-switch`).inputs);
                assert.ok(act.includes("serviceRevision"), act.join(","));
            }
        });
    }

    it("writes the env file in docker's --env-file form, secret in state", () => {
        const env = named(r, "complinist-app-1-service-unit").inputs.envText as Json;
        assert.ok(isSecret(env), "the env file holds SECRET_KEY: it must be secret");
        const text = String(plain(env));
        assert.match(text, /^COMPLINIST_ENV=staging$/m);
        assert.match(text, /^LOG_LEVEL=info$/m);
        assert.doesNotMatch(text, /="/, "docker takes quotes literally");
    });

    it("a version change moves only the activation (and the new version's release): no unit, env or kept image is touched", async () => {
        const { config, secretKeys } = base();
        const next = await evaluate({ ...config, "complinist:version": "1.4.0" }, secretKeys);
        assert.strictEqual(next.error, undefined, next.programLog);
        for (const h of hosts) {
            const unitBefore = named(r, `complinist-${h}-service-unit`);
            const unitAfter = named(next, `complinist-${h}-service-unit`);
            assert.deepStrictEqual(changedKeys(unitBefore.inputs, unitAfter.inputs), []);
            const act = changedKeys(named(r, `complinist-${h}-activation-switch`).inputs, named(next, `complinist-${h}-activation-switch`).inputs);
            assert.ok(act.includes("version"), act.join(","));
            assert.ok(!act.includes("serviceRevision"), act.join(","));
            for (const v of ["1.1.0", "1.3.0"]) {
                const name = `complinist-${h}-release-${v}-image`;
                assert.deepStrictEqual(changedKeys(named(r, name).inputs, named(next, name).inputs), [], name);
            }
            assert.ok(named(next, `complinist-${h}-release-1.4.0-image`));
        }
    });

    for (const [what, change, message] of [
        ["no SSH key", (c: ProgramConfig) => Object.fromEntries(Object.entries(c).filter(([k]) => k !== "complinist:sshPrivateKey")), /complinist:sshPrivateKey: is required/],
        [
            "address local",
            (c: ProgramConfig) => ({ ...c, "complinist:hosts": [{ name: "laptop", address: "local", hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMHZNMVhu73rtnkCVV1dnWn09B3L5W/ZVMUBqhTkSJws" }] }),
            /complinist:hosts\[0\]\.address: 'local' is not a host/,
        ],
        ["an artifact release", (c: ProgramConfig) => ({ ...c, "complinist:releases": { ...(c["complinist:releases"] as object), "1.3.0": { path: "a.tar.gz", sha256: "0".repeat(64) } } }), /container mode needs \{ image \}/],
        [
            "an image given by tag",
            (c: ProgramConfig) => ({ ...c, "complinist:releases": { ...(c["complinist:releases"] as object), "1.3.0": { image: "registry.example.com/complinist:1.3.0" } } }),
            /complinist:releases\.1\.3\.0\.image: 'registry\.example\.com\/complinist:1\.3\.0' is a tag; pin it by digest: registry\.example\.com\/complinist@sha256:<64 hex>/,
        ],
    ] as const) {
        it(`refuses ${what} before registering anything, naming the key`, async () => {
            const { config, secretKeys } = base();
            const bad = await evaluate(change(config), secretKeys.filter((k) => k in change(config)));
            assert.ok(bad.error, "the program must fail");
            assert.match(bad.error, message);
            assert.deepStrictEqual(bad.resources.filter((x) => x.custom), []);
        });
    }
});
