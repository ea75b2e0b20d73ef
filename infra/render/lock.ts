import * as path from "path";
import { hostProgramPart } from "./hostProgram";
import { HostLayout } from "./layout";
import { renderLogFiles } from "./logFiles";
import { q } from "./shell";

/**
 * The preamble of every host script that writes: the host lock (the host program's own
 * `lock` family, so the activation, the emergency command and the providers' scripts
 * exclude each other), taken and held until the script exits, then the leftovers of
 * interrupted operations removed under it, then the script's fault-injection pause point
 * (host/lock.sh pause_point) before its first write. `pausePoint` false: the script places
 * its own; the default is the service apply's, whose renderer passes none. `step` (the
 * `record` family) writes the script's own lines to deploy.log, so the log files are taken
 * into root's hands (renderLogFiles) before any script can append to one.
 */
export function renderLocked(l: HostLayout, service: string, who: string, pausePoint: string | false = "apply"): string {
    const vars: Record<string, string> = {
        SERVICE: service,
        BASE_DIR: l.baseDir,
        RELEASES_DIR: l.releasesDir,
        INSTANCES_DIR: l.instancesDir,
        ACTIVATIONS_DIR: l.activationsDir,
        LOCK_FILE: l.lockFile,
        ENV_DIR: l.envDir,
        UNIT_DIR: path.posix.dirname(l.unitFile),
        PROXY_CONFIG: l.proxyConfig,
        DEPLOY_LOG: l.deployLog,
        REVISIONS_LOG: l.revisionsLog,
        HOST_PROGRAM: l.hostProgram,
    };
    return [
        ...Object.entries(vars).map(([k, v]) => `${k}=${q(v)}`),
        hostProgramPart("lock"),
        hostProgramPart("record"),
        `take_lock ${q(who)} || exit 75`,
        "clean_leftovers",
        renderLogFiles(l),
        ...(pausePoint === false ? [] : [`pause_point ${q(pausePoint)}`]),
        "",
    ].join("\n");
}
