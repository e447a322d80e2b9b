#!/bin/bash
# The local broker's start: server.properties from the mounted configuration plus this pod's
# address, storage formatted once (with the admin user's SCRAM credential), then the broker.
#   /etc/kafka/server.properties   rendered from the Kafka CR by k8s/local/kafka/operator.py
#   KAFKA_ADMIN_PASSWORD           the admin user's password (a Secret of the operator's)
#   POD_IP                         the pod's address (downward API), advertised on the admin listener
set -euo pipefail
data=/var/lib/kafka/data
mkdir -p "$data"
props=/tmp/server.properties
sed "s/@POD_IP@/$POD_IP/g" /etc/kafka/server.properties >"$props"
# log4j2 to the console
cat >/tmp/log4j2.properties <<'LOG'
status = warn
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRefs = console
rootLogger.appenderRef.console.ref = console
logger.kafka.name = kafka
logger.kafka.level = WARN
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
LOG
export KAFKA_LOG4J_OPTS=-Dlog4j2.configurationFile=/tmp/log4j2.properties
java_opts=(-Xms"${KAFKA_HEAP:-512m}" -Xmx"${KAFKA_HEAP:-512m}" -XX:+UseG1GC
  -Dlog4j2.configurationFile=/tmp/log4j2.properties -Djava.io.tmpdir=/tmp)
if [ ! -f "$data/meta.properties" ]; then
  java "${java_opts[@]}" -cp '/opt/kafka/libs/*' kafka.tools.StorageTool format \
    -t "$(cat /etc/kafka/cluster-id)" -c "$props" \
    --add-scram "SCRAM-SHA-512=[name=admin,password=$KAFKA_ADMIN_PASSWORD]"
fi
exec java "${java_opts[@]}" -cp '/opt/kafka/libs/*' kafka.Kafka "$props"
