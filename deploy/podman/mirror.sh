# mirror.sh -- sourced: this machine's Debian mirror and apt proxy, for
# debootstrap (which reads neither sources.list nor apt.conf), and apt-get
# with a private list (the build's fetches: deploy/cjson_source.sh,
# tests/brokers/tls/hiredis_trixie.sh).

# The first Debian mirror in the apt sources (deb822 or one-line form, with
# or without [options]), else deb.debian.org.
debian_mirror() {
    local m
    m=$(sed -n 's/^URIs:[[:space:]]*\(http[^[:space:]]*\/debian\)\/*[[:space:]]*$/\1/p' \
        /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
    [ -n "$m" ] || m=$(sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\(http[^[:space:]]*\/debian\)\/*[[:space:]].*/\2/p' \
        /etc/apt/sources.list 2>/dev/null | head -1)
    echo "${m:-http://deb.debian.org/debian}"
}

# apt_private DIR TYPE SUITE: a sources list (TYPE deb or deb-src, SUITE
# main, from debian_mirror, checked against Debian's archive keyring),
# lists and cache of their own in DIR, made afresh; APT_OPTS is then what
# apt-get takes to use them. The host's apt configuration and state are
# not touched (its dpkg status is read, for download's dependency view).
apt_private() {
    local dir=$1
    rm -rf "$dir"
    mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
    echo "$2 [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $(debian_mirror) $3 main" >"$dir/sources.list"
    APT_OPTS=(-o Dir::Etc::SourceList="$dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o Dir::State="$dir" -o Dir::State::Lists=lists -o Dir::Cache="$dir/cache"
        -o Dir::State::status=/var/lib/dpkg/status -o APT::Sandbox::User=root
        -o Acquire::Languages=none -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
        -o Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false
        -o Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false
        -o Acquire::IndexTargets::deb::CNF::DefaultEnabled=false -o Acquire::Retries=2)
}

# Export apt's proxy as http_proxy, when apt has one and none is set.
debian_proxy() {
    local p
    p=$(apt-config dump 2>/dev/null | sed -n 's/^Acquire::http::Proxy "\(.*\)";$/\1/p' | head -1)
    if [ -n "$p" ] && [ -z "${http_proxy:-}" ]; then export http_proxy=$p; fi
}
