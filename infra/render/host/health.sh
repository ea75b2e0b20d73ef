# The health contract: GET <HEALTH_PATH> answers 200 with a JSON object whose top-level
# "status" is "healthy" and "version" is the release. The body is parsed, never grepped:
# a nested {"db":{"status":"healthy"}} does not count, and a long body is read whole.
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
        printf "%s\t%s\n", $top{status} // "", $top{version} // "";
    '
}

# probe URL WANT: 0 when healthy on WANT. Sets SEEN to what was seen either way.
probe() {
    local url="$1" want="$2" out code body parsed status version
    if ! out=$(curl -sS -m "$PROBE_TIMEOUT" -w '\n%{http_code}' "$url" 2>&1); then
        SEEN="no answer from $url: $( (printf '%s\n' "$out" | grep -m1 '^curl:' || printf '%s' "$out" | tail -n 1) | cut -c1-200)"
        return 1
    fi
    code=$(printf '%s' "$out" | tail -n 1)
    body=$(printf '%s' "$out" | sed '$d')
    if ! parsed=$(printf '%s' "$body" | json_top); then
        SEEN="HTTP $code from $url, not a JSON object: $(printf '%s' "$body" | tr -d '\n' | cut -c1-200)"
        return 1
    fi
    status=${parsed%%$'\t'*}
    version=${parsed#*$'\t'}
    SEEN="HTTP $code from $url: status=$status version=$version"
    [ "$code" = 200 ] && [ "$status" = healthy ] && [ "$version" = "$want" ]
}

# smoke PORT: every configured check (path|status|maxMs) against one instance.
smoke() {
    local port="$1" c path want maxms out code ms
    for c in "${CHECKS[@]}"; do
        IFS='|' read -r path want maxms <<<"$c"
        if ! out=$(curl -sS -o /dev/null -m "$PROBE_TIMEOUT" -w '%{http_code} %{time_total}' "http://127.0.0.1:$port$path" 2>&1); then
            SEEN="check GET $path: no answer: $( (printf '%s\n' "$out" | grep -m1 '^curl:' || printf '%s' "$out" | tail -n 1) | cut -c1-200)"
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
