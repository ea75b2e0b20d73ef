# App instances: <service>@<port>.service, one per private loopback port, each running
# the release that instances/<port> links to, with the env it was started with.
instance_unit() { echo "$SERVICE@$1.service"; }
instance_version() {
    local t
    t=$(readlink "$INSTANCES_DIR/$1" 2>/dev/null) || return 0
    printf '%s' "${t##*/}"
}
instance_rev() { cat "$INSTANCES_DIR/$1.rev" 2>/dev/null || true; }
instance_active() { systemctl is-active --quiet "$(instance_unit "$1")"; }
other_port() { if [ "$1" = "${PORTS[0]}" ]; then echo "${PORTS[1]}"; else echo "${PORTS[0]}"; fi; }

# Whether `systemctl start <service>` (boot, or the operator) starts this instance.
instance_wanted() {
    local wants="$UNIT_DIR/$SERVICE.service.wants"
    mkdir -p "$wants"
    if [ "$2" = yes ]; then ln -sfn "../$SERVICE@.service" "$wants/$(instance_unit "$1")"; else rm -f "$wants/$(instance_unit "$1")"; fi
    systemctl daemon-reload
}

# instance_start PORT VERSION REV: (re)start PORT on VERSION with the staged env file.
instance_start() {
    local port="$1" version="$2" rev="$3"
    systemctl stop "$(instance_unit "$port")" 2>/dev/null || true
    mkdir -p "$INSTANCES_DIR"
    ln -sfn "../releases/$version" "$INSTANCES_DIR/.tmp-$port.$$"
    mv -T "$INSTANCES_DIR/.tmp-$port.$$" "$INSTANCES_DIR/$port"
    install -m 0600 "$ENV_FILE" "$ENV_DIR/instance-$port.env"
    # Not fatal here: container-run refuses the same missing user, and the gate reports it.
    if [ "$RUNTIME" = docker ]; then container_prepare "$APP_USER" || true; fi
    printf '%s\n' "$rev" >"$INSTANCES_DIR/$port.rev"
    chmod 0644 "$INSTANCES_DIR/$port.rev"
    systemctl reset-failed "$(instance_unit "$port")" 2>/dev/null || true
    systemctl start "$(instance_unit "$port")"
}

# A stopped instance lets go of its release: its link would otherwise keep retention from
# removing a release nothing runs (a failed gate's, a switched-back soak's) for good.
instance_stop() {
    systemctl stop "$(instance_unit "$1")" 2>/dev/null || true
    instance_wanted "$1" no
    rm -f "$INSTANCES_DIR/$1" "$INSTANCES_DIR/$1.rev" "$ENV_DIR/instance-$1.env"
}

# instance_cgroup PORT: the cgroup of PORT's own instance unit, exactly as systemd names it
# ("" when it is not running). Container mode: docker.service's, where the engine runs docker-proxy.
instance_cgroup() {
    local unit
    unit=$(instance_unit "$1")
    [ "$RUNTIME" != docker ] || unit=docker.service
    systemctl show -p ControlGroup --value "$unit" 2>/dev/null || true
}

# socket_pids INODE: the processes holding socket INODE, from /proc ("" when /proc does not
# show them: root without CAP_SYS_PTRACE, as in a container, cannot read another user's fds).
socket_pids() {
    { find /proc/[0-9]*/fd -maxdepth 1 -lname "socket:\\[$1\\]" 2>/dev/null || true; } | sed 's|^/proc/\([0-9]*\)/.*|\1|' | sort -un | paste -sd ' ' -
}

# foreign_listeners PORT: every TCP socket listening on PORT that PORT's own instance unit did
# not open (container mode: that is not the docker-proxy of PORT's own container), one
# "pid N (command, uid U, cgroup C)" line each. The service user may bind an idle port before
# its instance does (or beside it, with SO_REUSEPORT), and then a healthy answer there is the
# attacker's: the gate trusts an answer only from the unit's own.
# The socket's cgroup comes from the kernel (ss --cgroup: sock_diag), so a socket is judged even
# when /proc hides its process; it must equal the unit's ControlGroup exactly: a user's own
# user@UID.service/app.slice/<service>@PORT.service ends the same way and is not the unit.
# What ss prints after its first " cgroup:" begins with the socket's path; what comes before it
# is ss's own numeric fields. A delegated user may put spaces, "cgroup:" or "<->" in cgroup names,
# so the path is cut at the first of those: what is left still begins with the user's own
# subtree, never equal to a unit's cgroup the user cannot create cgroups under.
foreign_listeners() {
    local port="$1" own line head cg uid ino pids pid comm mine
    own=$(instance_cgroup "$port")
    { ss -Htlne --cgroup "sport = :$port" 2>/dev/null || echo "ss-failed"; } | while IFS= read -r line; do
        if [ "$line" = ss-failed ]; then echo "an unknown process (ss --cgroup failed: iproute2's ss must be installed)"; continue; fi
        head=${line%% cgroup:*}
        cg=""
        if [ "$head" != "$line" ]; then
            # ss may print the path twice (-e and --cgroup), each maybe followed by -e's shutdown marker.
            cg=${line#* cgroup:}
            cg=${cg%% cgroup:*}
            cg=${cg%% <->*}
            cg=${cg%% <--*}
            cg=${cg%% -->*}
            cg=${cg%% ---*}
        fi
        uid=$(printf '%s\n' "$head" | sed -n 's/.* uid:\([0-9]*\).*/\1/p')
        ino=$(printf '%s\n' "$head" | sed -n 's/.* ino:\([0-9]*\).*/\1/p')
        pids=$(socket_pids "${ino:-none}")
        if [ -n "$own" ] && [ "$cg" = "$own" ]; then
            [ "$RUNTIME" = docker ] || continue
            # docker.service also runs every other container's docker-proxy: only PORT's own counts.
            mine=no
            for pid in $pids; do container_owns_listener "$pid" "$port" && mine=yes; done
            [ "$mine" = no ] || continue
        fi
        comm=""
        for pid in $pids; do comm="$comm${comm:+ }$(cat "/proc/$pid/comm" 2>/dev/null)"; done
        printf 'pid %s (%s, uid %s, cgroup %s)\n' "${pids:-?}" "${comm:-not shown}" "${uid:-0}" "${cg:-unknown}"
    done | sort -u
}

# Connections still open to PORT (the old instance's in-flight requests), from /proc.
open_connections() {
    local hex
    hex=$(printf '%04X' "$1")
    awk -v p=":$hex" 'FNR > 1 && $4 == "01" && substr($2, length($2) - 4) == p { n++ } END { print n + 0 }' /proc/net/tcp /proc/net/tcp6 2>/dev/null || echo 0
}

# Proxy workers still running: after a reload the old one lives on until its last client
# connection ends (bounded by hard-stop-after). Counted from /proc: procps may be absent.
proxy_workers() {
    local master
    master=$(systemctl show -p MainPID --value "$SERVICE-proxy.service" 2>/dev/null || echo 0)
    if [ -z "$master" ] || [ "$master" = 0 ]; then echo 0; return 0; fi
    { grep -s -l -E "^PPid:[[:space:]]+$master\$" /proc/[0-9]*/status || true; } | wc -l
}

# drain PORT: wait until nothing can still reach PORT — the old proxy worker, which may hold
# accepted requests not yet forwarded, has exited — and its in-flight requests are done.
# Bounded by DRAIN seconds. Only then may the instance on PORT stop.
drain() {
    local deadline=$(($(date +%s) + DRAIN))
    while [ "$(proxy_workers)" -gt 1 ] && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.1; done
    while [ "$(open_connections "$1")" -gt 0 ] && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.2; done
}
