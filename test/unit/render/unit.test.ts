import * as assert from "assert";
import * as cp from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { APP_LOG_BOUND, renderContainerInstanceUnit, renderEnvFile, renderInstanceUnit, renderFailoverUnit, renderProxyUnit, renderServiceUnit } from "../../../infra/render/unit";
import { CONTAINER_DEFAULTS } from "../../../stacks/containerSchema";
import { requireTool } from "./bash";

const spec = { service: "complinist", user: "complinist", baseDir: "/opt/complinist", command: "bin/start" };

/** `systemd-analyze verify` of TEXT saved as NAME (an instance name like complinist@5001.service for the template). */
function verify(unitText: string, name: string): cp.SpawnSyncReturns<string> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "unit-"));
    const file = path.join(dir, name);
    fs.writeFileSync(file, unitText);
    return cp.spawnSync("systemd-analyze", ["verify", file], { encoding: "utf8", cwd: dir });
}

function needSystemdAnalyze(ctx: Mocha.Context): void {
    if (cp.spawnSync("systemd-analyze", ["--version"]).status === 0) return;
    if (process.env.CI) assert.fail("systemd-analyze is required in CI (apt-get install systemd)");
    ctx.skip();
}

const lines = (u: string) => u.split("\n");

/** The sandbox every unit shares; `systemd-analyze security` scores it (test/integration). */
const HARDENING = [
    "NoNewPrivileges=yes",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "PrivateDevices=yes",
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectControlGroups=yes",
    "RestrictNamespaces=yes",
    "RestrictSUIDSGID=yes",
    "LockPersonality=yes",
    "SystemCallArchitectures=native",
    "SystemCallFilter=@system-service",
];

function assertHardened(u: string, what: string): void {
    for (const line of HARDENING) assert.ok(lines(u).includes(line), `${what}: missing ${line}`);
    assert.ok(!/^PrivateUsers=/m.test(u), `${what}: PrivateUsers= fails on hosts without user namespaces`);
}

const units: ReadonlyArray<[string, string, string]> = [
    ["the instance template", "complinist@5001.service", renderInstanceUnit({ ...spec, command: `bin/start --x '100%' "$HOME"` })],
    ["the umbrella unit", "complinist.service", renderServiceUnit(spec)],
    ["the proxy unit", "complinist-proxy.service", renderProxyUnit({ ...spec, port: 5000 })],
    ["the proxy unit on a port below 1024", "complinist-proxy.service", renderProxyUnit({ ...spec, port: 80 })],
    ["the failover watch", "complinist-failover.service", renderFailoverUnit(spec)],
    ["the container instance template", "complinist@5001.service", renderContainerInstanceUnit({ ...spec, limits: CONTAINER_DEFAULTS })],
];

describe("renderContainerInstanceUnit (container mode's complinist@.service)", () => {
    it("hands container-run the service user and every limit, so a change of either is a change of the unit (a new container through the gate)", () => {
        const u = renderContainerInstanceUnit({ ...spec, limits: CONTAINER_DEFAULTS });
        assert.ok(lines(u).includes("ExecStart=/usr/local/sbin/complinist container-run %i --user complinist --memory 512m --pids 256 --tmp-size 64m --log-max-size 10m --log-max-files 3 --app-log-bound 64m"), u);
        assert.notStrictEqual(renderContainerInstanceUnit({ ...spec, user: "appsvc", limits: CONTAINER_DEFAULTS }), u);
        assert.notStrictEqual(renderContainerInstanceUnit({ ...spec, limits: { ...CONTAINER_DEFAULTS, pids: 512 } }), u);
    });
});

describe("app.log's writer in both modes (issue 29, finding 8)", () => {
    const release = renderInstanceUnit(spec);
    const container = renderContainerInstanceUnit({ ...spec, limits: CONTAINER_DEFAULTS });

    it("release mode: the command runs under the host program's log-pipe, as the service user, with app.log's bound", () => {
        const exec = lines(release).filter((x) => x.startsWith("ExecStart="));
        assert.deepStrictEqual(exec, [`ExecStart=/usr/local/sbin/complinist log-pipe ${APP_LOG_BOUND} /bin/sh -c "exec bin/start"`]);
        assert.ok(lines(release).includes("User=complinist"), "log-pipe and the writer it starts run as the service user");
    });

    it("container mode: container-run gets app.log's bound (it starts the writer as --user, never root)", () => {
        assert.match(container, new RegExp(`^ExecStart=/usr/local/sbin/complinist container-run %i --user complinist .* --app-log-bound ${APP_LOG_BOUND}$`, "m"));
        assert.ok(!/^User=/m.test(container), "the unit itself is root's (the docker CLI needs the engine's socket): the writer drops to --user");
    });

    it("the bound is a size the host program takes (digits and one unit), at least 1m and well under a day of disk", () => {
        assert.match(APP_LOG_BOUND, /^[1-9][0-9]*m$/);
        const mib = Number(APP_LOG_BOUND.slice(0, -1));
        assert.ok(mib >= 1 && mib <= 256, `${APP_LOG_BOUND}`);
    });

    it("systemd still opens app.log (root's file in root's directory) and hands it over: no path the app could have planted", () => {
        for (const u of [release, container]) {
            assert.ok(lines(u).includes("StandardOutput=append:/var/log/complinist/app.log"));
            assert.ok(lines(u).includes("StandardError=append:/var/log/complinist/app.log"));
        }
    });
});

describe("renderInstanceUnit (complinist@.service)", () => {
    const u = renderInstanceUnit(spec);

    it("runs one instance per port from instances/<port>, with PORT=<port> and that instance's env file", () => {
        assert.ok(lines(u).includes("WorkingDirectory=/opt/complinist/instances/%i"));
        assert.ok(lines(u).includes("Environment=PORT=%i"));
        assert.ok(lines(u).includes("EnvironmentFile=/etc/complinist/instance-%i.env"));
        assert.ok(lines(u).indexOf("Environment=PORT=%i") < lines(u).indexOf("EnvironmentFile=/etc/complinist/instance-%i.env"), "PORT first");
        assert.ok(lines(u).includes("PartOf=complinist.service"), "systemctl stop complinist stops the instances");
        assert.match(u, /^ExecStart=\/usr\/local\/sbin\/complinist log-pipe 64m \/bin\/sh -c "exec bin\/start"$/m);
        assert.match(u, /^User=complinist$/m);
        assert.match(u, /^Group=complinist$/m);
        assert.match(u, /^StandardOutput=append:\/var\/log\/complinist\/app\.log$/m);
        assert.match(u, /^Restart=on-failure$/m);
        assert.ok(!/^\[Install\]/m.test(u), "started by the activation (or the umbrella's wants), never enabled by itself");
    });

    it("is hardened: read-only system with only shared writable, no capabilities", () => {
        assertHardened(u, "instance");
        for (const line of ["CapabilityBoundingSet=", "AmbientCapabilities=", "ReadWritePaths=/opt/complinist/shared"]) {
            assert.ok(lines(u).includes(line), `missing ${line}`);
        }
    });

    it("leaves app.log to systemd: the app cannot write in the log directory, only shared/", () => {
        const rw = lines(u).filter((x) => x.startsWith("ReadWritePaths="));
        assert.deepStrictEqual(rw, ["ReadWritePaths=/opt/complinist/shared"]);
        assert.ok(!u.includes("ReadWritePaths=/var/log"), "the log directory is root's: a writable path there would let the app plant a link for root");
        assert.ok(lines(u).includes("StandardError=append:/var/log/complinist/app.log"), "stderr reaches app.log through systemd too");
    });

    it("quotes the command for systemd: %, $, quotes and backslashes cannot escape", () => {
        const q = renderInstanceUnit({ ...spec, command: `bin/start --x '100%' "$HOME" \\n` });
        assert.match(q, /^ExecStart=\/usr\/local\/sbin\/complinist log-pipe 64m \/bin\/sh -c "exec bin\/start --x '100%%' \\"\$\$HOME\\" \\\\n"$/m);
    });

    it("changes only when its inputs change (no timestamps or random ids)", () => {
        assert.strictEqual(renderInstanceUnit(spec), renderInstanceUnit({ ...spec }));
        assert.notStrictEqual(renderInstanceUnit(spec), renderInstanceUnit({ ...spec, command: "bin/other" }));
    });
});

describe("renderServiceUnit (complinist.service)", () => {
    const u = renderServiceUnit(spec);

    it("is what systemctl start|stop complinist acts on: it pulls in the proxy and the failover watch and is enabled at boot", () => {
        assert.ok(lines(u).includes("Wants=complinist-proxy.service complinist-failover.service"));
        assert.ok(lines(u).includes("After=complinist-proxy.service"));
        assert.ok(lines(u).includes("Type=oneshot"));
        assert.ok(lines(u).includes("RemainAfterExit=yes"));
        assert.ok(lines(u).includes("WantedBy=multi-user.target"));
    });

    it("checks `current` against what the proxy routes to before it starts (unsandboxed: it reads root's files)", () => {
        assert.deepStrictEqual(
            lines(u).filter((l) => l.startsWith("ExecStartPre=")),
            ["ExecStartPre=+/usr/local/sbin/complinist check-current"],
        );
    });

    it("is hardened and has no network at all (it runs /bin/true)", () => {
        assertHardened(u, "umbrella");
        for (const line of ["DynamicUser=yes", "PrivateNetwork=yes", "IPAddressDeny=any", "CapabilityBoundingSet=", "RestrictAddressFamilies=AF_UNIX"]) {
            assert.ok(lines(u).includes(line), `missing ${line}`);
        }
    });
});

describe("renderProxyUnit (complinist-proxy.service)", () => {
    it("runs HAProxy in master-worker mode on the stack's config, checked before start and reload", () => {
        const u = renderProxyUnit({ ...spec, port: 5000 });
        assert.ok(lines(u).includes("PartOf=complinist.service"));
        assert.ok(lines(u).includes("Type=notify"), "-Ws notifies systemd when it is ready");
        assert.ok(lines(u).includes("User=haproxy"));
        assert.ok(lines(u).includes("RuntimeDirectory=complinist-proxy"));
        assert.ok(lines(u).includes("RuntimeDirectoryMode=0750"), "its mode is explicit, not systemd's default");
        assert.ok(lines(u).includes("ExecStartPre=/usr/sbin/haproxy -c -q -f /etc/complinist/haproxy.cfg"));
        assert.ok(lines(u).includes("ExecStart=/usr/sbin/haproxy -Ws -f /etc/complinist/haproxy.cfg -p /run/complinist-proxy/haproxy.pid"));
        const reload = lines(u).filter((l) => l.startsWith("ExecReload="));
        assert.deepStrictEqual(reload, ["ExecReload=/usr/sbin/haproxy -c -q -f /etc/complinist/haproxy.cfg", "ExecReload=/bin/kill -USR2 $MAINPID"], "check, then a seamless reload (never a restart)");
        assert.ok(lines(u).includes("Restart=always"));
    });

    it("is hardened; only a port below 1024 gets CAP_NET_BIND_SERVICE", () => {
        const high = renderProxyUnit({ ...spec, port: 5000 });
        assertHardened(high, "proxy");
        assert.ok(lines(high).includes("CapabilityBoundingSet="));
        assert.ok(lines(high).includes("AmbientCapabilities="));
        assert.ok(!high.includes("CAP_NET_BIND_SERVICE"));
        const low = renderProxyUnit({ ...spec, port: 80 });
        assertHardened(low, "proxy on 80");
        assert.ok(lines(low).includes("CapabilityBoundingSet=CAP_NET_BIND_SERVICE"));
        assert.ok(lines(low).includes("AmbientCapabilities=CAP_NET_BIND_SERVICE"));
        assert.ok(!lines(low).includes("CapabilityBoundingSet="));
    });
});

describe("renderFailoverUnit (complinist-failover.service)", () => {
    it("runs the agent's failover watch with the service, restarted if it ever exits", () => {
        const u = renderFailoverUnit(spec);
        assert.ok(lines(u).includes("ExecStart=/usr/local/sbin/complinist failover-watch"), u);
        assert.ok(lines(u).includes("PartOf=complinist.service"), "stopping the service stops the watch: it never switches a stopped service");
        assert.ok(lines(u).includes("After=complinist-proxy.service"));
        assert.ok(lines(u).includes("Restart=always"));
        assert.ok(!/^\[Install\]/m.test(u), "started by the umbrella's Wants=, not enabled on its own");
    });
});

describe("systemd-analyze verify", () => {
    for (const [what, name, text] of units) {
        it(`${what} passes as ${name}`, function () {
            needSystemdAnalyze(this);
            // verify checks that ExecStart= binaries exist.
            if (text.includes("/usr/sbin/haproxy")) requireTool(this, "haproxy", ["-v"], "apt-get install haproxy");
            // The host program is installed beside the units on a host; here a stand-in at another path.
            const stand = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "host-program-")), "complinist");
            fs.writeFileSync(stand, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
            const r = verify(text.split("/usr/local/sbin/complinist ").join(`${stand} `), name);
            assert.strictEqual(r.status, 0, r.stderr);
            assert.strictEqual(r.stderr.trim(), "", r.stderr);
        });
    }

    it("a broken unit is caught (the check can fail)", function () {
        needSystemdAnalyze(this);
        const r = verify(renderInstanceUnit(spec).replace("Type=simple", "Type=bogus"), "complinist@5001.service");
        assert.notStrictEqual(r.stderr.trim(), "");
    });

    it("a missing executable is caught (the proxy unit's /usr/sbin/haproxy is checked for real)", function () {
        needSystemdAnalyze(this);
        const r = verify(renderProxyUnit({ ...spec, port: 5000 }).split("/usr/sbin/haproxy").join("/usr/sbin/no-such-haproxy"), "complinist-proxy.service");
        assert.notStrictEqual(r.status, 0);
        assert.match(r.stderr, /no-such-haproxy/);
    });
});

describe("renderEnvFile", () => {
    it("writes one quoted KEY=\"value\" per line", () => {
        assert.strictEqual(renderEnvFile({ APP_ENV: "dev", SECRET_KEY: 'a"b\\c$d%' }), '# Managed by the CompliNist Pulumi stack (mode 0600).\nAPP_ENV="dev"\nSECRET_KEY="a\\"b\\\\c$d%"\n');
    });

    it("refuses names and values that would break the file", () => {
        assert.throws(() => renderEnvFile({ "bad-name": "x" }), /UPPER_SNAKE_CASE/);
        assert.throws(() => renderEnvFile({ OK: "a\nINJECTED=1" }), /single line/);
    });
});
