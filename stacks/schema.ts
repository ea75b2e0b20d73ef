import * as path from "path";
import { z } from "zod";
import { containerLimits, DIGEST_EXAMPLE, imagePinProblem, imageRelease } from "./containerSchema";
import { integer } from "./fields";
import { canary, watch, WATCH_DEFAULTS } from "./watchSchema";
import { failover, FAILOVER_DEFAULTS } from "./failoverSchema";
import { releaseAuth, releaseUrl, urlOrigin } from "./releaseSchema";

export { RELEASE_AUTH_PATTERN, releaseAuthOriginProblem, releaseUrlProblem, urlOrigin } from "./releaseSchema";

/**
 * The stack contract: every key of the `complinist` config namespace, with its
 * defaults. Every value that can reach a shell is constrained here *and* quoted
 * when rendered (see infra/render/shell.ts) — belt and braces.
 */

export const VERSION_PATTERN = /^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$/;
/** A Pulumi stack name, bare (`staging`) or qualified (`org/project/staging`). */
export const STACK_NAME_PATTERN = /^[A-Za-z0-9._/-]+$/;
const NAME_PATTERN = /^[a-z][a-z0-9-]{0,62}$/;
const SERVICE_PATTERN = /^[a-z][a-z0-9_-]{0,31}$/;
const USER_PATTERN = /^[a-z_][a-z0-9_-]{0,31}$/;
const ENV_NAME_PATTERN = /^[A-Z_][A-Z0-9_]*$/;
const HOST_KEY_PATTERN = /^(ssh-ed25519|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521|ssh-rsa) [A-Za-z0-9+/]+={0,3}( [^\n]*)?$/;
const ADDRESS_PATTERN = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?$|^\[?[0-9A-Fa-f:.]+\]?$/;

const port = integer("a TCP port", 1, 65535);

/** `rollout.onFailure`'s values; the first is the default. */
export const ON_FAILURE = ["rollback-all", "halt"] as const;

/** A top-level flag: `pulumi config set complinist:x true` hands over the string "true". */
const flag = (what: string) =>
    z.preprocess((v) => (v === "true" ? true : v === "false" ? false : v), z.boolean({ error: `must be true or false (${what})` }));

const version = z
    .string({ error: "must be a version string" })
    .regex(VERSION_PATTERN, "must be a version: 1-64 characters of letters, digits and . + _ -, starting with a letter or digit");

/** An absolute, normalized host path: no `..`, no `//`, no trailing slash, no shell-hostile characters. */
export const absolutePath = z
    .string({ error: "must be an absolute path" })
    .refine((p) => p.startsWith("/"), "must be an absolute path (start with /)")
    .refine((p) => p === "/" || (path.posix.normalize(p) === p && !p.endsWith("/")), "must be a normalized path (no '..', '.', '//' or trailing '/')")
    .refine((p) => /^[A-Za-z0-9/._-]+$/.test(p), "may only contain letters, digits and / . _ -")
    .refine((p) => p !== "/", "must not be the filesystem root");

/**
 * Directories where any local user may create an entry (sticky, world-writable: /tmp, /var/tmp,
 * /dev/shm, /run/lock and its /var/lock link) or that belong to users (/home, /run/user). Root makes
 * baseDir with `install -d`, which keeps the owner of a directory that is already there: a user who
 * made it first would own what root then writes into it (and the agent refuses it at apply time).
 */
export const UNTRUSTED_BASE_PARENTS: ReadonlyArray<string> = ["/tmp", "/var/tmp", "/dev/shm", "/run/user", "/home", "/run/lock", "/var/lock"];

/** The deployment root: an absolute path, not in or under a directory another user can create it in first. */
const baseDir = absolutePath.superRefine((p, ctx) => {
    const parent = UNTRUSTED_BASE_PARENTS.find((d) => p === d || p.startsWith(`${d}/`));
    if (parent === undefined) return;
    ctx.addIssue({
        code: "custom",
        message:
            `must not be ${parent} or below it: any user can create a directory there first (under /home and /run/user, users own theirs), ` +
            `and root would write into the directory they own (releases, the current link, settings). Choose a root-owned path such as /opt/complinist or /srv/complinist`,
    });
});

const sha256 = z.string({ error: "must be a sha256" }).regex(/^[0-9a-f]{64}$/, "must be a sha256: 64 lowercase hex characters");

const artifactRelease = z.strictObject({
    /** Local .tar.gz, absolute or relative to the project directory; uploaded over SSH. */
    path: z.string().min(1).refine((p) => !p.includes("\n"), "must be a single line").optional(),
    /** http(s) URL the host downloads itself (with the `releaseAuth` header when set). */
    url: releaseUrl.optional(),
    sha256,
});

const host = z.strictObject({
    name: z.string({ error: "is required" }).regex(NAME_PATTERN, "must be a host name: lowercase letters, digits and -, starting with a letter"),
    address: z.string({ error: "is required" }).regex(ADDRESS_PATTERN, "must be a DNS name or an IP address"),
    port: port.default(22),
    user: z.string().regex(USER_PATTERN, "must be a Unix user name").default("root"),
    hostKey: z.string().regex(HOST_KEY_PATTERN, "must be an OpenSSH public key line such as 'ssh-ed25519 AAAA…'").optional(),
});

/**
 * Names a Debian host already uses for a unit, /etc/<name>, /var/log/<name> or a system
 * user: the stack writes <name>.service, /etc/<name>/ and /var/log/<name>/ and would
 * override or re-own them (e.g. `ssh` would replace the vendor's ssh.service).
 */
export const RESERVED_SERVICE_NAMES: ReadonlySet<string> = new Set(
    (
        "apt dpkg systemd ssh sshd cron anacron dbus haproxy nginx apache2 mysql mariadb postgresql redis docker containerd " +
        "network networking resolved timesyncd journal logrotate rsyslog syslog exim4 postfix ufw sudo pam security default " +
        "init alternatives ssl kernel modprobe udev polkit-1 skel getty user emergency rescue sysinit basic shutdown reboot halt " +
        "multi-user graphical sockets timers paths slices local-fs remote-fs swap tmp boot dev proc sys run var etc usr opt srv " +
        "home root bin sbin lib lib64 mnt media installer private sysstat unattended-upgrades debconf fstab hosts hostname " +
        "passwd shadow group nobody daemon www-data backup list irc gnats mail news uucp proxy sync games man lp _apt messagebus"
    ).split(" "),
);

const service = z.strictObject({
    name: z
        .string()
        .regex(SERVICE_PATTERN, "must be a systemd unit name: lowercase letters, digits, _ and -")
        .refine((n) => !RESERVED_SERVICE_NAMES.has(n), "names a unit, directory or user a Debian host already has (the stack would override or re-own it): choose another, e.g. complinist")
        .default("complinist"),
    port: integer("a TCP port (the proxy listens on it; the app instances use the next two ports)", 1, 65533).default(5000),
    user: z.string().regex(USER_PATTERN, "must be a Unix user name").refine((u) => u !== "root", "must not be root: the service runs as its own user").default("complinist"),
    command: z
        .string({ error: "is required: the command that starts the app inside <baseDir>/current, e.g. bin/start" })
        .min(1, "must not be empty")
        .refine((c) => !/[\n\r\0]/.test(c), "must be a single line"),
    environment: z
        .record(
            z
                .string()
                .regex(ENV_NAME_PATTERN, "names must be UPPER_SNAKE_CASE")
                .refine((k) => k !== "PORT", "PORT is set by the stack (each instance gets its own private port behind the proxy on service.port): set service.port instead")
                .refine((k) => k !== "BIND", "BIND is set by the stack (each instance listens on 127.0.0.1 behind the proxy, enforced by the host's firewall): remove it"),
            z.string().refine((v) => !/[\n\r\0]/.test(v), "values must be single-line"),
        )
        .default({}),
    /** Keep the pinned rollbackVersion running as a warm standby, so a rollback is a proxy switch. */
    standby: z.boolean({ error: "must be true or false" }).default(true),
    /** Container mode only: memory, process and log limits of each app container (defaults: CONTAINER_DEFAULTS). */
    container: containerLimits.optional(),
});

const urlPath = z.string().regex(/^\/[A-Za-z0-9/._~-]*$/, "must be a URL path starting with / (letters, digits and / . _ ~ -), e.g. /health");

/** A smoke check of the new instance before it takes traffic, e.g. `{ path: "/", status: 200, maxMs: 2000 }`. */
const check = z.strictObject({
    path: urlPath,
    status: integer("an HTTP status", 100, 599).default(200),
    maxMs: integer("a response time limit in milliseconds (0: none)", 0, 600000).default(0),
});

const health = z.strictObject({
    path: urlPath.default("/health"),
    timeoutSeconds: integer("a timeout in seconds", 1, 3600).default(60),
    intervalMs: integer("an interval in milliseconds", 100, 60000).default(1000),
    /** After the switch, keep probing through the proxy this long; a failure switches back. */
    soakSeconds: integer("a soak time in seconds", 0, 3600).default(0),
    /** How long the old instance may take to finish its in-flight requests after the switch. */
    drainSeconds: integer("a drain time in seconds", 1, 600).default(30),
    checks: z.array(check, { error: "must be a list of { path, status?, maxMs? }" }).default([]),
});

export const configSchema = z
    .strictObject({
        mode: z.enum(["release", "container"], { error: "must be 'release' or 'container'" }).default("release"),
        version,
        rollbackVersion: version.optional(),
        releases: z.record(version, z.union([artifactRelease, imageRelease], { error: "must be { path | url, sha256 } or { image }" }), {
            error: "must be a map of version → { path | url, sha256 } (or { image } in container mode)",
        }),
        keepReleases: integer("a count of releases kept per host", 2, 50).default(3),
        hosts: z.array(host, { error: "must be a list of { name, address, port?, user?, hostKey }" }).min(1, "must list at least one host"),
        sshPrivateKey: z.string().optional(),
        sshPrivateKeyPath: z.string().min(1).optional(),
        /** How long connecting, the SSH handshake and opening a session on a host may take. */
        sshTimeoutSeconds: integer("an SSH timeout in seconds", 1, 300).default(15),
        baseDir: baseDir.default("/opt/complinist"),
        service,
        health: health.default({ path: "/health", timeoutSeconds: 60, intervalMs: 1000, soakSeconds: 0, drainSeconds: 30, checks: [] }),
        rollout: z
            .strictObject({
                batchSize: integer("a batch size", 1, 1000).optional(),
                /** When a host fails its gate, canary or soak: every host this update switched goes back (rollback-all), or the rest stays as it is (halt). */
                onFailure: z
                    .enum(ON_FAILURE, {
                        error: "must be 'rollback-all' (every host this update already switched goes back to its warm standby) or 'halt' (the hosts already switched keep the new release)",
                    })
                    .default("rollback-all"),
            })
            .default({ onFailure: "rollback-all" }),
        canary: canary.optional(),
        watch: watch.default(WATCH_DEFAULTS),
        failover: failover.default(FAILOVER_DEFAULTS),
        hooks: z
            .strictObject({
                beforeActivate: z.string().min(1).refine((c) => !/[\n\r\0]/.test(c), "must be a single line").optional(),
                /** Run the hook on the first host of the first batch only (a migration or backup runs once per deploy). */
                once: z.boolean({ error: "must be true or false" }).default(false),
                /** Run the hook when rolling back to the pinned rollback target too (default: skipped). */
                onRollback: z.boolean({ error: "must be true or false" }).default(false),
                timeoutSeconds: integer("a hook time limit in seconds", 1, 7200).default(600),
            })
            .default({ once: false, onRollback: false, timeoutSeconds: 600 }),
        /**
         * Acknowledges a change that stops the service on every host (service.name or baseDir): the old
         * service stops, and nothing serves until the new release passes its gate. Refused in preview without it.
         */
        allowServiceInterruption: flag("true acknowledges that a service.name or baseDir change stops the service until the new release passes its gate").default(false),
        promoteFrom: z.string().regex(STACK_NAME_PATTERN, "must be a stack name such as staging or org/project/staging").optional(),
        /** Versions this stack rolled back from (the promotion gate's record, or a host's error-rate watch) that may be deployed again on purpose. */
        acknowledgeRolledBack: z.array(version, { error: "must be a list of versions, e.g. [\"1.1.0\"]" }).default([]),
        /** Secret: `{ header, origins }`, the header line hosts send when downloading `url` releases from one of `origins`. */
        releaseAuth: releaseAuth.optional(),
        /**
         * Hosts whose new address or host key (under the name they had) may be used: without it the
         * providers refuse the change in preview, as nothing secret may reach another machine unasked.
         */
        acknowledgeHostChange: z.array(z.string(), { error: "must be a list of host names, e.g. [\"web-1\"]" }).default([]),
        /** Where the deploy and rollback helpers post their messages (not used by the program). */
        notify: z
            .strictObject({
                /** Secret: a Slack-compatible incoming webhook URL. */
                webhookUrl: z.url({ protocol: /^https?$/, error: "must be an http(s) URL: pulumi config set --secret --path complinist:notify.webhookUrl https://hooks.slack.com/services/…" }),
            })
            .optional(),
    })
    .superRefine((c, ctx) => {
        const names = new Set<string>();
        c.hosts.forEach((h, i) => {
            if (h.address === "local") {
                ctx.addIssue({
                    code: "custom",
                    path: ["hosts", i, "address"],
                    message: "'local' is not a host: both modes run the host program over SSH (for this machine: address 127.0.0.1 and its host key)",
                });
            } else if (h.hostKey === undefined) {
                ctx.addIssue({ code: "custom", path: ["hosts", i, "hostKey"], message: "is required: the host's public key (ssh-keyscan -t ed25519 HOST), SSH is never blind" });
            }
            if (names.has(h.name)) ctx.addIssue({ code: "custom", path: ["hosts", i, "name"], message: `duplicate host name '${h.name}': names must be unique` });
            names.add(h.name);
        });
        c.acknowledgeHostChange.forEach((n, i) => {
            if (!names.has(n)) ctx.addIssue({ code: "custom", path: ["acknowledgeHostChange", i], message: `'${n}' is no host in complinist:hosts (known: ${[...names].join(", ")})` });
        });
        if (c.releaseAuth !== undefined) {
            const origins = c.releaseAuth.origins;
            for (const [v, r] of Object.entries(c.releases)) {
                if (!("url" in r) || r.url === undefined) continue;
                const o = urlOrigin(r.url);
                if (o === undefined || origins.includes(o)) continue;
                const fix = o.startsWith("https://")
                    ? `download it from one of them, or, if ${o} is your registry's, pin it beside them: pulumi config set --path 'complinist:releaseAuth.origins[${origins.length}]' ${o}`
                    : "download it over https from one of them";
                ctx.addIssue({
                    code: "custom",
                    path: ["releases", v, "url"],
                    message: `is outside the origins releaseAuth is pinned to: its origin ${o} is not one of releaseAuth.origins: ${origins.join(", ")}. Hosts send releaseAuth only to those origins; ${fix}`,
                });
            }
        }
        if (!(c.version in c.releases)) {
            ctx.addIssue({ code: "custom", path: ["version"], message: `'${c.version}' is not in releases (known: ${Object.keys(c.releases).join(", ") || "none"})` });
        }
        if (c.rollbackVersion !== undefined) {
            if (c.rollbackVersion === c.version) {
                ctx.addIssue({ code: "custom", path: ["rollbackVersion"], message: `must differ from version '${c.version}': a rollback target is the previous release` });
            } else if (!(c.rollbackVersion in c.releases)) {
                ctx.addIssue({ code: "custom", path: ["rollbackVersion"], message: `'${c.rollbackVersion}' is not in releases (known: ${Object.keys(c.releases).join(", ")})` });
            }
        }
        for (const [v, r] of Object.entries(c.releases)) {
            if (c.mode === "release") {
                if ("image" in r) ctx.addIssue({ code: "custom", path: ["releases", v], message: "release mode needs { path | url, sha256 }, not { image }" });
                else if ((r.path === undefined) === (r.url === undefined)) ctx.addIssue({ code: "custom", path: ["releases", v], message: "needs exactly one of path or url" });
            } else if (!("image" in r)) {
                ctx.addIssue({ code: "custom", path: ["releases", v, "image"], message: `container mode needs { image } pinned by digest for every release (${DIGEST_EXAMPLE})` });
            } else {
                const problem = imagePinProblem(r.image);
                if (problem !== undefined) ctx.addIssue({ code: "custom", path: ["releases", v, "image"], message: problem });
            }
        }
        if (c.sshPrivateKey === undefined && c.sshPrivateKeyPath === undefined) {
            ctx.addIssue({ code: "custom", path: ["sshPrivateKey"], message: "is required (pulumi config set --secret complinist:sshPrivateKey < key), or set sshPrivateKeyPath" });
        }
        if (c.sshPrivateKey !== undefined && c.sshPrivateKeyPath !== undefined) {
            ctx.addIssue({ code: "custom", path: ["sshPrivateKeyPath"], message: "set either sshPrivateKey or sshPrivateKeyPath, not both" });
        }
        if (c.service.container !== undefined && c.mode !== "container") {
            ctx.addIssue({ code: "custom", path: ["service", "container"], message: "only applies in container mode (mode: container): remove it" });
        }
        if (c.hooks.beforeActivate !== undefined && c.mode === "container") {
            ctx.addIssue({ code: "custom", path: ["hooks", "beforeActivate"], message: "is only supported in release mode" });
        }
    });

export type ConfigInput = z.input<typeof configSchema>;
export type ParsedConfig = z.output<typeof configSchema>;
/** One host as configured, defaults applied: the one declaration of a host's shape (transports, providers, banner derive theirs). */
export type HostConfig = Readonly<ParsedConfig["hosts"][number]>;
export type ArtifactRelease = z.output<typeof artifactRelease>;
