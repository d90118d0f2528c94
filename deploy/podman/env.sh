# env.sh -- sourced by setup.sh and the image test: when the machine's own
# /etc/containers/containers.conf lacks the settings this sandbox needs
# (runc, cgroupfs), use ours through CONTAINERS_CONF.
# shellcheck shell=bash
_oneshot_podman_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if ! grep -qs '^ *runtime *= *"runc"' /etc/containers/containers.conf ||
   ! grep -qs '^ *cgroup_manager *= *"cgroupfs"' /etc/containers/containers.conf; then
    export CONTAINERS_CONF="$_oneshot_podman_dir/containers.conf"
fi
unset _oneshot_podman_dir
