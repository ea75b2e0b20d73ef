# The error-rate watch: the runbook's "monitor error rates, roll back on a spike", judged by
# the host from HAProxy's own counters (runtime API `show stat` on the admin socket, per
# server), during the canary and the soak. The new release's error ratio is compared with the
# previous release's: over the same window while both take requests (the canary), else the
# previous release's own figures from before the switch. It trips when the new ratio is above
# both WATCH_FACTOR times the previous one and the absolute WATCH_MAX_RATIO, over at least
# WATCH_MIN_REQUESTS requests; with fewer it decides nothing and says so.

# How often the counters are read while watching (seconds).
WATCH_TICK=0.5
# What `status` shows of a watch in progress: one line, rewritten every tick, removed at its end.
WATCH_NOW="$ACTIVATIONS_DIR/watch.now"

# now_ms: the time in epoch milliseconds, without a fork (bash 5's EPOCHREALTIME).
now_ms() { local t="${EPOCHREALTIME/[.,]/}"; printf '%s' "${t:0:${#t}-3}"; }

# proxy_api COMMAND: the proxy's runtime API answer to COMMAND (empty when it does not answer
# within 2 s). Perl's IO::Socket::UNIX is in perl-base, Essential on Debian: no socat needed.
proxy_api() {
    timeout 2 perl -MIO::Socket::UNIX -e '
        my $s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or exit 1;
        print $s "$ARGV[1]\n";
        local $/; my $out = <$s>; print $out // "";
    ' "$PROXY_RUN_DIR/admin.sock" "$1" 2>/dev/null || true
}

# proxy_counts: "PORT REQUESTS ERRORS" per instance server of the service's backend, read by
# the CSV header's names. Requests: req_tot (answered or failed) plus econ (a refused connection
# is no request in req_tot). Errors: the server's 5xx answers (hrsp_5xx), connection errors
# (econ) and response errors (eresp: a server that hung up mid-answer). Nothing when the proxy
# does not answer or lacks a column.
proxy_counts() {
    proxy_api "show stat" | awk -F, -v be="$SERVICE" '
        NR == 1 { sub(/^# /, ""); for (i = 1; i <= NF; i++) col[$i] = i
                  if (!col["pxname"] || !col["svname"] || !col["req_tot"] || !col["econ"] || !col["eresp"] || !col["hrsp_5xx"]) exit 1
                  next }
        $col["pxname"] == be && $col["svname"] ~ /^i[0-9]+$/ {
            printf "%s %d %d\n", substr($col["svname"], 2), $col["req_tot"] + $col["econ"], $col["hrsp_5xx"] + $col["econ"] + $col["eresp"] }' || true
}

# count_of PORT FIELD COUNTS: FIELD (2 requests, 3 errors) of PORT's line in COUNTS, else 0.
count_of() { printf '%s\n' "$3" | awk -v p="$1" -v f="$2" '$1 == p { v = $f } END { print v + 0 }'; }

# watch_judge NEW_REQ NEW_ERR PREV_REQ PREV_ERR: the verdict on the figures so far, as
# "VERDICT<TAB>FIGURES": trip (the new ratio is over the limit, over at least WATCH_MIN_REQUESTS
# requests), ok (it is not), or few (fewer new requests than that: nothing is decided). The
# previous ratio counts only over at least WATCH_MIN_REQUESTS requests of its own; else the
# limit is WATCH_MAX_RATIO alone. Pure arithmetic: test/unit/render/watch.test.ts.
watch_judge() {
    awk -v nr="$1" -v ne="$2" -v pr="$3" -v pe="$4" -v f="$WATCH_FACTOR" -v min="$WATCH_MIN_REQUESTS" -v cap="$WATCH_MAX_RATIO" 'BEGIN {
        newr = nr > 0 ? ne / nr : 0
        if (pr >= min && pr > 0) {
            prevr = pe / pr; limit = f * prevr
            prev = sprintf("previous %d requests %d errors (%.2f%%)", pr, pe, 100 * prevr)
            basis = sprintf("%g x previous", f)
        } else {
            limit = 0
            prev = sprintf("previous %d requests %d errors (too few to compare)", pr, pe)
            basis = "previous not comparable"
        }
        if (cap > limit) { limit = cap; basis = basis ", maxErrorRatio" }
        verdict = nr < min ? "few" : newr > limit ? "trip" : "ok"
        printf "%s\tnew %d requests %d errors (%.2f%%), %s; limit %.2f%% (%s); minRequests %d\n", verdict, nr, ne, 100 * newr, prev, 100 * limit, basis, min
    }'
}

# watch_window PHASE SECONDS NEW PREV CHECK: watch the release on port NEW for SECONDS, judging
# every WATCH_TICK, and run CHECK (a function: returns 1 with SEEN set) each tick; CHECK adds
# each request it sends NEW through the proxy to W_OWN, which the figures leave out. PREV is the
# previous release's port when it takes requests in the same window (the canary); "" compares
# with PREV_REQ/PREV_ERR, kept from before the switch. Returns 0 at the end of the window
# (W_VERDICT ok, or few: too few requests, nothing decided), 1 when the watch trips
# (W_VERDICT trip), 2 when CHECK fails. W_FIGURES, W_NEW_REQ/ERR and W_PREV_REQ/ERR hold the
# window's figures; W_TRIPPED_AT the trip's time (epoch ms).
watch_window() {
    local phase="$1" seconds="$2" new="$3" prev="$4" check="$5" start end now base counts judged
    local base_new_req base_new_err base_prev_req base_prev_err
    start=$(date +%s)
    end=$((start + seconds))
    base=$(proxy_counts)
    base_new_req=$(count_of "$new" 2 "$base") base_new_err=$(count_of "$new" 3 "$base")
    if [ -n "$prev" ]; then base_prev_req=$(count_of "$prev" 2 "$base") base_prev_err=$(count_of "$prev" 3 "$base"); fi
    W_VERDICT=few W_FIGURES="no counters read" W_NEW_REQ=0 W_NEW_ERR=0 W_TRIPPED_AT="" W_OWN=0
    : "${W_PREV_REQ:=0}" "${W_PREV_ERR:=0}"
    while :; do
        counts=$(proxy_counts)
        if [ -z "$counts" ]; then
            W_FIGURES="the proxy's runtime API ($PROXY_RUN_DIR/admin.sock) gave no counters"
        else
            # A counter below its base: the proxy restarted and counts from zero again.
            W_NEW_REQ=$(count_of "$new" 2 "$counts") W_NEW_ERR=$(count_of "$new" 3 "$counts")
            if [ "$W_NEW_REQ" -ge "$base_new_req" ]; then W_NEW_REQ=$((W_NEW_REQ - base_new_req)) W_NEW_ERR=$((W_NEW_ERR - base_new_err)); fi
            # The soak's own probes through the proxy are no user's requests: they never make up minRequests.
            W_NEW_REQ=$((W_NEW_REQ > W_OWN ? W_NEW_REQ - W_OWN : 0))
            if [ -n "$prev" ]; then
                W_PREV_REQ=$(count_of "$prev" 2 "$counts") W_PREV_ERR=$(count_of "$prev" 3 "$counts")
                if [ "$W_PREV_REQ" -ge "$base_prev_req" ]; then W_PREV_REQ=$((W_PREV_REQ - base_prev_req)) W_PREV_ERR=$((W_PREV_ERR - base_prev_err)); fi
            fi
            [ "$W_NEW_ERR" -ge 0 ] || W_NEW_ERR=0
            judged=$(watch_judge "$W_NEW_REQ" "$W_NEW_ERR" "$W_PREV_REQ" "$W_PREV_ERR")
            W_VERDICT=${judged%%$'\t'*}
            W_FIGURES=${judged#*$'\t'}
        fi
        now=$(date +%s)
        W_FIGURES="$phase $((now - start))s of ${seconds}s: $W_FIGURES"
        printf 'phase=%s version=%s port=%s verdict=%s %s\n' "$phase" "$VERSION" "$new" "$W_VERDICT" "$(one_line "$W_FIGURES")" >"$WATCH_NOW.tmp" && mv -f "$WATCH_NOW.tmp" "$WATCH_NOW"
        if [ "$W_VERDICT" = trip ]; then
            W_TRIPPED_AT=$(now_ms)
            step "watch tripped: $W_FIGURES"
            return 1
        fi
        if ! "$check"; then return 2; fi
        [ "$now" -lt "$end" ] || break
        sleep "$WATCH_TICK"
    done
    if [ "$W_FIGURES" = "$phase $((now - start))s of ${seconds}s: the proxy's runtime API ($PROXY_RUN_DIR/admin.sock) gave no counters" ]; then
        step "watch undecided: $W_FIGURES"
    elif [ "$W_VERDICT" = few ]; then
        W_FIGURES="too few requests to judge ($W_NEW_REQ of minRequests $WATCH_MIN_REQUESTS), nothing decided: $W_FIGURES"
        step "watch undecided: $W_FIGURES"
    else
        step "watch passed: $W_FIGURES"
    fi
    return 0
}

# watch_previous PORT: the previous release's own figures before the switch (no canary): what the
# running proxy counted for PORT since it last loaded its config (the last switch, or its start).
watch_previous() {
    local counts
    counts=$(proxy_counts)
    W_PREV_REQ=$(count_of "$1" 2 "$counts") W_PREV_ERR=$(count_of "$1" 3 "$counts")
}

# rolled_back_verdict VERSION: when revisions.log's last activated-or-rolled-back line for
# VERSION is a rolled-back one of the watch, that line's time and figures; else nothing (exit 1).
# Fields are split on tabs and compared whole: only what root wrote decides.
rolled_back_verdict() {
    [ -f "$REVISIONS_LOG" ] || return 1
    awk -F '\t' -v v="version=$1" '
        NF == 5 && $2 == v { split($5, w, " ")
            if (w[1] == "outcome=activated") last = ""
            else if (w[1] == "outcome=rolled-back" && w[2] == "reason=watch") last = $1 " " substr($5, length(w[1]) + length(w[2]) + 3) }
        END { if (last == "") exit 1; print last }' "$REVISIONS_LOG"
}
