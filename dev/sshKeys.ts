/** The SSH key pair authorized for root on every test host (dev/hosts.ts). */
import { execFileSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";

const KEY_DIR = path.join(path.resolve(__dirname, ".."), ".build", "test-ssh");

/** The test key pair, generated once per checkout (concurrent runs race safely via rename). */
export function testKeyPair(): { privateKey: string; publicKey: string; privateKeyPath: string } {
    const keyPath = path.join(KEY_DIR, "id_ed25519");
    if (!fs.existsSync(keyPath) || !fs.existsSync(`${keyPath}.pub`)) {
        fs.mkdirSync(KEY_DIR, { recursive: true, mode: 0o700 });
        const tmp = path.join(KEY_DIR, `tmp-${process.pid}-${crypto.randomBytes(3).toString("hex")}`);
        fs.mkdirSync(tmp, { mode: 0o700 });
        try {
            execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "complinist-test", "-f", path.join(tmp, "id_ed25519")], {
                stdio: ["ignore", "ignore", "pipe"],
            });
            fs.renameSync(path.join(tmp, "id_ed25519.pub"), `${keyPath}.pub`);
            fs.renameSync(path.join(tmp, "id_ed25519"), keyPath);
        } finally {
            fs.rmSync(tmp, { recursive: true, force: true });
        }
    }
    return {
        privateKey: fs.readFileSync(keyPath, "utf8"),
        publicKey: fs.readFileSync(`${keyPath}.pub`, "utf8").trim(),
        privateKeyPath: keyPath,
    };
}
