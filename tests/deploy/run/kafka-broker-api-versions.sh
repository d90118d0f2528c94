#!/bin/bash
# Stand-in for Kafka's tool of that name, for the compose healthcheck
# (--bootstrap-server HOST:PORT): sends an ApiVersions request (v0) and
# succeeds when the broker answers one.
hp=localhost:9092
while [ $# -gt 0 ]; do
    [ "$1" = --bootstrap-server ] && hp=$2 && shift
    shift
done
exec 3<>"/dev/tcp/${hp%:*}/${hp##*:}" || exit 1
# size 14: api_key 18, version 0, correlation 1, client id "hc"
printf '\x00\x00\x00\x0c\x00\x12\x00\x00\x00\x00\x00\x01\x00\x02hc' >&3
n=$(timeout 5 head -c 8 <&3 | od -An -tx1 | tr -d ' \n')
# the answer: size, then correlation id 1
[ "${n:8:8}" = 00000001 ]
