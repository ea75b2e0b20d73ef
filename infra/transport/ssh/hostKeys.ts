/**
 * Keys of an SSH connection: the pinned host key line, fingerprints in OpenSSH's
 * notation, and the host-key algorithms to offer. Node built-ins and `ssh2` are
 * `require`d inside functions (see ./index.ts).
 */

/** OpenSSH-style fingerprint ("SHA256:<base64 without padding>") of a key blob. */
export function fingerprint(blob: Buffer): string {
    const crypto = require("crypto") as typeof import("crypto");
    return "SHA256:" + crypto.createHash("sha256").update(blob).digest("base64").replace(/=+$/, "");
}

/**
 * Splits "ssh-ed25519 AAAA… [comment]" into type and blob, and checks the blob really is
 * a key of that type — a pasted key with a wrong prefix would otherwise only show up as a
 * confusing mismatch at connect time.
 */
export function parseHostKey(hostKey: string, hostName: string): { type: string; blob: Buffer } {
    const fields = (hostKey ?? "").trim().split(/\s+/);
    const fail = (why: string): never => {
        throw new Error(
            `hostKey of host ${hostName} is not an OpenSSH public key (${why}); ` +
                `expected e.g. "ssh-ed25519 AAAAC3Nza…", as printed by ` +
                `\`ssh-keyscan -t ed25519 <host>\` or found in /etc/ssh/ssh_host_ed25519_key.pub`,
        );
    };
    if (fields.length < 2) fail("need \"<type> <base64>\"");
    const [type, b64] = fields as [string, string];
    if (!/^[A-Za-z0-9+/]+=*$/.test(b64)) fail("key data is not base64");
    const blob = Buffer.from(b64, "base64");
    if (blob.length < 4) fail("key data too short");
    const len = blob.readUInt32BE(0);
    if (4 + len > blob.length || blob.subarray(4, 4 + len).toString("latin1") !== type) {
        fail(`key data does not hold a ${type} key`);
    }
    return { type, blob };
}

/**
 * Host-key algorithms to offer: only the pinned key's type. Otherwise the server could
 * pick e.g. its ECDSA key and a correctly pinned ed25519 key would look like a mismatch.
 */
export function hostKeyAlgorithms(type: string): string[] {
    if (type === "ssh-rsa") return ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"];
    return [type];
}

/** "key SHA256:…" of the public half of a private key, for an authentication failure message. */
export function clientKeyFingerprint(privateKey: string): string {
    const ssh2 = require("ssh2") as typeof import("ssh2");
    const parsed = ssh2.utils.parseKey(privateKey);
    if (parsed instanceof Error) return "unparseable key";
    const key = Array.isArray(parsed) ? parsed[0] : parsed;
    return `key ${fingerprint(key.getPublicSSH())}`;
}
