import * as assert from "assert";
import * as path from "path";
import { buildArtifacts, BuiltArtifact } from "../../scripts/build-artifacts";
import { ProgramConfig, RealEngine } from "./engine";
import { TestHost, useHosts, hostEntry } from "../../dev/hosts";

/**
 * The privilege rule on a real host: root (the deploy, the host program) never appends to,
 * chmods or chowns a path the service user could have replaced, nor follows a link there.
 * The attacker is the service user itself (`runuser -u complinist`), planting links from
 * /var/log/complinist/ to a root-only file. The deploys run through the real Pulumi CLI
 * (test/e2e/engine.ts). Host state is observed through docker exec.
 */

const REPO = path.resolve(__dirname, "..", "..");
const LOG_DIR = "/var/log/complinist";
const TARGET = "/etc/complinist-target";

describe("privilege rule on a real host", function () {
    this.timeout(600000);
    const hosts: TestHost[] = useHosts(1, { names: ["priv-1"] });
    let arts: Record<string, BuiltArtifact>;
    let driver: RealEngine;

    const sh = (cmd: string) => (hosts[0] as TestHost).run(cmd);
    /** Everything root could have changed on the target: content hash, owner, mode, link count, mtime. */
    const fingerprint = () => sh(`echo "$(sha256sum < ${TARGET} | cut -d' ' -f1) $(stat -c '%U:%G %a %h %Y' ${TARGET})"`);
    const asServiceUser = async (cmd: string) => (hosts[0] as TestHost).exec(`runuser -u complinist -- bash -c ${JSON.stringify(cmd)}`);

    function config(version: string, environment: Record<string, string>): ProgramConfig {
        const h = hosts[0] as TestHost;
        return {
            "complinist:mode": "release",
            "complinist:version": version,
            "complinist:releases": Object.fromEntries(
                ["1.0.0", "1.2.0"].map((v) => [v, { path: path.relative(REPO, (arts[v] as BuiltArtifact).file), sha256: (arts[v] as BuiltArtifact).sha256 }]),
            ),
            "complinist:hosts": [hostEntry(h)],
            "complinist:sshPrivateKey": h.privateKey,
            "complinist:service": { command: "bin/start", environment },
            "complinist:health": { timeoutSeconds: 10, intervalMs: 300 },
        };
    }
    const up = (c: ProgramConfig) => driver.up(c, ["complinist:sshPrivateKey"]);

    before(async () => {
        const built = await buildArtifacts(path.join(REPO, ".build", "itest-artifacts"));
        arts = Object.fromEntries(built.map((a) => [a.version, a]));
        driver = new RealEngine({ stack: "itest-privilege", env: { COMPLINIST_DEPLOYER: "itest" } });
    });
    after(async () => {
        await driver?.close();
    });

    it("a deploy leaves the log directory root:root 0750 and app.log, deploy.log and revisions.log root:root 0640", async () => {
        const r = await up(config("1.0.0", { COMPLINIST_ENV: "itest" }));
        assert.strictEqual(r.error, undefined);
        assert.strictEqual(await sh(`stat -c '%U:%G %a' ${LOG_DIR}`), "root:root 750");
        for (const f of [`${LOG_DIR}/app.log`, `${LOG_DIR}/deploy.log`, "/opt/complinist/revisions.log"]) {
            assert.strictEqual(await sh(`stat -c '%F %U:%G %a' ${f}`), "regular file root:root 640", f);
        }
        assert.strictEqual(await sh("stat -c '%U:%G %a' /opt/complinist/shared"), "complinist:complinist 750");
        assert.match(await sh(`cat ${LOG_DIR}/app.log`), /complinist 1\.0\.0 listening/, "systemd opens app.log for the app");
    });

    it("the service user can no longer replace deploy.log or app.log by a link to a root file", async () => {
        await sh(`printf 'root only\\n' > ${TARGET} && chmod 0600 ${TARGET}`);
        const before = await fingerprint();
        for (const f of ["deploy.log", "app.log"]) {
            const r = await asServiceUser(`ln -sfn ${TARGET} ${LOG_DIR}/${f}`);
            assert.notStrictEqual(r.code, 0, `${f}: the link was planted`);
            assert.match(r.stderr, /Permission denied/, f);
            assert.strictEqual(await sh(`stat -c %F ${LOG_DIR}/${f}`), "regular file");
        }
        assert.strictEqual(await fingerprint(), before);
    });

    it("migrating a host with the old layout: the service apply and a failed activation never follow the links the service user planted; app.log gets the app's output", async () => {
        // The old layout: the service user owned the log directory and planted links in it.
        await sh(`chown complinist:complinist ${LOG_DIR} && chmod 0750 ${LOG_DIR}`);
        for (const f of ["deploy.log", "app.log"]) {
            const r = await asServiceUser(`ln -sfn ${TARGET} ${LOG_DIR}/${f}`);
            assert.strictEqual(r.code, 0, r.stderr);
        }
        assert.strictEqual(await sh(`stat -c %F ${LOG_DIR}/deploy.log`), "symbolic link");
        const before = await fingerprint();

        // A changed env re-applies the ServiceUnit; the broken 1.2.0 then fails its gate (writing deploy.log and revisions.log).
        const r = await up(config("1.2.0", { COMPLINIST_ENV: "itest-changed" }));
        assert.ok(r.error, "the broken release must fail its gate");
        assert.match(r.error, /1\.2\.0 failed its gate/);
        assert.match(await sh("tail -n 1 /opt/complinist/revisions.log"), /version=1\.2\.0.*outcome=failed/);

        assert.strictEqual(await fingerprint(), before, "the link target's content, owner, mode, links and mtime are untouched");
        assert.strictEqual(await sh(`stat -c '%U:%G %a' ${LOG_DIR}`), "root:root 750");
        for (const f of ["app.log", "deploy.log"]) {
            assert.strictEqual(await sh(`stat -c '%F %U:%G %a %h' ${LOG_DIR}/${f}`), "regular file root:root 640 1", f);
        }
        assert.match(await sh(`cat ${LOG_DIR}/deploy.log`), /service complinist: units, env file and host program applied/);
        assert.match(await sh(`cat ${LOG_DIR}/app.log`), /complinist 1\.2\.0 listening/, "the new instance's output reached the fresh app.log");
        assert.match(await sh("curl -sS -m 5 http://127.0.0.1:5000/health"), /"version": ?"1\.0\.0"/, "1.0.0 still serves");
    });
});
