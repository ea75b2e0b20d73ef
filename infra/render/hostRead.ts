import { renderAgentState } from "./activation";
import type { HostLayout } from "./layout";
import { MANIFEST } from "./protocol";
import { renderServiceRead } from "./service";
import { q } from "./shell";

/** The line that opens each section of the host read's answer: `### complinist-read <section>[ <exit>]`. */
export const HOST_READ_MARK = "### complinist-read";

/**
 * One read of everything a refresh asks of a host, in one exec, for every resource of the host
 * (infra/providers/hostRead.ts): the ServiceUnit's files, hashes and units (`service`, the
 * firewall compared with the host's own rules file), every release directory's manifest sha256
 * (`releases`: `release:<version>=<sha256>` for each one root completed, never through a link),
 * and the agent's `state` with its own probe settings (`state <exit>`, after `state-stderr`;
 * a host the bash host program deployed answers its `status`). Read-only, like each part.
 */
export function renderHostRead(l: HostLayout, service: string, systemd: boolean): string {
    const mark = (section: string) => `echo ${q(`${HOST_READ_MARK} ${section}`)}`;
    return [
        mark("service"),
        renderServiceRead(l, service, systemd),
        mark("releases"),
        `for d in ${q(l.releasesDir)}/*; do`,
        `  n=\${d##*/}`,
        // Only names that are versions (the schema's rule); anything else is no release of the stack's.
        `  case "$n" in ''|*[!0-9A-Za-z.+_-]*|[!0-9A-Za-z]*) continue ;; esac`,
        `  [ \${#n} -le 64 ] || continue`,
        `  m="$d/${MANIFEST}"`,
        `  if [ -f "$m" ] && [ ! -L "$m" ]; then echo "release:$n=$(sed -n 's/^sha256=//p' "$m" | head -n 1)"; fi`,
        `done`,
        mark("state-stderr"),
        `exec 3>&1`,
        `if out=$( (`,
        renderAgentState(l),
        `) 2>&3 ); then code=0; else code=$?; fi`,
        `echo "${HOST_READ_MARK} state $code"`,
        `printf '%s\\n' "$out"`,
        "",
    ].join("\n");
}

/** The sections of a host read's answer (renderHostRead). */
export interface HostReadAnswer {
    /** The ServiceUnit's key=value lines. */
    readonly service: string;
    /** Version → the sha256 its manifest records, for every complete release directory. */
    readonly releases: ReadonlyMap<string, string>;
    /** The agent's state (or the bash host program's status), its exit code and its stderr. */
    readonly state: { readonly code: number; readonly stdout: string; readonly stderr: string };
}

/** The answer split into its sections; an Error naming the host when one is missing (the script did not run to its end). */
export function parseHostRead(stdout: string, host: string): HostReadAnswer {
    const sections = new Map<string, string[]>();
    let code: number | undefined;
    let current: string[] | undefined;
    for (const line of stdout.replace(/\n$/, "").split("\n")) {
        if (line.startsWith(`${HOST_READ_MARK} `)) {
            const [name = "", exit] = line.slice(HOST_READ_MARK.length + 1).split(" ");
            if (name === "state") code = Number(exit);
            current = [];
            sections.set(name, current);
            continue;
        }
        current?.push(line);
    }
    const missing = ["service", "releases", "state-stderr", "state"].filter((s) => !sections.has(s));
    if (missing.length > 0 || code === undefined || !Number.isInteger(code)) {
        throw new Error(`host ${host}: the read of the host's state ended early (no ${missing.join(", ") || "exit code of the state"}): ${JSON.stringify(stdout.slice(-300))}`);
    }
    const releases = new Map<string, string>();
    for (const line of sections.get("releases") ?? []) {
        const m = /^release:([^=]+)=(.*)$/.exec(line);
        if (m) releases.set(m[1] as string, m[2] as string);
    }
    const text = (s: string) => (sections.get(s) ?? []).join("\n");
    return { service: text("service"), releases, state: { code, stdout: text("state"), stderr: text("state-stderr") } };
}
