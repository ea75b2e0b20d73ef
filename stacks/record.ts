import { imageDigestParts } from "../infra/render/image";
import { compareVersions } from "./config";

/**
 * A stack's deploy record, read from its outputs: what it runs, on which hosts, and —
 * for a gated stack (prod) — which versions it ran healthy (`history`) and which it
 * rolled back away from (`rolledBackFrom`). Pure: the promotion gate and the program's
 * exports both compute from here.
 */

/** A stack's outputs as a StackReference returns them (anything may be missing or malformed). */
export type StackOutputs = Readonly<Record<string, unknown>>;

/** Versions kept in `history`; the earliest deployed drop out first. */
export const HISTORY_LIMIT = 50;

export interface DeployHistory {
    /** Versions that ran healthy on every host, in the order they first did. */
    readonly history: string[];
    /** Versions the stack rolled back away from and has not run healthy since. */
    readonly rolledBackFrom: string[];
}

interface HostReport {
    readonly name: string;
    readonly version: string;
    readonly healthy: boolean;
}

export function str(v: unknown): string | undefined {
    return typeof v === "string" && v !== "" ? v : undefined;
}

function versionList(v: unknown): string[] | undefined {
    return Array.isArray(v) ? [...new Set(v.filter((x): x is string => typeof x === "string" && x !== ""))] : undefined;
}

function hostReports(outputs: StackOutputs): HostReport[] {
    const hosts = outputs.hosts;
    if (hosts === null || typeof hosts !== "object" || Array.isArray(hosts)) return [];
    return Object.entries(hosts as Record<string, unknown>).map(([name, h]) => {
        const r = (h ?? {}) as { version?: unknown; healthy?: unknown };
        return { name, version: typeof r.version === "string" ? r.version : "unknown", healthy: r.healthy === true };
    });
}

/**
 * A container-mode stack's `images` output: version → the image reference pinned by digest
 * that its hosts checked and ran ({} when absent or malformed: release mode, or a record from
 * before digests were required).
 */
export function recordedImages(outputs: StackOutputs): Record<string, string> {
    const images = outputs.images;
    if (images === null || typeof images !== "object" || Array.isArray(images)) return {};
    return Object.fromEntries(Object.entries(images as Record<string, unknown>).filter((e): e is [string, string] => typeof e[1] === "string" && imageDigestParts(e[1]).digest !== undefined));
}

/** The image digest (`sha256:…`) a stack's record holds for `version`, or undefined. */
export function recordedDigest(outputs: StackOutputs, version: string): string | undefined {
    const ref = recordedImages(outputs)[version];
    return ref === undefined ? undefined : imageDigestParts(ref).digest;
}

/** One line an operator can read: what the stack says it runs. */
export function describeReport(outputs: StackOutputs): string {
    const deployed = str(outputs.deployedVersion);
    const hosts = hostReports(outputs);
    const hostText = hosts.length === 0 ? "no hosts" : hosts.map((h) => `${h.name} ${h.version} ${h.healthy ? "healthy" : "UNHEALTHY"}`).join(", ");
    return `deployedVersion ${deployed ?? "none"}; hosts: ${hostText}`;
}

/** The stack deployed `version` and every one of its hosts serves it healthy. */
export function runsHealthy(outputs: StackOutputs, version: string): boolean {
    const hosts = hostReports(outputs);
    return str(outputs.deployedVersion) === version && hosts.length > 0 && hosts.every((h) => h.version === version && h.healthy);
}

/**
 * The history the last deployment recorded. A record from before `history` existed
 * counts its deployedVersion and pinned rollbackVersion, oldest first: the gate that
 * wrote it accepted both as versions prod ran.
 */
export function recordedHistory(outputs: StackOutputs): DeployHistory {
    const legacy = [str(outputs.deployedVersion), str(outputs.rollbackVersion)].filter((v): v is string => v !== undefined).sort(compareVersions);
    return { history: versionList(outputs.history) ?? [...new Set(legacy)], rolledBackFrom: versionList(outputs.rolledBackFrom) ?? [] };
}

/**
 * Pure: the record after a deployment of `version` whose hosts now report `hosts`
 * (the program's `hosts` output). Only a deployment that runs healthy on every host
 * changes it:
 * - `version` joins `history` (once, at its first healthy run);
 * - going to a version that first ran *before* the one running now is a rollback —
 *   method 1 (the pinned target) and method 2 (an older pipeline's config) alike — so the
 *   version left joins `rolledBackFrom`;
 * - running a version healthy again (after it was acknowledged) takes it off `rolledBackFrom`.
 * Ordering by first healthy run, not by version number, keeps an acknowledged
 * roll-forward from counting as a rollback of the version it leaves.
 */
export function nextHistory(previous: StackOutputs, version: string, hosts: unknown): DeployHistory {
    const before = recordedHistory(previous);
    if (!runsHealthy({ deployedVersion: version, hosts }, version)) return before;
    const from = str(previous.deployedVersion);
    const at = before.history.indexOf(version);
    const wentBack = from !== undefined && from !== version && at >= 0 && at < before.history.indexOf(from);
    const history = at >= 0 ? before.history : [...before.history, version].slice(-HISTORY_LIMIT);
    const rolledBackFrom = before.rolledBackFrom.filter((v) => v !== version);
    if (wentBack && !rolledBackFrom.includes(from)) rolledBackFrom.push(from);
    return { history, rolledBackFrom };
}
