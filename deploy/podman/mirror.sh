# mirror.sh -- sourced: this machine's Debian mirror and apt proxy, for
# debootstrap (which reads neither sources.list nor apt.conf).

# The first Debian mirror in the apt sources, else deb.debian.org.
debian_mirror() {
    local m
    m=$(sed -n 's/^URIs: *\(http[^ ]*\/debian\)\/\{0,1\}$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
    [ -n "$m" ] || m=$(awk '$1=="deb" && $2 ~ /\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
    echo "${m:-http://deb.debian.org/debian}"
}

# Export apt's proxy as http_proxy, when apt has one and none is set.
debian_proxy() {
    local p
    p=$(apt-config dump 2>/dev/null | sed -n 's/^Acquire::http::Proxy "\(.*\)";$/\1/p' | head -1)
    if [ -n "$p" ] && [ -z "${http_proxy:-}" ]; then export http_proxy=$p; fi
}
