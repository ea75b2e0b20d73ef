import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { buildArtifacts } from "../../../scripts/build-artifacts";
import { configSchema } from "../../../stacks/schema";
import { stackFileConfig } from "../../program/stackFile";

const REPO = path.resolve(__dirname, "..", "..", "..");
/** Every committed stack file: the demo (local) and the three environments. */
const STACKS = ["local", "dev", "staging", "prod"];

describe("committed project and stack files", () => {
    it("Pulumi.yaml declares only keys of the schema, each described; documents the rest", () => {
        const doc = YAML.parse(fs.readFileSync(path.join(REPO, "Pulumi.yaml"), "utf8")) as { name: string; main: string; config: Record<string, { type: string; description: string; default?: unknown }> };
        assert.strictEqual(doc.name, "complinist", "the project name is the config namespace");
        assert.ok(fs.existsSync(path.join(REPO, doc.main)), "main points at the program");
        const known = Object.keys(configSchema.shape);
        for (const [key, spec] of Object.entries(doc.config)) {
            assert.ok(known.includes(key), `Pulumi.yaml declares unknown key ${key}`);
            assert.ok(spec.description && spec.description.length > 10, `${key} needs a description`);
        }
        // Every schema key is either declared or documented in the comment block above `config:`.
        const text = fs.readFileSync(path.join(REPO, "Pulumi.yaml"), "utf8");
        for (const key of known) assert.ok(key in doc.config || new RegExp(`^#\\s+${key}\\s`, "m").test(text), `${key} is neither declared nor documented in Pulumi.yaml`);
    });

    it("every committed sha256 matches the reproducible build of the sample artifacts", async function () {
        this.timeout(60000);
        const built = await buildArtifacts(fs.mkdtempSync(path.join(os.tmpdir(), "arts-")));
        const byVersion = Object.fromEntries(built.map((a) => [a.version, a.sha256]));
        for (const stack of STACKS) {
            const releases = stackFileConfig(stack)["complinist:releases"] as Record<string, { sha256: string }>;
            for (const [v, r] of Object.entries(releases)) assert.strictEqual(r.sha256, byVersion[v], `Pulumi.${stack}.yaml release ${v}: run npm run artifacts and update the sha256`);
        }
    });

    it("no stack file holds a secret in clear", () => {
        for (const stack of STACKS) {
            const text = fs.readFileSync(path.join(REPO, `Pulumi.${stack}.yaml`), "utf8");
            assert.ok(!/PRIVATE KEY|complinist:sshPrivateKey:|Deploy-Token|PRIVATE-TOKEN|hooks\.slack\.com/.test(text.replace(/^\s*#.*$/gm, "")), `Pulumi.${stack}.yaml`);
            // A committed secret is a `secure:` value: `pulumi config set --secret`.
            const config = (YAML.parse(text) as { config: Record<string, unknown> }).config;
            const v = config["complinist:sshPrivateKey"];
            assert.ok(v === undefined || (typeof v === "object" && v !== null && "secure" in v), `Pulumi.${stack}.yaml complinist:sshPrivateKey must be set with --secret`);
            // releaseAuth is { header, origins }: the header is the secret, its origins are plain.
            const auth = config["complinist:releaseAuth"] as { header?: unknown } | undefined;
            assert.ok(auth === undefined || (typeof auth.header === "object" && auth.header !== null && "secure" in auth.header), `Pulumi.${stack}.yaml complinist:releaseAuth.header must be set with --secret --path`);
            const hook = (config["complinist:notify"] as { webhookUrl?: unknown } | undefined)?.webhookUrl;
            assert.ok(hook === undefined || (typeof hook === "object" && hook !== null && "secure" in hook), `Pulumi.${stack}.yaml complinist:notify.webhookUrl must be set with --secret`);
        }
    });

    it("keeps the embedded demo in its own stack: only local targets this machine", () => {
        for (const stack of STACKS) {
            const c = stackFileConfig(stack);
            const hosts = c["complinist:hosts"] as Array<{ address: string }>;
            const loopback = hosts.some((h) => /^(127\.|localhost$|\[?::1\]?$)/.test(h.address));
            assert.strictEqual(loopback, stack === "local", `Pulumi.${stack}.yaml hosts: ${JSON.stringify(hosts)}`);
            assert.strictEqual(c["complinist:sshPrivateKeyPath"] !== undefined, stack === "local", `only the demo reads its key from a file, its per-checkout .build/demo-ssh/ (Pulumi.${stack}.yaml)`);
            const kinds = new Set(Object.values(c["complinist:releases"] as Record<string, object>).map((r) => ("url" in r ? "url" : "path")));
            assert.deepStrictEqual([...kinds], [stack === "local" ? "path" : "url"], `Pulumi.${stack}.yaml releases`);
        }
    });
});
