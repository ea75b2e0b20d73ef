# Subcommands. `activate` is what a deploy runs (as a transient unit, so it finishes even
# when the deploy's SSH connection dies); `rollback` is the runbook's emergency path over
# plain SSH; `status` and `releases` are read-only.
usage() {
    cat <<USAGE
usage: $HOST_PROGRAM status [--kv]          the live release, the standby, the proxy, the lock
       $HOST_PROGRAM releases               releases on this host, which is live and which is warm
       $HOST_PROGRAM rollback [VERSION]     emergency switch (default: the warm standby, else the
                                            previously activated release), locked, gated, recorded
       $HOST_PROGRAM check-current          exit 1 when \`current\` names another release than the
                                            proxy routes to (run by \`systemctl start $SERVICE\`)
       $HOST_PROGRAM container-run PORT     container mode: run the slot's pinned image in the
                                            foreground (the ExecStart of $SERVICE@PORT.service)
USAGE
}

load_settings() {
    SETTINGS="$1"
    # Settings files written before the canary and the watch existed lack these: their defaults.
    CANARY_PERCENT=0 CANARY_SECONDS=0 WATCH_FACTOR=10 WATCH_MIN_REQUESTS=20 WATCH_MAX_RATIO=0.01 ACKNOWLEDGED=0
    if [ ! -f "$SETTINGS" ]; then echo "no deploy settings at $SETTINGS: deploy once with pulumi up first" >&2; exit "$EXIT_USAGE"; fi
    # shellcheck disable=SC1090
    . "$SETTINGS"
    PORTS=("$((PORT + 1))" "$((PORT + 2))")
    PROBE_TIMEOUT=$((TIMEOUT < 5 ? TIMEOUT : 5))
    # The live instance answers the health path it was activated with (the last successful
    # activation's settings), which a deploy changing health.path does not share.
    LIVE_HEALTH_PATH="$HEALTH_PATH"
    if [ "$SETTINGS" != "$DEPLOY_CONFIG" ] && [ -f "$DEPLOY_CONFIG" ]; then
        # shellcheck disable=SC1090
        LIVE_HEALTH_PATH=$(. "$DEPLOY_CONFIG" && printf '%s' "$HEALTH_PATH")
    fi
}

# routed_ports: LIVE_PORT, the port the proxy routes to ("" when nothing is routed), and
# STANDBY_PORT, the other one ("" when the ports are unknown: no activation finished yet).
routed_ports() {
    LIVE_PORT=$(proxy_live_port)
    STANDBY_PORT=""
    if [ -n "$LIVE_PORT" ] && [ "${#PORTS[@]}" -gt 0 ]; then STANDBY_PORT=$(other_port "$LIVE_PORT"); fi
}

# The release `current` names (its directory's name), or "" when it names nothing.
current_version() {
    local t
    t=$(readlink -e "$CURRENT" 2>/dev/null) || return 0
    printf '%s' "${t##*/}"
}

# is_kept_release VERSION: VERSION is a release version (the schema's pattern) and a real
# directory under releases/ (never a link) with the manifest root wrote (a regular file).
is_kept_release() {
    local v="$1"
    case "$v" in '' | [!0-9A-Za-z]* | *[!0-9A-Za-z.+_-]*) return 1 ;; esac
    [ "${#v}" -le 64 ] && [ ! -L "$RELEASES_DIR/$v" ] && [ -d "$RELEASES_DIR/$v" ] && [ ! -L "$RELEASES_DIR/$v/$MANIFEST" ] && [ -f "$RELEASES_DIR/$v/$MANIFEST" ]
}

kept_releases() {
    local d v out=""
    for d in "$RELEASES_DIR"/*/; do
        v=$(basename "$d")
        if is_kept_release "$v"; then out="$out $v"; fi
    done
    printf '%s' "${out# }"
}

# require_kept_release VERSION: exit (usage) naming what was refused, unless VERSION is a kept
# release. Root links `current` and an instance to it: a name like ../shared/x would hand both
# to the service user's directory.
require_kept_release() {
    local v="$1"
    if is_kept_release "$v"; then return 0; fi
    case "$v" in
        '' | [!0-9A-Za-z]* | *[!0-9A-Za-z.+_-]*) echo "refused: '$(one_line "$v" 80)' is not a release version (letters, digits and . + _ -, starting with a letter or digit, at most 64 characters); nothing was changed" >&2 ;;
        *) echo "refused: release $(one_line "$v" 80) is not kept on this host (a directory $RELEASES_DIR/<version> with its manifest); kept: $(kept_releases); nothing was changed" >&2 ;;
    esac
    exit "$EXIT_USAGE"
}

finish() {
    local rc=$?
    if [ -n "${RESULT_FILE:-}" ] && ! grep -qx 'done=1' "$RESULT_FILE" 2>/dev/null; then
        # Stopped during a canary (killed, or out of its time): every request back to the live release,
        # the canary's instance stopped; a share for a release nobody watches any more is never left.
        local live canary
        canary=$(proxy_canary_port)
        if [ -n "$canary" ]; then
            live=$(proxy_live_port)
            step "interrupted during the canary: every request back to $(instance_version "$live") on $live"
            proxy_flip "$live" "$canary" || true
            proxy_route "$live" "$(instance_version "$live")" "$LIVE_HEALTH_PATH" || true
            instance_stop "$canary"
        fi
        rm -f "$WATCH_NOW"
        record "${VERSION:-?}" "${SHA:-?}" "${WHO:-?}" "outcome=failed reason=interrupted exit=$rc"
        step "result failed: interrupted (exit $rc)"
        result outcome failed
        result seen "the host-side activation stopped early (exit $rc); see journalctl and $DEPLOY_LOG"
        result "done" 1
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
    (umask 077 && : >"$RESULT_FILE")
    trap finish EXIT
    if ! take_lock "$WHO"; then
        result outcome locked
        result holder "$(lock_holder)"
        result "done" 1
        exit "$EXIT_LOCKED"
    fi
    clean_leftovers
    refuse_rolled_back
    activate
}

# refuse_rolled_back: a deploy of a version the watch rolled back from on this host is refused,
# naming the verdict, until the stack acknowledges it (acknowledgeRolledBack) or moves on:
# the same release is never silently tried on users again. The emergency rollback, which names
# its target by hand, is not refused.
refuse_rolled_back() {
    local verdict
    [ "$ACKNOWLEDGED" != 1 ] || return 0
    verdict=$(rolled_back_verdict "$VERSION") || return 0
    record "$VERSION" "$SHA" "$WHO" "outcome=refused reason=watch-rolled-back"
    step "refused: $VERSION was rolled back by the error-rate watch ($verdict)"
    result outcome refused
    result reason watch-rolled-back
    result seen "$verdict"
    result "done" 1
    exit "$EXIT_REFUSED"
}

cmd_rollback() {
    local live target v live_version
    load_settings "$DEPLOY_CONFIG"
    # A named target is checked before anything is written, and again under the lock.
    if [ $# -gt 0 ]; then require_kept_release "$1"; fi
    WHO="$(printf '%s@%s-emergency' "${SUDO_USER:-${USER:-root}}" "$(hostname)" | tr -c 'A-Za-z0-9@._-' _)"
    ACT_ID="emergency-$(date -u +%Y%m%dT%H%M%SZ)-$$"
    echo "waiting for the deploy lock (up to $LOCK_WAIT s)..."
    take_lock "$WHO" >/dev/null || { echo "refused: the deploy lock is held by $(lock_holder)" >&2; exit "$EXIT_LOCKED"; }
    clean_leftovers
    routed_ports
    live="$LIVE_PORT"
    live_version=$(instance_version "${live:-none}")
    target="${1:-}"
    if [ -z "$target" ] && [ -n "$STANDBY_PORT" ] && instance_active "$STANDBY_PORT"; then target=$(instance_version "$STANDBY_PORT"); fi
    if [ -z "$target" ]; then
        # The newest release root recorded as activated that is not live and is still kept.
        while IFS= read -r v; do
            if [ "$v" != "$live_version" ] && is_kept_release "$v"; then target="$v"; break; fi
        done < <(activated_versions | tac)
    fi
    if [ -z "$target" ]; then echo "no previous release to roll back to; name one: $HOST_PROGRAM rollback VERSION (kept: $(kept_releases))" >&2; exit "$EXIT_USAGE"; fi
    require_kept_release "$target"
    mkdir -p "$ACTIVATIONS_DIR"
    RESULT_FILE="$ACTIVATIONS_DIR/$ACT_ID.result"
    (umask 077 && : >"$RESULT_FILE")
    VERSION="$target"
    SHA=$(sed -n 's/^sha256=//p' "$RELEASES_DIR/$VERSION/$MANIFEST" 2>/dev/null || true)
    RUN_HOOK=0
    # An emergency switch takes every request at once: no canary (the soak's watch still runs).
    CANARY_PERCENT=0
    echo "rolling back to $VERSION (live now: $live_version)"
    # Only an activation that began has an outcome to record: a refused lock or a missing
    # target is said on stderr, never written to revisions.log as a version "?".
    trap finish EXIT
    activate
    cat "$RESULT_FILE"
    echo "rolled back to $VERSION. The stack still declares another version: pin it in the stack file (complinist:version: $VERSION), or run pulumi up to re-apply the declared one."
}

cmd_status() {
    if [ -f "$DEPLOY_CONFIG" ]; then load_settings "$DEPLOY_CONFIG"; else PORT=0; PORTS=(); HEALTH_PATH=/health; PROBE_TIMEOUT=3; fi
    routed_ports
    local canary_port=""
    canary_port=$(proxy_canary_port)
    echo "current=$(current_version)"
    echo "livePort=$LIVE_PORT"
    echo "liveVersion=$([ -z "$LIVE_PORT" ] || instance_version "$LIVE_PORT")"
    echo "liveActive=$([ -n "$LIVE_PORT" ] && systemctl is-active "$(instance_unit "$LIVE_PORT")" 2>/dev/null || echo inactive)"
    echo "liveRev=$([ -z "$LIVE_PORT" ] || instance_rev "$LIVE_PORT")"
    echo "standbyVersion=$([ -n "$STANDBY_PORT" ] && instance_active "$STANDBY_PORT" && instance_version "$STANDBY_PORT")"
    if [ "$RUNTIME" = docker ]; then
        echo "liveContainer=$([ -z "$LIVE_PORT" ] || container_state "$LIVE_PORT")"
        echo "liveImage=$([ -z "$LIVE_PORT" ] || instance_image "$LIVE_PORT")"
    fi
    echo "proxyActive=$(systemctl is-active "$(proxy_unit)" 2>/dev/null || true)"
    echo "served=$(one_line "$(proxy_serves)" 64)"
    echo "canaryVersion=$([ -z "$canary_port" ] || instance_version "$canary_port")"
    if [ ! -e "$LOCK_FILE" ] || flock -n "$LOCK_FILE" true 2>/dev/null; then
        echo "lock=free"
        echo "watch="
    else
        echo "lock=$(lock_holder)"
        # A watch in progress (canary or soak): its live figures, from the activation holding the lock.
        echo "watch=$(one_line "$(cat "$WATCH_NOW" 2>/dev/null || true)" 600)"
    fi
}

cmd_releases() {
    local d v marks live_version standby_version=""
    if [ -f "$DEPLOY_CONFIG" ]; then load_settings "$DEPLOY_CONFIG"; else PORTS=(); fi
    routed_ports
    live_version=$([ -z "$LIVE_PORT" ] || instance_version "$LIVE_PORT")
    if [ -n "$STANDBY_PORT" ] && instance_active "$STANDBY_PORT"; then standby_version=$(instance_version "$STANDBY_PORT"); fi
    for d in "$RELEASES_DIR"/*/; do
        [ -f "$d$MANIFEST" ] || continue
        v=$(basename "$d")
        marks=""
        [ -n "$live_version" ] && [ "$live_version" = "$v" ] && marks="$marks live"
        [ -n "$standby_version" ] && [ "$standby_version" = "$v" ] && marks="$marks standby"
        printf '%-24s installed %s%s\n' "$v" "$(sed -n 's/^installedAt=//p' "$d$MANIFEST")" "$marks"
    done
}

# The runbook's hand rollback is `ln -sfn <previous> current && systemctl restart <service>`.
# Instances run from instances/<port>, not from `current`, so a restart would quietly keep
# serving the routed release: `<service>.service` runs this first and fails loudly instead,
# naming the command that does switch (locked, gated, recorded). Read-only: takes no lock.
cmd_check_current() {
    local live want cur
    live=$(proxy_live_port)
    [ -n "$live" ] || return 0
    want=$(instance_version "$live")
    cur=$(current_version)
    [ -n "$want" ] && [ "$cur" != "$want" ] || return 0
    {
        echo "$CURRENT names ${cur:-no release} but the proxy routes to $want (port $live): restarting $SERVICE does not switch releases."
        if [ -n "$cur" ]; then echo "To switch to $cur: sudo $HOST_PROGRAM rollback $cur   (locked, gated, recorded)"; fi
        echo "To keep $want: sudo ln -sfn releases/$want $CURRENT"
    } >&2
    exit 1
}

main() {
    case "${1:-}" in
        activate) shift; cmd_activate "$@" ;;
        rollback) shift; cmd_rollback "$@" ;;
        status) shift; cmd_status "$@" ;;
        releases) shift; cmd_releases "$@" ;;
        check-current) shift; cmd_check_current ;;
        container-run) shift; cmd_container_run "$@" ;;
        -h | --help | help) usage ;;
        *) usage >&2; exit "$EXIT_USAGE" ;;
    esac
}
