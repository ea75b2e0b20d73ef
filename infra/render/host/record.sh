# revisions.log: one line per outcome (the runbook's record). deploy.log: one line per step.
# Each field is one printable line (one_line): a value can never add a line or a field.
# Both files are created 0640 (umask 027): neither is world-readable.

# one_line TEXT [MAX]: TEXT as one line of printable characters, at most MAX (400) long.
# Everything written to the result file, revisions.log and deploy.log goes through it:
# what a release or a hook prints is data, and can never start a line of its own.
one_line() { printf '%s' "$1" | LC_ALL=C tr -c '[:print:]' ' ' | cut -c1-"${2:-400}"; }

record() {
    local version="$1" sha="$2" who="$3" outcome="$4"
    (
        umask 027
        printf '%s\tversion=%s\tsha256=%s\tby=%s\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(one_line "$version" 64)" "$(one_line "$sha" 64)" "$(one_line "$who" 128)" "$(one_line "$outcome" 1000)" >>"$REVISIONS_LOG"
    )
}

step() {
    # Never fails the operation: the log directory may be missing before the first service apply.
    { (umask 027 && printf '%s\t%s\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${ACT_ID:-manual}" "$(one_line "$*" 1000)" >>"$DEPLOY_LOG"); } 2>/dev/null || true
}

# activated_versions: the version of every revisions.log line whose outcome is exactly
# `activated`, oldest first. A line is split on tabs and its outcome field's first word is
# compared whole: what a release answered (a failed gate's seen=...) sits in that field after
# the outcome root wrote, so it can never be taken for one.
activated_versions() {
    [ -f "$REVISIONS_LOG" ] || return 0
    awk -F '\t' 'NF == 5 && substr($2, 1, 8) == "version=" { split($5, w, " "); if (w[1] == "outcome=activated") print substr($2, 9) }' "$REVISIONS_LOG"
}
