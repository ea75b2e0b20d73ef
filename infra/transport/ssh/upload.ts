import { q } from "../../render/shell";
import { trace } from "../trace";
import type { UploadKind, UploadResult } from "../transport";
import type { SshConnection } from "./connect";
import { runScript } from "./exec";

/** Copies `localPath` to `remotePath` on the host and returns its size and the host's sha256 of it. */
export async function upload(conn: SshConnection, localPath: string, remotePath: string, kind: UploadKind = "artifact"): Promise<UploadResult> {
    const fs = require("fs") as typeof import("fs");
    const path = require("path") as typeof import("path");
    const { size } = await fs.promises.stat(localPath);
    const dir = path.posix.dirname(remotePath);
    // Written under a temporary name and renamed, so a reader (or a retried
    // deployment) never sees a half-written file at remotePath.
    const script = [
        `dest=${q(remotePath)}`,
        `mkdir -p ${q(dir)}`,
        `tmp="$(mktemp ${q(dir + "/.upload.XXXXXX")})"`,
        `trap 'rm -f "$tmp"' EXIT`,
        `cat >"$tmp"`,
        `got="$(stat -c %s "$tmp")"`,
        `if [ "$got" != ${size} ]; then echo "received $got of ${size} bytes" >&2; exit 3; fi`,
        `chmod 0644 "$tmp"`,
        `mv -f "$tmp" "$dest"`,
        `trap - EXIT`,
        `sha256sum "$dest" | cut -d' ' -f1`,
    ].join("\n");
    // Sized to a slow link: a minute plus one per 10 MB.
    const timeoutMs = 60000 + Math.ceil(size / 10_000_000) * 60000;
    const res = await runScript(conn, script, fs.createReadStream(localPath), timeoutMs, `upload of ${localPath}`);
    if (res.code !== 0) {
        throw new Error(`upload of ${localPath} to ${conn.name}:${remotePath} failed (exit ${res.code}): ${res.stderr.trim()}`);
    }
    const sha256 = res.stdout.trim();
    if (!/^[0-9a-f]{64}$/.test(sha256)) {
        throw new Error(`upload to ${conn.name}:${remotePath}: unexpected sha256sum output ${JSON.stringify(res.stdout)}`);
    }
    trace("upload", { host: conn.name, bytes: size, kind });
    return { bytes: size, sha256 };
}
