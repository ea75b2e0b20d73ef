import * as assert from "assert";
import * as cp from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { dockerHostUrl, goDuration, healthcheckCommand, LOCAL_DOCKER_HOST, pinnedSshOpts, unbracketed, VERSION_ENV } from "../../../infra/render/container";

const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMHZNMVhu73rtnkCVV1dnWn09B3L5W/ZVMUBqhTkSJws";

describe("unbracketed", () => {
    it("drops the brackets of an IPv6 literal and leaves every other address as it is", () => {
        assert.strictEqual(unbracketed("[2001:db8::1]"), "2001:db8::1");
        assert.strictEqual(unbracketed("2001:db8::1"), "2001:db8::1");
        assert.strictEqual(unbracketed("10.20.0.11"), "10.20.0.11");
        assert.strictEqual(unbracketed("app-1.example.test"), "app-1.example.test");
    });
});

describe("dockerHostUrl", () => {
    it("reaches `local` through this machine's socket", () => {
        assert.strictEqual(dockerHostUrl({ address: "local", port: 22, user: "deploy" }), LOCAL_DOCKER_HOST);
        assert.strictEqual(LOCAL_DOCKER_HOST, "unix:///var/run/docker.sock");
    });

    it("reaches any other address over ssh://user@host:port, an IPv6 literal bracketed once however it was written", () => {
        assert.strictEqual(dockerHostUrl({ address: "10.20.0.11", port: 22, user: "deploy" }), "ssh://deploy@10.20.0.11:22");
        assert.strictEqual(dockerHostUrl({ address: "app-1.example.test", port: 2202, user: "root" }), "ssh://root@app-1.example.test:2202");
        assert.strictEqual(dockerHostUrl({ address: "2001:db8::1", port: 2202, user: "deploy" }), "ssh://deploy@[2001:db8::1]:2202");
        assert.strictEqual(dockerHostUrl({ address: "[2001:db8::1]", port: 2202, user: "deploy" }), "ssh://deploy@[2001:db8::1]:2202");
    });

    it("parses back as a URL naming the same user, host and port", () => {
        for (const [address, host] of [["10.20.0.11", "10.20.0.11"], ["[2001:db8::1]", "[2001:db8::1]"], ["2001:db8::1", "[2001:db8::1]"]] as const) {
            const u = new URL(dockerHostUrl({ address, port: 2202, user: "deploy" }));
            assert.deepStrictEqual([u.protocol, u.username, u.hostname, u.port], ["ssh:", "deploy", host, "2202"]);
        }
    });
});

/** `ssh -G`: the configuration ssh would use for this host, with no config file of this machine's in the way. */
function sshConfig(opts: string[], host: string, port: number): { status: number | null; config: Map<string, string>; stderr: string } {
    const r = cp.spawnSync("ssh", ["-G", "-F", "/dev/null", ...opts, "-l", "deploy", "-p", String(port), host], { encoding: "utf8" });
    const config = new Map<string, string>();
    for (const line of r.stdout.split("\n")) {
        const i = line.indexOf(" ");
        if (i > 0) config.set(line.slice(0, i), line.slice(i + 1));
    }
    return { status: r.status, config, stderr: r.stderr };
}

describe("pinnedSshOpts", () => {
    it("pins the configured key as the only known host, with no file and no prompt", () => {
        assert.deepStrictEqual(pinnedSshOpts({ address: "10.20.0.11", port: 22, hostKey: KEY }), [
            "-o", "StrictHostKeyChecking=yes",
            "-o", "UserKnownHostsFile=/dev/null",
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", `KnownHostsCommand=/bin/echo 10.20.0.11 ${KEY}`,
            "-o", "BatchMode=yes",
        ]);
    });

    it("names the host as known_hosts does: [host]:port off port 22, an IPv6 literal bracketed once", () => {
        const known = (address: string, port: number) => pinnedSshOpts({ address, port, hostKey: KEY }).find((o) => o.startsWith("KnownHostsCommand="));
        assert.strictEqual(known("10.20.0.12", 2202), `KnownHostsCommand=/bin/echo [10.20.0.12]:2202 ${KEY}`);
        assert.strictEqual(known("[2001:db8::1]", 2202), `KnownHostsCommand=/bin/echo [2001:db8::1]:2202 ${KEY}`);
        assert.strictEqual(known("2001:db8::1", 2202), `KnownHostsCommand=/bin/echo [2001:db8::1]:2202 ${KEY}`);
        assert.strictEqual(known("[2001:db8::1]", 22), `KnownHostsCommand=/bin/echo 2001:db8::1 ${KEY}`);
    });

    it("drops the key's comment: a % in it would be expanded by ssh", () => {
        const opts = pinnedSshOpts({ address: "10.20.0.11", port: 22, hostKey: `  ${KEY}   root@%h-%u  ` });
        assert.ok(opts.includes(`KnownHostsCommand=/bin/echo 10.20.0.11 ${KEY}`), opts.join(" "));
        assert.ok(!opts.join(" ").includes("%"));
    });

    it("refuses a host without hostKey, naming it (SSH is never blind)", () => {
        assert.throws(() => pinnedSshOpts({ address: "10.20.0.11", port: 22 }), /host 10\.20\.0\.11: .*hostKey/);
    });

    describe("as ssh reads them (ssh -G)", () => {
        const cases: Array<[string, string, number, string]> = [
            ["an IPv4 host on port 22", "10.20.0.11", 22, "10.20.0.11"],
            ["an IPv4 host on another port", "10.20.0.12", 2202, "[10.20.0.12]:2202"],
            ["a bracketed IPv6 host on another port", "[2001:db8::1]", 2202, "[2001:db8::1]:2202"],
            ["a DNS name on port 22", "app-1.example.test", 22, "app-1.example.test"],
        ];
        for (const [title, address, port, lookup] of cases) {
            it(`${title}: strict checking, no known_hosts file, and the known-hosts command yields the configured key for that host`, () => {
                const r = sshConfig(pinnedSshOpts({ address, port, hostKey: KEY }), unbracketed(address), port);
                assert.strictEqual(r.status, 0, r.stderr);
                assert.strictEqual(r.config.get("stricthostkeychecking"), "true");
                assert.strictEqual(r.config.get("userknownhostsfile"), "/dev/null");
                assert.strictEqual(r.config.get("globalknownhostsfile"), "/dev/null");
                assert.strictEqual(r.config.get("batchmode"), "yes");
                const command = r.config.get("knownhostscommand");
                assert.ok(command, "ssh -G reports no knownhostscommand");

                // ssh splits the command into words and runs it; ssh-keygen -F looks the host up as ssh does.
                const [file, ...args] = command.split(" ");
                const out = cp.execFileSync(file as string, args, { encoding: "utf8" });
                const dir = fs.mkdtempSync(path.join(os.tmpdir(), "known-"));
                try {
                    fs.writeFileSync(path.join(dir, "known_hosts"), out);
                    const found = cp.spawnSync("ssh-keygen", ["-F", lookup, "-f", path.join(dir, "known_hosts")], { encoding: "utf8" });
                    assert.strictEqual(found.status, 0, `${lookup} not found in ${out}`);
                    assert.ok(found.stdout.includes(KEY), found.stdout);
                    const other = cp.spawnSync("ssh-keygen", ["-F", port === 22 ? `[${unbracketed(address)}]:2222` : unbracketed(address), "-f", path.join(dir, "known_hosts")]);
                    assert.notStrictEqual(other.status, 0, "the key is pinned to one host and port only");
                } finally {
                    fs.rmSync(dir, { recursive: true, force: true });
                }
            });
        }

        it("a wrong option is caught by ssh -G (the check can fail)", () => {
            const opts = pinnedSshOpts({ address: "10.20.0.11", port: 22, hostKey: KEY }).map((o) => o.replace("StrictHostKeyChecking=yes", "StrictHostKeyChecking=maybe"));
            assert.notStrictEqual(sshConfig(opts, "10.20.0.11", 22).status, 0);
        });
    });
});

/**
 * Go's time.ParseDuration, to ns as a BigInt: `[-+]?([0-9]*(\.[0-9]*)?unit)+` with unit
 * one of ns, us, µs, μs, ms, s, m, h, or the lone "0"; throws where Go returns an error.
 */
function parseGoDuration(text: string): bigint {
    const unitNs: Record<string, bigint> = { ns: 1n, us: 1000n, "µs": 1000n, "μs": 1000n, ms: 1000000n, s: 1000000000n, m: 60000000000n, h: 3600000000000n };
    let s = text;
    let sign = 1n;
    if (s.startsWith("-") || s.startsWith("+")) {
        if (s[0] === "-") sign = -1n;
        s = s.slice(1);
    }
    if (s === "0") return 0n;
    if (s === "") throw new Error(`invalid duration "${text}"`);
    let total = 0n;
    const element = /^([0-9]*)(?:\.([0-9]*))?([^0-9.]+)/;
    while (s !== "") {
        const m = element.exec(s);
        const [whole = "", frac, unit = ""] = m ? [m[1], m[2], m[3]] : [];
        if (!m || (whole === "" && (frac ?? "") === "")) throw new Error(`invalid duration "${text}"`);
        const u = unitNs[unit];
        if (u === undefined) throw new Error(`unknown unit "${unit}" in duration "${text}"`);
        total += BigInt(whole || "0") * u;
        if (frac) total += (BigInt(frac) * u) / 10n ** BigInt(frac.length);
        s = s.slice(m[0].length);
    }
    return sign * total;
}

describe("goDuration", () => {
    it("formats durations the way the provider reads them back (Go's Duration.String)", () => {
        assert.deepStrictEqual([0, 100, 500, 1000, 1500, 60000, 61500, 3600000].map(goDuration), ["0s", "100ms", "500ms", "1s", "1.5s", "1m0s", "1m1.5s", "1h0m0s"]);
    });

    it("the grammar check rejects what Go's time.ParseDuration rejects (the check can fail)", () => {
        for (const bad of ["", "1", "1.5", ".s", "1m 0s", "1d", "s"]) assert.throws(() => parseGoDuration(bad), `${JSON.stringify(bad)} was accepted`);
        assert.strictEqual(parseGoDuration("1h2m3.004005006s"), 3723004005006n);
        assert.strictEqual(parseGoDuration("-1.5h"), -5400000000000n);
    });

    it("parses back to the same milliseconds under Go's grammar, in Duration.String's canonical form, for every interval the schema accepts", () => {
        // Below 1s in ms; from 1s on [h]m s with minutes once there are hours, no leading zeros, no trailing fraction zeros.
        const sec = "(?:[0-9]|[1-5][0-9])(?:\\.[0-9]{0,2}[1-9])?s";
        const min = "(?:[0-9]|[1-5][0-9])m";
        const canonical = new RegExp(`^(?:0s|[1-9][0-9]{0,2}ms|[1-9][0-9]*h${min}${sec}|(?:[1-9]|[1-5][0-9])m${sec}|(?:[1-9]|[1-5][0-9])(?:\\.[0-9]{0,2}[1-9])?s)$`);
        const samples = [...Array.from({ length: 60001 }, (_, i) => i), 61500, 3599999, 3600000, 3661001, 86400000];
        for (const ms of samples) {
            const d = goDuration(ms);
            assert.match(d, canonical, `${ms} ms`);
            assert.strictEqual(parseGoDuration(d), BigInt(ms) * 1000000n, `${ms} ms → ${d}`);
        }
    });
});

describe("healthcheckCommand", () => {
    const command = healthcheckCommand(5000, "/health");

    it("probes the service port and path on 127.0.0.1 and compares with the version from the env, not a baked-in one", () => {
        assert.ok(command.startsWith("python3 -c '") && command.endsWith("'"));
        assert.strictEqual(command.slice("python3 -c '".length, -1).includes("'"), false, "one single-quoted word for sh");
        assert.ok(command.includes('"http://127.0.0.1:5000/health"'));
        assert.ok(command.includes(`os.environ.get("${VERSION_ENV}", "")`));
        assert.strictEqual(VERSION_ENV, "COMPLINIST_VERSION");
        assert.ok(command.includes('doc.get("status") == "healthy"') && command.includes('doc.get("version") == want'));
    });

    it("changes only with port and path (a version change leaves the healthcheck as it is)", () => {
        assert.strictEqual(healthcheckCommand(5000, "/health"), command);
        assert.notStrictEqual(healthcheckCommand(5001, "/health"), command);
        assert.notStrictEqual(healthcheckCommand(5000, "/status"), command);
    });

    for (const shell of ["sh", "bash"]) {
        it(`parses with ${shell} -n`, () => {
            const r = cp.spawnSync(shell, ["-n"], { input: command, encoding: "utf8" });
            assert.strictEqual(r.status, 0, r.stderr);
        });
    }

    describe("run by /bin/sh and python3 against a stand-in server", function () {
        this.timeout(30000);
        let server: http.Server;
        let port = 0;
        type Answer = { code: number; body: string } | "hang-up";
        let answer: Answer = { code: 200, body: "" };
        let asked: string[] = [];

        before(async () => {
            server = http.createServer((req, res) => {
                asked.push(req.url ?? "");
                if (answer === "hang-up") {
                    res.destroy();
                    return;
                }
                res.writeHead(answer.code, { "Content-Type": "application/json" }).end(answer.body);
            });
            await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
            port = (server.address() as net.AddressInfo).port;
        });
        after(() => server.close());

        function probe(want: string): Promise<{ code: number | null; out: string }> {
            return new Promise((resolve) => {
                const p = cp.spawn("/bin/sh", ["-c", healthcheckCommand(port, "/health")], { env: { ...process.env, [VERSION_ENV]: want } });
                let out = "";
                p.stdout.on("data", (d: Buffer) => (out += d.toString()));
                p.stderr.on("data", (d: Buffer) => (out += d.toString()));
                p.on("exit", (code) => resolve({ code, out }));
            });
        }

        const cases: Array<[string, Answer, string, number]> = [
            ["passes for 200, status healthy and the expected version", { code: 200, body: '{"status":"healthy","version":"1.3.0","uptime":1}' }, "1.3.0", 0],
            ["fails for a healthy answer from another version", { code: 200, body: '{"status":"healthy","version":"1.1.0","uptime":1}' }, "1.3.0", 1],
            ["fails for 503 with status unhealthy (release 1.2.0)", { code: 503, body: '{"status":"unhealthy","version":"1.2.0","uptime":1}' }, "1.2.0", 1],
            ["fails for a 200 that is not JSON", { code: 200, body: "ok" }, "1.3.0", 1],
            ["fails when the app does not answer", "hang-up", "1.3.0", 1],
        ];
        for (const [title, a, want, code] of cases) {
            it(title, async () => {
                answer = a;
                asked = [];
                const res = await probe(want);
                assert.strictEqual(res.code, code, res.out);
                assert.ok(!/Traceback/.test(res.out), res.out);
                assert.deepStrictEqual(asked, ["/health"], "asks the configured path, once");
            });
        }

        it("says what it saw, for docker inspect's health log", async () => {
            answer = { code: 503, body: '{"status":"unhealthy","version":"1.2.0","uptime":1}' };
            const res = await probe("1.2.0");
            assert.match(res.out, /^HTTP 503 status=unhealthy version=1\.2\.0 want=1\.2\.0$/m);
        });
    });
});
