import * as path from "path";
import { HostLayout } from "./layout";
import { renderLogFiles } from "./logFiles";
import { q } from "./shell";

/**
 * The shell side of the host lock, for the providers' own scripts (release install and delete,
 * the service apply), which run before the host agent may be installed on a new host: flock(1)
 * on the lock file the agent locks with flock(2), so the agent's activation, the emergency
 * command and these scripts exclude each other; the holder line and deploy.log lines are in the
 * agent's formats (agent/internal/lock, agent/internal/record).
 */
/** base_trusted, the check every writing script makes before its first write (the lock file included). */
const BASE_TRUSTED_SHELL = `# base_trusted: BASE_DIR (or the nearest part of it that exists) and every directory above it, up to
# the layout's root, are the running uid's (root's, on a host), not links, and writable by it only:
# otherwise someone else made it first or can write it, and root would write the lock file and
# releases into their directory (the agent checks the same before its own writes).
base_trusted() {
    local p="$BASE_DIR" top="\${LAYOUT_ROOT:-/}" me uid user mode
    me=$(id -u)
    while [ ! -e "$p" ] && [ ! -L "$p" ]; do
        # Nothing of the layout exists yet: root makes all of it.
        if [ "$p" = "$top" ] || [ "$p" = / ]; then return 0; fi
        p=$(dirname "$p")
    done
    while :; do
        if [ -L "$p" ]; then echo "refused: $p is a symbolic link: the deploy needs it and every directory above it to be root's, not a symbolic link and writable by root only (replace the link by a directory of root's, or choose another baseDir). Nothing was changed" >&2; return 1; fi
        read -r uid user mode <<<"$(stat -c '%u %U %a' "$p")"
        if [ "$uid" != "$me" ] || [ $((0$mode & 022)) -ne 0 ]; then
            echo "refused: $p is owned by $user (uid $uid) with mode $(printf '%04o' "$((0$mode))"): the deploy needs it and every directory above it to be root's, not a symbolic link and writable by root only (fix: chown root:root $p && chmod go-w $p, or choose another baseDir). Nothing was changed" >&2
            return 1
        fi
        if [ "$p" = "$top" ] || [ "$p" = / ]; then return 0; fi
        p=$(dirname "$p")
    done
}`;

const LOCK_SHELL = `LOCK_WAIT="\${LOCK_WAIT:-120}"

lock_holder() {
    local owner pid state
    owner=$(cat "$LOCK_FILE.owner" 2>/dev/null || echo "unknown holder")
    pid=$(printf '%s' "$owner" | sed -n 's/.* pid \\([0-9][0-9]*\\) .*/\\1/p')
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then state="still running"; else state="no longer running"; fi
    printf '%s (%s)' "$owner" "$state"
}

# Waits up to LOCK_WAIT seconds on fd 9, then fails naming the holder.
take_lock() {
    local who="$1"
    mkdir -p "$BASE_DIR"
    exec 9>>"$LOCK_FILE"
    if ! flock -w "$LOCK_WAIT" 9; then
        echo "holder=$(lock_holder)"
        echo "the deploy lock $LOCK_FILE is held by $(lock_holder); waited $LOCK_WAIT s. The lock frees itself when that process ends." >&2
        return 1
    fi
    printf '%s pid %s since %s\\n' "$who" "$$" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$LOCK_FILE.owner"
}

# Leftovers of interrupted operations; safe only under the lock, where no other writer runs
# (every temp name carries its writer's pid, and a writer holds the lock while it exists). A
# complete upload waits for its install outside the lock for at most LOCK_WAIT; one ten minutes
# old has lost its install. Activation files are read within the activation's budget.
clean_leftovers() {
    rm -rf "$RELEASES_DIR"/.tmp-* "$RELEASES_DIR"/.download-* 2>/dev/null || true
    find "$RELEASES_DIR" -maxdepth 1 \\( -name '.upload-*' -o -name '.upload.*' \\) -mmin +10 -delete 2>/dev/null || true
    rm -f "$BASE_DIR"/current.tmp.* "$BASE_DIR"/.current.tmp.* "$INSTANCES_DIR"/.tmp-* "$INSTANCES_DIR"/.*.tmp.* "$ENV_DIR"/*.tmp "$ENV_DIR"/*.tmp.* "$ENV_DIR"/.*.tmp.* \\
        "$HOST_PROGRAM".tmp.* "/etc/logrotate.d/$SERVICE".tmp.* "$PROXY_CONFIG".tmp.* 2>/dev/null || true
    rm -f "$UNIT_DIR/$SERVICE.service".tmp.* "$UNIT_DIR/$SERVICE@.service".tmp.* "$UNIT_DIR/$SERVICE-proxy.service".tmp.* 2>/dev/null || true
    find "$ACTIVATIONS_DIR" -maxdepth 1 -type f -mmin +1440 -delete 2>/dev/null || true
}

# pause_point NAME: a deterministic place for the fault-injection tests to stop a write step
# (test/e2e/faults.test.ts). Inert unless /run/complinist-faults/NAME exists, which only root on
# the host can create: then it writes NAME.reached (with this pid) and waits until the file is
# removed, for at most two minutes (the agent's lock.PausePoint does the same).
pause_point() {
    local trigger="/run/complinist-faults/$1" deadline
    [ -e "$trigger" ] || return 0
    deadline=$(($(date +%s) + 120))
    printf '%s\\n' "$$" >"$trigger.reached"
    while [ -e "$trigger" ] && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.1; done
}

# one_line TEXT [MAX]: TEXT as one line of printable characters, at most MAX (400) long:
# what a release or a registry sends can never start a line of its own.
one_line() { printf '%s' "$1" | LC_ALL=C tr -c '[:print:]' ' ' | cut -c1-"\${2:-400}"; }

# step TEXT: one deploy.log line; never fails the operation (the log directory may be missing).
step() {
    { (umask 027 && printf '%s\\t%s\\t%s\\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "\${ACT_ID:-manual}" "$(one_line "$*" 1000)" >>"$DEPLOY_LOG"); } 2>/dev/null || true
}`;

/**
 * The preamble of every host script that writes: the host lock (LOCK_SHELL, so the
 * activation, the emergency command and the providers' scripts exclude each other), taken and held until the script exits, then the leftovers of
 * interrupted operations removed under it, then the script's fault-injection pause point
 * (host/lock.sh pause_point) before its first write. `pausePoint` false: the script places
 * its own; the default is the service apply's, whose renderer passes none. `step` (the
 * `record` family) writes the script's own lines to deploy.log, so the log files are taken
 * into root's hands (renderLogFiles) before any script can append to one.
 */
export function renderLocked(l: HostLayout, service: string, who: string, pausePoint: string | false = "apply"): string {
    const vars: Record<string, string> = {
        LAYOUT_ROOT: l.root === "" ? "/" : l.root,
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
        HOST_PROGRAM: l.hostProgram,
    };
    return [
        ...Object.entries(vars).map(([k, v]) => `${k}=${q(v)}`),
        BASE_TRUSTED_SHELL,
        LOCK_SHELL,
        "base_trusted || exit 1",
        `take_lock ${q(who)} || exit 75`,
        "clean_leftovers",
        renderLogFiles(l),
        ...(pausePoint === false ? [] : [`pause_point ${q(pausePoint)}`]),
        "",
    ].join("\n");
}

/**
 * A script that ends unless baseDir (or the nearest part of it that exists) and every directory
 * above it are root's, not links and writable by root only: for a step that writes under baseDir
 * before the host lock is taken (the artifact's upload).
 */
export function renderBaseTrusted(l: HostLayout): string {
    return [`LAYOUT_ROOT=${q(l.root === "" ? "/" : l.root)}`, `BASE_DIR=${q(l.baseDir)}`, BASE_TRUSTED_SHELL, "base_trusted || exit 1", ""].join("\n");
}
