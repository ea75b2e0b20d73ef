import * as assert from "assert";
import { ConfigError, parseStackConfig } from "../../../stacks/config";

/**
 * Issue 29, finding 1: the secret download header (`releaseAuth`) is bound to the origins
 * pinned with it, and a changed host under an existing name needs an acknowledgement key.
 */

const SHA = "a".repeat(64);
const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMHZNMVhu73rtnkCVV1dnWn09B3L5W/ZVMUBqhTkSJws";
const TOKEN = "gldt-Zq9-never-printed";
const REGISTRY = "https://gitlab.example.com";
const url = (origin: string, v: string) => `${origin}/api/v4/projects/42/packages/generic/complinist/${v}/complinist-${v}.tar.gz`;

/** A valid release-mode config downloading both releases from `origin`, as Pulumi hands it over. */
function config(overrides: Record<string, unknown> = {}, origin = REGISTRY): Record<string, string> {
    const base: Record<string, unknown> = {
        version: "1.1.0",
        rollbackVersion: "1.0.0",
        releases: { "1.0.0": { url: url(origin, "1.0.0"), sha256: SHA }, "1.1.0": { url: url(origin, "1.1.0"), sha256: SHA } },
        hosts: [
            { name: "web-1", address: "10.0.0.5", hostKey: KEY },
            { name: "web-2", address: "10.0.0.6", hostKey: KEY },
        ],
        sshPrivateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nzzz\n-----END OPENSSH PRIVATE KEY-----",
        service: { command: "bin/start" },
        ...overrides,
    };
    return Object.fromEntries(Object.entries(base).map(([k, v]) => [`complinist:${k}`, typeof v === "string" ? v : JSON.stringify(v)]));
}

/** The ConfigError's message; fails when the config is accepted. */
function refusal(stack: string, c: Record<string, string>): string {
    try {
        parseStackConfig(stack, c);
    } catch (e) {
        assert.ok(e instanceof ConfigError, `expected ConfigError, got ${String(e)}`);
        assert.ok(e.message.startsWith(`Invalid configuration for stack '${stack}'`), e.message);
        return e.message;
    }
    return assert.fail("the configuration was accepted");
}

function includesAll(m: string, ...fragments: string[]): void {
    for (const f of fragments) assert.ok(m.includes(f), `message lacks ${JSON.stringify(f)}:\n${m}`);
}

describe("releaseAuth is bound to the origins pinned with it", () => {
    it("takes { header, origins }: the header line and the https origins it may go to", () => {
        const c = parseStackConfig("staging", config({ releaseAuth: { header: `Deploy-Token: ${TOKEN}`, origins: [REGISTRY, "https://registry.example.com:8443"] } }));
        assert.deepStrictEqual(c.releaseAuth, { header: `Deploy-Token: ${TOKEN}`, origins: [REGISTRY, "https://registry.example.com:8443"] });
    });

    it("refuses the old form (one header line) with the new form and the commands that set it, never printing the header", () => {
        const m = refusal("staging", config({ releaseAuth: `Deploy-Token: ${TOKEN}` }));
        includesAll(
            m,
            "complinist:releaseAuth: ",
            "{ header, origins }",
            "pulumi config set --secret --path complinist:releaseAuth.header 'Deploy-Token: <token>'",
            "pulumi config set --path 'complinist:releaseAuth.origins[0]' https://gitlab.example.com",
            "(got a secret value)",
        );
        assert.ok(!m.includes(TOKEN), m);
    });

    it("refuses a releases.<v>.url outside the pinned origins, naming the key, the url's origin and the accepted origins", () => {
        const c = config({ releaseAuth: { header: `Deploy-Token: ${TOKEN}`, origins: [REGISTRY] } });
        c["complinist:releases"] = JSON.stringify({ "1.0.0": { url: url(REGISTRY, "1.0.0"), sha256: SHA }, "1.1.0": { url: url("https://evil.example", "1.1.0"), sha256: SHA } });
        const m = refusal("dev", c);
        includesAll(m, "complinist:releases.1.1.0.url: ", "its origin https://evil.example", `releaseAuth.origins: ${REGISTRY}`, JSON.stringify(url("https://evil.example", "1.1.0")));
        assert.ok(!m.includes("releases.1.0.0"), `the release inside the origins is fine:\n${m}`);
        assert.ok(!m.includes(TOKEN), m);
    });

    it("refuses an http URL once releaseAuth is set, even on a pinned host name: the header never travels in clear", () => {
        const m = refusal("dev", config({ releaseAuth: { header: `Deploy-Token: ${TOKEN}`, origins: [REGISTRY] } }, "http://gitlab.example.com"));
        includesAll(m, "complinist:releases.1.0.0.url: ", "its origin http://gitlab.example.com", "complinist:releases.1.1.0.url: ");
    });

    it("compares origins, not text: another port or a look-alike host is another origin; a path, query or default port is the same origin", () => {
        const ok = config({ releaseAuth: { header: `Deploy-Token: ${TOKEN}`, origins: [REGISTRY] } });
        ok["complinist:releases"] = JSON.stringify({ "1.0.0": { url: "https://GitLab.example.com:443/a.tar.gz?x=1", sha256: SHA }, "1.1.0": { url: url(REGISTRY, "1.1.0"), sha256: SHA } });
        assert.doesNotThrow(() => parseStackConfig("dev", ok));
        for (const other of ["https://gitlab.example.com:8443", "https://gitlab.example.com.evil.example", "https://evil.example/https://gitlab.example.com"]) {
            const c = config({ releaseAuth: { header: `Deploy-Token: ${TOKEN}`, origins: [REGISTRY] } });
            c["complinist:releases"] = JSON.stringify({ "1.0.0": { url: `${other}/a.tar.gz`, sha256: SHA }, "1.1.0": { url: url(REGISTRY, "1.1.0"), sha256: SHA } });
            includesAll(refusal("dev", c), "complinist:releases.1.0.0.url: ", `its origin ${new URL(`${other}/a.tar.gz`).origin}`);
        }
    });

    it("takes only https origins written exactly as scheme://host[:port]", () => {
        for (const [bad, why] of [
            ["http://gitlab.example.com", "must be https"],
            ["https://gitlab.example.com/", "scheme://host[:port]"],
            ["https://gitlab.example.com/api/v4", "scheme://host[:port]"],
            ["https://gitlab.example.com:443", "scheme://host[:port]"],
            ["https://GitLab.example.com", "scheme://host[:port]"],
            ["https://user@gitlab.example.com", "scheme://host[:port]"],
            ["gitlab.example.com", "scheme://host[:port]"],
        ] as const) {
            const m = refusal("dev", config({ releaseAuth: { header: `Deploy-Token: ${TOKEN}`, origins: [bad] } }));
            includesAll(m, "complinist:releaseAuth.origins[0]: ", why);
            assert.ok(!m.includes(TOKEN), m);
        }
        includesAll(refusal("dev", config({ releaseAuth: { header: `Deploy-Token: ${TOKEN}`, origins: [] } })), "complinist:releaseAuth.origins: ", "at least one");
    });

    it("keeps the header a single header line, never printed", () => {
        for (const bad of [`Deploy-Token ${TOKEN}`, `Deploy-Token: ${TOKEN}\r\nHost: evil.example`, ""]) {
            const m = refusal("staging", config({ releaseAuth: { header: bad, origins: [REGISTRY] } }));
            includesAll(m, "complinist:releaseAuth.header: must be one HTTP header line such as 'Deploy-Token: <token>'");
            assert.ok(!m.includes(TOKEN), m);
        }
    });

    it("without releaseAuth, a URL may name any origin: nothing secret goes with it and the sha256 decides", () => {
        assert.doesNotThrow(() => parseStackConfig("dev", config({}, "http://mirror.example.net")));
    });
});

describe("acknowledgeHostChange names the hosts whose new address or host key may be used", () => {
    it("defaults to none and takes host names", () => {
        assert.deepStrictEqual(parseStackConfig("dev", config()).acknowledgeHostChange, []);
        assert.deepStrictEqual(parseStackConfig("dev", config({ acknowledgeHostChange: ["web-2"] })).acknowledgeHostChange, ["web-2"]);
    });

    it("refuses a name that is no host of the stack (a typo acknowledges nothing)", () => {
        includesAll(refusal("dev", config({ acknowledgeHostChange: ["web-3"] })), "complinist:acknowledgeHostChange[0]: ", "'web-3' is no host in complinist:hosts (known: web-1, web-2)");
        includesAll(refusal("dev", config({ acknowledgeHostChange: "web-1" })), "complinist:acknowledgeHostChange: ", "a list of host names");
    });
});
