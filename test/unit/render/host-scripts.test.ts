import * as assert from "assert";
import * as cp from "child_process";
import { hostLayout } from "../../../infra/render/layout";
import { renderActivate, renderActivationRead } from "../../../infra/render/activation";
import { parseKeyValues } from "../../../infra/render/protocol";
import { renderReleaseDelete, renderReleaseInstall, renderReleaseProbe } from "../../../infra/render/release";
import { renderServiceApply, renderServiceDelete, renderServiceRead } from "../../../infra/render/service";
import { q } from "../../../infra/render/shell";

const l = hostLayout("/opt/complinist", "complinist");
const activation = {
    service: "complinist",
    version: "1.0.0",
    sha256: "a".repeat(64),
    port: 5000,
    healthPath: "/health",
    timeoutSeconds: 30,
    intervalMs: 500,
    who: "ci@runner",
    systemd: true,
};

const scripts: Record<string, string> = {
    releaseProbe: renderReleaseProbe(l, "1.0.0"),
    releaseInstallUpload: renderReleaseInstall(l, { version: "1.0.0", sha256: "a".repeat(64), source: { uploaded: "/opt/complinist/releases/.upload-1.0.0.tar.gz" } }),
    releaseInstallUrl: renderReleaseInstall(l, { version: "1.0.0", sha256: "a".repeat(64), source: { url: "https://example.test/a.tar.gz" } }),
    releaseDelete: renderReleaseDelete(l, "1.0.0"),
    serviceApply: renderServiceApply(l, { service: "complinist", user: "complinist", unitText: "[Unit]\n" }, true),
    serviceRead: renderServiceRead(l, "complinist", true),
    serviceDelete: renderServiceDelete(l, "complinist", true),
    activate: renderActivate(l, activation),
    activateWithHook: renderActivate(l, { ...activation, beforeActivate: "bin/migrate --yes 'it''s'" }),
    activationRead: renderActivationRead(l, "complinist", true),
};

const hasShellcheck = cp.spawnSync("shellcheck", ["--version"]).status === 0;

describe("host scripts", () => {
    for (const [name, script] of Object.entries(scripts)) {
        it(`${name} parses with bash -n`, () => {
            const r = cp.spawnSync("bash", ["-n"], { input: script, encoding: "utf8" });
            assert.strictEqual(r.status, 0, r.stderr);
        });
        it(`${name} passes shellcheck`, function () {
            if (!hasShellcheck) {
                if (process.env.CI) assert.fail("shellcheck is required in CI");
                this.skip();
            }
            const r = cp.spawnSync("shellcheck", ["-s", "bash", "-S", "warning", "-"], { input: script, encoding: "utf8" });
            assert.strictEqual(r.status, 0, r.stdout);
        });
    }

    it("quotes every value: a hostile value stays one literal word", () => {
        for (const hostile of ["$(touch /tmp/pwned)", "`id`", "a'b", "x; rm -rf /", "a\nb"]) {
            const r = cp.spawnSync("bash", ["-c", `printf '%s' ${q(hostile)}`], { encoding: "utf8" });
            assert.strictEqual(r.stdout, hostile);
        }
    });

    it("the activation checks the health body for status and the exact version", () => {
        const s = scripts.activate as string;
        assert.ok(s.includes("'http://127.0.0.1:5000/health'"));
        assert.ok(s.includes('"status"[[:space:]]*:[[:space:]]*"healthy"'));
        assert.ok(s.includes('mv -T "$current.tmp.$$" "$current"'), "switch by rename(2)");
    });

    it("the service script reads the env file from stdin, never from its own text", () => {
        assert.ok(!(scripts.serviceApply as string).includes("SECRET"));
        assert.ok((scripts.serviceApply as string).includes("cat > '/etc/complinist/complinist.env.tmp'"));
    });

    it("parses key=value output, keeping '=' inside values", () => {
        assert.deepStrictEqual(parseKeyValues("a=1\nnoise\nseen=HTTP 200 {\"x\":\"=\"}\n"), { a: "1", seen: 'HTTP 200 {"x":"="}' });
    });
});
