/**
 * Builds the sample CompliNist release artifacts from app/ into .build/artifacts (or the
 * directory given as first argument):
 *
 *   npx ts-node --transpile-only scripts/build-artifacts.ts [outDir]
 *
 * Byte-for-byte reproducible — same app/ sources, same sha256 — because the stack config
 * pins every release by sha256 and tests compare hashes across builds: entries sorted,
 * mtime 0, owner/group 0, fixed file modes, gzip without name/timestamp.
 */
import { execFileSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { artifactFileName } from "../ops/artifacts";
import { errorMessage } from "../stacks/errors";
import { CHECKOUT_DIR } from "../toolchain/checkout";

export type ArtifactMode = "good" | "unhealthy" | "nostart" | "flaky";

export interface ArtifactSpec {
    readonly version: string;
    /** good: healthy; unhealthy: serves but /health is 503; nostart: exits 1 at start; flaky: healthy, but 30% of other requests answer 500. */
    readonly mode: ArtifactMode;
    /** Seconds the release takes to boot before it binds its port (bench variants only). */
    readonly bootSeconds?: number;
}

export interface BuiltArtifact {
    readonly version: string;
    readonly mode: ArtifactMode;
    /** Absolute path of complinist-<version>.tar.gz. */
    readonly file: string;
    readonly size: number;
    readonly sha256: string;
}

export const ARTIFACTS: readonly ArtifactSpec[] = [
    { version: "1.0.0", mode: "good" },
    { version: "1.1.0", mode: "good" },
    { version: "1.2.0", mode: "unhealthy" },
    { version: "1.3.0", mode: "good" },
    { version: "1.4.0", mode: "good" },
    { version: "0.9.0-nostart", mode: "nostart" },
    { version: "1.5.0-flaky", mode: "flaky" },
];

/**
 * Releases that boot in 1.5 s like a real one, for `npm run bench`'s traffic section only
 * (built into their own directory; never in a stack file).
 */
export const BENCH_ARTIFACTS: readonly ArtifactSpec[] = [
    { version: "2.0.0", mode: "good", bootSeconds: 1.5 },
    { version: "2.1.0", mode: "good", bootSeconds: 1.5 },
    { version: "2.2.0", mode: "unhealthy", bootSeconds: 1.5 },
];

/*
 * A slow variant's bin/start waits BOOT_SECONDS before the app binds. The wait lives here,
 * not in app/, because every byte of app/ is in the committed artifacts' sha256.
 */
const SLOW_START = [
    "#!/bin/sh",
    "# Bench variant: boots for BOOT_SECONDS before the app binds its port, like a real release.",
    'cd "$(dirname "$0")/.." || exit 1',
    'sleep "$(cat BOOT_SECONDS)"',
    "exec python3 server.py",
    "",
].join("\n");

const REPO_ROOT = CHECKOUT_DIR;
const APP_DIR = path.join(REPO_ROOT, "app");

function buildOne(spec: ArtifactSpec, outDir: string): BuiltArtifact {
    const stage = fs.mkdtempSync(path.join(os.tmpdir(), "complinist-artifact-"));
    try {
        // Modes are set explicitly: a checkout's umask must not leak into the hash.
        fs.mkdirSync(path.join(stage, "bin"), { mode: 0o755 });
        fs.chmodSync(path.join(stage, "bin"), 0o755);
        const slow = spec.bootSeconds !== undefined;
        const files: Array<[string, string | Buffer, number]> = [
            ["VERSION", `${spec.version}\n`, 0o644],
            ["MODE", `${spec.mode}\n`, 0o644],
            ["server.py", fs.readFileSync(path.join(APP_DIR, "server.py")), 0o644],
            ["bin/start", slow ? SLOW_START : fs.readFileSync(path.join(APP_DIR, "bin", "start")), 0o755],
            ...(slow ? [["BOOT_SECONDS", `${spec.bootSeconds}\n`, 0o644] as [string, string, number]] : []),
        ];
        for (const [rel, content, mode] of files) {
            fs.writeFileSync(path.join(stage, rel), content);
            fs.chmodSync(path.join(stage, rel), mode);
        }
        const file = path.join(outDir, artifactFileName(spec.version));
        const tmp = `${file}.tmp-${process.pid}`;
        execFileSync(
            "bash",
            [
                "-euo", "pipefail", "-c",
                `tar --format=gnu --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner ` +
                    `-C "$1" -cf - ${slow ? "BOOT_SECONDS " : ""}MODE VERSION bin server.py | gzip -9 -n >"$2"`,
                "build-artifact", stage, tmp,
            ],
            { stdio: ["ignore", "ignore", "inherit"] },
        );
        fs.renameSync(tmp, file);
        const data = fs.readFileSync(file);
        return {
            version: spec.version,
            mode: spec.mode,
            file,
            size: data.length,
            sha256: crypto.createHash("sha256").update(data).digest("hex"),
        };
    } finally {
        fs.rmSync(stage, { recursive: true, force: true });
    }
}

export async function buildArtifacts(
    outDir: string = path.join(REPO_ROOT, ".build", "artifacts"),
    specs: readonly ArtifactSpec[] = ARTIFACTS,
): Promise<BuiltArtifact[]> {
    const dir = path.resolve(outDir);
    fs.mkdirSync(dir, { recursive: true });
    return specs.map((spec) => buildOne(spec, dir));
}

if (require.main === module) {
    buildArtifacts(process.argv[2])
        .then((built) => {
            for (const a of built) {
                console.log(`${path.basename(a.file)}\t${a.size}\t${a.sha256}\t${a.mode}`);
            }
        })
        .catch((e: unknown) => {
            console.error(errorMessage(e));
            process.exit(1);
        });
}
