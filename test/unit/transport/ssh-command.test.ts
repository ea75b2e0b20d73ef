import * as assert from "assert";
import * as cp from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as zlib from "zlib";
import { remoteCommand, SCRIPT_PATH } from "../../../infra/transport/ssh/exec";

/** The SSH command line of a host script (infra/transport/ssh/exec.ts remoteCommand). */
describe("the SSH command line of a host script", () => {
    const b64 = zlib.gzipSync(Buffer.from('echo "PATH=$PATH"; command -v timeout', "utf8")).toString("base64");

    it("calls every tool by its absolute path, through sudo -n for a non-root login", () => {
        const c = remoteCommand("deploy", "10.000", b64);
        assert.ok(c.startsWith(`/usr/bin/sudo -n /usr/bin/env PATH=${SCRIPT_PATH} /usr/bin/timeout --kill-after=2 10.000 /bin/bash --norc --noprofile -euo pipefail -c `), c);
        assert.match(c, /\| \/usr\/bin\/base64 -d \| \/bin\/gunzip\)" complinist-script$/);
        assert.ok(remoteCommand("root", "1.000", b64).startsWith("/usr/bin/env PATH="), "root needs no sudo");
    });

    it("a command of the service's name first on the caller's PATH never runs instead of a tool", function () {
        if (!fs.existsSync("/usr/bin/timeout") || !fs.existsSync("/bin/gunzip")) this.skip();
        const shadow = fs.mkdtempSync(path.join(os.tmpdir(), "shadow-"));
        try {
            for (const tool of ["timeout", "bash", "base64", "gunzip", "env"]) {
                fs.writeFileSync(path.join(shadow, tool), `#!/bin/sh\necho shadowed ${tool} >&2; exit 99\n`, { mode: 0o755 });
            }
            // As root logs in on a host: /usr/local/sbin (where the agent of a service named `timeout` would go) first.
            const r = cp.spawnSync("/bin/sh", ["-c", remoteCommand("root", "10.000", b64)], { encoding: "utf8", env: { PATH: `${shadow}:/usr/local/sbin:/usr/bin:/bin` } });
            assert.strictEqual(r.status, 0, r.stderr);
            assert.doesNotMatch(r.stdout + r.stderr, /shadowed/);
            assert.strictEqual(r.stdout, `PATH=${SCRIPT_PATH}\n/usr/bin/timeout\n`);
        } finally {
            fs.rmSync(shadow, { recursive: true, force: true });
        }
    });
});
