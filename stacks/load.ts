import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { ConfigError, NAMESPACE, parseStackConfig, StackConfig } from "./config";

/**
 * Whether the language host marked a config key secret (PULUMI_CONFIG_SECRET_KEYS): the SDK exports
 * it from pulumi.runtime but marks it @internal, so its .d.ts leaves it out.
 */
const isConfigSecret = (pulumi.runtime as unknown as { isConfigSecret(key: string): boolean }).isConfigSecret;

/** Parse the running stack's config once, at program start, before any resource exists. */
export function loadStackConfig(): StackConfig {
    try {
        const all = pulumi.runtime.allConfig();
        return parseStackConfig(pulumi.getStack(), all, Object.keys(all).filter((k) => isConfigSecret(k)));
    } catch (e) {
        // RunError prints the message without a stack trace: the operator needs the key, not our call stack.
        if (e instanceof ConfigError) throw new pulumi.RunError(e.message);
        throw e;
    }
}

/** The SSH private key as a secret, from `sshPrivateKey` or the file at `sshPrivateKeyPath`. */
export function sshPrivateKey(c: StackConfig): pulumi.Output<string> {
    if (c.sshPrivateKeyPath !== undefined) {
        const file = path.resolve(c.sshPrivateKeyPath);
        if (!fs.existsSync(file)) {
            throw new pulumi.RunError(`Invalid configuration for stack '${c.stack}':\n  - ${NAMESPACE}:sshPrivateKeyPath: no such file ${file} (a path to an OpenSSH private key, absolute or relative to the project)`);
        }
        return pulumi.secret(fs.readFileSync(file, "utf8"));
    }
    return new pulumi.Config(NAMESPACE).requireSecret("sshPrivateKey");
}

/**
 * The header line hosts send when they download `url` releases (`Deploy-Token: …`), as a
 * secret; undefined when the stack downloads without credentials. Hand it to the host on
 * stdin (`curl -H @-`), never in a URL, argv or a script's text, and only for a URL of one of
 * `releaseAuth.origins` (plain in the parsed config).
 */
export function releaseAuthHeader(c: Pick<StackConfig, "releaseAuth">): pulumi.Output<string> | undefined {
    return c.releaseAuth === undefined ? undefined : new pulumi.Config(NAMESPACE).requireSecretObject<{ header: string }>("releaseAuth").apply((a) => a.header);
}
