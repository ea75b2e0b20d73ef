#!/usr/bin/env bash
# Build the integration-test target host: Debian bookworm with systemd as PID 1 and sshd,
# debootstrapped from the apt mirror this machine already uses, then `docker import`ed.
#
# The image tag is the sha256 of this file, which includes the package list below, so a
# change to either yields a new image and an unchanged script reuses the existing one.
# Prints the tag (last line of stdout) in both cases.
set -euo pipefail

PACKAGES=(
    systemd systemd-sysv dbus
    openssh-server
    curl ca-certificates
    python3
    iproute2 procps
    sudo
    haproxy logrotate jq
    nftables
)

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
script_path="${repo_root}/scripts/build-test-image.sh"
hash="$(sha256sum "${script_path}" | cut -c1-16)"
image="complinist-testhost"
tag="${image}:${hash}"
build_dir="${TESTHOST_BUILD_DIR:-${repo_root}/.build/testhost}"
rootfs="${build_dir}/rootfs-${hash}"

log() { echo "build-test-image: $*" >&2; }

if docker image inspect "${tag}" >/dev/null 2>&1; then
    docker tag "${tag}" "${image}:latest"
    log "image ${tag} already present"
    echo "${tag}"
    exit 0
fi

# The mirror is whatever apt on this machine is configured with (deb822 *.sources or
# one-line *.list); the repo must never name a mirror host itself. The first URI that
# serves the plain `bookworm` suite wins. DEBIAN_MIRROR overrides for unusual machines.
find_mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f "${f}" ]] || continue
        # Paragraphs are separated by blank lines; keep the URI of the one whose Suites
        # lists bookworm itself (not only bookworm-security / -updates).
        awk '
            BEGIN { RS=""; FS="\n" }
            {
                uri=""; suites=""; types=""
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^URIs:/)   { sub(/^URIs:[ \t]*/, "", $i);   uri=$i }
                    if ($i ~ /^Suites:/) { sub(/^Suites:[ \t]*/, "", $i); suites=" " $i " " }
                    if ($i ~ /^Types:/)  { types=$i }
                }
                if (types ~ /(^|[ \t:])deb([ \t]|$)/ && suites ~ / bookworm / && uri != "") {
                    split(uri, u, /[ \t]+/); print u[1]; exit
                }
            }' "${f}"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f "${f}" ]] || continue
        awk '$1 == "deb" {
                 i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                 if ($(i + 1) == "bookworm") { print $i; exit }
             }' "${f}"
    done
}

mirror="${DEBIAN_MIRROR:-$(find_mirror | head -n1)}"
if [[ -z "${mirror}" ]]; then
    log "no apt source for bookworm found in /etc/apt/sources.list{,.d/*}; set DEBIAN_MIRROR"
    exit 1
fi

start=$(date +%s)
if [[ ! -f "${rootfs}/.complete" ]]; then
    # A half-finished debootstrap cannot be resumed reliably: start from scratch.
    rm -rf "${rootfs}"
    mkdir -p "${build_dir}"
    log "debootstrap bookworm from ${mirror} into ${rootfs}"
    include="$(IFS=,; echo "${PACKAGES[*]}")"
    debootstrap --variant=minbase --include="${include}" bookworm "${rootfs}" "${mirror}" >&2

    # Root logs in with a key only; the tests install theirs per container.
    mkdir -p "${rootfs}/etc/ssh/sshd_config.d"
    cat >"${rootfs}/etc/ssh/sshd_config.d/complinist-testhost.conf" <<'CONF'
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
CONF
    install -d -m 0700 "${rootfs}/root/.ssh"

    # Host keys baked into an image would be shared by every container, which would make
    # host-key pinning meaningless in tests. Each container generates its own on first
    # start, before Debian's `sshd -t` pre-check (which fails without keys) runs.
    rm -f "${rootfs}"/etc/ssh/ssh_host_*
    mkdir -p "${rootfs}/etc/systemd/system/ssh.service.d"
    cat >"${rootfs}/etc/systemd/system/ssh.service.d/10-hostkeys.conf" <<'UNIT'
[Service]
ExecStartPre=
ExecStartPre=/usr/bin/ssh-keygen -A
ExecStartPre=/usr/sbin/sshd -t
UNIT

    # Units that need hardware or a writable kernel interface fail inside a container
    # and would keep `systemctl is-system-running` at "degraded" forever; tests accept
    # degraded, but a clean "running" makes a real failure stand out.
    for unit in getty@tty1.service console-getty.service serial-getty@.service \
        systemd-remount-fs.service sys-kernel-config.mount sys-kernel-debug.mount \
        sys-kernel-tracing.mount sys-fs-fuse-connections.mount dev-hugepages.mount \
        systemd-firstboot.service systemd-udevd.service systemd-udev-trigger.service \
        systemd-modules-load.service systemd-sysctl.service \
        getty.target; do
        ln -sf /dev/null "${rootfs}/etc/systemd/system/${unit}"
    done

    # An empty machine-id makes systemd create a fresh one per container.
    : >"${rootfs}/etc/machine-id"
    rm -f "${rootfs}/var/lib/dbus/machine-id"

    # Smaller image; the hosts never install packages.
    rm -rf "${rootfs}"/var/cache/apt/archives/*.deb "${rootfs}"/var/lib/apt/lists/*
    touch "${rootfs}/.complete"
fi

# debootstrap mounts proc inside the target and a busy unmount can leave it there; never pack
# a live /proc into the image.
if mountpoint -q "${rootfs}/proc"; then umount -R "${rootfs}/proc"; fi
log "importing ${tag}"
tar --numeric-owner --exclude=./.complete -C "${rootfs}" -c . |
    docker import \
        --change 'CMD ["/sbin/init"]' \
        --change 'ENV container=docker' \
        --message "complinist test host (${hash})" \
        - "${tag}" >/dev/null
docker tag "${tag}" "${image}:latest"
log "built ${tag} in $(($(date +%s) - start)) s"
echo "${tag}"
