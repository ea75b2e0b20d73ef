# revisions.log: one line per outcome (the runbook's record). deploy.log: one line per step.
record() {
    local version="$1" sha="$2" who="$3" outcome="$4"
    printf '%s\tversion=%s\tsha256=%s\tby=%s\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$version" "$sha" "$who" "$outcome" >>"$REVISIONS_LOG"
}

step() {
    # Never fails the operation: the log directory may be missing before the first service apply.
    { printf '%s\t%s\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${ACT_ID:-manual}" "$*" >>"$DEPLOY_LOG"; } 2>/dev/null || true
}
