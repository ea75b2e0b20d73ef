import { HostLayout } from "./layout";
import { q } from "./shell";

/**
 * Takes the files root writes on every operation — `/var/log/<service>/`, its app.log and
 * deploy.log, `<baseDir>/revisions.log`, the lock and its owner line — into root's hands,
 * with explicit modes, before the script's first `step`/`record` appends to any of them.
 *
 * Older layouts gave `/var/log/<service>/` to the service user, who could then replace
 * deploy.log or app.log by a link to any root file for root to append to or chown. So the
 * directory is taken first: its parent is root's, so chown/chmod of the directory itself
 * follows nothing, and from then on the service user can neither add nor rename an entry
 * in it. Only then is each file looked at, with `find -P` (never following a link): a
 * regular, single-link file of ours is kept; a regular file the service user owns (the
 * old app.log, possibly still held open by a running instance) is set aside under a name
 * root never opens; anything else (a link, a hard link to another file, a FIFO, a
 * directory) is removed, which never follows a link either. chmod/chown only ever touch a
 * file that passed these checks.
 *
 * "Root" is the uid running the script: 0 on a host, the test's user under a temp root.
 */
export function renderLogFiles(l: HostLayout): string {
    const ours = (file: string) => `[ -n "$(find -P ${file} -maxdepth 0 -type f -links 1 -uid "$me_uid" 2>/dev/null)" ]`;
    return [
        `me_uid=$(id -u); me="$me_uid:$(id -g)"`,
        `log_dir=${q(l.logDir)}`,
        `if [ -L "$log_dir" ]; then echo "$log_dir is a symbolic link: refusing to write logs through it (only root can have made it; replace it by a directory)" >&2; exit 1; fi`,
        `[ -d "$log_dir" ] || install -d -m 0750 "$log_dir"`,
        `chown -h "$me" "$log_dir"`,
        `chmod 0750 "$log_dir"`,
        `for log in "$log_dir/app.log" "$log_dir/deploy.log"; do`,
        `  if [ -e "$log" ] || [ -L "$log" ]; then`,
        `    if ${ours('"$log"')}; then :`,
        `    elif [ -n "$(find -P "$log" -maxdepth 0 -type f -links 1 2>/dev/null)" ]; then rm -rf "$log.service-user"; mv -f -T "$log" "$log.service-user"`,
        `    else rm -rf "$log"`,
        `    fi`,
        `  fi`,
        `  [ -e "$log" ] || install -m 0640 /dev/null "$log"`,
        `  chown -h "$me" "$log"; chmod 0640 "$log"`,
        `done`,
        // baseDir is root's, so these are not the service user's to replace; still checked, never followed.
        `for own in ${q(l.revisionsLog)} ${q(l.lockFile)} ${q(`${l.lockFile}.owner`)}; do`,
        `  if [ ! -e "$own" ] && [ ! -L "$own" ]; then install -m 0640 /dev/null "$own"`,
        `  elif ${ours('"$own"')}; then chown -h "$me" "$own"; chmod 0640 "$own"`,
        `  else echo "warning: $own is not a regular file of uid $me_uid: its mode was left alone" >&2`,
        `  fi`,
        `done`,
        "",
    ].join("\n");
}
