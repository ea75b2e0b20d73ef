// npm run release -- --stack <env> --version X [--sums FILE | --sums-url URL] [--base-url URL]   (decisions: ops/release.ts)
import * as fs from "fs";
import * as path from "path";
import { errorText } from "../ops/operator";
import { fetchSums, parseReleaseArgs, parseSums, planRelease, RELEASE_USAGE } from "../ops/release";
import { unifiedDiff } from "../ops/textDiff";
import { exitWith } from "./automation";
import { CHECKOUT_DIR } from "../toolchain/checkout";

const REPO = CHECKOUT_DIR;

/** The registry credentials of whoever runs this: RELEASE_AUTH (a header line), else the CI job token. */
function authHeader(): string | undefined {
    if (process.env.RELEASE_AUTH) return process.env.RELEASE_AUTH;
    return process.env.CI_JOB_TOKEN ? `JOB-TOKEN: ${process.env.CI_JOB_TOKEN}` : undefined;
}

async function main(): Promise<number> {
    let args;
    try {
        args = parseReleaseArgs(process.argv.slice(2));
    } catch (e) {
        console.error(errorText(e));
        return 1;
    }
    if (args.help) {
        console.log(RELEASE_USAGE);
        return 0;
    }
    const file = path.join(REPO, `Pulumi.${args.stack}.yaml`);
    let sumsText: string;
    let stackText: string;
    try {
        stackText = fs.readFileSync(file, "utf8");
        sumsText = args.sumsUrl !== undefined ? await fetchSums(args.sumsUrl, authHeader()) : fs.readFileSync(args.sums ?? path.join(REPO, ".build", "artifacts", "SHA256SUMS"), "utf8");
    } catch (e) {
        console.error(`release ${args.version} for stack '${args.stack}' refused: ${errorText(e)}. Nothing was written.`);
        return 1;
    }
    const plan = planRelease({ stack: args.stack, version: args.version, file: path.basename(file), stackText, sums: parseSums(sumsText), sumsUrl: args.sumsUrl, baseUrl: args.baseUrl, env: process.env });
    if (!plan.ok) {
        console.error(plan.message);
        return 1;
    }
    if (!plan.changed) {
        console.log(`${path.basename(file)} already deploys ${args.version} (sha256 ${plan.entry.sha256}); nothing to change.`);
        return 0;
    }
    fs.writeFileSync(file, plan.text);
    process.stdout.write(unifiedDiff(stackText, plan.text, path.basename(file)));
    console.log(
        `Wrote ${path.basename(file)}: version ${args.version} (sha256 ${plan.entry.sha256})${plan.replaced ? `, rollbackVersion ${plan.replaced}` : ""}. ` +
            `Review it (pulumi preview --diff --stack ${args.stack}) and commit it in a merge request; the pipeline deploys it.`,
    );
    return 0;
}

exitWith(main, "release", 1);
