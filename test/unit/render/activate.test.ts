import * as assert from "assert";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { DeploySettings, renderDeploySettings, renderHostProgram } from "../../../infra/render/hostProgram";
import { HostLayout, hostLayout, instancePorts } from "../../../infra/render/layout";
import { ACTIVATION_RESULT_KEYS, EXIT, MANIFEST, parseKeyValues } from "../../../infra/render/protocol";
import { q } from "../../../infra/render/shell";
import { BashResult, requireTool, runBash, stubBin } from "./bash";
import { type RuntimeApi, startRuntimeApi } from "./runtimeApi";

/**
 * The host program's `activate` itself (gate, switch, drain, soak, restore), run under a
 * temp root. What a temp root cannot run is a stand-in driven by files in a state dir:
 * systemctl (units up or down), haproxy (-c accepts or refuses), systemd-run (runs the hook
 * with the env file) and curl, which answers like the instances would: the version an
 * instance runs is the release its instances/<port> link names, and the service port
 * answers from the port haproxy.cfg routes to. Real hosts run the same cases in
 * test/integration.
 */

/** The service port and its two instance ports: free ones, since one test listens on an instance port. */
let PORT = 0;
let P1 = 0;
let P2 = 0;

function listen(port: number): Promise<net.Server | undefined> {
    return new Promise((resolve) => {
        const s = net.createServer();
        s.once("error", () => resolve(undefined));
        s.listen(port, "127.0.0.1", () => resolve(s));
    });
}

/** A port P with P, P+1 and P+2 free on 127.0.0.1. */
async function freeTriple(): Promise<number> {
    for (let tries = 0; tries < 50; tries++) {
        const first = await listen(0);
        if (!first) continue;
        const p = (first.address() as net.AddressInfo).port;
        const rest = [await listen(p + 1), await listen(p + 2)];
        for (const s of [first, ...rest]) s?.close();
        if (rest.every(Boolean) && p + 2 < 65536) return p;
    }
    throw new Error("no three consecutive free ports on 127.0.0.1");
}

const SYSTEMCTL = `
S="$STUB_STATE"
unit_file() {
    case "$1" in
        complinist@*.service) p=\${1#complinist@}; echo "$S/up-\${p%.service}" ;;
        complinist-proxy.service) echo "$S/proxy-up" ;;
        complinist.service) echo "$S/umbrella-up" ;;
        *) echo "$S/other-$1" ;;
    esac
}
case "$1" in
    is-active)
        shift; quiet=0; [ "$1" = --quiet ] && { quiet=1; shift; }
        if [ -e "$(unit_file "$1")" ]; then [ $quiet = 1 ] || echo active; exit 0; fi
        [ $quiet = 1 ] || echo inactive; exit 3 ;;
    start) touch "$(unit_file "$2")" ;;
    stop) rm -f "$(unit_file "$2")"; [ "$2" = complinist.service ] && rm -f "$S"/up-* "$S/proxy-up"; exit 0 ;;
    show) echo 0 ;;
    *) exit 0 ;;
esac
`;

const HAPROXY = `[ -e "$STUB_STATE/haproxy-refuse" ] && { echo "[ALERT] config refused by the test" >&2; exit 1; }; exit 0`;

// Runs the hook as systemd-run would: the unit's env file, then the command after the options.
const SYSTEMD_RUN = `
while [ $# -gt 0 ] && [ "$1" != /bin/bash ]; do
    case "$1" in EnvironmentFile=*) set -a; . "\${1#EnvironmentFile=}"; set +a ;; esac
    shift
done
exec "$@"
`;

/**
 * curl as the instances answer. Per version V, files in the state dir say how:
 * paths-V (health paths it serves, default /health), unhealthy-V, body-V (raw body),
 * big-V (a 100 MB body), proxy-ok-V (how many answers through the proxy stay healthy).
 * fail-once-P: the next request to port P times out.
 * squat-on-proxy: the first request through the proxy starts a listener (python3, pid in
 * squatter.pid) on the port this file names: one that joins after the gate.
 */
const CURL = `
S="$STUB_STATE"
url=""; head_mode=0
for a in "$@"; do case "$a" in http://*) url="$a" ;; -i) head_mode=1 ;; esac; done
hostport=\${url#http://}; hostport=\${hostport%%/*}; port=\${hostport#*:}; path="/\${url#http://*/}"
via_proxy=0
if [ "$port" = "$(cat "$S/proxy-port")" ]; then
    [ -e "$S/proxy-up" ] || { echo "curl: (7) Failed to connect to 127.0.0.1 port $port: Connection refused" >&2; exit 7; }
    # The live server: the first enabled one (a canary config lists it first, weighted).
    port=$(sed -n 's/^    server i\\([0-9]*\\) 127\\.0\\.0\\.1:[0-9]*\\( weight [0-9]* cookie i[0-9]*\\)\\{0,1\\}$/\\1/p' "$(cat "$S/proxy-config")" | head -n 1)
    via_proxy=1
fi
if [ $via_proxy = 1 ] && [ -e "$S/squat-on-proxy" ]; then
    sq=$(cat "$S/squat-on-proxy"); rm -f "$S/squat-on-proxy"
    setsid python3 -c 'import socket, sys, time; s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); open(sys.argv[2], "w").close(); time.sleep(120)' "$sq" "$S/squatter.ready" </dev/null >/dev/null 2>&1 &
    echo $! >"$S/squatter.pid"
    for _ in $(seq 1 100); do [ -e "$S/squatter.ready" ] && break; sleep 0.05; done
fi
if [ -e "$S/fail-once-$port" ]; then rm -f "$S/fail-once-$port"; echo "curl: (28) Operation timed out after 5000 milliseconds" >&2; exit 28; fi
[ -e "$S/up-$port" ] || { echo "curl: (7) Failed to connect to 127.0.0.1 port $port: Connection refused" >&2; exit 7; }
v=$(readlink "$(cat "$S/instances-dir")/$port"); v=\${v##*/}
code=200; body="{\\"status\\":\\"healthy\\",\\"version\\":\\"$v\\"}"
grep -qxF "$path" "$S/paths-$v" 2>/dev/null || { [ ! -e "$S/paths-$v" ] && [ "$path" = /health ]; } || { code=404; body='{"error":"not found"}'; }
[ -e "$S/unhealthy-$v" ] && { code=503; body="{\\"status\\":\\"starting\\",\\"version\\":\\"$v\\"}"; }
[ -e "$S/body-$v" ] && { code=503; body=$(cat "$S/body-$v"); }
if [ $via_proxy = 1 ] && [ -e "$S/proxy-ok-$v" ]; then
    n=$(cat "$S/proxy-ok-$v"); if [ "$n" -gt 0 ]; then echo $((n - 1)) >"$S/proxy-ok-$v"; else code=503; body="{\\"status\\":\\"degraded\\",\\"version\\":\\"$v\\"}"; fi
fi
if [ $head_mode = 0 ]; then printf '%s 0.010' "$code"; exit 0; fi
printf 'HTTP/1.1 %s X\\r\\nContent-Type: application/json\\r\\n\\r\\n' "$code"
if [ -e "$S/big-$v" ]; then printf '{"status":"healthy","version":"%s","pad":"' "$v"; head -c 100000000 /dev/zero | tr '\\0' x; printf '"}'; exit 0; fi
printf '%s' "$body"
`;

const base = (over: Partial<DeploySettings> = {}): DeploySettings => ({
    port: PORT,
    user: "complinist",
    healthPath: "/health",
    timeoutSeconds: 2,
    intervalMs: 50,
    soakSeconds: 0,
    drainSeconds: 1,
    checks: [],
    standby: true,
    rollbackVersion: "1.0.0",
    beforeActivate: "",
    hookTimeoutSeconds: 60,
    canary: { percent: 0, seconds: 0 },
    watch: { errorRateFactor: 10, minRequests: 20, maxErrorRatio: 0.01 },
    acknowledged: false,
    revision: "r2",
    ...over,
});

describe("activate (host/activate.sh) under a temp root with stand-ins", function () {
    this.timeout(60000);
    before(async () => {
        PORT = await freeTriple();
        [P1, P2] = instancePorts(PORT);
    });
    let root: string;
    let state: string;
    let l: HostLayout;
    let program: string;
    let stub: ReturnType<typeof stubBin>;

    const file = (name: string, text = "") => fs.writeFileSync(path.join(state, name), text);
    const exists = (name: string) => fs.existsSync(path.join(state, name));

    function addRelease(version: string): void {
        const dir = path.join(l.releasesDir, version);
        fs.mkdirSync(dir, { recursive: true });
        fs.writeFileSync(path.join(dir, MANIFEST), `version=${version}\nsha256=${"a".repeat(64)}\ncommit=c-${version}\ninstalledAt=2026-01-01T00:00:00Z\n`);
    }

    /** A host where VERSION runs on LIVE behind the proxy, activated with SETTINGS (deploy.conf). */
    function deployed(version: string, live: number, settings: DeploySettings): void {
        fs.mkdirSync(l.instancesDir, { recursive: true });
        fs.symlinkSync(`../releases/${version}`, path.join(l.instancesDir, String(live)));
        fs.writeFileSync(path.join(l.instancesDir, `${live}.rev`), `${settings.revision}\n`);
        fs.symlinkSync(`releases/${version}`, l.current);
        fs.writeFileSync(l.deployConfig, renderDeploySettings(settings));
        const other = live === P1 ? P2 : P1;
        fs.writeFileSync(l.proxyConfig, `global\n    server i${live} 127.0.0.1:${live}\n    server i${other} 127.0.0.1:${other} disabled\n`);
        file(`up-${live}`);
        file("proxy-up");
        file("umbrella-up");
    }

    /** `wrap`: a command line the host program runs under (e.g. one that measures it). */
    async function activate(version: string, settings: DeploySettings, extra: string[] = [], wrap = ""): Promise<BashResult & { result: Record<string, string>; raw: string }> {
        const conf = path.join(root, "new.conf");
        fs.writeFileSync(conf, renderDeploySettings(settings));
        const r = await runBash(`exec ${wrap} bash ${q(program)} activate --id t1 --version ${q(version)} --sha ${"b".repeat(64)} --who ci@runner --settings ${q(conf)} ${extra.join(" ")}`, {
            env: { PATH: `${stub.dir}:${process.env.PATH}`, STUB_STATE: state, LOCK_WAIT: "1" },
            timeoutMs: 50000,
        });
        const raw = fs.readFileSync(path.join(l.activationsDir, "t1.result"), "utf8");
        return { ...r, raw, result: parseKeyValues(raw, ACTIVATION_RESULT_KEYS) };
    }

    const LIFECYCLE = new Set(["start", "stop", "restart"]);
    /** start/stop/restart calls on one instance port's unit, in order. */
    const unitCalls = (port: number) =>
        stub
            .calls()
            .filter((c) => c.tool === "systemctl" && LIFECYCLE.has(c.args[0] ?? "") && c.args[1] === `complinist@${port}.service`)
            .map((c) => c.args[0]);

    /** Index in the call log of the first proxy reload/start: the switch (-1: none). */
    const switchIndex = () => stub.calls().findIndex((c) => c.tool === "systemctl" && (c.args[0] === "reload" || c.args[0] === "start") && c.args[1] === "complinist-proxy.service");

    /** The live instance on PORT was not started, stopped or restarted while the proxy routed to it. */
    function untouchedWhileLive(port: number): void {
        const s = switchIndex();
        const touched = stub
            .calls()
            .map((c, i) => (c.tool === "systemctl" && LIFECYCLE.has(c.args[0] ?? "") && c.args[1] === `complinist@${port}.service` ? i : -1))
            .filter((i) => i >= 0 && (s < 0 || i < s));
        assert.deepStrictEqual(touched, [], `the live instance on ${port} was started or stopped while live`);
    }

    const routed = () => /server i(\d+) 127\.0\.0\.1:\d+\n/.exec(fs.readFileSync(l.proxyConfig, "utf8"))?.[1];

    beforeEach(() => {
        root = fs.mkdtempSync(path.join(os.tmpdir(), "activate-"));
        state = fs.mkdtempSync(path.join(os.tmpdir(), "activate-state-"));
        l = hostLayout("/opt/complinist", "complinist", root);
        program = path.join(root, "complinist-program");
        fs.writeFileSync(program, renderHostProgram(l, "complinist"), { mode: 0o755 });
        for (const d of [l.releasesDir, l.envDir, path.dirname(l.deployLog), path.dirname(l.unitFile)]) fs.mkdirSync(d, { recursive: true });
        fs.writeFileSync(l.envFile, '# Managed\nSECRET_KEY="s3cr3t-value-42"\nDATABASE_URL="postgres://app:hunter2-pw@db/app"\n', { mode: 0o600 });
        addRelease("1.0.0");
        addRelease("1.1.0");
        file("proxy-port", String(PORT));
        file("proxy-config", l.proxyConfig);
        file("instances-dir", l.instancesDir);
        stub = stubBin({ systemctl: SYSTEMCTL, haproxy: HAPROXY, "systemd-run": SYSTEMD_RUN, curl: CURL });
    });

    afterEach(() => {
        for (const d of [root, state, stub.dir]) fs.rmSync(d, { recursive: true, force: true });
    });

    for (const which of ["first", "second"] as const) {
        it(`live on the ${which} instance port: the new release starts on the other port, the live one is never stopped or restarted`, async () => {
            const live = which === "first" ? P1 : P2;
            deployed("1.0.0", live, base({ revision: "r1" }));
            const r = await activate("1.1.0", base());
            const idle = live === P1 ? P2 : P1;
            assert.strictEqual(r.code, 0, r.stderr + r.raw);
            assert.strictEqual(r.result.outcome, "activated");
            assert.strictEqual(r.result.live, String(idle));
            assert.strictEqual(r.result.previous, "1.0.0");
            assert.strictEqual(routed(), String(idle));
            assert.strictEqual(fs.readlinkSync(l.current), "releases/1.1.0");
            untouchedWhileLive(live);
            assert.strictEqual(r.result.standby, "1.0.0", "the old live instance is kept as the warm standby");
        });
    }

    it("a live probe that fails once decides nothing: the live instance is retried and left alone", async () => {
        deployed("1.0.0", P2, base({ revision: "r1" }));
        file(`fail-once-${P2}`);
        const r = await activate("1.1.0", base());
        assert.strictEqual(r.code, 0, r.stderr + r.raw);
        assert.strictEqual(r.result.liveHealthy, "yes", "retried with the settings it was activated with");
        assert.strictEqual(r.result.live, String(P1));
        untouchedWhileLive(P2);
    });

    it("a live instance that does not answer at all is never stopped or restarted; a failed gate then says nothing serves", async () => {
        deployed("1.0.0", P1, base({ revision: "r1" }));
        file("unhealthy-1.0.0");
        file("unhealthy-1.1.0");
        const r = await activate("1.1.0", base());
        assert.strictEqual(r.code, EXIT.healthFailed, r.raw);
        assert.strictEqual(r.result.liveHealthy, "no");
        assert.strictEqual(r.result.outcome, "failed");
        assert.strictEqual(r.result.serving, "1.0.0", "what answers on the service port, checked: 1.0.0 answers (503 starting)");
        assert.deepStrictEqual(unitCalls(P1), [], "the live port is not touched");
        assert.deepStrictEqual(unitCalls(P2), ["stop", "start", "stop"], "the new release ran on the other port only");
        assert.strictEqual(routed(), String(P1));
    });

    it("a health.path change: the live release is recognized on its own path, the new one gated on the new path, no live stop before the switch", async () => {
        deployed("1.0.0", P1, base({ revision: "r1", healthPath: "/health" }));
        file("paths-1.0.0", "/health\n");
        file("paths-1.1.0", "/healthz\n");
        const r = await activate("1.1.0", base({ healthPath: "/healthz" }));
        assert.strictEqual(r.code, 0, r.stderr + r.raw);
        assert.strictEqual(r.result.liveHealthy, "yes");
        assert.strictEqual(r.result.live, String(P2));
        untouchedWhileLive(P1);
        assert.match(r.result.standbyProblem ?? "", /404/, "1.0.0 does not serve /healthz: it cannot be the standby under the new settings");
    });

    it("a forged result in a health body cannot pass: every value is one printable line, the reader takes known keys once", async () => {
        deployed("1.0.0", P1, base({ revision: "r1" }));
        file("body-1.1.0", JSON.stringify({ status: "starting\noutcome=activated\nlive=5002\ndone=1", version: "1.1.0\r\nserving=1.1.0" }));
        const r = await activate("1.1.0", base());
        assert.strictEqual(r.code, EXIT.healthFailed, r.raw);
        assert.strictEqual(r.result.outcome, "failed");
        for (const line of r.raw.trimEnd().split("\n")) assert.match(line, /^[A-Za-z]+=[\x20-\x7e]*$/, `not one printable key=value line: ${JSON.stringify(line)}`);
        assert.deepStrictEqual(
            r.raw.split("\n").filter((x) => /^(outcome|live|done|serving)=/.test(x)),
            ["outcome=failed", "serving=1.0.0", "done=1"],
            "each key written once, by the host program",
        );
        const revisions = fs.readFileSync(l.revisionsLog, "utf8").trimEnd().split("\n");
        assert.strictEqual(revisions.length, 1);
        assert.strictEqual((revisions[0] as string).split("\t").length, 5, "five tab-separated fields: nothing in a value adds one");
        assert.match(revisions[0] as string, /status=starting\?outcome=activated\?live=5002\?done=1/);
    });

    it("a 100 MB health body fails the gate unread (64 KiB cap), within the gate's time", async () => {
        deployed("1.0.0", P1, base({ revision: "r1" }));
        file("big-1.1.0");
        const r = await activate("1.1.0", base({ timeoutSeconds: 1 }));
        assert.strictEqual(r.code, EXIT.healthFailed, r.raw);
        assert.match(r.result.seen ?? "", /over 65536 bytes: not read/);
        assert.strictEqual(r.result.serving, "1.0.0");
        assert.strictEqual(routed(), String(P1));
    });

    it("a gate failure stops only the new instance; the live one keeps serving, current and the proxy unchanged", async () => {
        deployed("1.0.0", P1, base({ revision: "r1" }));
        file("unhealthy-1.1.0");
        const r = await activate("1.1.0", base());
        assert.strictEqual(r.code, EXIT.healthFailed, r.raw);
        assert.deepStrictEqual([r.result.outcome, r.result.reason, r.result.serving], ["failed", "health-gate", "1.0.0"]);
        assert.match(r.result.seen ?? "", /HTTP 503 .*status=starting version=1\.1\.0/);
        assert.deepStrictEqual(unitCalls(P2), ["stop", "start", "stop"]);
        assert.deepStrictEqual(unitCalls(P1), []);
        assert.ok(exists(`up-${P1}`));
        assert.strictEqual(routed(), String(P1));
        assert.strictEqual(fs.readlinkSync(l.current), "releases/1.0.0");
        assert.match(fs.readFileSync(l.revisionsLog, "utf8"), /\toutcome=failed reason=health-gate live=1\.0\.0 serving=1\.0\.0 seen=HTTP 503/);
    });

    it("another process listening on the idle port fails the gate: its healthy answers are not the release's", async () => {
        deployed("1.0.0", P1, base({ revision: "r1" }));
        // This test process stands for the service user's process that bound the port first.
        const squatter = await listen(P2);
        assert.ok(squatter, `port ${P2} was free a moment ago`);
        try {
            const r = await activate("1.1.0", base());
            assert.strictEqual(r.code, EXIT.healthFailed, r.raw);
            assert.deepStrictEqual([r.result.outcome, r.result.reason, r.result.serving], ["failed", "health-gate", "1.0.0"]);
            assert.match(r.result.seen ?? "", new RegExp(`^port ${P2} is also held by pid ${process.pid} \\(node, .*not only by complinist@${P2}\\.service`));
            assert.strictEqual(routed(), String(P1), "never switched to it");
        } finally {
            squatter.close();
        }
    });

    it("a listener that joins the new port after the gate is seen once the port takes requests: routed back, the new instance stopped", async () => {
        deployed("1.0.0", P1, base({ revision: "r1" }));
        file("squat-on-proxy", String(P2));
        try {
            const r = await activate("1.1.0", base());
            assert.ok(exists("squatter.ready"), "the squatter listened after the gate");
            assert.strictEqual(r.code, EXIT.healthFailed, r.raw);
            assert.deepStrictEqual([r.result.outcome, r.result.reason, r.result.serving], ["failed", "switch", "1.0.0"]);
            assert.match(r.result.seen ?? "", new RegExp(`^after the switch: port ${P2} is also held by pid \\d+ \\(python3, uid \\d+, cgroup .*not only by complinist@${P2}\\.service`));
            assert.strictEqual(routed(), String(P1), "routed back to what was live");
            assert.strictEqual(fs.readlinkSync(l.current), "releases/1.0.0");
            assert.ok(!exists(`up-${P2}`), "the new instance was stopped");
        } finally {
            if (exists("squatter.pid")) process.kill(Number(fs.readFileSync(path.join(state, "squatter.pid"), "utf8")));
        }
    });

    it("a switch failure (haproxy refuses the config) leaves the live instance routed and stops the new one", async () => {
        deployed("1.0.0", P1, base({ revision: "r1" }));
        file("haproxy-refuse");
        const r = await activate("1.1.0", base());
        assert.strictEqual(r.code, EXIT.healthFailed, r.raw);
        assert.deepStrictEqual([r.result.outcome, r.result.reason, r.result.serving], ["failed", "switch", "1.0.0"]);
        assert.match(r.result.seen ?? "", /haproxy refused the generated config/);
        assert.strictEqual(routed(), String(P1));
        assert.ok(!exists(`up-${P2}`));
        assert.deepStrictEqual(unitCalls(P1), []);
    });

    it("a soak failure switches back at once: the old live instance is routed again and current names it", async () => {
        deployed("1.0.0", P1, base({ revision: "r1" }));
        file("proxy-ok-1.1.0", "3"); // the switch's three answers, then degraded
        const r = await activate("1.1.0", base({ soakSeconds: 2 }));
        assert.strictEqual(r.code, EXIT.healthFailed, r.raw);
        assert.deepStrictEqual([r.result.outcome, r.result.reason, r.result.serving], ["failed-rolled-back", "soak", "1.0.0"]);
        assert.strictEqual(routed(), String(P1));
        assert.strictEqual(fs.readlinkSync(l.current), "releases/1.0.0");
        assert.ok(!exists(`up-${P2}`), "the failed release is stopped after the switch back");
        assert.deepStrictEqual(unitCalls(P1), []);
    });

    it("a hook that prints the app's secrets and fails: every stored copy is redacted", async () => {
        deployed("1.0.0", P1, base({ revision: "r1" }));
        const r = await activate("1.1.0", base({ beforeActivate: 'echo "connecting to $DATABASE_URL with $SECRET_KEY"; exit 3' }), ["--hook"]);
        assert.strictEqual(r.code, EXIT.hookFailed, r.raw);
        assert.match(r.result.seen ?? "", /^hooks\.beforeActivate failed: connecting to \*\*\* with \*\*\*/);
        const stored = [r.raw, fs.readFileSync(l.revisionsLog, "utf8"), fs.readFileSync(l.deployLog, "utf8")].join("\n");
        for (const secret of ["s3cr3t-value-42", "hunter2-pw", "postgres://app"]) assert.ok(!stored.includes(secret), `${secret} was stored`);
        assert.deepStrictEqual(unitCalls(P2), [], "nothing started: the hook runs first");
    });

    it("a hook printing 64 MiB costs root at most its first and last 32 KiB: its exit status and last lines (redacted) are kept, and it is never cut off", async function () {
        requireTool(this, "python3", ["--version"], "apt-get install python3");
        const rss = path.join(state, "maxrss");
        // The largest resident set of the host program and everything it ran (KiB), from getrusage.
        const measured = `python3 -c 'import resource, subprocess, sys; rc = subprocess.call(sys.argv[2:]); open(sys.argv[1], "w").write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); sys.exit(rc)' ${q(rss)}`;
        const flood = "head -c 67108864 /dev/zero | tr '\\0' x; echo";
        deployed("1.0.0", P1, base({ revision: "r1" }));

        const failed = await activate("1.1.0", base({ beforeActivate: `${flood}; echo "migration failed for $DATABASE_URL"; exit 3` }), ["--hook"], measured);
        assert.strictEqual(failed.code, EXIT.hookFailed, failed.stderr + failed.raw);
        const peak = Number(fs.readFileSync(rss, "utf8"));
        assert.ok(peak > 0 && peak < 32 * 1024, `the host program and its helpers peaked at ${peak} KiB for a 64 MiB hook output`);
        assert.match(failed.result.seen ?? "", /^hooks\.beforeActivate failed: .*migration failed for \*\*\*$/);
        assert.ok(!failed.raw.includes("hunter2-pw"));

        const ok = await activate("1.1.0", base({ beforeActivate: `${flood}; echo migrated` }), ["--hook"], measured);
        assert.strictEqual(ok.code, 0, ok.stderr + ok.raw);
        assert.strictEqual(ok.result.outcome, "activated");
        assert.match(fs.readFileSync(l.deployLog, "utf8"), /\thook done: migrated\n/, "the hook ran to its end");
        assert.ok(Number(fs.readFileSync(rss, "utf8")) < 32 * 1024);
    });

    it("revisions.log and deploy.log are created without world read (0640)", async () => {
        deployed("1.0.0", P1, base({ revision: "r1" }));
        await activate("1.1.0", base());
        for (const f of [l.revisionsLog, l.deployLog]) assert.strictEqual((fs.statSync(f).mode & 0o777).toString(8), "640", f);
    });

    describe("check-current (run by `systemctl start complinist`)", () => {
        const check = () => runBash(`exec bash ${q(program)} check-current`, { env: { PATH: `${stub.dir}:${process.env.PATH}`, STUB_STATE: state } });

        it("passes when current names the routed release, and before anything is routed", async () => {
            assert.strictEqual((await check()).code, 0, "nothing routed yet");
            deployed("1.0.0", P1, base({ revision: "r1" }));
            assert.strictEqual((await check()).code, 0);
        });

        it("fails after the runbook's hand rollback, naming `complinist rollback`", async () => {
            deployed("1.1.0", P1, base({ revision: "r1" }));
            fs.unlinkSync(l.current);
            fs.symlinkSync("releases/1.0.0", l.current);
            const r = await check();
            assert.strictEqual(r.code, 1);
            assert.match(r.stderr, new RegExp(`names 1\\.0\\.0 but the proxy routes to 1\\.1\\.0 \\(port ${P1}\\): restarting complinist does not switch releases`));
            assert.match(r.stderr, /To switch to 1\.0\.0: sudo \S+\/usr\/local\/sbin\/complinist rollback 1\.0\.0/);
        });
    });

    describe("canary and error-rate watch (the proxy's runtime API a stand-in: ./runtimeApi.ts)", () => {
        let api: RuntimeApi;
        beforeEach(async () => {
            api = await startRuntimeApi(path.join(l.proxyRunDir, "admin.sock"), l.proxyConfig, "complinist");
        });
        afterEach(() => api.close());

        const canary = (over: Partial<DeploySettings> = {}) => base({ canary: { percent: 10, seconds: 30 }, watch: { errorRateFactor: 10, minRequests: 5, maxErrorRatio: 0.01 }, ...over });
        const revisions = () => fs.readFileSync(l.revisionsLog, "utf8");

        it("a canary whose error ratio trips the watch: back to the live release through the runtime API at once, the new instance stopped, outcome=rolled-back with the figures", async () => {
            deployed("1.0.0", P1, base({ revision: "r1" }));
            // Enough per read of the counters that one read decides: nothing here depends on how many reads a second brings.
            api.traffic(P1, 45, 0);
            api.traffic(P2, 5, 5);
            const r = await activate("1.1.0", canary());
            assert.strictEqual(r.code, EXIT.healthFailed, r.stderr + r.raw);
            assert.strictEqual(r.result.outcome, "rolled-back");
            assert.strictEqual(r.result.reason, "watch");
            assert.match(r.result.seen ?? "", /^canary \d+s of 30s: new 5 requests 5 errors \(100\.00%\), previous 45 requests 0 errors \(0\.00%\); limit 1\.00%/);
            assert.strictEqual(r.result.serving, "1.0.0");
            assert.ok(Number(r.result.switchedBackAt) >= Number(r.result.trippedAt), r.raw);
            const flip = api.commands.filter((c) => c.startsWith("set server"));
            assert.deepStrictEqual(flip, [`set server complinist/i${P1} state ready`, `set server complinist/i${P2} state maint`]);
            assert.strictEqual(routed(), String(P1), "the config routes to the live release again");
            assert.ok(!fs.readFileSync(l.proxyConfig, "utf8").includes("weight"), "no canary left in the config");
            assert.deepStrictEqual(unitCalls(P2).slice(-1), ["stop"]);
            assert.strictEqual(fs.readlinkSync(l.current), "releases/1.0.0");
            untouchedWhileLive(P1);
            assert.match(revisions(), /\tversion=1\.1\.0\t.*\toutcome=rolled-back reason=watch live=1\.0\.0 serving=1\.0\.0 seen=canary \d+s of 30s: new 5 requests 5 errors/);
            assert.ok(!fs.existsSync(path.join(l.activationsDir, "watch.now")), "no watch left for status to show");

            // The same version is not tried again: refused before anything starts, naming the verdict.
            const before = stub.calls().length;
            const again = await activate("1.1.0", canary());
            assert.strictEqual(again.code, EXIT.refused, again.stderr + again.raw);
            assert.strictEqual(again.result.outcome, "refused");
            assert.match(again.result.seen ?? "", /seen=canary \d+s of 30s: new 5 requests 5 errors/);
            assert.deepStrictEqual(stub.calls().slice(before).filter((c) => c.tool === "systemctl" && c.args[0] === "start"), [], "nothing started");
            assert.match(revisions(), /\toutcome=refused reason=watch-rolled-back\n$/);

            // Acknowledged (acknowledgeRolledBack), it is deployed again; a good canary passes.
            api.traffic(P2, 1, 0);
            const acked = await activate("1.1.0", canary({ acknowledged: true, canary: { percent: 10, seconds: 1 } }));
            assert.strictEqual(acked.code, 0, acked.stderr + acked.raw);
            assert.strictEqual(acked.result.outcome, "activated");
        });

        it("a good canary takes its share for its seconds, then the full switch; the record carries the watch's figures", async () => {
            deployed("1.0.0", P1, base({ revision: "r1" }));
            api.traffic(P1, 45, 0);
            api.traffic(P2, 5, 0);
            const r = await activate("1.1.0", canary({ canary: { percent: 10, seconds: 1 } }));
            assert.strictEqual(r.code, 0, r.stderr + r.raw);
            assert.strictEqual(r.result.outcome, "activated");
            assert.match(r.result.watch ?? "", /^10% canary \d+s of 1s: new \d+ requests 0 errors \(0\.00%\), previous \d+ requests 0 errors/);
            assert.strictEqual(routed(), String(P2));
            assert.match(fs.readFileSync(l.deployLog, "utf8"), new RegExp(`canary: 10% of new requests to 1\\.1\\.0 on ${P2} for 1s`));
            assert.match(revisions(), /\toutcome=activated previous=1\.0\.0 mode=started watch=10% canary \d+s of 1s: new \d+ requests 0 errors/);
            assert.deepStrictEqual(api.commands.filter((c) => c.startsWith("set server")), [], "no switch back");
        });

        it("the canary config weights the live release first and the new one by percent, with the proxy's own cookie", async () => {
            deployed("1.0.0", P1, base({ revision: "r1" }));
            let seen = "";
            const timer = setInterval(() => {
                const c = fs.readFileSync(l.proxyConfig, "utf8");
                if (c.includes("weight")) seen = c;
            }, 20);
            api.traffic(P2, 1, 0);
            await activate("1.1.0", canary({ canary: { percent: 25, seconds: 1 } }));
            clearInterval(timer);
            assert.match(seen, new RegExp(`    cookie complinist_release insert indirect nocache httponly\n    server i${P1} 127\\.0\\.0\\.1:${P1} weight 75 cookie i${P1}\n    server i${P2} 127\\.0\\.0\\.1:${P2} weight 25 cookie i${P2}\n`));
        });

        it("a canary with too few requests says so, decides nothing and goes on to the full switch", async () => {
            deployed("1.0.0", P1, base({ revision: "r1" }));
            api.traffic(P2, 0, 0);
            const r = await activate("1.1.0", canary({ canary: { percent: 10, seconds: 1 } }));
            assert.strictEqual(r.code, 0, r.stderr + r.raw);
            assert.strictEqual(r.result.outcome, "activated");
            assert.match(r.result.watch ?? "", /^10% too few requests to judge \(0 of minRequests 5\), nothing decided: canary \d+s of 1s/);
        });

        it("without a canary, the soak's watch compares with the previous release's figures from before the switch, and switches back", async () => {
            deployed("1.0.0", P1, base({ revision: "r1" }));
            api.traffic(P1, 10, 0);
            // Counted while 1.0.0 was live; after the switch the new release gets 2 requests per read, one failing.
            await runBash(`perl -MIO::Socket::UNIX -e '$s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or die; print $s "show stat\\n"; local $/; <$s>' ${q(path.join(l.proxyRunDir, "admin.sock"))}`);
            api.traffic(P2, 2, 1);
            const r = await activate("1.1.0", base({ soakSeconds: 30, watch: { errorRateFactor: 10, minRequests: 5, maxErrorRatio: 0.01 } }));
            assert.strictEqual(r.code, EXIT.healthFailed, r.stderr + r.raw);
            assert.strictEqual(r.result.outcome, "rolled-back");
            assert.match(r.result.seen ?? "", /^soak \d+s of 30s: new \d+ requests \d+ errors \(\d+\.\d\d%\), previous \d+ requests 0 errors \(0\.00%\)/);
            assert.deepStrictEqual(api.commands.filter((c) => c.startsWith("set server")), [`set server complinist/i${P1} state ready`, `set server complinist/i${P2} state maint`]);
            assert.strictEqual(routed(), String(P1));
            assert.strictEqual(fs.readlinkSync(l.current), "releases/1.0.0");
            assert.deepStrictEqual(unitCalls(P2).slice(-1), ["stop"]);
        });

        it("an activation stopped during its canary (SIGTERM: killed, or out of its time) routes every request back to the live release and stops the canary", async () => {
            deployed("1.0.0", P1, base({ revision: "r1" }));
            api.traffic(P1, 45, 0);
            api.traffic(P2, 5, 0);
            const watching = path.join(l.activationsDir, "watch.now");
            // Kills the host program once the canary's watch is running: on that condition, not after a time.
            const killer = `bash -c '"$@" & p=$!; for i in $(seq 1 1200); do [ -e ${q(watching)} ] && break; sleep 0.05; done; kill -TERM $p; wait $p' killer`;
            const r = await activate("1.1.0", canary({ canary: { percent: 10, seconds: 600 } }), [], killer);
            assert.notStrictEqual(r.code, 0, r.raw);
            assert.strictEqual(r.result.outcome, "failed", r.raw);
            assert.strictEqual(routed(), String(P1));
            assert.ok(!fs.readFileSync(l.proxyConfig, "utf8").includes("weight"), "no canary left in the config");
            assert.deepStrictEqual(unitCalls(P2).slice(-1), ["stop"]);
            assert.ok(!fs.existsSync(watching));
            assert.match(fs.readFileSync(l.deployLog, "utf8"), new RegExp(`interrupted during the canary: every request back to 1\\.0\\.0 on ${P1}`));
            assert.match(revisions(), /\tversion=1\.1\.0\t.*\toutcome=failed reason=interrupted/);
        });

        it("no canary on a first deploy (nothing live to share with) or on a switch to the warm standby; the emergency rollback never canaries", async () => {
            api.traffic(P1, 1, 0);
            const first = await activate("1.0.0", canary({ canary: { percent: 10, seconds: 30 } }));
            assert.strictEqual(first.code, 0, first.stderr + first.raw);
            assert.match(first.result.watch ?? "", /^no canary: no healthy live release to share requests with/);
            assert.ok(!api.commands.includes("show stat") || !fs.readFileSync(l.deployLog, "utf8").includes("canary: 10%"));
        });
    });
});
