// scripts/install-go.sh, CI's Go: fetched from the module proxy as golang.org/toolchain and refused
// unless its sha256 is the pinned one. Served here from a file:// stand-in for the proxy; installed
// into a temporary prefix, never over the machine's own Go.
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

const SCRIPT = path.join(__dirname, "..", "..", "scripts", "install-go.sh");
const ARCH = spawnSync("dpkg", ["--print-architecture"], { encoding: "utf8" }).stdout.trim();

/** A proxy directory holding a toolchain zip for `version` whose `go version` prints it. */
function fakeProxy(root: string, version: string): { url: string; sha256: string } {
    const module = `golang.org/toolchain@v0.0.1-go${version}.linux-${ARCH}`;
    const tree = path.join(root, "tree");
    fs.mkdirSync(path.join(tree, module, "bin"), { recursive: true });
    for (const tool of ["go", "gofmt"]) {
        fs.writeFileSync(path.join(tree, module, "bin", tool), `#!/bin/sh\necho "go version go${version} linux/${ARCH}"\n`, { mode: 0o755 });
    }
    const dir = path.join(root, "proxy", "golang.org", "toolchain", "@v");
    fs.mkdirSync(dir, { recursive: true });
    const zip = path.join(dir, `v0.0.1-go${version}.linux-${ARCH}.zip`);
    const made = spawnSync("python3", ["-c", "import shutil,sys; shutil.make_archive(sys.argv[1], 'zip', sys.argv[2])", zip.replace(/\.zip$/, ""), tree]);
    assert.strictEqual(made.status, 0, String(made.stderr));
    return { url: `file://${path.join(root, "proxy")}`, sha256: crypto.createHash("sha256").update(fs.readFileSync(zip)).digest("hex") };
}

function install(env: Record<string, string>) {
    // PATH without the machine's Go, so "already on PATH" never short-cuts the install.
    return spawnSync("bash", [SCRIPT], { encoding: "utf8", env: { PATH: "/usr/bin:/bin", ...env } });
}

describe("scripts/install-go.sh: CI's Go, pinned by sha256", () => {
    let root: string;
    beforeEach(() => (root = fs.mkdtempSync(path.join(os.tmpdir(), "install-go-"))));
    afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

    it("pins a sha256 for the GO_VERSION the pipeline uses, on both architectures", () => {
        const version = /GO_VERSION: "([^"]+)"/.exec(fs.readFileSync(path.join(__dirname, "..", "..", ".gitlab-ci.yml"), "utf8"))?.[1];
        const script = fs.readFileSync(SCRIPT, "utf8");
        for (const arch of ["amd64", "arm64"]) assert.match(script, new RegExp(`go${version!.replace(/\./g, "\\.")}-${arch}\\) pinned=[0-9a-f]{64} ;;`));
    });

    it("installs a toolchain whose sha256 matches the pin, into the prefix, and links go", () => {
        const proxy = fakeProxy(root, "1.26.7");
        const r = install({ GO_VERSION: "1.26.7", GO_TOOLCHAIN_SHA256: proxy.sha256, GOPROXY_URL: proxy.url, INSTALL_PREFIX: path.join(root, "prefix") });
        assert.strictEqual(r.status, 0, r.stderr);
        assert.match(r.stdout, /go version go1\.26\.7/);
        assert.strictEqual(fs.readlinkSync(path.join(root, "prefix", "bin", "go")), path.join(root, "prefix", "go", "bin", "go"));
    });

    it("refuses a toolchain whose sha256 differs from the pin, naming both, and installs nothing", () => {
        const proxy = fakeProxy(root, "1.26.7");
        const pin = "0".repeat(64);
        const r = install({ GO_VERSION: "1.26.7", GO_TOOLCHAIN_SHA256: pin, GOPROXY_URL: proxy.url, INSTALL_PREFIX: path.join(root, "prefix") });
        assert.strictEqual(r.status, 1);
        assert.match(r.stderr, new RegExp(`has sha256 ${proxy.sha256}, not the pinned ${pin}: refused, nothing installed`));
        assert.ok(!fs.existsSync(path.join(root, "prefix")), "nothing installed");
    });

    it("refuses a version with no pin before fetching anything", () => {
        const r = install({ GO_VERSION: "1.99.1", GOPROXY_URL: `file://${root}/absent`, INSTALL_PREFIX: path.join(root, "prefix") });
        assert.strictEqual(r.status, 1);
        assert.match(r.stderr, /no sha256 pinned for go1\.99\.1 linux\/(amd64|arm64): pin it in scripts\/install-go\.sh or set GO_TOOLCHAIN_SHA256/);
    });
});
