# The one way a release becomes live: start it beside the live one, gate it before it
# takes a request, switch the proxy, drain the old instance, soak, then keep the pinned
# rollback target warm. The fallback is always what was serving, checked to be healthy;
# nothing here ever stops the service.

# result KEY=VALUE...: what the provider (or the operator) reads back.
result() { printf '%s\n' "$@" >>"$RESULT_FILE"; }

fail_activation() {
    local code="$1" outcome="$2"
    record "$VERSION" "$SHA" "$WHO" "$outcome"
    step "result $outcome"
    result "outcome=$(printf '%s' "$outcome" | sed -n 's/^outcome=\([^ ]*\).*/\1/p')" \
        "reason=$(printf '%s' "$outcome" | sed -n 's/.*reason=\([^ ]*\).*/\1/p')" "seen=$FAILED_SEEN" "done=1"
    exit "$code"
}

run_hook() {
    local dir="$RELEASES_DIR/$VERSION" out
    step "hook start: $HOOK"
    # The unit's user, env file and sandbox; its own time limit; no fd of ours.
    if ! out=$(systemd-run --wait --pipe --collect --quiet --service-type=exec \
        -p User="$APP_USER" -p Group="$APP_USER" -p WorkingDirectory="$dir" -p EnvironmentFile="$ENV_FILE" \
        -p RuntimeMaxSec="$HOOK_TIMEOUT" -p NoNewPrivileges=yes -p ProtectSystem=strict -p ProtectHome=yes \
        -p PrivateTmp=yes -p PrivateDevices=yes -p ReadWritePaths="$LOG_DIR $SHARED_DIR" \
        /bin/bash -euo pipefail -c "$HOOK" </dev/null 2>&1); then
        local tail_out
        tail_out=$(printf '%s' "$out" | tail -n 5 | tr '\n\t' '  ' | cut -c1-400)
        FAILED_SEEN="hooks.beforeActivate failed: $tail_out"
        result "hook=$tail_out"
        fail_activation "$EXIT_HOOK" "outcome=failed reason=beforeActivate-hook live=${LIVE_VERSION:-none} output=$tail_out"
    fi
    step "hook done: $(printf '%s' "$out" | tail -n 1 | cut -c1-200)"
}

# Keep the pinned rollback target running on the idle port, or stop the idle port.
settle_standby() {
    local idle="$1"
    if [ "$STANDBY" = 1 ] && [ -n "$ROLLBACK_VERSION" ] && [ -f "$RELEASES_DIR/$ROLLBACK_VERSION/$MANIFEST" ]; then
        if ! { instance_active "$idle" && [ "$(instance_version "$idle")" = "$ROLLBACK_VERSION" ] && [ "$(instance_rev "$idle")" = "$REV" ]; }; then
            step "standby start $ROLLBACK_VERSION on $idle"
            instance_start "$idle" "$ROLLBACK_VERSION" "$REV"
        fi
        if gate "$idle" "$ROLLBACK_VERSION" "$TIMEOUT"; then
            instance_wanted "$idle" yes
            result "standby=$ROLLBACK_VERSION"
            step "standby ready $ROLLBACK_VERSION on $idle"
            return 0
        fi
        step "standby $ROLLBACK_VERSION not healthy, stopped: $SEEN"
        result "standbyProblem=$SEEN"
    fi
    instance_stop "$idle"
    result "standby="
}

activate() {
    local live idle warm=no
    step "start version=$VERSION by=$WHO"
    if [ ! -f "$RELEASES_DIR/$VERSION/$MANIFEST" ]; then
        FAILED_SEEN="release $VERSION is not complete on the host"
        fail_activation "$EXIT_INCOMPLETE" "outcome=failed reason=release-incomplete"
    fi
    live=$(proxy_live_port)
    LIVE_VERSION=""
    if [ -n "$live" ] && proxy_active && instance_active "$live" && probe "http://127.0.0.1:$live$HEALTH_PATH" "$(instance_version "$live")"; then
        LIVE_VERSION=$(instance_version "$live")
    else
        live=""
    fi
    result "previous=$LIVE_VERSION"

    if [ -n "$live" ] && [ "$LIVE_VERSION" = "$VERSION" ] && [ "$(instance_rev "$live")" = "$REV" ]; then
        # Already live with this unit, env and gate: converge the link, the proxy and the standby.
        step "already live on $live"
        proxy_route "$live" "$VERSION" || true
        ln -sfn "releases/$VERSION" "$BASE_DIR/current.tmp.$$" && mv -T "$BASE_DIR/current.tmp.$$" "$CURRENT"
        instance_wanted "$live" yes
        settle_standby "$(other_port "$live")"
        record "$VERSION" "$SHA" "$WHO" "outcome=converged live=$live"
        result "outcome=converged" "live=$live" "commit=$(sed -n 's/^commit=//p' "$RELEASES_DIR/$VERSION/$MANIFEST")" "done=1"
        return 0
    fi

    if [ -z "$live" ]; then
        idle="${PORTS[0]}"
        # No healthy instance behind a proxy: a first deploy, or a host still running the
        # restart-in-place unit, which must free the service port for the proxy.
        if ! proxy_active; then systemctl stop "$SERVICE.service" 2>/dev/null || true; fi
    else
        idle=$(other_port "$live")
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
    if ! gate "$idle" "$VERSION" "$TIMEOUT"; then
        FAILED_SEEN="$SEEN"
        step "gate failed on $idle: $SEEN"
        [ "$warm" = yes ] || instance_stop "$idle"
        result "restored=${LIVE_VERSION:-none}"
        fail_activation "$EXIT_HEALTH" "outcome=failed reason=health-gate live=${LIVE_VERSION:-none} seen=$FAILED_SEEN"
    fi
    step "gate passed on $idle"
    pause_point switch
    if ! proxy_route "$idle" "$VERSION"; then
        FAILED_SEEN="$SEEN"
        step "switch failed: $SEEN"
        [ -n "$live" ] && proxy_route "$live" "$LIVE_VERSION" || true
        drain "$idle"
        instance_stop "$idle"
        result "restored=${LIVE_VERSION:-none}"
        fail_activation "$EXIT_HEALTH" "outcome=failed reason=switch live=${LIVE_VERSION:-none} seen=$FAILED_SEEN"
    fi
    ln -sfn "releases/$VERSION" "$BASE_DIR/current.tmp.$$"
    mv -T "$BASE_DIR/current.tmp.$$" "$CURRENT"
    instance_wanted "$idle" yes
    systemctl start "$SERVICE.service" 2>/dev/null || true
    step "switched to $VERSION on $idle"
    if [ -n "$live" ]; then
        drain "$live"
        step "drained $LIVE_VERSION on $live"
    fi

    if [ "$SOAK" -gt 0 ]; then
        local until=$(($(date +%s) + SOAK))
        step "soak ${SOAK}s"
        while [ "$(date +%s)" -lt "$until" ]; do
            if ! probe "http://127.0.0.1:$PORT$HEALTH_PATH" "$VERSION"; then
                FAILED_SEEN="during the soak: $SEEN"
                step "soak failed: $SEEN"
                pause_point switch-back
                if [ -n "$live" ] && instance_active "$live" && probe "http://127.0.0.1:$live$HEALTH_PATH" "$LIVE_VERSION" && proxy_route "$live" "$LIVE_VERSION"; then
                    ln -sfn "releases/$LIVE_VERSION" "$BASE_DIR/current.tmp.$$"
                    mv -T "$BASE_DIR/current.tmp.$$" "$CURRENT"
                    drain "$idle"
                    instance_stop "$idle"
                    result "restored=$LIVE_VERSION"
                    fail_activation "$EXIT_HEALTH" "outcome=failed-rolled-back reason=soak to=$LIVE_VERSION seen=$FAILED_SEEN"
                fi
                result "restored=none"
                fail_activation "$EXIT_HEALTH" "outcome=failed reason=soak restored=none seen=$FAILED_SEEN"
            fi
            sleep "$INTERVAL"
        done
        step "soak passed"
    fi

    if [ -n "$live" ]; then settle_standby "$live"; else settle_standby "$(other_port "$idle")"; fi
    cp -f "$SETTINGS" "$DEPLOY_CONFIG.tmp" && mv -f "$DEPLOY_CONFIG.tmp" "$DEPLOY_CONFIG"
    record "$VERSION" "$SHA" "$WHO" "outcome=activated previous=$LIVE_VERSION mode=$([ "$warm" = yes ] && echo warm-switch || echo started)"
    step "result activated"
    result "outcome=activated" "live=$idle" "commit=$(sed -n 's/^commit=//p' "$RELEASES_DIR/$VERSION/$MANIFEST")" "done=1"
}
