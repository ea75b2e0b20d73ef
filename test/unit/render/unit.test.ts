import * as assert from "assert";
import * as cp from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { renderEnvFile, renderUnit } from "../../../infra/render/unit";

const spec = { service: "complinist", user: "complinist", baseDir: "/opt/complinist", command: "bin/start" };

function verify(unitText: string, name = "complinist.service"): cp.SpawnSyncReturns<string> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "unit-"));
    const file = path.join(dir, name);
    fs.writeFileSync(file, unitText);
    return cp.spawnSync("systemd-analyze", ["verify", file], { encoding: "utf8", cwd: dir });
}

describe("renderUnit", () => {
    it("runs the command inside <baseDir>/current with the env file", () => {
        const u = renderUnit(spec);
        assert.match(u, /^WorkingDirectory=\/opt\/complinist\/current$/m);
        assert.match(u, /^EnvironmentFile=\/etc\/complinist\/complinist\.env$/m);
        assert.match(u, /^ExecStart=\/bin\/sh -c "exec bin\/start"$/m);
        assert.match(u, /^User=complinist$/m);
        assert.match(u, /^StandardOutput=append:\/var\/log\/complinist\/app\.log$/m);
    });

    it("is hardened: read-only system with only logs and shared writable, no capabilities", () => {
        const u = renderUnit(spec);
        for (const line of ["NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes", "CapabilityBoundingSet=", "ReadWritePaths=/var/log/complinist /opt/complinist/shared"]) {
            assert.ok(u.split("\n").includes(line), `missing ${line}`);
        }
        assert.ok(!/^PrivateUsers=/m.test(u), "PrivateUsers= fails on hosts without user namespaces");
    });

    it("quotes the command for systemd: %, $, quotes and backslashes cannot escape", () => {
        const u = renderUnit({ ...spec, command: `bin/start --x '100%' "$HOME" \\n` });
        assert.match(u, /^ExecStart=\/bin\/sh -c "exec bin\/start --x '100%%' \\"\$\$HOME\\" \\\\n"$/m);
    });

    it("changes only when its inputs change (no timestamps or random ids)", () => {
        assert.strictEqual(renderUnit(spec), renderUnit({ ...spec }));
        assert.notStrictEqual(renderUnit(spec), renderUnit({ ...spec, command: "bin/other" }));
    });

    it("passes systemd-analyze verify", function () {
        if (cp.spawnSync("systemd-analyze", ["--version"]).status !== 0) {
            if (process.env.CI) assert.fail("systemd-analyze is required in CI (apt-get install systemd)");
            this.skip();
        }
        const r = verify(renderUnit({ ...spec, command: `bin/start --x '100%' "$HOME"` }));
        assert.strictEqual(r.status, 0, r.stderr);
        assert.strictEqual(r.stderr.trim(), "", r.stderr);
    });

    it("a broken unit is caught by systemd-analyze verify (the check can fail)", function () {
        if (cp.spawnSync("systemd-analyze", ["--version"]).status !== 0) this.skip();
        const r = verify(renderUnit(spec).replace("Type=simple", "Type=bogus"));
        assert.notStrictEqual(r.stderr.trim(), "");
    });
});

describe("renderEnvFile", () => {
    it("writes one quoted KEY=\"value\" per line", () => {
        assert.strictEqual(renderEnvFile({ PORT: "5000", SECRET_KEY: 'a"b\\c$d%' }), '# Managed by the CompliNist Pulumi stack (mode 0600).\nPORT="5000"\nSECRET_KEY="a\\"b\\\\c$d%"\n');
    });

    it("refuses names and values that would break the file", () => {
        assert.throws(() => renderEnvFile({ "bad-name": "x" }), /UPPER_SNAKE_CASE/);
        assert.throws(() => renderEnvFile({ OK: "a\nINJECTED=1" }), /single line/);
    });
});
