# One host lock (flock on fd 9) for every operation that writes on this host. It waits
# up to LOCK_WAIT seconds, then fails naming the holder. Hooks never inherit fd 9: they
# run under systemd-run, as children of systemd rather than of this script.
LOCK_WAIT="${LOCK_WAIT:-120}"

lock_holder() {
    local owner pid state
    owner=$(cat "$LOCK_FILE.owner" 2>/dev/null || echo "unknown holder")
    pid=$(printf '%s' "$owner" | sed -n 's/.* pid \([0-9][0-9]*\) .*/\1/p')
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then state="still running"; else state="no longer running"; fi
    printf '%s (%s)' "$owner" "$state"
}

take_lock() {
    local who="$1"
    mkdir -p "$BASE_DIR"
    exec 9>>"$LOCK_FILE"
    if ! flock -w "$LOCK_WAIT" 9; then
        echo "holder=$(lock_holder)"
        echo "the deploy lock $LOCK_FILE is held by $(lock_holder); waited $LOCK_WAIT s. The lock frees itself when that process ends." >&2
        return 1
    fi
    printf '%s pid %s since %s\n' "$who" "$$" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$LOCK_FILE.owner"
}

# Leftovers of interrupted operations; safe only under the lock, where no other writer runs.
# Uploads arrive before their install takes the lock, so only stale ones (an hour old) go.
clean_leftovers() {
    rm -rf "$RELEASES_DIR"/.tmp-* "$RELEASES_DIR"/.download-* 2>/dev/null || true
    find "$RELEASES_DIR" -maxdepth 1 -name '.upload-*' -mmin +60 -delete 2>/dev/null || true
    rm -f "$BASE_DIR"/current.tmp.* "$INSTANCES_DIR"/.tmp-* "$ENV_DIR"/*.tmp.* "$UNIT_DIR/$SERVICE"*.tmp.* \
        "/usr/local/sbin/$SERVICE".tmp.* "/etc/logrotate.d/$SERVICE".tmp.* "$PROXY_CONFIG".tmp.* 2>/dev/null || true
}
