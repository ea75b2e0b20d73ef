import * as assert from "assert";
import * as path from "path";
import { healthcheckCommand } from "../../infra/render/container";
import { keptVersions } from "../../stacks/config";
import { CapturedResource, changedKeys, EngineDriver, EvalResult, isSecret, Json, ProgramConfig, PropertyMap, redactSecrets, unwrapSecrets } from "../engine/driver";
import { mockImageId } from "./fixtures/docker-mocks";
import { stackFileConfig } from "./stackFile";

/**
 * The real program (index.ts) in container mode, under Pulumi's mocks in a child
 * process (test/engine/driver.ts), from the fixture stack file a user would write.
 */

const FIXTURE = path.join(__dirname, "fixtures", "Pulumi.container.yaml");
const MOCKS = "test/program/fixtures/docker-mocks.ts";

const T = {
    provider: "pulumi:providers:docker",
    image: "docker:index/remoteImage:RemoteImage",
    volume: "docker:index/volume:Volume",
    container: "docker:index/container:Container",
};
const EXPECTED_TYPES = new Set([
    "pulumi:pulumi:Stack",
    "random:index/randomPassword:RandomPassword",
    "complinist:deploy:ContainerRollout",
    "complinist:container:ContainerHost",
    ...Object.values(T),
]);

/**
 * The docker provider's replace semantics for the Container inputs this program sets
 * (kreuzwerker/terraform-provider-docker, internal/provider/resource_docker_container.go,
 * which @pulumi/docker bridges): ForceNew keys replace the container; the others are
 * updated in place — `restart` through `docker update`, `wait`/`waitTimeout`/`mustRun`/
 * `destroyGraceSeconds` only in the provider's state. `healthcheck` is *not* ForceNew there
 * although Docker cannot change it on a live container (kreuzwerker#988): the program adds
 * replaceOnChanges for it.
 */
const FORCE_NEW = new Set(["name", "image", "envs", "labels", "ports", "volumes", "stopSignal"]);
const IN_PLACE = new Set(["restart", "wait", "waitTimeout", "mustRun", "destroyGraceSeconds", "healthcheck"]);

type Evaluated = EvalResult & { programLog: string };

const base = (): ProgramConfig => stackFileConfig("container", FIXTURE);

async function evaluate(config: ProgramConfig, stack = "container", stackReferences?: Record<string, { outputs: PropertyMap }>): Promise<Evaluated> {
    const driver = new EngineDriver({ stack, mocksModule: MOCKS, ...(stackReferences ? { stackReferences } : {}) });
    try {
        const r = await driver.evaluate(config);
        assert.strictEqual(r.error, undefined, `program failed:\n${r.error}\n${r.programLog}`);
        return r;
    } finally {
        await driver.close();
    }
}

function ofType(r: Evaluated, type: string): CapturedResource[] {
    return r.resources.filter((x) => x.type === type);
}

function named(r: Evaluated, name: string): CapturedResource {
    const found = r.resources.find((x) => x.name === name);
    assert.ok(found, `no resource named ${name}; have: ${r.resources.map((x) => x.name).join(", ")}`);
    return found;
}

function plain(v: Json | undefined): Json {
    return unwrapSecrets(v ?? null);
}

/** What the engine would do to each container between two evaluations: changed keys and replace or not. */
function containerPlan(before: Evaluated, after: Evaluated): Record<string, { changed: string[]; replace: boolean }> {
    const out: Record<string, { changed: string[]; replace: boolean }> = {};
    for (const now of ofType(after, T.container)) {
        const old = before.resources.find((x) => x.urn === now.urn);
        assert.ok(old, `${now.name} is new: the engine would create, not update, it`);
        const changed = changedKeys(old.inputs, now.inputs);
        for (const k of changed) assert.ok(FORCE_NEW.has(k) || IN_PLACE.has(k), `${now.name}: ${k} changed, but its replace semantics are not listed`);
        const replace = changed.some((k) => FORCE_NEW.has(k) || now.replaceOnChanges.includes(k));
        out[now.name] = { changed, replace };
    }
    return out;
}

function withConfig(config: ProgramConfig, key: string, value: unknown): ProgramConfig {
    return { ...config, [`complinist:${key}`]: typeof value === "object" ? value : String(value) };
}

describe("container mode (program under mocks)", function () {
    this.timeout(120000);
    let r: Evaluated;
    const hosts = ["app-1", "app-2"];
    const kept = keptVersions({ version: "1.3.0", rollbackVersion: "1.1.0", keepReleases: 3, releases: { "1.0.0": {}, "1.1.0": {}, "1.2.0": {}, "1.3.0": {}, "1.4.0": {} } as never });

    before(async () => {
        r = await evaluate(base());
    });

    it("registers nothing outside the container path (no release-mode resource, no stray type)", () => {
        const stray = r.resources.filter((x) => !EXPECTED_TYPES.has(x.type)).map((x) => `${x.type} ${x.name}`);
        assert.deepStrictEqual(stray, []);
    });

    it("gives every host its own docker provider over ssh:// with the host key pinned, never blind", () => {
        const providers = ofType(r, T.provider);
        assert.deepStrictEqual(providers.map((p) => p.name).sort(), hosts.map((h) => `complinist-${h}-docker`));
        const want: Record<string, { host: string; known: string }> = {
            "app-1": { host: "ssh://deploy@10.20.0.11:22", known: "10.20.0.11 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMHZNMVhu73rtnkCVV1dnWn09B3L5W/ZVMUBqhTkSJws" },
            "app-2": { host: "ssh://deploy@10.20.0.12:2202", known: "[10.20.0.12]:2202 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBm1YRvCRgzl8Ie0XjJzHR0aeEUHdCqdcbGTbGbE5Pp2" },
        };
        for (const h of hosts) {
            const p = named(r, `complinist-${h}-docker`);
            assert.strictEqual(p.inputs.host, want[h]?.host);
            // Provider inputs travel JSON-encoded, as @pulumi/docker sends them.
            const opts = JSON.parse(String(p.inputs.sshOpts)) as string[];
            const o = opts.filter((_, i) => opts[i - 1] === "-o");
            assert.ok(o.includes("StrictHostKeyChecking=yes"), opts.join(" "));
            assert.ok(o.includes("UserKnownHostsFile=/dev/null") && o.includes("GlobalKnownHostsFile=/dev/null"), "no key learned or trusted from a file");
            assert.ok(o.includes(`KnownHostsCommand=/bin/echo ${want[h]?.known}`), opts.join(" "));
            assert.ok(!o.some((x) => /StrictHostKeyChecking=(no|accept-new)/.test(x)));
        }
    });

    it("reaches a host with address `local` through the local socket, without ssh options", async () => {
        const c = base();
        const local = await evaluate({
            ...c,
            "complinist:hosts": [{ name: "laptop", address: "local", hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMHZNMVhu73rtnkCVV1dnWn09B3L5W/ZVMUBqhTkSJws" }],
        });
        const p = named(local, "complinist-laptop-docker");
        assert.strictEqual(p.inputs.host, "unix:///var/run/docker.sock");
        assert.deepStrictEqual(JSON.parse(String(p.inputs.sshOpts)), []);
    });

    it("keeps a RemoteImage per kept version on every host, with keepLocally, through that host's provider", () => {
        assert.deepStrictEqual(kept, ["1.3.0", "1.1.0", "1.2.0"]);
        for (const h of hosts) {
            const provider = named(r, `complinist-${h}-docker`);
            const images = ofType(r, T.image).filter((x) => x.name.startsWith(`complinist-${h}-image-`));
            assert.deepStrictEqual(images.map((x) => x.inputs.name).sort(), kept.map((v) => `complinist:${v}`).sort());
            for (const i of images) {
                assert.strictEqual(i.inputs.keepLocally, true, `${i.name}: a rollback must find the image on the host`);
                assert.strictEqual(i.protect, false, `${i.name}: retention must be able to drop it`);
                assert.ok(i.provider.startsWith(`${provider.urn}::`), `${i.name} uses ${i.provider}`);
            }
        }
    });

    it("runs the service container from the version's image ID with healthcheck, restart, wait, port, log volume and env", () => {
        for (const h of hosts) {
            const c = named(r, `complinist-${h}-container`);
            const i = c.inputs;
            assert.ok(c.provider.startsWith(`${named(r, `complinist-${h}-docker`).urn}::`));
            assert.strictEqual(i.name, "complinist");
            assert.strictEqual(i.image, mockImageId("complinist:1.3.0"), "the image ID (what the provider reads back), not the tag");
            assert.deepStrictEqual(i.labels, [{ label: "complinist.version", value: "1.3.0" }]);
            assert.strictEqual(i.restart, "unless-stopped");
            assert.strictEqual(i.wait, true);
            assert.strictEqual(i.waitTimeout, 30);
            assert.strictEqual(i.mustRun, true);
            assert.strictEqual(i.stopSignal, "SIGINT");
            assert.deepStrictEqual(i.ports, [{ internal: 5000, external: 5000, ip: "0.0.0.0", protocol: "tcp" }]);
            assert.deepStrictEqual(i.volumes, [{ volumeName: "complinist-logs", containerPath: "/var/log/complinist" }]);
            assert.deepStrictEqual(i.healthcheck, {
                tests: ["CMD-SHELL", healthcheckCommand(5000, "/health")],
                interval: "500ms",
                timeout: "5s",
                startPeriod: "0s",
                retries: 3,
            });
            const envs = (plain(i.envs) as string[]).map((e) => e.split("=")[0]);
            assert.deepStrictEqual(envs, ["PORT", "COMPLINIST_ENV", "LOG_LEVEL", "COMPLINIST_VERSION", "SECRET_KEY"]);
            assert.ok((plain(i.envs) as string[]).includes("COMPLINIST_VERSION=1.3.0"));
            // Fixed name and host port: the old container must be gone before the new one starts.
            assert.strictEqual(c.deleteBeforeReplace, true);
            assert.deepStrictEqual(c.replaceOnChanges, ["healthcheck"]);
            assert.strictEqual(c.protect, false);
            const image = named(r, `complinist-${h}-image-1.3.0`);
            const volume = named(r, `complinist-${h}-logs`);
            assert.ok(c.dependencies.includes(image.urn) && c.dependencies.includes(volume.urn));
        }
    });

    it("passes SECRET_KEY to the container only as a secret element of envs", () => {
        const password = r.resources.find((x) => x.type === "random:index/randomPassword:RandomPassword");
        assert.ok(password);
        const value = plain(password.mockState.result) as string;
        assert.ok(value.length >= 32);
        for (const h of hosts) {
            const envs = named(r, `complinist-${h}-container`).inputs.envs as Json[];
            const secretOnes = envs.filter((e) => isSecret(e));
            assert.deepStrictEqual(secretOnes.map((e) => plain(e)), [`SECRET_KEY=${value}`]);
            // Everything else stays readable in preview.
            assert.ok(envs.filter((e) => !isSecret(e)).every((e) => typeof e === "string"));
        }
        const everything = JSON.stringify(redactSecrets(r.resources.map((x) => x.inputs) as unknown as Json));
        assert.ok(!everything.includes(value), "the secret appears in plain text in some input");
    });

    it("makes each batch wait for the previous batch's containers (images and volume included)", () => {
        const first = named(r, "complinist-app-1-container");
        const app1 = r.resources.filter((x) => x.name.startsWith("complinist-app-1-") && x.custom && x.type !== T.provider);
        const app2 = r.resources.filter((x) => x.name.startsWith("complinist-app-2-") && x.custom && x.type !== T.provider);
        assert.ok(app2.length === 5);
        for (const x of app2) assert.ok(x.dependencies.includes(first.urn), `${x.name} does not wait for app-1's container`);
        for (const x of app1) assert.ok(!x.dependencies.some((u) => u.includes("complinist-app-2-")), `${x.name} waits for app-2`);
    });

    it("reports per-host status and the kept versions as stack outputs, like release mode", () => {
        const o = unwrapSecrets(r.outputs) as Record<string, Json>;
        assert.deepStrictEqual(o.hosts, { "app-1": { version: "1.3.0", healthy: true }, "app-2": { version: "1.3.0", healthy: true } });
        assert.deepStrictEqual(o.releases, kept);
        assert.strictEqual(o.deployedVersion, "1.3.0");
        assert.strictEqual(o.rollbackVersion, "1.1.0");
        assert.strictEqual(o.deployedAt, "");
        assert.strictEqual(o.deployedCommit, "");
    });

    describe("what a config change does to the containers (the docker provider's replace semantics)", () => {
        it("an unchanged stack evaluates to identical inputs (a stable preview: no time, no temp path)", async () => {
            const again = await evaluate(base());
            assert.deepStrictEqual(again.resources.map((x) => [x.urn, x.inputs]), r.resources.map((x) => [x.urn, x.inputs]));
            assert.ok(!JSON.stringify(r.resources.map((x) => x.inputs)).includes("/tmp/"));
        });

        it("a new version changes image, envs and the version label only: a replacement, one host after the other", async () => {
            const next = await evaluate(withConfig(base(), "version", "1.4.0"));
            const plan = containerPlan(r, next);
            for (const h of hosts) assert.deepStrictEqual(plan[`complinist-${h}-container`], { changed: ["envs", "image", "labels"], replace: true });
            const envs = plain(named(next, "complinist-app-1-container").inputs.envs) as string[];
            assert.ok(envs.includes("COMPLINIST_VERSION=1.4.0"));
            // 1.4.0 is pulled only now that it is deployed (never ahead of time); 1.2.0 falls out.
            const images = (e: typeof r) => ofType(e, T.image).map((x) => x.name).filter((n) => n.startsWith("complinist-app-1-")).sort();
            assert.deepStrictEqual(images(next), ["complinist-app-1-image-1.1.0", "complinist-app-1-image-1.3.0", "complinist-app-1-image-1.4.0"]);
        });

        it("a rollback to the pinned version replaces the container from a kept image: no new RemoteImage, nothing pulled", async () => {
            const back = await evaluate({ ...withConfig(base(), "version", "1.1.0"), "complinist:rollbackVersion": "1.3.0" });
            const plan = containerPlan(r, back);
            assert.strictEqual(plan["complinist-app-1-container"]?.replace, true);
            assert.strictEqual(named(back, "complinist-app-1-container").inputs.image, mockImageId("complinist:1.1.0"));
            const before = new Map(ofType(r, T.image).map((x) => [x.urn, x.inputs]));
            for (const i of ofType(back, T.image)) assert.deepStrictEqual(i.inputs, before.get(i.urn), `${i.name} would be created or changed`);
        });

        it("an environment change replaces the container (envs is ForceNew) and changes nothing else", async () => {
            const changed = await evaluate(withConfig(base(), "service", { command: "bin/start", port: 5000, environment: { COMPLINIST_ENV: "staging", LOG_LEVEL: "debug" } }));
            const plan = containerPlan(r, changed);
            for (const h of hosts) assert.deepStrictEqual(plan[`complinist-${h}-container`], { changed: ["envs"], replace: true });
            for (const x of changed.resources.filter((y) => y.type !== T.container)) {
                assert.deepStrictEqual(x.inputs, r.resources.find((y) => y.urn === x.urn)?.inputs, `${x.name} changed`);
            }
        });

        it("a longer health timeout is an in-place update (waitTimeout), never a restart", async () => {
            const slower = await evaluate(withConfig(base(), "health", { path: "/health", timeoutSeconds: 90, intervalMs: 500 }));
            for (const h of hosts) assert.deepStrictEqual(containerPlan(r, slower)[`complinist-${h}-container`], { changed: ["waitTimeout"], replace: false });
        });

        it("a new probe interval replaces the container: Docker cannot change a live container's healthcheck", async () => {
            const faster = await evaluate(withConfig(base(), "health", { path: "/health", timeoutSeconds: 30, intervalMs: 1500 }));
            const c = named(faster, "complinist-app-1-container");
            assert.strictEqual((c.inputs.healthcheck as PropertyMap).interval, "1.5s");
            assert.deepStrictEqual(containerPlan(r, faster)["complinist-app-1-container"], { changed: ["healthcheck"], replace: true });
        });

        it("a different batch size or keepReleases leaves every container as it is", async () => {
            const wide = await evaluate(withConfig(base(), "rollout", { batchSize: 2 }));
            for (const h of hosts) assert.deepStrictEqual(containerPlan(r, wide)[`complinist-${h}-container`], { changed: [], replace: false });
            const more = await evaluate(withConfig(base(), "keepReleases", 4));
            for (const h of hosts) assert.deepStrictEqual(containerPlan(r, more)[`complinist-${h}-container`], { changed: [], replace: false });
            assert.strictEqual(ofType(more, T.image).length, ofType(r, T.image).length + 2, "one more kept image per host");
        });
    });

    it("in prod, protects engine and log volume but never the container or images (each deploy replaces them)", async () => {
        const healthy = { "prod-a": { version: "1.3.0", healthy: true } };
        const prod = await evaluate(
            {
                ...base(),
                "complinist:promoteFrom": "staging",
            },
            "prod",
            { staging: { outputs: { deployedVersion: "1.3.0", hosts: healthy } }, prod: { outputs: {} } },
        );
        for (const h of hosts) {
            assert.strictEqual(named(prod, `complinist-${h}-docker`).protect, true);
            assert.strictEqual(named(prod, `complinist-${h}-logs`).protect, true);
            assert.strictEqual(named(prod, `complinist-${h}-container`).protect, false);
            for (const v of kept) assert.strictEqual(named(prod, `complinist-${h}-image-${v}`).protect, false);
        }
        // Nothing in prod registers before the promotion gate: the providers wait for both stack references.
        const refs = prod.resources.filter((x) => x.type === "pulumi:pulumi:StackReference").map((x) => x.urn);
        assert.strictEqual(refs.length, 2);
        for (const h of hosts) for (const u of refs) assert.ok(named(prod, `complinist-${h}-docker`).dependencies.includes(u), `provider of ${h} does not wait for ${u}`);
    });
});
