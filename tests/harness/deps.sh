#!/bin/sh
# deps.sh -- check for what oneshot builds with and what its tests use;
# install what is missing with apt-get when root, else print the exact
# apt-get line and fail. Called by `make deps` (and so by demo and test).
set -u

missing=""
need_pc() { # pkg-config name, Debian package
    pkg-config --exists "$1" 2>/dev/null || missing="$missing $2"
}
need_cmd() { # command, Debian package
    command -v "$1" >/dev/null 2>&1 || missing="$missing $2"
}
need_file() { # file, Debian package
    [ -e "$1" ] || missing="$missing $2"
}

need_cmd cc gcc
need_cmd make make
need_cmd pkg-config pkg-config
need_pc rdkafka librdkafka-dev
need_pc hiredis libhiredis-dev
need_pc libmicrohttpd libmicrohttpd-dev
# cJSON: compiled in from the cjson source package (deploy/cjson_source.sh:
# apt-get source, dpkg-source, flock); libcjson-dev for make CJSON=system
need_pc libcjson libcjson-dev
need_cmd dpkg-source dpkg-dev
need_cmd flock util-linux
need_cmd curl curl
need_cmd redis-server redis-server
need_cmd redis-cli redis-tools
need_cmd kcat kcat
# TLS tests: certificates made with openssl; make tls unpacks .debs with dpkg
need_cmd openssl openssl
need_cmd dpkg dpkg
need_cmd python3 python3
need_cmd clang clang
# Reliability tests: valgrind (tests/e2e/valgrind.sh), ss (tests/e2e/hostile.sh)
need_cmd valgrind valgrind
need_cmd ss iproute2
# What the static file does at start (tests/e2e/static.sh)
need_cmd strace strace
# LeakSanitizer/ASan runtime for clang builds, used by `make asan` with CC=clang
need_file /usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.asan-x86_64.a libclang-rt-14-dev
# Benchmark peers (Debian's python3 packages for /usr/bin/python3)
need_file /usr/lib/python3/dist-packages/fastapi python3-fastapi
need_file /usr/lib/python3/dist-packages/uvicorn python3-uvicorn
need_file /usr/lib/python3/dist-packages/rq python3-rq
need_file /usr/lib/python3/dist-packages/confluent_kafka python3-confluent-kafka
# The callers' examples (consumer/CALLERS.md, tests/e2e/callers.sh)
need_file /usr/lib/python3/dist-packages/redis python3-redis
need_file /usr/lib/python3/dist-packages/kafka python3-kafka
need_cmd hyperfine hyperfine
need_cmd spin spin
# Metrics test: a real Prometheus Pushgateway and the reference text parser
need_cmd prometheus-pushgateway prometheus-pushgateway
need_file /usr/lib/python3/dist-packages/prometheus_client python3-prometheus-client
# Deploy checks: the manifests' schemas are npm packages (tests/deploy)
need_cmd node nodejs
need_cmd npm npm
# Image test: podman as root (runc; netavark + iptables for -p) and
# debootstrap for the local debian:bookworm-slim base (deploy/podman/setup.sh)
need_cmd podman podman
need_cmd runc runc
need_file /usr/lib/podman/netavark netavark
need_file /usr/sbin/iptables iptables
need_file /usr/sbin/debootstrap debootstrap
# make static (deploy/static/) and tests/e2e/static.sh: debootstrap above
# for the trixie build root and the bullseye test root, chroot (coreutils),
# objcopy and readelf (binutils), setpriv (util-linux, deploy_run.sh too)
need_cmd objcopy binutils
need_cmd readelf binutils
need_cmd setpriv util-linux
# Deploy run test (tests/e2e/deploy_run.sh): the pause container of
# podman kube play, podman-compose, nsenter, python3-yaml for /usr/bin/python3
need_file /usr/bin/catatonit catatonit
need_cmd podman-compose podman-compose
need_cmd nsenter util-linux
need_file /usr/lib/python3/dist-packages/yaml python3-yaml
# The real Kafka broker of the tests: Java 17 and Maven for tests/brokers/kafka/pom.xml
need_cmd java openjdk-17-jre-headless
need_cmd mvn maven

# Kafka (tests/brokers/kafka/pom.xml, one pinned version) into tests/brokers/kafka/target/libs,
# from Maven Central or ~/.m2; done again only when the pom changes (its
# copy in libs/.pom says which pom the jars are for).
kafka_jars() {
    k=$(dirname "$0")/../brokers/kafka
    cmp -s "$k/pom.xml" "$k/target/libs/.pom" && return 0
    echo "deps: fetching the test Kafka broker (tests/brokers/kafka/pom.xml) with mvn" >&2
    rm -rf "$k/target/libs"
    mvn -q -B --no-transfer-progress -Dstyle.color=never -f "$k/pom.xml" dependency:copy-dependencies >&2 &&
        cp "$k/pom.xml" "$k/target/libs/.pom" || {
        echo "deps: mvn could not fetch the Kafka broker" >&2
        return 1
    }
}

if [ -z "$missing" ]; then
    kafka_jars
    exit
fi
echo "deps: missing:$missing" >&2
if [ "$(id -u)" -eq 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends $missing >/dev/null || {
        echo "deps: apt-get install failed" >&2
        exit 1
    }
    echo "deps: installed:$missing" >&2
    kafka_jars || exit 1
else
    echo "deps: run as root: apt-get install -y$missing" >&2
    exit 1
fi
