import { z } from "zod";
import { imageDigestParts } from "../infra/render/image";
import { integer } from "./fields";

/** Container mode's part of the stack contract (stacks/schema.ts): a release's image pinned by digest, and the limits each app container runs with. */

const IMAGE_PATTERN = /^[a-z0-9]+([._/-][a-z0-9]+)*(:[0-9]+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?$/;

export const DIGEST_EXAMPLE = "registry.example.com/complinist@sha256:<64 hex>";

export const imageRelease = z.strictObject({
    /** An image pinned by content: `name@sha256:<digest>` (container mode refuses a tag alone). */
    image: z.string().regex(IMAGE_PATTERN, `must be a Docker image reference pinned by digest, such as ${DIGEST_EXAMPLE}`),
});

/** Why a container-mode image reference is refused (a tag alone resolves anew on each host), or undefined. */
export function imagePinProblem(ref: string): string | undefined {
    if (imageDigestParts(ref).digest !== undefined) return undefined;
    const repo = ref.slice(0, ref.lastIndexOf(":") > ref.lastIndexOf("/") ? ref.lastIndexOf(":") : ref.length);
    return (
        `'${ref}' is a tag; pin it by digest: ${repo}@sha256:<64 hex> ` +
        `(docker inspect --format '{{index .RepoDigests 0}}' ${ref}), so every host runs the same image and a re-pushed tag changes nothing`
    );
}

/** A size with a unit, as Docker's flags take it ("512m"); `units` maps each accepted unit to bytes. */
function sizeWithUnit(what: string, units: Readonly<Record<string, number>>, min: string, max: string, example: string) {
    const names = Object.keys(units).join(", ");
    const bytes = (s: string): number => Number(s.slice(0, -1)) * (units[s.slice(-1)] ?? NaN);
    const accepted = `must be ${what}: a whole number with one unit of ${names} (e.g. ${example}), from ${min} to ${max}`;
    return z
        .string({ error: accepted })
        .regex(new RegExp(`^[1-9][0-9]{0,6}[${Object.keys(units).join("")}]$`), accepted)
        .refine((s) => bytes(s) >= bytes(min) && bytes(s) <= bytes(max), accepted);
}
const KIB = 1024;
const MIB = 1024 * KIB;

/**
 * Container mode: the limits each app container runs with (besides running as service.user with a
 * read-only root). Docker's own JSON log of a container is rotated: the app's output also reaches app.log.
 */
export const containerLimits = z.strictObject({
    /** Memory limit, swap included (`docker run --memory`, `--memory-swap`). */
    memory: sizeWithUnit("a memory limit", { m: MIB, g: 1024 * MIB }, "16m", "1024g", "512m or 2g").default("512m"),
    /** Processes and threads the container may have (`--pids-limit`). */
    pids: integer("a process limit", 16, 65536).default(256),
    /** Size of the container's /tmp, a tmpfs (the root filesystem is read-only). */
    tmpSize: sizeWithUnit("a /tmp size", { m: MIB, g: 1024 * MIB }, "1m", "64g", "64m").default("64m"),
    /** Docker's JSON log of the container: rotated at this size (`--log-opt max-size`)... */
    logMaxSize: sizeWithUnit("a log file size", { k: KIB, m: MIB, g: 1024 * MIB }, "100k", "10g", "10m").default("10m"),
    /** ...keeping this many files (`--log-opt max-file`). */
    logMaxFiles: integer("a count of log files", 1, 100).default(3),
});
export const CONTAINER_DEFAULTS: ContainerLimits = Object.freeze(containerLimits.parse({}));

export type ImageRelease = z.output<typeof imageRelease>;
export type ContainerLimits = Readonly<z.output<typeof containerLimits>>;
