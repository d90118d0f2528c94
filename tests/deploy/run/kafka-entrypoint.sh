#!/bin/bash
# KAFKA_* variables to server properties (KAFKA_NODE_ID -> node.id), the
# storage formatted once, then the broker in the foreground.
set -eu
: "${KAFKA_LOG_DIRS:=/var/lib/kafka/data}"
export KAFKA_LOG_DIRS
conf=/tmp/server.properties
: >"$conf"
while IFS='=' read -r k v; do
    case "$k" in KAFKA_HEAP_OPTS | KAFKA_OPTS | KAFKA_CLUSTER_ID) continue ;; esac
    key=$(printf '%s' "${k#KAFKA_}" | tr 'A-Z_' 'a-z.')
    printf '%s=%s\n' "$key" "$v" >>"$conf"
done < <(env | grep '^KAFKA_')
java_run() {
    exec_java=(java ${KAFKA_HEAP_OPTS:--Xmx512m -Xms64m} -XX:+UseSerialGC -Djava.awt.headless=true -Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties
        -cp '/opt/kafka/libs/*' "$@")
}
if [ ! -f "$KAFKA_LOG_DIRS/meta.properties" ]; then
    java_run kafka.tools.StorageTool format -t "${KAFKA_CLUSTER_ID:-b25lc2hvdC1jb21wb3NlLQ}" -c "$conf"
    "${exec_java[@]}"
fi
java_run kafka.Kafka "$conf"
exec "${exec_java[@]}"
