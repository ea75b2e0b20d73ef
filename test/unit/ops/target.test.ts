import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import type { ConfigValue, Stack } from "@pulumi/pulumi/automation";
import {
    chooseCredential,
    configFromPulumi,
    configFromStackFile,
    connectionsFor,
    NO_KEY_PLACEHOLDER,
    pulumiOnPath,
    resolveTarget,
    SECRET_PLACEHOLDER,
    stackFilePath,
    type ConfigSource,
    type TargetDeps,
} from "../../../ops/target";
import { thenCloseConnections } from "../../../scripts/target";

const REPO = path.resolve(__dirname, "..", "..", "..");
const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMHZNMVhu73rtnkCVV1dnWn09B3L5W/ZVMUBqhTkSJws";
const PRIVATE = "-----BEGIN OPENSSH PRIVATE KEY-----\nfake\n-----END OPENSSH PRIVATE KEY-----\n";

const STACK_FILE = `config:
  complinist:version: 1.1.0
  complinist:keepReleases: 4
  complinist:releases:
    1.1.0: { url: "https://example.test/a.tgz", sha256: ${"a".repeat(64)} }
  complinist:hosts:
    - { name: web-1, address: 10.0.0.1, user: deploy, hostKey: "${KEY}" }
  complinist:sshPrivateKey:
    secure: v1:AAAABBBB
  complinist:service:
    command: bin/start
    environment:
      DB_PASSWORD:
        secure: v1:CCCCDDDD
`;

/** The pulumi path's view of the same stack, as `pulumi config --show-secrets --json` gives it. */
class FakeConfigStack implements ConfigSource {
    readonly name = "staging";
    constructor(private readonly values: Record<string, string>) {}
    async getAllConfig(): Promise<Record<string, ConfigValue>> {
        return Object.fromEntries(Object.entries(this.values).map(([k, value]) => [k, { value, secret: k === "complinist:sshPrivateKey" }]));
    }
}

function deps(over: Partial<TargetDeps> & { files?: Record<string, string> } = {}): TargetDeps & { selected: string[] } {
    const selected: string[] = [];
    const files = over.files ?? { "/proj/Pulumi.staging.yaml": STACK_FILE, "/proj/keys/deploy": PRIVATE };
    return {
        projectDir: "/proj",
        env: { PATH: "/usr/local/bin:/usr/bin" },
        isExecutable: (f) => f === "/usr/local/bin/pulumi",
        selectStack: async (s) => {
            selected.push(s);
            return new FakeConfigStack({
                "complinist:version": "1.1.0",
                "complinist:releases": JSON.stringify({ "1.1.0": { url: "https://example.test/a.tgz", sha256: "a".repeat(64) } }),
                "complinist:hosts": JSON.stringify([{ name: "web-1", address: "10.0.0.1", hostKey: KEY }]),
                "complinist:sshPrivateKey": PRIVATE,
                "complinist:service": JSON.stringify({ command: "bin/start" }),
            });
        },
        readFile: (f) => {
            const text = files[f];
            if (text === undefined) throw new Error(`ENOENT: no such file, open '${f}'`);
            return text;
        },
        ...over,
        selected,
    };
}

describe("operator tools: finding the hosts and the key", () => {
    it("the Automation API's Stack satisfies ConfigSource (checked by tsc)", () => {
        const fits: (s: Stack) => ConfigSource = (s) => s;
        assert.strictEqual(typeof fits, "function");
    });

    it("reads every committed stack file without the Pulumi CLI", () => {
        for (const stack of ["local", "dev", "staging", "prod"]) {
            const { config } = configFromStackFile(stack, fs.readFileSync(stackFilePath(REPO, stack), "utf8"));
            assert.strictEqual(config.stack, stack);
            assert.ok(config.hosts.length >= 1);
        }
        assert.strictEqual(configFromStackFile("local", fs.readFileSync(stackFilePath(REPO, "local"), "utf8")).config.sshPrivateKeyPath, ".build/demo-ssh/deploy_ed25519");
        assert.strictEqual(configFromStackFile("staging", fs.readFileSync(stackFilePath(REPO, "staging"), "utf8")).config.sshPrivateKey, NO_KEY_PLACEHOLDER);
    });

    it("reads a stack file whose releaseAuth and notify webhook are encrypted: these tools use neither", () => {
        const file = `${STACK_FILE}  complinist:releaseAuth:\n    header:\n      secure: v1:EEEE\n    origins:\n      - https://gitlab.example.com\n  complinist:notify:\n    webhookUrl:\n      secure: v1:FFFF\n`;
        const { config, encrypted } = configFromStackFile("staging", file);
        assert.ok(encrypted.includes("complinist:releaseAuth.header") && encrypted.includes("complinist:notify.webhookUrl"), encrypted.join(", "));
        assert.strictEqual(config.releaseAuth, undefined);
        assert.strictEqual(config.hosts[0]?.name, "web-1");
    });

    it("keeps encrypted values out of a stack file's config, at any depth, and says which they were", () => {
        const { config, encrypted } = configFromStackFile("staging", STACK_FILE);
        assert.deepStrictEqual(encrypted, ["complinist:sshPrivateKey", "complinist:service.environment.DB_PASSWORD"]);
        assert.strictEqual(config.sshPrivateKey, SECRET_PLACEHOLDER);
        assert.strictEqual(config.service.environment.DB_PASSWORD, SECRET_PLACEHOLDER);
        assert.strictEqual(config.keepReleases, 4);
        assert.strictEqual(config.hosts[0]?.user, "deploy");
    });

    it("validates a stack file with the stack schema, naming the key", () => {
        assert.throws(() => configFromStackFile("staging", STACK_FILE.replace("version: 1.1.0", "version: 9.9.9")), /complinist:version: '9\.9\.9' is not in releases/);
        assert.throws(() => configFromStackFile("staging", "config: [1"), /Pulumi\.staging\.yaml is not valid YAML/);
    });

    it("quotes no secret value in a schema error: secret keys from the CLI, encrypted ones from the stack file", async () => {
        const secret = "hunter2-very-secret-db-password";
        const bad = new FakeConfigStack({
            "complinist:version": "1.1.0",
            "complinist:releases": JSON.stringify({ "1.1.0": { url: "https://example.test/a.tgz", sha256: "a".repeat(64) } }),
            "complinist:hosts": JSON.stringify([{ name: "web-1", address: "10.0.0.1", hostKey: KEY }]),
            "complinist:sshPrivateKey": PRIVATE,
            "complinist:service": JSON.stringify({ command: "bin/start", environment: { DB_PASSWORD: `${secret}\nX=1` } }),
        });
        const asSecret: ConfigSource = { name: bad.name, getAllConfig: async () => ({ ...(await bad.getAllConfig()), "complinist:service": { value: (await bad.getAllConfig())["complinist:service"]!.value, secret: true } }) };
        await assert.rejects(configFromPulumi(asSecret), (e: Error) => {
            assert.match(e.message, /complinist:service\.environment\.DB_PASSWORD: values must be single-line \(got a secret value\)/);
            assert.ok(!e.message.includes(secret), e.message);
            return true;
        });
        await assert.rejects(configFromPulumi(bad), new RegExp(secret), "a plain value is quoted as before");
    });

    it("finds pulumi on PATH only as an executable", () => {
        assert.strictEqual(pulumiOnPath("/a:/b", (f) => f === "/b/pulumi"), true);
        assert.strictEqual(pulumiOnPath("/a:/b", () => false), false);
        assert.strictEqual(pulumiOnPath(undefined, () => true), false);
    });

    it("names the stack file after the stack's last segment", () => {
        assert.strictEqual(stackFilePath("/proj", "org/complinist/staging"), path.join("/proj", "Pulumi.staging.yaml"));
    });

    describe("the key", () => {
        const { config } = configFromStackFile("staging", STACK_FILE);
        const sources = { projectDir: "/proj", readFile: (f: string) => (f === "/proj/keys/deploy" ? PRIVATE : assert.fail(`read ${f}`)) };
        it("--key FILE wins, relative to the project", () => {
            const c = chooseCredential(config, { ...sources, keyFile: "keys/deploy", agentSocket: "/run/agent" });
            assert.deepStrictEqual(c, { privateKey: PRIVATE, describe: "key file /proj/keys/deploy (--key)" });
        });
        it("then a readable sshPrivateKey, then sshPrivateKeyPath", () => {
            assert.strictEqual(chooseCredential({ ...config, sshPrivateKey: PRIVATE }, sources).describe, "complinist:sshPrivateKey");
            const byPath = chooseCredential({ ...config, sshPrivateKey: undefined, sshPrivateKeyPath: "keys/deploy" }, sources);
            assert.match(byPath.describe, /key file \/proj\/keys\/deploy \(complinist:sshPrivateKeyPath\)/);
        });
        it("then the ssh-agent: no key text, the socket instead", () => {
            const c = chooseCredential(config, { ...sources, agentSocket: "/run/agent.sock" });
            assert.deepStrictEqual(c, { privateKey: "", agent: "/run/agent.sock", describe: "the ssh-agent at /run/agent.sock" });
            const [conn] = connectionsFor(config, c);
            assert.deepStrictEqual(conn, { kind: "ssh", name: "web-1", address: "10.0.0.1", port: 22, user: "deploy", hostKey: KEY, privateKey: "", agent: "/run/agent.sock" });
        });
        it("else refuses, saying the key is encrypted and what works instead", () => {
            assert.throws(() => chooseCredential(config, sources), /complinist:sshPrivateKey is encrypted in Pulumi\.staging\.yaml .* pass --key FILE, or load the key into an ssh-agent/);
        });
        it("an unreadable key file is named", () => {
            assert.throws(() => chooseCredential(config, { projectDir: "/proj", readFile: () => { throw new Error("EACCES"); }, keyFile: "/k" }), /cannot read the SSH private key \/k \(--key\): EACCES/);
        });
    });

    describe("choosing the source", () => {
        it("uses the Pulumi CLI when pulumi is on PATH: secrets decrypted, no stack file read", async () => {
            const d = deps();
            const t = await resolveTarget({ stack: "staging", noPulumi: false }, d);
            assert.deepStrictEqual(d.selected, ["staging"]);
            assert.strictEqual(t.via, "config from the Pulumi CLI, SSH with complinist:sshPrivateKey");
            assert.strictEqual((t.connections[0] as { privateKey: string }).privateKey, PRIVATE);
        });

        it("reads the stack file with --no-pulumi, or when pulumi is not on PATH", async () => {
            for (const [noPulumi, env, suffix] of [[true, { PATH: "/usr/local/bin" }, ""], [false, { PATH: "/usr/bin" }, " (no pulumi on PATH)"]] as const) {
                const d = deps({ env: { ...env, SSH_AUTH_SOCK: "/run/a.sock" } });
                const t = await resolveTarget({ stack: "staging", noPulumi }, d);
                assert.deepStrictEqual(d.selected, []);
                assert.strictEqual(t.via, `config from Pulumi.staging.yaml${suffix}, SSH with the ssh-agent at /run/a.sock`);
            }
        });

        it("a stack the CLI cannot select points at --no-pulumi; a missing stack file names itself", async () => {
            const failing = deps({ selectStack: () => Promise.reject(new Error("cannot select stack 'staging' (is the Pulumi CLI installed and logged in to the backend?)")) });
            await assert.rejects(resolveTarget({ stack: "staging", noPulumi: false }, failing), /logged in to the backend\?\) \(to read Pulumi\.staging\.yaml directly instead, pass --no-pulumi\)/);
            await assert.rejects(resolveTarget({ stack: "qa", noPulumi: true }, deps()), /no stack file \/proj\/Pulumi\.qa\.yaml for stack 'qa'/);
        });

        it("a stack through the CLI without any key may still use the agent", async () => {
            const c = await configFromPulumi(new FakeConfigStack({
                "complinist:version": "1.1.0",
                "complinist:releases": JSON.stringify({ "1.1.0": { url: "https://example.test/a.tgz", sha256: "a".repeat(64) } }),
                "complinist:hosts": JSON.stringify([{ name: "web-1", address: "10.0.0.1", hostKey: KEY }]),
                "complinist:service": JSON.stringify({ command: "bin/start" }),
            }));
            assert.strictEqual(chooseCredential(c, { projectDir: "/p", readFile: () => "", agentSocket: "/s" }).agent, "/s");
            assert.throws(() => chooseCredential(c, { projectDir: "/p", readFile: () => "" }), /stack 'staging' names no key/);
        });

        it("refuses a container-mode stack", () => {
            const { config } = configFromStackFile("staging", STACK_FILE);
            assert.throws(() => connectionsFor({ ...config, mode: "container" }, { privateKey: PRIVATE, describe: "k" }), /container mode: status and logs read release-mode hosts/);
        });
    });

    it("sets the exit code before closing the connections (an unref'd close must not lose it)", async () => {
        const before = process.exitCode;
        try {
            assert.strictEqual(await thenCloseConnections(async () => 1), 1);
            assert.strictEqual(process.exitCode, 1);
        } finally {
            process.exitCode = before;
        }
    });
});
