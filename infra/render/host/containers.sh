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

# container-run PORT (the instance unit's ExecStart): the container in the foreground, so
# systemd follows its life and its output goes to app.log. Only the image the release pins
# runs; PORT and COMPLINIST_VERSION come from the slot, the rest from the slot's env file.
cmd_container_run() {
    local port="${1:-}" version image
    case "$port" in '' | *[!0-9]*) echo "usage: $HOST_PROGRAM container-run PORT" >&2; exit "$EXIT_USAGE" ;; esac
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
        --volume "$SERVICE-logs:/var/log/$SERVICE" \
        --stop-signal SIGINT --stop-timeout 20 \
        --cap-drop ALL --security-opt no-new-privileges \
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
