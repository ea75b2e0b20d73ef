import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { demoKeys } from "../../dev/sshKeys";
import type { ProgramConfig } from "./mocks/evaluate";

export const REPO = path.resolve(__dirname, "..", "..");

/** A committed stack file's config exactly as a user has it (values as written in YAML). */
export function stackFileConfig(stack: string, file = path.join(REPO, `Pulumi.${stack}.yaml`)): ProgramConfig {
    const doc = YAML.parse(fs.readFileSync(file, "utf8")) as { config?: Record<string, unknown> };
    const out: ProgramConfig = {};
    for (const [k, v] of Object.entries(doc.config ?? {})) {
        // Pulumi stores scalars as strings (`keepReleases: 3` reaches the program as "3").
        out[k] = typeof v === "object" && v !== null ? v : String(v);
    }
    return out;
}

/** What `pulumi config set --secret complinist:sshPrivateKey < key` adds for staging and prod. */
export const USER_SECRET_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nc3RhZ2luZy1vbmx5LXRlc3Qta2V5LW5vdC1yZWFs\n-----END OPENSSH PRIVATE KEY-----\n";

export function withUserSecrets(config: ProgramConfig): { config: ProgramConfig; secretKeys: string[] } {
    if (config["complinist:sshPrivateKeyPath"] !== undefined) {
        // The demo's key is this checkout's own, made at set-up (npm run up): made here the same way.
        demoKeys();
        return { config, secretKeys: [] };
    }
    return { config: { ...config, "complinist:sshPrivateKey": USER_SECRET_KEY }, secretKeys: ["complinist:sshPrivateKey"] };
}
