import * as assert from "assert";
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { hostLayout } from "../../infra/render/layout";
import { renderLogrotate } from "../../infra/render/logrotate";
import { closeAllConnections, openTransport, type Connection } from "../../infra/transport";
import { showLogs } from "../../ops/logs";
import { STATUS_EXIT, type HostStatus } from "../../ops/status";
import { runStatus } from "../../ops/statusView";
import { resolveTarget, type Target } from "../../ops/target";
import { dockerOk } from "../../dev/container";
import { useHosts, type TestHost } from "../../dev/hosts";
import { AGENT_ARCHES, agentBinaryBySha, agentBuild } from "../../toolchain/agent";

/**
 * npm run status / npm run logs against a real host prepared by hand: a release directory,
 * the current link, a python3 server on the service port as the transient unit
 * complinist.service, revisions.log, app.log and deploy.log lines, and the host agent this
 * checkout builds (toolchain/agent.ts) as /usr/local/sbin/complinist with its agent.json, which
 * `npm run status` asks for the host's state. Independent of how a deploy activates a release,
 * so these tests only break when the tools (or the agent's `state`) do.
 */
const FAKE_APP = `import http.server, json, sys, time
port, version, started = int(sys.argv[1]), sys.argv[2], time.monotonic()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            body, ctype = json.dumps({"status": "healthy", "version": version, "uptime": round(time.monotonic() - started, 3)}), "application/json"
        else:
            body, ctype = "<h1>fake complinist</h1>", "text/html"
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *a):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
print("fake complinist %s listening on %d" % (version, port), flush=True)
server.serve_forever()
`;

const SETUP = `set -euo pipefail
base=/opt/complinist
mkdir -p $base/releases/1.0.0 $base/releases/1.1.0 /var/log/complinist
ln -sfn releases/1.1.0 $base/current
cat > /usr/local/lib/fake-complinist.py
systemd-run --quiet --unit=complinist python3 /usr/local/lib/fake-complinist.py 5000 1.1.0
for i in $(seq 1 10); do printf '2025-01-%02dT10:00:00Z\\tversion=1.0.0\\tsha256=%064d\\tby=ci@runner\\toutcome=activated\\n' "$i" "$i" >> $base/revisions.log; done
printf '2025-01-11T10:00:00Z\\tversion=1.1.0\\tsha256=%064d\\tby=ci@runner\\toutcome=activated previous=1.0.0\\n' 11 >> $base/revisions.log
for i in $(seq 1 50); do echo "app line $i" >> /var/log/complinist/app.log; done
for i in $(seq 1 8); do echo "deploy step $i" >> /var/log/complinist/deploy.log; done
for _ in $(seq 1 100); do curl -fsS -m 2 http://127.0.0.1:5000/health >/dev/null 2>&1 && exit 0; sleep 0.1; done
echo "the fake app never answered" >&2; exit 1
`;

/** The agent as `pulumi up` installs it: the binary for the host's architecture, root's 0755, and the configuration it reads. */
async function installAgent(h: TestHost): Promise<void> {
    const build = agentBuild({ log: (line) => console.error(line) });
    const machine = await h.run("uname -m");
    const arch = (AGENT_ARCHES as Record<string, (typeof AGENT_ARCHES)[keyof typeof AGENT_ARCHES] | undefined>)[machine];
    if (arch === undefined) throw new Error(`test host ${h.name} is ${machine}: the agent is built for ${Object.keys(AGENT_ARCHES).join(" and ")}`);
    const l = hostLayout("/opt/complinist", "complinist");
    await dockerOk(["cp", agentBinaryBySha(build.sha256[arch]), `${h.container}:${l.hostProgram}`], { timeoutMs: 60000 });
    const config = JSON.stringify({ v: 1, baseDir: "/opt/complinist", runtime: "process" });
    await h.run(`chown root:root ${l.hostProgram} && chmod 0755 ${l.hostProgram} && install -d -m 0711 ${l.envDir} && printf '%s\\n' '${config}' > ${l.envDir}/agent.json && chmod 0600 ${l.envDir}/agent.json`);
}

function stackFile(host: TestHost, version: string, key: "path" | "encrypted" | "none"): string {
    const keyLines = { path: "  complinist:sshPrivateKeyPath: deploy_key\n", encrypted: "  complinist:sshPrivateKey:\n    secure: v1:c2VjcmV0\n", none: "" }[key];
    return `config:
  complinist:version: ${version}
  complinist:rollbackVersion: ${version === "1.1.0" ? "1.0.0" : "1.1.0"}
  complinist:releases:
    1.0.0: { path: a.tar.gz, sha256: ${"a".repeat(64)} }
    1.1.0: { path: b.tar.gz, sha256: ${"b".repeat(64)} }
  complinist:hosts:
    - name: ${host.name}
      address: ${host.address}
      port: ${host.sshPort}
      hostKey: ${host.hostKey}
${keyLines}  complinist:service:
    command: bin/start
`;
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 20000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 100));
    }
}

describe("operator tools (status, logs, logrotate) against a real host", function () {
    const hosts = useHosts(1, { names: ["ops-1"] });
    let dir: string;

    /** The stack as `npm run status -- --no-pulumi` resolves it from a stack file in `dir`. */
    async function target(version: string, key: "path" | "encrypted" | "none" = "path", env: Record<string, string> = {}): Promise<Target> {
        fs.writeFileSync(path.join(dir, "Pulumi.it.yaml"), stackFile(hosts[0]!, version, key));
        return resolveTarget({ stack: "it", noPulumi: true }, { projectDir: dir, env: { PATH: "", ...env }, selectStack: () => assert.fail("no Pulumi CLI here"), readFile: (f) => fs.readFileSync(f, "utf8") });
    }

    async function status(t: Target, extra: Connection[] = []): Promise<{ code: number; text: string; hosts: HostStatus[] }> {
        const targets = await Promise.all([...t.connections, ...extra].map(async (c) => ({ name: c.name, address: `${c.address}:${c.port}`, transport: await openTransport(c) })));
        let json = "";
        const code = await runStatus(t.config, targets, { json: true }, { out: (s) => (json = s) });
        let text = "";
        await runStatus(t.config, targets, { json: false }, { out: (s) => (text = s) });
        return { code, text, hosts: (JSON.parse(json) as { hosts: HostStatus[] }).hosts };
    }

    before(async function () {
        // The first build of the agent (both architectures) takes a while; a warm cache, a second.
        this.timeout(600000);
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "ops-tools-"));
        fs.writeFileSync(path.join(dir, "deploy_key"), hosts[0]!.privateKey, { mode: 0o600 });
        const h = hosts[0]!;
        const setup = await h.exec(`cat > /tmp/setup.sh <<'EOF'\n${SETUP}EOF\ncat > /tmp/fake.py <<'EOF'\n${FAKE_APP}EOF\nbash /tmp/setup.sh < /tmp/fake.py`);
        assert.strictEqual(setup.code, 0, setup.stderr);
        await installAgent(h);
    });
    after(async function () {
        await closeAllConnections();
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it("status exits 0 on the declared version and shows the live release, health, units and the last 5 revisions", async function () {
        const { code, text, hosts: [h] } = await status(await target("1.1.0"));
        assert.strictEqual(code, STATUS_EXIT.ok, text);
        assert.strictEqual(h!.state, "ok");
        assert.deepStrictEqual(h!.current, { link: "releases/1.1.0", version: "1.1.0" });
        assert.deepStrictEqual(h!.releases, ["1.0.0", "1.1.0"]);
        assert.strictEqual(h!.health?.status, "healthy");
        assert.strictEqual(h!.health?.version, "1.1.0");
        assert.strictEqual(typeof h!.health?.uptime, "number");
        assert.strictEqual(h!.root?.code, 200);
        assert.strictEqual(h!.units["complinist.service"], "active");
        assert.deepStrictEqual(h!.lock, { held: "no" });
        assert.strictEqual(h!.revisions.length, 5);
        assert.match(h!.revisions[4]!, /^2025-01-11T10:00:00Z\tversion=1\.1\.0\t.*outcome=activated previous=1\.0\.0$/);
        assert.match(text, /ops-1 \(127\.0\.0\.1:\d+\)\s+OK/);
        assert.match(text, /OK: every host healthy on 1\.1\.0/);
    });

    it("status exits 1 and names both versions when the stack declares another one", async function () {
        const { code, text, hosts: [h] } = await status(await target("1.0.0"));
        assert.strictEqual(code, STATUS_EXIT.unhealthy, text);
        assert.ok(h!.problems.includes("live release is 1.1.0, declared version is 1.0.0"), h!.problems.join("\n"));
        assert.ok(h!.problems.some((p) => p.includes("reports version 1.1.0, declared version is 1.0.0")), h!.problems.join("\n"));
        assert.match(text, /PROBLEM\s+live release is 1\.1\.0, declared version is 1\.0\.0/);
    });

    it("status names the holder while a process holds the deploy lock, and ignores the owner file once it is free", async function () {
        const h = hosts[0]!;
        const lock = hostLayout("/opt/complinist", "complinist").lockFile;
        const held = `flock -n -E 75 ${lock} true; test $? -eq 75`;
        await h.exec(`systemd-run --quiet --unit=hold-lock flock ${lock} sleep 600 && echo "ci@runner pid 4242 since 2025-01-12T10:00:00Z" > ${lock}.owner`);
        await waitFor("the lock to be held", async () => (await h.exec(held)).code === 0);
        const during = await status(await target("1.1.0"));
        assert.deepStrictEqual(during.hosts[0]!.lock, { held: "yes", owner: "ci@runner pid 4242 since 2025-01-12T10:00:00Z" });
        assert.match(during.text, /lock\s+HELD by ci@runner pid 4242 since 2025-01-12T10:00:00Z/);
        assert.strictEqual(during.code, STATUS_EXIT.ok, "a held lock alone is not a failure");

        await h.exec("systemctl stop hold-lock");
        await waitFor("the lock to be free", async () => (await h.exec(held)).code !== 0);
        const after = await status(await target("1.1.0"));
        assert.deepStrictEqual(after.hosts[0]!.lock, { held: "no" });
        assert.match(after.text, /lock\s+free/);
    });

    it("status exits 2 when a host cannot be reached, and still reports the others", async function () {
        const t = await target("1.1.0");
        const gone: Connection = { ...(t.connections[0] as Extract<Connection, { kind: "ssh" }>), name: "gone-1", port: 1, timeoutMs: 2000 };
        const { code, text, hosts: hs } = await status(t, [gone]);
        assert.strictEqual(code, STATUS_EXIT.unreachable, text);
        assert.strictEqual(hs.find((x) => x.host === "ops-1")?.state, "ok");
        assert.match(hs.find((x) => x.host === "gone-1")?.error ?? "", /cannot reach host gone-1 at 127\.0\.0\.1:1/);
        assert.match(text, /gone-1 \(127\.0\.0\.1:1\)\s+UNREACHABLE/);
    });

    it("status exits 1 and names the missing agent on a host without it, the nothing it could read shown as such", async function () {
        const h = hosts[0]!;
        const program = hostLayout("/opt/complinist", "complinist").hostProgram;
        await h.run(`mv ${program} ${program}.away`);
        try {
            const { code, text, hosts: [x] } = await status(await target("1.1.0"));
            assert.strictEqual(code, STATUS_EXIT.unhealthy, text);
            assert.deepStrictEqual(x!.problems, [`the host agent is not installed (${program}): run pulumi up`]);
            assert.strictEqual(x!.current, undefined);
            assert.match(text, /live\s+none \(no current link\)/);
        } finally {
            await h.run(`mv ${program}.away ${program}`);
        }
        assert.strictEqual((await status(await target("1.1.0"))).code, STATUS_EXIT.ok);
    });

    it("status logs in with a key held by an ssh-agent when the stack file's key is encrypted", async function () {
        const sock = path.join(dir, "agent.sock");
        const agent = spawn("ssh-agent", ["-D", "-a", sock], { stdio: "ignore" });
        try {
            await waitFor("the ssh-agent socket", async () => fs.existsSync(sock), 10000);
            const add = spawnSync("ssh-add", ["-q", path.join(dir, "deploy_key")], { env: { ...process.env, SSH_AUTH_SOCK: sock }, encoding: "utf8" });
            assert.strictEqual(add.status, 0, add.stderr);
            const t = await target("1.1.0", "encrypted", { SSH_AUTH_SOCK: sock });
            assert.match(t.via, /SSH with the ssh-agent at /);
            const c = t.connections[0] as Extract<Connection, { kind: "ssh" }>;
            assert.strictEqual(c.privateKey, "", "no key text: the agent signs");
            const { code, text } = await status(t);
            assert.strictEqual(code, STATUS_EXIT.ok, text);
        } finally {
            agent.kill();
        }
    });

    it("logs prefixes every line with its host and source, and --lines limits each source", async function () {
        const t = await target("1.1.0");
        const out: string[] = [];
        const err: string[] = [];
        const targets = await Promise.all(t.connections.map(async (c) => ({ name: c.name, transport: await openTransport(c) })));
        const code = await showLogs(t.config, targets, { lines: 5, follow: false }, { out: (s) => out.push(s), err: (s) => err.push(s) });
        assert.strictEqual(code, 0, err.join("\n"));
        for (const line of out) assert.match(line, /^ops-1 (app\.log|deploy\.log|journal) +\| /, line);
        assert.deepStrictEqual(out.filter((l) => l.includes("app.log ")).map((l) => l.split("| ")[1]), ["app line 46", "app line 47", "app line 48", "app line 49", "app line 50"]);
        assert.deepStrictEqual(out.filter((l) => l.includes("deploy.log ")).map((l) => l.split("| ")[1]), ["deploy step 4", "deploy step 5", "deploy step 6", "deploy step 7", "deploy step 8"]);
        const journal = out.filter((l) => l.includes(" journal "));
        assert.ok(journal.length >= 1 && journal.length <= 5, journal.join("\n"));
        assert.ok(journal.some((l) => l.includes("fake complinist 1.1.0 listening on 5000")), journal.join("\n"));
    });

    it("logs --follow streams new lines as they are written until stopped, and leaves no reader on the host", async function () {
        const h = hosts[0]!;
        const t = await target("1.1.0");
        const out: string[] = [];
        const targets = await Promise.all(t.connections.map(async (c) => ({ name: c.name, transport: await openTransport(c) })));
        const stop = new AbortController();
        const done = showLogs(t.config, targets, { lines: 1, follow: true }, { out: (s) => out.push(s), err: (s) => out.push(s) }, stop.signal);
        await waitFor("the history lines", async () => out.some((l) => l.endsWith("| deploy step 8")) && out.some((l) => l.endsWith("| app line 50")));
        await h.exec("echo 'followed line' >> /var/log/complinist/app.log");
        await waitFor("the new line", async () => out.includes("ops-1 app.log    | followed line"));
        assert.match((await h.exec("pgrep -c -f '^tail -n 1 -F'")).stdout.trim(), /^2$/);
        stop.abort();
        assert.strictEqual(await done, 0, out.join("\n"));
        await waitFor("the readers to quit", async () => (await h.exec("pgrep -f '^(tail -n 1 -F|journalctl -u complinist)'")).code !== 0, 10000);
    });

    it("the logrotate policy passes logrotate -d, and a forced rotation leaves app.log.1 while the app keeps appending to app.log", async function () {
        const h = hosts[0]!;
        const l = hostLayout("/opt/complinist", "complinist");
        const policy = Buffer.from(renderLogrotate(l)).toString("base64");
        const prepare = await h.exec(
            [
                `useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin complinist`,
                // As every locked host script leaves them: the log directory and its files are root's.
                `chown root:root ${l.logDir} ${l.logFile} && chmod 0750 ${l.logDir} && chmod 0640 ${l.logFile}`,
                `echo ${policy} | base64 -d > ${hostLayout("/opt/complinist", "complinist").logrotateFile} && chmod 0644 ${hostLayout("/opt/complinist", "complinist").logrotateFile}`,
            ].join(" && "),
        );
        assert.strictEqual(prepare.code, 0, prepare.stderr);
        const debug = await h.exec(`logrotate -d ${hostLayout("/opt/complinist", "complinist").logrotateFile} 2>&1`);
        assert.strictEqual(debug.code, 0, debug.stdout);
        assert.doesNotMatch(debug.stdout, /error/i, debug.stdout);

        // Like the app's unit: systemd opens app.log once, with append:, for the writer's lifetime.
        const writer = `systemd-run --quiet --unit=app-writer -p User=complinist -p StandardOutput=append:${l.logFile} bash -c 'i=0; while :; do i=$((i+1)); echo "tick $i"; sleep 0.05; done'`;
        assert.strictEqual((await h.exec(writer)).code, 0);
        const ticks = async (file: string) => Number((await h.exec(`grep -c '^tick' ${file} || true`)).stdout.trim());
        await waitFor("the writer to log", async () => (await ticks(l.logFile)) > 5);
        const rotate = await h.exec(`logrotate -f -s /tmp/logrotate.state ${hostLayout("/opt/complinist", "complinist").logrotateFile} 2>&1`);
        assert.strictEqual(rotate.code, 0, rotate.stdout);
        const rotated = await h.exec(`cat ${l.logFile}.1`);
        assert.match(rotated.stdout, /^app line 1\n/, "the rotated file holds what was logged before");
        assert.match(rotated.stdout, /tick \d+\n$/);
        const sizeAfter = Number((await h.exec(`stat -c %s ${l.logFile}`)).stdout.trim());
        await waitFor("app.log to keep growing after the rotation", async () => Number((await h.exec(`stat -c %s ${l.logFile}`)).stdout.trim()) > sizeAfter + 50);
        const current = await h.exec(`head -c 200 ${l.logFile} | od -An -c | tr -d ' \\n'`);
        assert.doesNotMatch(current.stdout, /\\0/, "no hole of NUL bytes: the writer continued at the new end");
        assert.match((await h.exec(`head -n 1 ${l.logFile}`)).stdout, /^tick \d+\n$/);
        assert.match((await h.exec(`ls ${l.logDir}`)).stdout, /deploy\.log\.1/);
        assert.match((await h.exec(`stat -c '%U %G %a' ${l.deployLog}`)).stdout, /^root root 640\n$/, "deploy.log is re-created root's, not world-readable");
        await h.exec("systemctl stop app-writer");
    });
});
