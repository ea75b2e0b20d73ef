// Glue shared by the operator helpers (deploy, rollback, drift) and the Automation API.
import * as fs from "fs";
import * as path from "path";
import * as readline from "readline";
import type { Stack } from "@pulumi/pulumi/automation";
import { openStack, PROJECT_DIR } from "./engine";
import { withConfigSnapshot } from "../ops/configSnapshot";
import { sourceInfo } from "../stacks/source";
import type { Reporting } from "../ops/deploy";
import { webhookNotifier, webhookUrlOf } from "../ops/notify";
import type { OperatorIo } from "../ops/operator";
import type { StackFileAccess } from "../ops/rollback";

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

/**
 * This project's stack, its program inline (scripts/engine.ts), its config read in one CLI process
 * however many keys a command reads (ops/configSnapshot.ts); the error says what an operator checks first.
 */
export async function selectProjectStack(stackName: string): Promise<Stack> {
    try {
        return withConfigSnapshot(await openStack(stackName));
    } catch (e) {
        throw new Error(`cannot select stack '${stackName}' (is PULUMI_BACKEND_URL set, or the CLI logged in to the backend? \`npm run toolchain\` shows the CLI in use): ${message(e)}`);
    }
}

/** The terminal: confirmation only when stdin and stdout are TTYs. */
export const terminalIo: OperatorIo = {
    interactive: process.stdin.isTTY === true && process.stdout.isTTY === true,
    confirm: (question) =>
        new Promise((resolve) => {
            const rl = readline.createInterface({ input: process.stdin, output: process.stdout });
            rl.question(question, (answer) => {
                rl.close();
                resolve(/^(y|yes)$/i.test(answer.trim()));
            });
        }),
    stream: (chunk) => process.stdout.write(chunk),
    out: (text) => console.log(text),
    err: (text) => console.error(text),
};

/** Notifications to the stack's webhook (if configured), this checkout's commit, dotenv files. */
export async function reportingFor(stack: Stack): Promise<Reporting> {
    return {
        notifier: webhookNotifier(await webhookUrlOf(stack), (text) => console.error(text)),
        commit: sourceInfo().commit,
        now: () => new Date().toISOString(),
        writeFile: (file, text) => fs.writeFileSync(file, text),
    };
}

/** Pulumi.<stack>.yaml in the project directory (a qualified org/project/stack name uses its last part). */
export function stackFileOf(stackName: string): StackFileAccess {
    const file = `Pulumi.${stackName.split("/").pop() ?? stackName}.yaml`;
    const full = path.join(PROJECT_DIR, file);
    return { file, read: () => fs.readFileSync(full, "utf8"), write: (text) => fs.writeFileSync(full, text) };
}

/** Runs a helper's main and exits with its code; an unexpected error exits with `onCrash`. */
export function exitWith(main: () => Promise<number>, label: string, onCrash: number): void {
    main().then(
        (code) => {
            process.exitCode = code;
        },
        (e: unknown) => {
            console.error(`${label}: unexpected error: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
            process.exitCode = onCrash;
        },
    );
}
