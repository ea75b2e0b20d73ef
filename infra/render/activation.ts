import * as path from "path";
import { HostLayout } from "./layout";
import { q } from "./shell";

/**
 * The provider's side of an activation. The activation itself is the host program's
 * `activate` (host/activate.sh), started as a transient systemd unit so it runs to its
 * end, and records its outcome, even when the deploy process or its SSH connection dies.
 * The provider writes the settings, starts the unit and polls for the result file.
 */

export interface ActivationRun {
    /** Unique per attempt: names the transient unit and the result file. */
    readonly id: string;
    readonly service: string;
    readonly version: string;
    readonly sha256: string;
    readonly who: string;
    readonly runHook: boolean;
    /** Upper bound for the whole host-side activation (RuntimeMaxSec=). */
    readonly budgetSeconds: number;
}

export function activationUnit(service: string, id: string): string {
    return `${service}-activate-${id}`;
}

/** Settings arrive on stdin; the unit is started and left running (no --wait). */
export function renderActivationStart(l: HostLayout, a: ActivationRun): string {
    const settings = path.posix.join(l.activationsDir, `${a.id}.conf`);
    return [
        `install -d -m 0700 ${q(l.activationsDir)}`,
        `umask 077`,
        `cat > ${q(settings)}`,
        `if [ ! -x ${q(l.hostProgram)} ]; then echo "the host program ${l.hostProgram} is missing: the service was not installed" >&2; exit 1; fi`,
        [
            `systemd-run --quiet --collect --unit=${q(activationUnit(a.service, a.id))}`,
            `-p RuntimeMaxSec=${a.budgetSeconds} -p KillMode=mixed`,
            `${q(l.hostProgram)} activate --id ${q(a.id)} --version ${q(a.version)} --sha ${q(a.sha256)} --who ${q(a.who)} --settings ${q(settings)}${a.runHook ? " --hook" : ""}`,
        ].join(" "),
        `echo "started=true"`,
        "",
    ].join("\n");
}

/** The result file so far and whether the unit still runs; `done=1` ends the polling. */
export function renderActivationPoll(l: HostLayout, service: string, id: string): string {
    const result = path.posix.join(l.activationsDir, `${id}.result`);
    return [
        `cat ${q(result)} 2>/dev/null || true`,
        `echo "unit=$(systemctl is-active ${q(`${activationUnit(service, id)}.service`)} 2>/dev/null || true)"`,
        "",
    ].join("\n");
}

/** The Read of an Activation: what the host program reports (live, standby, proxy, what answers). */
export function renderActivationRead(l: HostLayout): string {
    return [`if [ -x ${q(l.hostProgram)} ]; then ${q(l.hostProgram)} status; else echo "current="; echo "served="; fi`, ""].join("\n");
}
