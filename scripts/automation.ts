// Glue shared by the operator helpers (rollback, drift) and the Automation API.
import * as path from "path";
import { LocalWorkspace, Stack } from "@pulumi/pulumi/automation";
import { errorMessage } from "../stacks/errors";

/** This project's stack; the error says what an operator checks first. */
export async function selectProjectStack(stackName: string): Promise<Stack> {
    try {
        // The project directory: Pulumi.yaml and Pulumi.<stack>.yaml (where a rollback pin is written).
        return await LocalWorkspace.selectStack({ stackName, workDir: path.join(__dirname, "..") });
    } catch (e) {
        throw new Error(`cannot select stack '${stackName}' (is the Pulumi CLI installed and logged in to the backend?): ${errorMessage(e)}`);
    }
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
