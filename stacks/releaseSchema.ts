import { z } from "zod";

/**
 * Where a release comes from and what may go with it: the artifact URL's rules and releaseAuth,
 * the header bound to the https origins pinned with it (issue 29, finding 1). Part of the stack
 * contract (./schema.ts).
 */

/**
 * Why a release URL is refused, or undefined. Hosts download it with curl, so it must be
 * one plain http(s) URL: whitespace would smuggle a second word into the command line
 * (it is quoted as well), and credentials in the URL would land in state, logs and argv —
 * the deploy token travels as the secret `releaseAuth` header instead.
 */
export function releaseUrlProblem(url: string): string | undefined {
    const example = "https://gitlab.example.com/api/v4/projects/42/packages/generic/complinist/1.2.0/complinist-1.2.0.tar.gz";
    if (/[\s\0-\x1f\x7f]/.test(url)) return `must be one URL without spaces or control characters, such as ${example}: remove everything after the URL`;
    let parsed: URL;
    try {
        parsed = new URL(url);
    } catch {
        return `must be an absolute http(s) URL, such as ${example}`;
    }
    if (parsed.protocol !== "https:" && parsed.protocol !== "http:") return `must be an http(s) URL (got scheme ${parsed.protocol}), such as ${example}`;
    if (parsed.username !== "" || parsed.password !== "" || /^[a-z]+:\/\/[^/?#]*@/i.test(url)) {
        return (
            "must not carry credentials (user:password@host): remove them from the URL and give the hosts the deploy token as a secret header instead, " +
            `pinned to the registry's origin: ${RELEASE_AUTH_COMMANDS}`
        );
    }
    return undefined;
}

export const releaseUrl = z.string({ error: "must be an http(s) URL" }).superRefine((url, ctx) => {
    const problem = releaseUrlProblem(url);
    if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
});

/** One HTTP header line (`Name: value`) the hosts send when they download a release. */
export const RELEASE_AUTH_PATTERN = /^[A-Za-z0-9-]+:[ \t]*[!-~][^\r\n\0]*$/;

/** How an operator sets releaseAuth: the header as a secret, and the origins it may go to. */
const RELEASE_AUTH_COMMANDS =
    "pulumi config set --secret --path complinist:releaseAuth.header 'Deploy-Token: <token>' and " +
    "pulumi config set --path 'complinist:releaseAuth.origins[0]' https://gitlab.example.com";

/**
 * Why an entry of `releaseAuth.origins` is refused, or undefined. An origin is compared
 * exactly with a release URL's (WHATWG `URL.origin`), so it must be written as one:
 * https (the header never travels in clear), lowercase host, no default port, no path.
 */
export function releaseAuthOriginProblem(origin: string): string | undefined {
    const shape = "must be an origin written exactly as scheme://host[:port] (lowercase, no path, no trailing /, no default port), such as https://gitlab.example.com";
    let parsed: URL;
    try {
        parsed = new URL(origin);
    } catch {
        return shape;
    }
    if (parsed.protocol !== "https:") return `must be https (got scheme ${parsed.protocol}): releaseAuth never travels in clear; ${shape}`;
    return parsed.origin === origin ? undefined : `${shape} (this one would be ${parsed.origin})`;
}

/** The origin of a release URL, or undefined when it has none (a URL the schema refuses anyway). */
export function urlOrigin(url: string): string | undefined {
    try {
        const o = new URL(url).origin;
        return o === "null" ? undefined : o;
    } catch {
        return undefined;
    }
}

/**
 * Secret: the header line hosts send when downloading `url` releases (never in a URL or
 * argv), and the https origins it may go to: the schema refuses a release URL outside them,
 * and the host sends the header only to a URL of one of them.
 */
export const releaseAuth = z.strictObject(
    {
        header: z
            .string({ error: "must be one HTTP header line such as 'Deploy-Token: <token>'" })
            .regex(
                RELEASE_AUTH_PATTERN,
                "must be one HTTP header line such as 'Deploy-Token: <token>' (a GitLab deploy token with read_package_registry) or 'PRIVATE-TOKEN: <token>': pulumi config set --secret --path complinist:releaseAuth.header 'Deploy-Token: <token>'",
            ),
        origins: z
            .array(
                z.string({ error: "must be an https origin such as https://gitlab.example.com" }).superRefine((o, ctx) => {
                    const problem = releaseAuthOriginProblem(o);
                    if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
                }),
                { error: "must be a list of https origins, e.g. [\"https://gitlab.example.com\"]" },
            )
            .min(1, "must name at least one https origin the header may go to, e.g. [\"https://gitlab.example.com\"]"),
    },
    {
        error:
            "must be { header, origins }: the header line and the https origins (scheme://host[:port]) it may go to — one header line alone, the old form, " +
            `is no longer accepted, since it went to any release URL. Replace it: pulumi config rm complinist:releaseAuth, then ${RELEASE_AUTH_COMMANDS}`,
    },
);
