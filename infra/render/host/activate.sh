# The one way a release becomes live: start it beside the live one, gate it before it
# takes a request, switch the proxy, drain the old instance, soak, then keep the pinned
# rollback target warm. The fallback is always what was serving, checked to be healthy;
# nothing here ever stops the service.
#
# The live instance is the one the proxy routes to (its config), never inferred from a
# probe: a live instance that does not answer is never stopped or restarted here, and the
# new release always starts on the other port.

# result KEY VALUE: one line for the provider (or the operator) to read back (one_line, record.sh).
result() { printf '%s=%s\n' "$1" "$(one_line "$2")" >>"$RESULT_FILE"; }

# What answers on the service port now, checked (a version, or "none"): the result and
# revisions.log say what serves, not what was meant to.
serving_now() {
    local v
    v=$(proxy_serves "$HEALTH_PATH")
    [ -n "$v" ] || [ "$LIVE_HEALTH_PATH" = "$HEALTH_PATH" ] || v=$(proxy_serves "$LIVE_HEALTH_PATH")
    printf '%s' "${v:-none}"
}

# fail_activation EXIT OUTCOME REASON: record, report and end; FAILED_SEEN says what was seen.
fail_activation() {
    local code="$1" outcome="$2" reason="$3" serving
    serving=$(serving_now)
    record "$VERSION" "$SHA" "$WHO" "outcome=$outcome reason=$reason live=${LIVE_VERSION:-none} serving=$serving seen=$FAILED_SEEN"
    step "result $outcome: $reason; serving $serving"
    result outcome "$outcome"
    result reason "$reason"
    result serving "$serving"
    result seen "$FAILED_SEEN"
    result "done" 1
    exit "$code"
}

# redact: stdin to stdout with every value of the env file (the app's secrets, the
# operator's environment) replaced by ***. Values under 4 characters are left: they would
# garble every line and guard nothing.
redact() {
    perl -e '
        my @values;
        if (open(my $f, "<", $ARGV[0])) {
            while (<$f>) {
                next unless /^[A-Za-z_][A-Za-z0-9_]*="(.*)"$/;
                (my $v = $1) =~ s/\\(["\\])/$1/g;
                push @values, $v if length($v) >= 4;
            }
        }
        local $/; my $s = <STDIN> // "";
        $s =~ s/\Q$_\E/***/g for sort { length($b) <=> length($a) } @values;
        print $s;
    ' "$ENV_FILE"
}

# A hook's output is held by root only this far: the first and the last HOOK_OUTPUT_KEEP bytes.
HOOK_OUTPUT_KEEP=32768

# cap_output: stdin to stdout cut to its first and last HOOK_OUTPUT_KEEP bytes (whole lines),
# with a line saying how much was left out between them. Everything is read (the rest dropped as it
# comes): the hook writes straight into this pipe, and a reader that stopped early (head -c)
# would kill it with SIGPIPE half-way through a migration.
cap_output() {
    perl -e '
        my ($keep, $head, $tail, $total, $buf) = ($ARGV[0], "", "", 0, "");
        while (my $n = sysread(STDIN, $buf, 65536)) {
            $total += $n;
            $head .= substr($buf, 0, $keep - length($head), "") if length($head) < $keep;
            $tail .= $buf;
            $tail = substr($tail, -$keep) if length($tail) > $keep;
        }
        # Cut at line ends, so that redact (which runs after) sees every kept secret whole.
        if ($total > length($head) + length($tail)) { $head =~ s/[^\n]*\z//; $tail =~ s/\A[^\n]*(\n|\z)//; }
        my $cut = $total - length($head) - length($tail);
        print $head, ($cut > 0 ? "[... $cut bytes of hook output left out ...]\n" : ""), $tail;
    ' "$HOOK_OUTPUT_KEEP"
}

run_hook() {
    local dir="$RELEASES_DIR/$VERSION" out tail_out
    step "hook start: $HOOK"
    # The unit's user, env file and sandbox; its own time limit; no fd of ours. Its exit
    # status is systemd-run's (PIPESTATUS), its output capped (cap_output).
    if ! out=$(systemd-run --wait --pipe --collect --quiet --service-type=exec \
        -p User="$APP_USER" -p Group="$APP_USER" -p WorkingDirectory="$dir" -p EnvironmentFile="$ENV_FILE" \
        -p RuntimeMaxSec="$HOOK_TIMEOUT" -p NoNewPrivileges=yes -p ProtectSystem=strict -p ProtectHome=yes \
        -p PrivateTmp=yes -p PrivateDevices=yes -p ReadWritePaths="$SHARED_DIR" \
        /bin/bash -euo pipefail -c "$HOOK" </dev/null 2>&1 | cap_output
        exit "${PIPESTATUS[0]}"); then
        tail_out=$(printf '%s' "$out" | redact | tail -n 5 | tr '\n\t' '  ' | cut -c1-400)
        FAILED_SEEN="hooks.beforeActivate failed: $tail_out"
        result hook "$tail_out"
        fail_activation "$EXIT_HOOK" failed beforeActivate-hook
    fi
    step "hook done: $(printf '%s' "$out" | redact | tail -n 1 | cut -c1-200)"
}

# switch_current VERSION: move `current` atomically (a temp link renamed over it).
switch_current() {
    ln -sfn "releases/$1" "$BASE_DIR/current.tmp.$$"
    mv -T "$BASE_DIR/current.tmp.$$" "$CURRENT"
}

# live_answers PORT: the routed instance answers its release's health, tried with the new
# settings once, then with the settings it was activated with (deploy.conf) up to three
# times: one lost probe decides nothing. Sets LIVE_PATH to the path that answered.
live_answers() {
    local port="$1" try
    LIVE_PATH="$LIVE_HEALTH_PATH"
    if probe "http://127.0.0.1:$port$HEALTH_PATH" "$LIVE_VERSION"; then LIVE_PATH="$HEALTH_PATH"; return 0; fi
    for try in 1 2 3; do
        probe "http://127.0.0.1:$port$LIVE_HEALTH_PATH" "$LIVE_VERSION" && return 0
        [ "$try" = 3 ] || sleep "$INTERVAL"
    done
    return 1
}

# sole_listener PORT: only PORT's own unit listens on PORT (foreign_listeners); else SEEN names the others.
sole_listener() {
    local holders
    holders=$(foreign_listeners "$1")
    [ -n "$holders" ] || return 0
    SEEN="port $1 is also held by $(printf '%s\n' "$holders" | awk 'NR > 1 { printf "; " } { printf "%s", $0 }') - not only by $(instance_unit "$1"): its answers are not the release's"
    return 1
}

# gate_instance PORT WANT: the gate, then proof that the answers came from PORT's own unit:
# another process of the service user on that port fails it at once.
gate_instance() {
    gate "$1" "$2" "$TIMEOUT" || return 1
    sole_listener "$1"
}

# Keep the pinned rollback target running on the idle port, or stop the idle port.
settle_standby() {
    local idle="$1"
    if [ "$STANDBY" = 1 ] && [ -n "$ROLLBACK_VERSION" ] && [ -f "$RELEASES_DIR/$ROLLBACK_VERSION/$MANIFEST" ]; then
        if ! { instance_active "$idle" && [ "$(instance_version "$idle")" = "$ROLLBACK_VERSION" ] && [ "$(instance_rev "$idle")" = "$REV" ]; }; then
            step "standby start $ROLLBACK_VERSION on $idle"
            instance_start "$idle" "$ROLLBACK_VERSION" "$REV"
        fi
        if gate_instance "$idle" "$ROLLBACK_VERSION"; then
            instance_wanted "$idle" yes
            result standby "$ROLLBACK_VERSION"
            step "standby ready $ROLLBACK_VERSION on $idle"
            return 0
        fi
        step "standby $ROLLBACK_VERSION not healthy, stopped: $SEEN"
        result standbyProblem "$SEEN"
    fi
    instance_stop "$idle"
    result standby ""
}

# What the canary and the soak check each tick besides the error rate (watch_window's CHECK).
# Each also looks at the previous release, the switch back's target: when it answered healthy
# within the last two seconds (LIVE_OK_AT), a trip switches back without probing it first.
canary_check() { sole_listener "$WATCH_PORT" && { live_looked; return 0; }; }
soak_check() {
    W_OWN=$((W_OWN + 1))
    probe "http://127.0.0.1:$PORT$HEALTH_PATH" "$VERSION" && sole_listener "$WATCH_PORT" && { live_looked; return 0; }
}
live_looked() {
    local seen="$SEEN"
    if [ -n "$WATCH_LIVE" ] && probe "http://127.0.0.1:$WATCH_LIVE$LIVE_PATH" "$LIVE_VERSION"; then LIVE_OK_AT=$(now_ms); fi
    SEEN="$seen"
}
live_ready() {
    if [ -n "$LIVE_OK_AT" ] && [ $(($(now_ms) - LIVE_OK_AT)) -le 2000 ]; then return 0; fi
    instance_active "$1" && probe "http://127.0.0.1:$1$LIVE_PATH" "$LIVE_VERSION"
}

# run_canary LIVE IDLE: CANARY_PERCENT of new requests to the gated release on IDLE for
# CANARY_SECONDS, watched; a trip or a failed check switches everything back to LIVE at once.
run_canary() {
    local live="$1" idle="$2"
    step "canary: $CANARY_PERCENT% of new requests to $VERSION on $idle for ${CANARY_SECONDS}s (watch: errorRateFactor $WATCH_FACTOR, minRequests $WATCH_MIN_REQUESTS, maxErrorRatio $WATCH_MAX_RATIO)"
    pause_point canary
    W_SHARE_AT=$(now_ms)
    if ! proxy_canary "$live" "$idle" "$CANARY_PERCENT"; then
        FAILED_SEEN="$SEEN"
        step "canary not started: $SEEN"
        proxy_route "$live" "$LIVE_VERSION" "$LIVE_PATH" || true
        drain "$idle"
        instance_stop "$idle"
        fail_activation "$EXIT_HEALTH" failed canary
    fi
    CANARY_RAN=yes
    watched canary "$CANARY_SECONDS" "$live" "$idle" canary_check
    WATCH_SUMMARY="$CANARY_PERCENT% $W_FIGURES"
}

# watched PHASE SECONDS LIVE IDLE CHECK: the release on IDLE watched for SECONDS (watch_window),
# compared with LIVE over the same window in the canary, with the figures kept from before the
# switch in the soak. A trip, or a failed CHECK, switches back to LIVE and ends the activation;
# returning, W_FIGURES says what the watch saw.
watched() {
    local phase="$1" seconds="$2" live="$3" idle="$4" check="$5" prev="" rc=0
    [ "$phase" != canary ] || prev="$live"
    WATCH_PORT="$idle" WATCH_LIVE="$live"
    watch_window "$phase" "$seconds" "$idle" "$prev" "$check" || rc=$?
    case "$rc" in
        0) ;;
        1) watch_switch_back "$live" "$idle" ;;
        *)
            FAILED_SEEN="during the $phase: $SEEN"
            step "$phase failed: $SEEN"
            W_TRIPPED_AT=$(now_ms)
            watch_switch_back "$live" "$idle" failed-rolled-back "$phase"
            ;;
    esac
}

# watch_switch_back LIVE IDLE [OUTCOME REASON]: the watch tripped (or a check of the canary or the soak failed):
# every new request back to LIVE, the previous release still running beside it, through the
# runtime API at once, then in the config; the new instance drained and stopped. Never returns.
watch_switch_back() {
    local live="$1" idle="$2" outcome="${3:-rolled-back}" reason="${4:-watch}" back_at counts
    [ "$reason" != watch ] || FAILED_SEEN="$W_FIGURES"
    pause_point switch-back
    if [ -n "$live" ] && live_ready "$live" && proxy_flip "$live" "$idle"; then
        back_at=$(now_ms)
        step "switched back to $LIVE_VERSION on $live $((back_at - W_TRIPPED_AT)) ms after the watch tripped"
        # What users were exposed to: every request the proxy sent the new release since it loaded the
        # config that gave it its share (the canary's, or the switch's), up to the switch back.
        counts=$(proxy_counts)
        if [ -n "$counts" ] && [ "$reason" = watch ]; then
            FAILED_SEEN="$FAILED_SEEN; exposed from its first request to the switch back ($(((back_at - W_SHARE_AT) / 1000))s): $(count_of "$idle" 2 "$counts") requests $(count_of "$idle" 3 "$counts") errors of $(($(count_of "$idle" 2 "$counts") + $(count_of "$live" 2 "$counts"))) in all"
        fi
        result trippedAt "$W_TRIPPED_AT"
        result switchedBackAt "$back_at"
        rm -f "$WATCH_NOW"
        proxy_route "$live" "$LIVE_VERSION" "$LIVE_PATH" || true
        switch_current "$LIVE_VERSION"
        drain "$idle"
        instance_stop "$idle"
        fail_activation "$EXIT_HEALTH" "$outcome" "$reason"
    fi
    rm -f "$WATCH_NOW"
    FAILED_SEEN="$FAILED_SEEN; could not switch back: ${LIVE_VERSION:-nothing} on ${live:-no port} does not answer ($SEEN)"
    fail_activation "$EXIT_HEALTH" failed "$reason"
}

activate() {
    local live idle warm=no
    step "start version=$VERSION by=$WHO"
    CANARY_RAN=no WATCH_LIVE="" LIVE_OK_AT=""
    LIVE_VERSION="" LIVE_HEALTHY=no LIVE_PATH="$LIVE_HEALTH_PATH"
    live=$(proxy_live_port)
    if [ -n "$live" ]; then
        LIVE_VERSION=$(instance_version "$live")
        if live_answers "$live"; then
            LIVE_HEALTHY=yes
        else
            step "live $LIVE_VERSION on $live does not answer ($SEEN): left as it is; the new release starts on the other port"
        fi
    fi
    result previous "$LIVE_VERSION"
    result liveHealthy "$LIVE_HEALTHY"
    if [ ! -f "$RELEASES_DIR/$VERSION/$MANIFEST" ]; then
        FAILED_SEEN="release $VERSION is not complete on the host"
        fail_activation "$EXIT_INCOMPLETE" failed release-incomplete
    fi

    if [ "$LIVE_HEALTHY" = yes ] && [ "$LIVE_VERSION" = "$VERSION" ] && [ "$(instance_rev "$live")" = "$REV" ]; then
        # Already live with this unit, env and gate: converge the link, the proxy and the standby.
        step "already live on $live"
        proxy_route "$live" "$VERSION" "$LIVE_PATH" || true
        switch_current "$VERSION"
        instance_wanted "$live" yes
        # The umbrella may have failed its check-current (a hand-moved link): now it passes.
        systemctl start "$SERVICE.service" 2>/dev/null || true
        settle_standby "$(other_port "$live")"
        record "$VERSION" "$SHA" "$WHO" "outcome=converged live=$live"
        result outcome converged
        result live "$live"
        [ "$RUNTIME" != docker ] || result container "$(container_state "$live")"
        result commit "$(sed -n 's/^commit=//p' "$RELEASES_DIR/$VERSION/$MANIFEST")"
        result "done" 1
        return 0
    fi

    if [ -n "$live" ]; then
        idle=$(other_port "$live")
    else
        idle="${PORTS[0]}"
        # Nothing routed and no proxy config: a first deploy, or a host still running the
        # restart-in-place unit, which must free the service port for the proxy.
        # In container mode that is the replace-in-place container named after the service.
        if [ ! -f "$PROXY_CONFIG" ] && ! proxy_active; then
            systemctl stop "$SERVICE.service" 2>/dev/null || true
            if [ "$RUNTIME" = docker ] && docker inspect "$SERVICE" >/dev/null 2>&1; then
                step "first switch: removing the replace-in-place container $SERVICE to free port $PORT"
                docker rm -f "$SERVICE" >/dev/null 2>&1 || true
            fi
        fi
    fi
    [ "$RUN_HOOK" = 1 ] && run_hook

    if instance_active "$idle" && [ "$(instance_version "$idle")" = "$VERSION" ] && [ "$(instance_rev "$idle")" = "$REV" ]; then
        warm=yes
        step "warm standby $VERSION on $idle: re-checking its health"
    else
        step "instance start $VERSION on $idle"
        instance_start "$idle" "$VERSION" "$REV"
    fi
    pause_point gate
    if ! gate_instance "$idle" "$VERSION"; then
        FAILED_SEEN="$SEEN"
        step "gate failed on $idle: $SEEN"
        [ "$warm" = yes ] || instance_stop "$idle"
        fail_activation "$EXIT_HEALTH" failed health-gate
    fi
    step "gate passed on $idle"
    WATCH_SUMMARY="" W_PREV_REQ=0 W_PREV_ERR=0
    if [ "$CANARY_PERCENT" -gt 0 ]; then
        if [ "$warm" = yes ]; then
            WATCH_SUMMARY="no canary: $VERSION was the warm standby (a rollback to what ran before)"
        elif [ -z "$live" ] || [ "$LIVE_HEALTHY" != yes ]; then
            WATCH_SUMMARY="no canary: no healthy live release to share requests with"
        else
            run_canary "$live" "$idle"
        fi
        [ -z "$WATCH_SUMMARY" ] || step "$WATCH_SUMMARY"
    fi
    # Without a canary, the soak compares with what the previous release counted before the switch.
    if [ "$CANARY_RAN" != yes ] && [ -n "$live" ]; then watch_previous "$live"; fi
    pause_point switch
    W_SHARE_AT=$(now_ms)
    if ! proxy_route "$idle" "$VERSION" "$HEALTH_PATH"; then
        FAILED_SEEN="$SEEN"
        step "switch failed: $SEEN"
        if [ -n "$live" ]; then proxy_route "$live" "$LIVE_VERSION" "$LIVE_PATH" || true; fi
        drain "$idle"
        instance_stop "$idle"
        fail_activation "$EXIT_HEALTH" failed switch
    fi
    # A listener can join the port after the gate's look (SO_REUSEPORT, or in the moment between):
    # looked at again now that it takes requests, before the old instance lets go, and through the soak.
    if ! sole_listener "$idle"; then
        FAILED_SEEN="after the switch: $SEEN"
        step "switch undone: $SEEN"
        if [ -n "$live" ]; then proxy_route "$live" "$LIVE_VERSION" "$LIVE_PATH" || true; else proxy_unroute; fi
        drain "$idle"
        instance_stop "$idle"
        fail_activation "$EXIT_HEALTH" failed switch
    fi
    switch_current "$VERSION"
    instance_wanted "$idle" yes
    systemctl start "$SERVICE.service" 2>/dev/null || true
    step "switched to $VERSION on $idle"
    if [ -n "$live" ]; then
        drain "$live"
        step "drained ${LIVE_VERSION:-?} on $live"
    fi

    if [ "$SOAK" -gt 0 ]; then
        step "soak ${SOAK}s"
        watched soak "$SOAK" "$live" "$idle" soak_check
        WATCH_SUMMARY="${WATCH_SUMMARY:+$WATCH_SUMMARY; }$W_FIGURES"
        step "soak passed"
    fi
    rm -f "$WATCH_NOW"

    settle_standby "$(other_port "$idle")"
    cp -f "$SETTINGS" "$DEPLOY_CONFIG.tmp" && mv -f "$DEPLOY_CONFIG.tmp" "$DEPLOY_CONFIG"
    record "$VERSION" "$SHA" "$WHO" "outcome=activated previous=${LIVE_VERSION:-none} mode=$([ "$warm" = yes ] && echo warm-switch || echo started) watch=${WATCH_SUMMARY:-off (no canary, no soak)}"
    step "result activated"
    result outcome activated
    result watch "${WATCH_SUMMARY:-off (no canary, no soak)}"
    result live "$idle"
    [ "$RUNTIME" != docker ] || result container "$(container_state "$idle")"
    result commit "$(sed -n 's/^commit=//p' "$RELEASES_DIR/$VERSION/$MANIFEST")"
    result "done" 1
}
