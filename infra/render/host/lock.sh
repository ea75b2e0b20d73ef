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
# Every temp name carries the writer's pid, and a writer holds the lock while its temp
# exists, so under the lock each one is dead. A complete upload waits for its install
# outside the lock for at most LOCK_WAIT; one ten minutes old has lost its install (killed
# between upload and install), as has an upload still half-written after ten minutes.
# Activation results are read within the activation's budget; a day-old one never will be.
clean_leftovers() {
    rm -rf "$RELEASES_DIR"/.tmp-* "$RELEASES_DIR"/.download-* 2>/dev/null || true
    find "$RELEASES_DIR" -maxdepth 1 \( -name '.upload-*' -o -name '.upload.*' \) -mmin +10 -delete 2>/dev/null || true
    rm -f "$BASE_DIR"/current.tmp.* "$INSTANCES_DIR"/.tmp-* "$ENV_DIR"/*.tmp "$ENV_DIR"/*.tmp.* "$HOST_PROGRAM".tmp.* \
        "/etc/logrotate.d/$SERVICE".tmp.* "$PROXY_CONFIG".tmp.* 2>/dev/null || true
    rm -f "$UNIT_DIR/$SERVICE.service".tmp.* "$UNIT_DIR/$SERVICE@.service".tmp.* "$UNIT_DIR/$SERVICE-proxy.service".tmp.* 2>/dev/null || true
    find "$ACTIVATIONS_DIR" -maxdepth 1 -type f -mmin +1440 -delete 2>/dev/null || true
}

# pause_point NAME: a deterministic place for the fault-injection tests to stop a write step
# (test/e2e/faults.test.ts). Inert unless /run/complinist-faults/NAME exists, which
# only root on the host can create and nothing but a test does: then it writes NAME.reached
# (with this pid) and waits until the file is removed, for at most two minutes.
pause_point() {
    local trigger="/run/complinist-faults/$1" deadline
    [ -e "$trigger" ] || return 0
    deadline=$(($(date +%s) + 120))
    printf '%s\n' "$$" >"$trigger.reached"
    while [ -e "$trigger" ] && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.1; done
}
