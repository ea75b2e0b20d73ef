import type { OutputMap } from "@pulumi/pulumi/automation";

/**
 * The runbook's deploy record: `DEPLOYED_VERSION`, `DEPLOYED_COMMIT`, `DEPLOYED_AT`,
 * printed as the last lines of every deploy job and saved as a GitLab
 * `artifacts:reports:dotenv` file, read from the stack outputs (the release that runs,
 * not the commit of the job).
 */
export interface DeployRecord {
    readonly version: string;
    readonly commit: string;
    readonly at: string;
}

/** dotenv values are one word each: anything else would break the report. */
function word(v: unknown): string {
    const s = typeof v === "string" ? v.replace(/[^\x21-\x7e]/g, "") : "";
    return s === "" ? "unknown" : s;
}

export function recordFromOutputs(outputs: OutputMap): DeployRecord {
    return { version: word(outputs.deployedVersion?.value), commit: word(outputs.deployedCommit?.value), at: word(outputs.deployedAt?.value) };
}

export function recordLines(r: DeployRecord): string[] {
    return [`DEPLOYED_VERSION=${r.version}`, `DEPLOYED_COMMIT=${r.commit}`, `DEPLOYED_AT=${r.at}`];
}

/** The dotenv report GitLab passes to later jobs (and shows on the environment). */
export function dotenvText(r: DeployRecord): string {
    return `${recordLines(r).join("\n")}\n`;
}
