# The local proxy on the service port: HAProxy in master-worker mode. A switch writes the
# config with one enabled server and reloads: the new worker takes the listening socket
# over from the old one (expose-fd listeners), so no connection is refused, and the old
# worker finishes its in-flight requests (bounded by hard-stop-after).
# A canary is the same config with both servers enabled and weighted; the live one is
# always the first enabled server line, which is what proxy_live_port reads.
proxy_unit() { echo "$SERVICE-proxy.service"; }

# proxy_config LIVE [CANARY PERCENT]: every request to LIVE; or PERCENT of new requests to
# CANARY and the rest to LIVE, each client kept on the release it first got by a cookie the
# proxy inserts (<service>_release; the app is not involved). A client without cookies is
# balanced per request.
proxy_config() {
    local live="$1" canary="${2:-}" percent="${3:-0}" p state
    printf '%s\n' "# Managed by the CompliNist Pulumi stack: written by $HOST_PROGRAM on every switch." \
        "global" \
        "    maxconn 4096" \
        "    hard-stop-after ${DRAIN}s" \
        "    stats socket $PROXY_RUN_DIR/admin.sock mode 600 level admin expose-fd listeners" \
        "defaults" \
        "    mode http" \
        "    timeout connect 5s" \
        "    timeout client 60s" \
        "    timeout server 60s" \
        "    timeout http-request 15s" \
        "frontend $SERVICE" \
        "    bind :$PORT" \
        "    default_backend $SERVICE" \
        "backend $SERVICE"
    if [ -n "$canary" ]; then
        printf '    cookie %s_release insert indirect nocache httponly\n' "$SERVICE"
        printf '    server i%s 127.0.0.1:%s weight %s cookie i%s\n' "$live" "$live" "$((100 - percent))" "$live"
        printf '    server i%s 127.0.0.1:%s weight %s cookie i%s\n' "$canary" "$canary" "$percent" "$canary"
    else
        for p in "${PORTS[@]}"; do
            state=""
            [ "$p" = "$live" ] || state=" disabled"
            printf '    server i%s 127.0.0.1:%s%s\n' "$p" "$p" "$state"
        done
    fi
    printf '%s\n' "listen stats" "    bind $PROXY_STATS_SOCKET mode 600" "    stats enable" "    stats uri /"
}

# The port the proxy config routes to ("" when there is no config): the first enabled server
# (during a canary, the live one is written first and the canary second).
proxy_live_port() {
    [ -f "$PROXY_CONFIG" ] || return 0
    sed -n 's/^    server i\([0-9][0-9]*\) 127\.0\.0\.1:[0-9][0-9]*\( weight [0-9][0-9]* cookie i[0-9][0-9]*\)\{0,1\}$/\1/p' "$PROXY_CONFIG" | head -n 1
}

# The canary's port when the config holds one ("" otherwise): the second enabled server.
proxy_canary_port() {
    [ -f "$PROXY_CONFIG" ] || return 0
    sed -n 's/^    server i\([0-9][0-9]*\) 127\.0\.0\.1:[0-9][0-9]* weight [0-9][0-9]* cookie i[0-9][0-9]*$/\1/p' "$PROXY_CONFIG" | sed -n 2p
}

proxy_active() { systemctl is-active --quiet "$(proxy_unit)"; }

# proxy_install CONFIG-ARGS...: proxy_config CONFIG-ARGS as the proxy's config, checked by
# haproxy -c before it replaces the old one, then loaded (a reload, or the proxy's start).
# Returns 1 with SEEN when haproxy refuses it: the old config stays.
proxy_install() {
    local tmp="$PROXY_CONFIG.tmp.$$"
    proxy_config "$@" >"$tmp"
    chmod 0644 "$tmp" # the proxy runs as haproxy and reads it; it holds no secret
    if ! haproxy -c -q -f "$tmp" >/dev/null 2>&1; then
        SEEN="haproxy refused the generated config: $(haproxy -c -f "$tmp" 2>&1 | tail -n 3 | tr '\n' ' ')"
        rm -f "$tmp"
        return 1
    fi
    mv -f "$tmp" "$PROXY_CONFIG"
    if proxy_active; then systemctl reload "$(proxy_unit)"; else systemctl start "$(proxy_unit)"; fi
}

# proxy_route PORT WANT PATH: route every new request to PORT and wait until WANT answers
# PATH (its own health path: the old release may not serve the new one) through the proxy.
proxy_route() {
    local live="$1" want="$2" path="$3" deadline ok=0
    proxy_install "$live" || return 1
    deadline=$(($(date +%s) + 15))
    # Three answers in a row from WANT: the old worker no longer accepts.
    while [ "$(date +%s)" -lt "$deadline" ]; do
        if probe "http://127.0.0.1:$PORT$path" "$want"; then
            ok=$((ok + 1))
            [ "$ok" -lt 3 ] || return 0
        else
            ok=0
            sleep 0.1
        fi
    done
    return 1
}

# proxy_canary LIVE CANARY PERCENT: PERCENT of new requests to CANARY beside LIVE; waits until
# the reloaded proxy's runtime API shows CANARY ready with its weight (the new worker serves).
proxy_canary() {
    local live="$1" canary="$2" percent="$3" deadline
    proxy_install "$live" "$canary" "$percent" || return 1
    deadline=$(($(date +%s) + 15))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        proxy_api "show stat" | awk -F, -v be="$SERVICE" -v sv="i$canary" -v w="$percent" '
            NR == 1 { sub(/^# /, ""); for (i = 1; i <= NF; i++) col[$i] = i; next }
            $col["pxname"] == be && $col["svname"] == sv && $col["weight"] == w && $col["status"] != "MAINT" { found = 1 }
            END { exit !found }' && return 0
        sleep 0.1
    done
    SEEN="the proxy did not take the canary config within 15 s"
    return 1
}

# proxy_flip TO FROM: at once, through the runtime API, every new request to TO and none to FROM:
# one connection, TO ready first (never no server); proxy_route then makes it the config.
# Returns 1 when the proxy does not confirm both (each answers an empty line).
proxy_flip() {
    local out
    out=$(proxy_api "set server $SERVICE/i$1 state ready; set server $SERVICE/i$2 state maint")
    [ -z "$(printf '%s' "$out" | tr -d '[:space:]')" ]
}

# proxy_unroute: every server disabled (each request gets a 503): for when nothing it could route to is trusted.
proxy_unroute() {
    local tmp="$PROXY_CONFIG.tmp.$$"
    proxy_config "" >"$tmp"
    chmod 0644 "$tmp"
    mv -f "$tmp" "$PROXY_CONFIG"
    if proxy_active; then systemctl reload "$(proxy_unit)"; fi
}

# proxy_serves [PATH]: the version answering PATH (default HEALTH_PATH) on the service port, or "".
proxy_serves() {
    local out
    http_get "http://127.0.0.1:$PORT${1:-$HEALTH_PATH}" || return 0
    out=$(printf '%s' "$HTTP_BODY" | json_top 2>/dev/null) || return 0
    printf '%s' "${out#*$'\t'}"
}
