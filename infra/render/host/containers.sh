# Container mode (RUNTIME=docker): each instance slot runs its release's image, pinned by ID
# in the release's manifest, as the container <service>-<port> published on 127.0.0.1:<port>.
# The instance unit <service>@<port>.service runs `container-run`, so starting, gating,
# switching, draining and the standby are release mode's own. Release mode never calls these.
container_name() { echo "$SERVICE-$1"; }

# The image ID the release linked to PORT pins ("" when none).
instance_image() { sed -n 's/^image=//p' "$INSTANCES_DIR/$1/$MANIFEST" 2>/dev/null | head -n 1; }

# container_state PORT: "<state> <container id> <image id>" of PORT's container, or "missing".
container_state() {
    local out
    # For a missing container docker inspect still prints an empty line: its exit code decides.
    if out=$(docker inspect --format '{{.State.Status}} {{.Id}} {{.Image}}' "$(container_name "$1")" 2>/dev/null) && [ -n "$out" ]; then
        printf '%s\n' "$out" | head -n 1
    else
        echo missing
    fi
}

# The service user's "uid:gid" on this host; refused (empty, exit 1) when the user is missing
# or is uid 0 (a root-equivalent account named otherwise): a container never runs as root.
service_ids() {
    local uid gid
    uid=$(id -u -- "$1" 2>/dev/null) && gid=$(id -g -- "$1" 2>/dev/null) || { echo "service user $1 does not exist on this host: pulumi up creates it" >&2; return 1; }
    if [ "$uid" = 0 ] || [ "$gid" = 0 ]; then echo "service user $1 is uid $uid gid $gid on this host: a container never runs as root" >&2; return 1; fi
    printf '%s:%s\n' "$uid" "$gid"
}

# The named volume at /var/log/<service>, owned by the service user (mounted with
# volume-nocopy, so the image's ownership of that directory is never copied over it).
# Run by the activation (root, unsandboxed; the instance unit's ProtectSystem=strict would
# refuse it). Only the volume's own directory is chowned: its parent is the engine's (root's).
container_prepare() {
    local ids mp
    ids=$(service_ids "$1") || return 1
    docker volume create "$SERVICE-logs" >/dev/null
    mp=$(docker volume inspect --format '{{.Mountpoint}}' "$SERVICE-logs")
    chown -h "$ids" "$mp"
    chmod 0750 "$mp"
}

# container-run PORT --user U --memory M --pids N --tmp-size S --log-max-size S --log-max-files N
# (the instance unit's ExecStart): the container in the foreground, so systemd follows its
# life and its output goes to app.log. Only the image the release pins runs, as the service
# user's uid:gid (never the image's USER), with a read-only root, a tmpfs /tmp, memory and
# process limits, and Docker's own JSON log of it rotated. PORT and COMPLINIST_VERSION come
# from the slot, the rest from the slot's env file.
cmd_container_run() {
    local port="${1:-}" version image ids user="" memory="" pids="" tmp_size="" log_size="" log_files=""
    local usage="usage: $HOST_PROGRAM container-run PORT --user USER --memory SIZE --pids N --tmp-size SIZE --log-max-size SIZE --log-max-files N"
    case "$port" in '' | *[!0-9]*) echo "$usage" >&2; exit "$EXIT_USAGE" ;; esac
    shift
    while [ $# -gt 0 ]; do
        [ $# -ge 2 ] || { echo "$usage" >&2; exit "$EXIT_USAGE"; }
        case "$1" in
            --user) user="$2" ;;
            --memory) memory="$2" ;;
            --pids) pids="$2" ;;
            --tmp-size) tmp_size="$2" ;;
            --log-max-size) log_size="$2" ;;
            --log-max-files) log_files="$2" ;;
            *) echo "$usage" >&2; exit "$EXIT_USAGE" ;;
        esac
        shift 2
    done
    # The unit is root's, but its values still reach docker's command line: the schema's forms only.
    if ! [[ "$user" =~ ^[a-z_][a-z0-9_-]{0,31}$ && "$memory" =~ ^[1-9][0-9]*[mg]$ && "$pids" =~ ^[1-9][0-9]*$ &&
        "$tmp_size" =~ ^[1-9][0-9]*[mg]$ && "$log_size" =~ ^[1-9][0-9]*[kmg]$ && "$log_files" =~ ^[1-9][0-9]*$ ]]; then
        echo "$usage" >&2
        exit "$EXIT_USAGE"
    fi
    ids=$(service_ids "$user") || exit 1
    version=$(instance_version "$port")
    image=$(instance_image "$port")
    if [ -z "$version" ] || [ -z "$image" ]; then
        echo "no release with an image is linked for port $port ($INSTANCES_DIR/$port): start it through an activation" >&2
        exit 1
    fi
    # A leftover of the same name is removed by the unit's ExecStartPre.
    exec docker run --rm --name "$(container_name "$port")" \
        --label "complinist.service=$SERVICE" --label "complinist.version=$version" --label "complinist.port=$port" \
        --publish "127.0.0.1:$port:$port" \
        --env "PORT=$port" --env "COMPLINIST_VERSION=$version" --env-file "$ENV_DIR/instance-$port.env" \
        --mount "type=volume,source=$SERVICE-logs,target=/var/log/$SERVICE,volume-nocopy" \
        --stop-signal SIGINT --stop-timeout 20 \
        --user "$ids" --cap-drop ALL --security-opt no-new-privileges \
        --read-only --tmpfs "/tmp:rw,nosuid,nodev,noexec,size=$tmp_size" \
        --memory "$memory" --memory-swap "$memory" --pids-limit "$pids" \
        --log-driver json-file --log-opt "max-size=$log_size" --log-opt "max-file=$log_files" \
        "$image"
}

# container_owns_listener PID PORT: PID is the engine's docker-proxy forwarding 127.0.0.1:PORT
# to PORT's own container (its address on the engine's network), not any other process.
container_owns_listener() {
    local pid="$1" port="$2" ip args
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = docker-proxy ] || return 1
    ip=$(docker inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$(container_name "$port")" 2>/dev/null | awk '{ print $1 }')
    [ -n "$ip" ] || return 1
    args=" $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) "
    case "$args" in *" -host-port $port "*) ;; *) return 1 ;; esac
    case "$args" in *" -container-ip $ip "*) return 0 ;; esac
    return 1
}
