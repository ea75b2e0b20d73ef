import { LOCAL_ADDRESS, type HostConfig } from "../../stacks/schema";
import { q } from "./shell";

/** The engine of the machine running Pulumi, for a host with `address: local`. */
export const LOCAL_DOCKER_HOST = "unix:///var/run/docker.sock";
/** The env var the healthcheck compares `/health`'s `version` with. */
export const VERSION_ENV = "COMPLINIST_VERSION";

/** The address without the brackets the schema lets an IPv6 literal carry (`[::1]` → `::1`). */
export function unbracketed(address: string): string {
    return address.replace(/^\[|\]$/g, "");
}

/** `ssh://user@host:port`, IPv6 literals bracketed. */
export function dockerHostUrl(h: Pick<HostConfig, "address" | "port" | "user">): string {
    if (h.address === LOCAL_ADDRESS) return LOCAL_DOCKER_HOST;
    const bare = unbracketed(h.address);
    const host = bare.includes(":") ? `[${bare}]` : bare;
    return `ssh://${h.user}@${host}:${h.port}`;
}

/**
 * ssh options that pin the host key without any file: OpenSSH (≥ 8.5) asks
 * KnownHostsCommand for the known_hosts line and, with StrictHostKeyChecking=yes
 * and both known_hosts files emptied, trusts nothing else. No temp path, so two
 * previews see the same input. Only the key type and blob are used: a comment
 * could carry `%` tokens that ssh would expand.
 */
export function pinnedSshOpts(h: Pick<HostConfig, "address" | "port" | "hostKey">): string[] {
    if (h.hostKey === undefined) throw new Error(`host ${h.address}: an SSH engine needs the host's hostKey (SSH is never blind)`);
    const [type, blob] = h.hostKey.trim().split(/\s+/);
    const bare = unbracketed(h.address);
    const pattern = h.port === 22 ? bare : `[${bare}]:${h.port}`;
    return [
        "-o", "StrictHostKeyChecking=yes",
        "-o", "UserKnownHostsFile=/dev/null",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", `KnownHostsCommand=/bin/echo ${pattern} ${type} ${blob}`,
        "-o", "BatchMode=yes",
    ];
}

/** Go's time.Duration.String() for whole milliseconds: the form the provider reads back ("500ms", "1.5s", "1m0s"). */
export function goDuration(ms: number): string {
    if (ms === 0) return "0s";
    if (ms < 1000) return `${ms}ms`;
    const h = Math.floor(ms / 3600000);
    const m = Math.floor((ms % 3600000) / 60000);
    const s = ((ms % 60000) / 1000).toString();
    if (h > 0) return `${h}h${m}m${s}s`;
    if (m > 0) return `${m}m${s}s`;
    return `${s}s`;
}

/**
 * The /health contract as a Docker healthcheck (shell form, so it is also a plain
 * `docker run --health-cmd`): healthy only for HTTP 200 with status "healthy" AND
 * the version in $COMPLINIST_VERSION — an old image still answering under the new
 * name never passes. The version is read from env, not baked in, so a version
 * change alters `image`/`envs` but not the healthcheck. Output lands in
 * `docker inspect` (.State.Health.Log) for the operator.
 */
export function healthcheckCommand(port: number, path: string): string {
    const py = [
        "import json, os, sys, urllib.request as u",
        `want = os.environ.get("${VERSION_ENV}", "")`,
        "try:",
        `    r = u.urlopen("http://127.0.0.1:${port}${path}", timeout=4)`,
        "    code, body = r.status, r.read()",
        "except u.HTTPError as e:",
        "    code, body = e.code, e.read()",
        "except Exception as e:",
        "    print(\"no answer: %s\" % e); sys.exit(1)",
        "try:",
        "    doc = json.loads(body)",
        "except ValueError:",
        "    doc = {}",
        "ok = code == 200 and doc.get(\"status\") == \"healthy\" and doc.get(\"version\") == want",
        "print(\"HTTP %s status=%s version=%s want=%s\" % (code, doc.get(\"status\"), doc.get(\"version\"), want))",
        "sys.exit(0 if ok else 1)",
    ].join("\n");
    // Single-quoted for sh: the script has no single quote, path is validated to [A-Za-z0-9/._~-].
    return `python3 -c ${q(py)}`;
}
