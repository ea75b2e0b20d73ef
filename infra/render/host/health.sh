# The health contract: GET <HEALTH_PATH> answers 200 with a JSON object whose top-level
# "status" is "healthy" and "version" is the release. The body is parsed, never grepped:
# a nested {"db":{"status":"healthy"}} does not count, and a body is read whole up to
# PROBE_MAX_BYTES (a larger one fails the probe, unread).
# perl-base is Essential on Debian, so every host has this parser.
json_top() {
    perl -e '
        local $/; my $s = <STDIN>; my $d = 0; my $want = "key"; my $key; my %top;
        sub dec { my $x = substr($_[0], 1, -1); $x =~ s/\\u([0-9a-fA-F]{4})/chr(hex($1))/ge;
                  $x =~ s/\\(["\\\/])/$1/g; $x =~ s/\\n/\n/g; $x =~ s/\\t/\t/g; return $x; }
        $s =~ /\G\s*\{/gc or exit 2; $d = 1;
        while ($d > 0) {
            if ($s =~ /\G\s*("(?:[^"\\\x00-\x1f]|\\.)*")/gc) {
                if ($d == 1 && $want eq "key") { $key = dec($1); $want = "colon"; }
                elsif ($d == 1 && $want eq "value") { $top{$key} = dec($1); $want = "comma"; }
            } elsif ($s =~ /\G\s*:/gc) { $want = "value" if $d == 1;
            } elsif ($s =~ /\G\s*,/gc) { $want = "key" if $d == 1;
            } elsif ($s =~ /\G\s*([\{\[])/gc) { $d++;
            } elsif ($s =~ /\G\s*([\}\]])/gc) { $d--; $want = "comma" if $d == 1;
            } elsif ($s =~ /\G\s*(true|false|null|-?[0-9][0-9.eE+-]*)/gc) { $want = "comma" if $d == 1;
            } else { exit 2; }
        }
        $s =~ /\G\s*\z/gc or exit 2;
        # One printable line whatever the body holds: a decoded \n or control character
        # becomes "?", so nothing the release answers can start a line of its own downstream.
        for my $k ("status", "version") { my $v = $top{$k} // ""; $v =~ s/[^\x20-\x7e]/?/g; $top{$k} = $v; }
        printf "%s\t%s\n", $top{status}, $top{version};
    '
}

# Every probe is bounded in time (curl -m, the whole request) and in bytes: the body is
# read through `head -c`, so a release answering 300 MB costs 64 KiB and a closed pipe.
PROBE_MAX_BYTES=65536

# http_get URL: GET with headers (-i) into HTTP_CODE and HTTP_BODY; HTTP_ERR says why not.
http_get() {
    local url="$1" out rc
    HTTP_CODE="" HTTP_BODY="" HTTP_ERR=""
    # 8 KiB more than the body cap leaves room for the status line and headers.
    out=$(curl -sS -i -m "$PROBE_TIMEOUT" "$url" 2>&1 | head -c $((PROBE_MAX_BYTES + 8192)); exit "${PIPESTATUS[0]}") && rc=0 || rc=$?
    # Cut at the cap: curl could not write the rest (exit 23), or died of the closed pipe.
    if [ "${#out}" -ge $((PROBE_MAX_BYTES + 8192)) ]; then
        HTTP_ERR="the answer of $url is over $PROBE_MAX_BYTES bytes: not read"
        return 1
    fi
    case "$rc" in
        0) ;;
        *) HTTP_ERR="no answer from $url: $( (printf '%s\n' "$out" | grep -m1 '^curl:' || printf '%s' "$out" | tail -n 1) | tr -c '[:print:]' ' ' | cut -c1-200)"; return 1 ;;
    esac
    HTTP_CODE=$(printf '%s' "${out%%$'\r'*}" | sed -n 's/^HTTP\/[0-9.]* \([0-9][0-9][0-9]\).*/\1/p')
    case "$out" in
        *$'\r\n\r\n'*) HTTP_BODY=${out#*$'\r\n\r\n'} ;;
        *) HTTP_ERR="no complete HTTP answer from $url"; return 1 ;;
    esac
    if [ "${#HTTP_BODY}" -gt "$PROBE_MAX_BYTES" ]; then
        HTTP_ERR="HTTP $HTTP_CODE from $url: the body is over $PROBE_MAX_BYTES bytes: not read"
        return 1
    fi
}

# probe URL WANT: 0 when healthy on WANT. Sets SEEN (one printable line) to what was seen either way.
probe() {
    local url="$1" want="$2" parsed status version
    if ! http_get "$url"; then
        SEEN="$HTTP_ERR"
        return 1
    fi
    if ! parsed=$(printf '%s' "$HTTP_BODY" | json_top); then
        SEEN="HTTP $HTTP_CODE from $url, not a JSON object: $(printf '%s' "$HTTP_BODY" | head -c 400 | tr -c '[:print:]' ' ' | cut -c1-200)"
        return 1
    fi
    status=${parsed%%$'\t'*}
    version=${parsed#*$'\t'}
    SEEN="HTTP $HTTP_CODE from $url: status=$(printf '%s' "$status" | cut -c1-100) version=$(printf '%s' "$version" | cut -c1-100)"
    [ "$HTTP_CODE" = 200 ] && [ "$status" = healthy ] && [ "$version" = "$want" ]
}

# smoke PORT: every configured check (path|status|maxMs) against one instance.
smoke() {
    local port="$1" c path want maxms out code ms
    for c in "${CHECKS[@]}"; do
        IFS='|' read -r path want maxms <<<"$c"
        # The body goes to /dev/null as it arrives: bounded by time, never held in memory.
        if ! out=$(curl -sS -o /dev/null -m "$PROBE_TIMEOUT" -w '%{http_code} %{time_total}' "http://127.0.0.1:$port$path" 2>&1); then
            SEEN="check GET $path: no answer: $( (printf '%s\n' "$out" | grep -m1 '^curl:' || printf '%s' "$out" | tail -n 1) | tr -c '[:print:]' ' ' | cut -c1-200)"
            return 1
        fi
        code=${out%% *}
        ms=$(awk -v t="${out#* }" 'BEGIN { printf "%d", t * 1000 }')
        if [ "$code" != "$want" ]; then SEEN="check GET $path: HTTP $code, wanted $want"; return 1; fi
        if [ "$maxms" -gt 0 ] && [ "$ms" -gt "$maxms" ]; then SEEN="check GET $path: answered in $ms ms, wanted at most $maxms ms"; return 1; fi
    done
}

# gate PORT WANT SECONDS: poll one instance, before it takes any user request, until it is
# healthy on WANT and passes every check, or the time is up.
gate() {
    local port="$1" want="$2" deadline=$(($(date +%s) + $3))
    SEEN="no answer"
    while :; do
        if probe "http://127.0.0.1:$port$HEALTH_PATH" "$want" && smoke "$port"; then return 0; fi
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep "$INTERVAL"
    done
}
