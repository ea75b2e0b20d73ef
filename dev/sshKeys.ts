/**
 * SSH key pairs generated per checkout, never committed (under .build/, which git ignores): the
 * client key authorized for root on every test host (dev/hosts.ts), and the demo host's deploy key
 * and host key (`npm run up`, scripts/up.ts). Each private key is 0600 in a 0700 directory owned by
 * whoever set the checkout up: no other local user of the machine can read it, so none can log in
 * to a test host or the demo host on 127.0.0.1, or pose as the demo host.
 */
import { execFileSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { CHECKOUT_DIR } from "../toolchain/checkout";

const REPO = CHECKOUT_DIR;
const TEST_KEY_DIR = path.join(REPO, ".build", "test-ssh");
/** Where `npm run up` keeps the demo host's keys; Pulumi.local.yaml's sshPrivateKeyPath names the deploy key here. */
export const DEMO_KEY_DIR = path.join(REPO, ".build", "demo-ssh");

export interface KeyPair {
    /** The OpenSSH private key text. */
    readonly privateKey: string;
    /** The public key line without its comment: "ssh-ed25519 AAAA…". */
    readonly publicKey: string;
    readonly privateKeyPath: string;
}

/** A directory or file of ours to hold a key: a real one (not a link), owned by this user, with exactly `mode`. */
function own(p: string, kind: "directory" | "file", mode: number): void {
    const st = fs.lstatSync(p);
    const isKind = kind === "directory" ? st.isDirectory() : st.isFile();
    const uid = process.getuid?.();
    if (!isKind || (uid !== undefined && st.uid !== uid)) {
        throw new Error(`${p} is not a ${kind} owned by uid ${uid ?? "?"} (it is ${st.isSymbolicLink() ? "a symbolic link" : `owned by uid ${st.uid}`}): remove it, then run again`);
    }
    if ((st.mode & 0o7777) !== mode) fs.chmodSync(p, mode);
}

/**
 * The ed25519 key pair `<dir>/<name>` (0600) and `<dir>/<name>.pub`, generated on first use.
 * Concurrent callers race safely: each generates into a private temp directory and renames in.
 */
export function generatedKeyPair(dir: string, name: string, comment: string): KeyPair {
    const keyPath = path.join(dir, name);
    // Only the key directory is closed: its parents (.build/) keep the umask's mode.
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    if (!fs.existsSync(dir)) fs.mkdirSync(dir, { mode: 0o700 });
    own(dir, "directory", 0o700);
    if (!fs.existsSync(keyPath) || !fs.existsSync(`${keyPath}.pub`)) {
        const tmp = path.join(dir, `tmp-${process.pid}-${crypto.randomBytes(3).toString("hex")}`);
        fs.mkdirSync(tmp, { mode: 0o700 });
        try {
            execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path.join(tmp, name)], { stdio: ["ignore", "ignore", "pipe"] });
            fs.renameSync(path.join(tmp, `${name}.pub`), `${keyPath}.pub`);
            fs.renameSync(path.join(tmp, name), keyPath);
        } finally {
            fs.rmSync(tmp, { recursive: true, force: true });
        }
    }
    own(keyPath, "file", 0o600);
    return {
        privateKey: fs.readFileSync(keyPath, "utf8"),
        publicKey: fs.readFileSync(`${keyPath}.pub`, "utf8").trim().split(/\s+/).slice(0, 2).join(" "),
        privateKeyPath: keyPath,
    };
}

/** The test key pair authorized for root on every test host, generated once per checkout. */
export function testKeyPair(): KeyPair {
    return generatedKeyPair(TEST_KEY_DIR, "id_ed25519", "complinist-test");
}

/** The demo host's keys (`npm run up`): the deploy key authorized for its root, and its own host key. */
export interface DemoKeys {
    readonly deploy: KeyPair;
    readonly host: KeyPair;
}

/** The demo host's deploy key and host key, generated once per checkout into `dir`. */
export function demoKeys(dir: string = DEMO_KEY_DIR): DemoKeys {
    return {
        deploy: generatedKeyPair(dir, "deploy_ed25519", "complinist-demo-deploy"),
        host: generatedKeyPair(dir, "host_ed25519_key", "complinist-demo-host"),
    };
}
