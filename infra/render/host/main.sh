# Subcommands. `activate` is what a deploy runs (as a transient unit, so it finishes even
# when the deploy's SSH connection dies); `rollback` is the runbook's emergency path over
# plain SSH; `status` and `releases` are read-only.
usage() {
    cat <<USAGE
usage: $HOST_PROGRAM status [--kv]          the live release, the standby, the proxy, the lock
       $HOST_PROGRAM releases               releases on this host, which is live and which is warm
       $HOST_PROGRAM rollback [VERSION]     emergency switch (default: the warm standby, else the
                                            previously activated release), locked, gated, recorded
USAGE
}

load_settings() {
    SETTINGS="$1"
    if [ ! -f "$SETTINGS" ]; then echo "no deploy settings at $SETTINGS: deploy once with pulumi up first" >&2; exit "$EXIT_USAGE"; fi
    # shellcheck disable=SC1090
    . "$SETTINGS"
    PORTS=("$((PORT + 1))" "$((PORT + 2))")
    PROBE_TIMEOUT=$((TIMEOUT < 5 ? TIMEOUT : 5))
}

finish() {
    local rc=$?
    if [ -n "${RESULT_FILE:-}" ] && ! grep -qx 'done=1' "$RESULT_FILE" 2>/dev/null; then
        record "${VERSION:-?}" "${SHA:-?}" "${WHO:-?}" "outcome=failed reason=interrupted exit=$rc"
        step "result failed: interrupted (exit $rc)"
        result "outcome=failed" "seen=the host-side activation stopped early (exit $rc); see journalctl and $DEPLOY_LOG" "done=1"
    fi
}

cmd_activate() {
    local id="" settings=""
    VERSION="" SHA="" WHO="" RUN_HOOK=0
    while [ $# -gt 0 ]; do
        case "$1" in
            --id) id="$2"; shift 2 ;;
            --version) VERSION="$2"; shift 2 ;;
            --sha) SHA="$2"; shift 2 ;;
            --who) WHO="$2"; shift 2 ;;
            --settings) settings="$2"; shift 2 ;;
            --hook) RUN_HOOK=1; shift ;;
            *) usage >&2; exit "$EXIT_USAGE" ;;
        esac
    done
    ACT_ID="$id"
    load_settings "$settings"
    mkdir -p "$ACTIVATIONS_DIR"
    RESULT_FILE="$ACTIVATIONS_DIR/$id.result"
    : >"$RESULT_FILE"
    trap finish EXIT
    if ! take_lock "$WHO"; then
        result "outcome=locked" "holder=$(lock_holder)" "done=1"
        exit "$EXIT_LOCKED"
    fi
    clean_leftovers
    activate
}

cmd_rollback() {
    local live target
    load_settings "$DEPLOY_CONFIG"
    WHO="$(printf '%s@%s-emergency' "${SUDO_USER:-${USER:-root}}" "$(hostname)" | tr -c 'A-Za-z0-9@._-' _)"
    ACT_ID="emergency-$(date -u +%Y%m%dT%H%M%SZ)-$$"
    mkdir -p "$ACTIVATIONS_DIR"
    RESULT_FILE="$ACTIVATIONS_DIR/$ACT_ID.result"
    : >"$RESULT_FILE"
    echo "waiting for the deploy lock (up to $LOCK_WAIT s)..."
    take_lock "$WHO" >/dev/null || { echo "refused: the deploy lock is held by $(lock_holder)" >&2; exit "$EXIT_LOCKED"; }
    clean_leftovers
    live=$(proxy_live_port)
    target="${1:-}"
    if [ -z "$target" ] && [ -n "$live" ] && instance_active "$(other_port "$live")"; then target=$(instance_version "$(other_port "$live")"); fi
    if [ -z "$target" ]; then
        target=$(grep -F 'outcome=activated' "$REVISIONS_LOG" 2>/dev/null | sed -n 's/.*\tversion=\([^\t]*\)\t.*/\1/p' | grep -vxF "$(instance_version "${live:-none}")" | tail -n 1 || true)
    fi
    if [ -z "$target" ]; then echo "no previous release to roll back to; name one: $HOST_PROGRAM rollback VERSION" >&2; exit "$EXIT_USAGE"; fi
    VERSION="$target"
    SHA=$(sed -n 's/^sha256=//p' "$RELEASES_DIR/$VERSION/$MANIFEST" 2>/dev/null || true)
    RUN_HOOK=0
    echo "rolling back to $VERSION (live now: $(instance_version "${live:-none}"))"
    # Only an activation that began has an outcome to record: a refused lock or a missing
    # target is said on stderr, never written to revisions.log as a version "?".
    trap finish EXIT
    activate
    cat "$RESULT_FILE"
    echo "rolled back to $VERSION. The stack still declares another version: pin it in the stack file (complinist:version: $VERSION), or run pulumi up to re-apply the declared one."
}

cmd_status() {
    local live other
    if [ -f "$DEPLOY_CONFIG" ]; then load_settings "$DEPLOY_CONFIG"; else PORT=0; PORTS=(); HEALTH_PATH=/health; PROBE_TIMEOUT=3; fi
    live=$(proxy_live_port)
    other=""
    # Without deploy.conf (no activation finished yet) the ports are unknown: report no standby.
    [ -z "$live" ] || [ "${#PORTS[@]}" -eq 0 ] || other=$(other_port "$live")
    echo "current=$(t=$(readlink -e "$CURRENT" 2>/dev/null) && printf '%s' "${t##*/}")"
    echo "livePort=$live"
    echo "liveVersion=$([ -z "$live" ] || instance_version "$live")"
    echo "liveActive=$([ -n "$live" ] && systemctl is-active "$(instance_unit "$live")" 2>/dev/null || echo inactive)"
    echo "liveRev=$([ -z "$live" ] || instance_rev "$live")"
    echo "standbyVersion=$([ -n "$other" ] && instance_active "$other" && instance_version "$other")"
    echo "proxyActive=$(systemctl is-active "$(proxy_unit)" 2>/dev/null || true)"
    echo "served=$(proxy_serves)"
    if [ ! -e "$LOCK_FILE" ] || flock -n "$LOCK_FILE" true 2>/dev/null; then echo "lock=free"; else echo "lock=$(lock_holder)"; fi
}

cmd_releases() {
    local d v live other marks
    if [ -f "$DEPLOY_CONFIG" ]; then load_settings "$DEPLOY_CONFIG"; else PORTS=(); fi
    live=$(proxy_live_port)
    other=""
    [ -z "$live" ] || [ "${#PORTS[@]}" -eq 0 ] || other=$(other_port "$live")
    for d in "$RELEASES_DIR"/*/; do
        [ -f "$d$MANIFEST" ] || continue
        v=$(basename "$d")
        marks=""
        [ -n "$live" ] && [ "$(instance_version "$live")" = "$v" ] && marks="$marks live"
        [ -n "$other" ] && instance_active "$other" && [ "$(instance_version "$other")" = "$v" ] && marks="$marks standby"
        printf '%-24s installed %s%s\n' "$v" "$(sed -n 's/^installedAt=//p' "$d$MANIFEST")" "$marks"
    done
}

main() {
    case "${1:-}" in
        activate) shift; cmd_activate "$@" ;;
        rollback) shift; cmd_rollback "$@" ;;
        status) shift; cmd_status "$@" ;;
        releases) shift; cmd_releases "$@" ;;
        -h | --help | help) usage ;;
        *) usage >&2; exit "$EXIT_USAGE" ;;
    esac
}
