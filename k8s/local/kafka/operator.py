"""Test-only: what Strimzi's operators do for the chart, done once, for the local cluster.

Strimzi's cluster operator cannot run on the local cluster (it is not on Maven Central and its
images cannot be pulled), so this script plays its part from the chart's own custom resources,
read from the live API server:

- ``Kafka`` + ``KafkaNodePool``: one real Apache Kafka broker (KRaft, combined mode; the image
  of k8s/local/kafka/Dockerfile) as a StatefulSet on a PersistentVolumeClaim, the
  ``<cluster>-kafka-bootstrap`` Service the pipeline's settings name, the CR's ``config``, its
  SCRAM-SHA-512 listener on the CR's port, and the simple authorizer (ACLs enforced). A listener
  with ``tls: true`` speaks TLS with a certificate the cluster CA signs for the bootstrap
  Service's names; the CA is Strimzi's Secrets ``<cluster>-cluster-ca-cert`` (``ca.crt``, what
  clients trust) and ``<cluster>-cluster-ca`` (``ca.key``), made once and kept across runs.
- ``KafkaUser`` (scram-sha-512, simple authorization): the user's SCRAM credential on the
  broker, its ACLs, and the Secret named after the user with ``password`` and
  ``sasl.jaas.config``, as the user operator writes it (the password is kept across runs).
- ``KafkaTopic``: the topic with its partitions, replicas and config.

Each CR then gets a ``Ready`` condition in its status. Differences from Strimzi: one broker
(more node-pool replicas are refused with a clear error), one client listener, no certificate
renewal, no reconciliation loop (run it again after a change), an extra plain SASL listener on
the pod's own address that this script administers the broker through from the host.

    python k8s/local/kafka/operator.py --namespace beatlytica --image beatlytica.local/kafka:local
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import secrets
import string
import subprocess
import sys
import time
import uuid
from typing import Any

ADMIN_USER = "admin"
ADMIN_PORT = 9094
CONTROLLER_PORT = 9093
REPLICATION_PORT = 9091
#: where the broker's TLS key and certificate chain (one PEM file) are mounted
KEYSTORE = "/etc/kafka/tls/keystore.pem"


class OperatorError(RuntimeError):
    pass


def kubectl(*args: str, stdin: str | None = None, check: bool = True) -> str:
    result = subprocess.run(
        ["kubectl", *args], input=stdin, capture_output=True, text=True, timeout=300
    )
    if check and result.returncode:
        raise OperatorError(f"kubectl {' '.join(args[:3])}…: {result.stderr.strip()}")
    return result.stdout


def get_items(kind: str, namespace: str) -> list[dict[str, Any]]:
    return json.loads(kubectl("get", kind, "-n", namespace, "-o", "json"))["items"]


def password() -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(32))


def existing_secret(name: str, namespace: str) -> dict[str, str] | None:
    out = kubectl("get", "secret", name, "-n", namespace, "-o", "json", check=False)
    if not out:
        return None
    data = json.loads(out).get("data") or {}
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def apply(objects: list[dict[str, Any]]) -> None:
    kubectl(
        "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
    )


def jaas(user: str, secret: str) -> str:
    return (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{user}" password="{secret}";'
    )


def client_listener(kafka: dict[str, Any]) -> tuple[int, bool]:
    """(port, tls) of the Kafka CR's one SCRAM-SHA-512 listener."""
    listeners = kafka["spec"]["kafka"].get("listeners") or []
    scram = [x for x in listeners if (x.get("authentication") or {}).get("type") == "scram-sha-512"]
    if len(scram) != 1 or len(listeners) != 1:
        raise OperatorError(
            f"Kafka {kafka['metadata']['name']}: the local stand-in serves exactly one "
            f"SCRAM-SHA-512 listener, found {[x.get('name') for x in listeners]}"
        )
    return int(scram[0]["port"]), bool(scram[0].get("tls"))


def bootstrap_names(name: str, namespace: str) -> list[str]:
    """The names clients reach the bootstrap Service by (the broker certificate's SANs)."""
    service = f"{name}-kafka-bootstrap"
    suffixes = ("", f".{namespace}", f".{namespace}.svc", f".{namespace}.svc.cluster.local")
    return [service + suffix for suffix in suffixes]


def server_properties(kafka: dict[str, Any], namespace: str) -> tuple[str, int]:
    """The broker's configuration from the Kafka CR; @POD_IP@ is filled in by start.sh."""
    spec = kafka["spec"]["kafka"]
    port, tls = client_listener(kafka)
    bootstrap = bootstrap_names(kafka["metadata"]["name"], namespace)[-1]
    jaas_server = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    props: dict[str, str] = {
        "process.roles": "broker,controller",
        "node.id": "0",
        "controller.quorum.voters": f"0@127.0.0.1:{CONTROLLER_PORT}",
        "listeners": (
            f"SCRAM://:{port},ADMIN://:{ADMIN_PORT},"
            f"REPLICATION://127.0.0.1:{REPLICATION_PORT},CONTROLLER://127.0.0.1:{CONTROLLER_PORT}"
        ),
        "advertised.listeners": (
            f"SCRAM://{bootstrap}:{port},ADMIN://@POD_IP@:{ADMIN_PORT},"
            f"REPLICATION://127.0.0.1:{REPLICATION_PORT}"
        ),
        "listener.security.protocol.map": (
            f"SCRAM:{'SASL_SSL' if tls else 'SASL_PLAINTEXT'},ADMIN:SASL_PLAINTEXT,"
            "REPLICATION:PLAINTEXT,CONTROLLER:PLAINTEXT"
        ),
        "inter.broker.listener.name": "REPLICATION",
        "controller.listener.names": "CONTROLLER",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "listener.name.scram.scram-sha-512.sasl.jaas.config": jaas_server,
        "listener.name.admin.scram-sha-512.sasl.jaas.config": jaas_server,
        "log.dirs": "/var/lib/kafka/data",
        "num.partitions": "1",
        "group.initial.rebalance.delay.ms": "0",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
    }
    if tls:  # the client listener only: the admin listener stays on the pod's own address
        props |= {
            "listener.name.scram.ssl.keystore.type": "PEM",
            "listener.name.scram.ssl.keystore.location": KEYSTORE,
        }
    if (kafka["spec"]["kafka"].get("authorization") or {}).get("type") == "simple":
        props |= {
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            # the admin user of this script, and the in-pod plaintext replication/controller
            # listeners (bound to 127.0.0.1)
            "super.users": f"User:{ADMIN_USER};User:ANONYMOUS",
            "allow.everyone.if.no.acl.found": "false",
        }
    props |= {
        k: str(v).lower() if isinstance(v, bool) else str(v)
        for k, v in (spec.get("config") or {}).items()
    }
    return "".join(f"{k}={v}\n" for k, v in props.items()), port


def _certificate(
    subject: str, key: Any, issuer: str, issuer_key: Any, names: list[str] | None
) -> Any:
    """An X.509 certificate valid for a year: a CA's when ``names`` is None, else a server's
    for those DNS names."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    def dn(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(dn(subject))
        .issuer_name(dn(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=names is None, path_length=None), critical=True)
    )
    if names is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _pem_key(key: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _pem_certificate(certificate: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def new_cluster_ca(name: str) -> tuple[str, str]:
    """(key, certificate) of a new cluster CA for the Kafka cluster ``name``, PEM."""
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    subject = f"cluster-ca {name}"
    return _pem_key(key), _pem_certificate(_certificate(subject, key, subject, key, None))


def cluster_ca(name: str, namespace: str) -> tuple[str, str]:
    """(key, certificate) of the cluster CA, PEM: the one in Strimzi's two Secrets if they
    exist (kept across runs, so clients' trust holds), else a new one."""
    key = (existing_secret(f"{name}-cluster-ca", namespace) or {}).get("ca.key")
    cert = (existing_secret(f"{name}-cluster-ca-cert", namespace) or {}).get("ca.crt")
    return (key, cert) if key and cert else new_cluster_ca(name)


def broker_keystore(ca_key: str, ca_cert: str, names: list[str]) -> str:
    """The broker's private key (PKCS#8) and certificate chain (its certificate, which the
    cluster CA signs for ``names``, then the CA's), one PEM file: Kafka's PEM keystore."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    issuer_key = serialization.load_pem_private_key(ca_key.encode(), password=None)
    issuer = x509.load_pem_x509_certificate(ca_cert.encode()).subject.rfc4514_string()
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = _certificate(names[-1], key, issuer.removeprefix("CN="), issuer_key, names)
    return _pem_key(key) + _pem_certificate(certificate) + ca_cert


def ca_secrets(kafka: dict[str, Any], namespace: str, ca_key: str, ca_cert: str) -> list[Any]:
    """Strimzi's cluster CA Secrets: the certificate clients trust, and the key."""
    name = kafka["metadata"]["name"]
    labels = {
        "strimzi.io/cluster": name,
        "strimzi.io/kind": "Kafka",
        "app.kubernetes.io/managed-by": "beatlytica-local-kafka",
    }
    secrets = {
        f"{name}-cluster-ca-cert": {"ca.crt": ca_cert},
        f"{name}-cluster-ca": {"ca.key": ca_key},
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": secret,
                "namespace": namespace,
                "labels": labels,
                "ownerReferences": owner(kafka),
            },
            "stringData": data,
        }
        for secret, data in secrets.items()
    ]


def owner(resource: dict[str, Any]) -> list[dict[str, Any]]:
    """An owner reference to a CR: what the operator makes for it goes when it goes."""
    meta = resource["metadata"]
    return [
        {
            "apiVersion": resource["apiVersion"],
            "kind": resource["kind"],
            "name": meta["name"],
            "uid": meta["uid"],
            "controller": True,
            "blockOwnerDeletion": False,
        }
    ]


def broker_objects(
    kafka: dict[str, Any],
    pool: dict[str, Any],
    namespace: str,
    image: str,
    admin_password: str,
    keystore: str | None = None,
) -> list[dict[str, Any]]:
    """The broker's configuration Secret, Services and StatefulSet; ``keystore`` (PEM) when
    its client listener speaks TLS."""
    name = kafka["metadata"]["name"]
    properties, port = server_properties(kafka, namespace)
    storage = pool["spec"].get("storage") or {}
    size = storage.get("size", "1Gi")
    resources = pool["spec"].get("resources") or {}
    labels = {
        "strimzi.io/cluster": name,
        "strimzi.io/kind": "Kafka",
        "strimzi.io/name": f"{name}-kafka",
        "strimzi.io/pool-name": pool["metadata"]["name"],
        "app.kubernetes.io/part-of": "beatlytica",
        "app.kubernetes.io/managed-by": "beatlytica-local-kafka",
    }
    statefulset = f"{name}-{pool['metadata']['name']}"
    config_name = f"{name}-local-kafka-config"
    old = existing_secret(config_name, namespace)  # the cluster id, kept across runs
    cluster_id = (old or {}).get("cluster-id") or base64.urlsafe_b64encode(
        uuid.uuid4().bytes
    ).decode()[:22]
    security = {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    objects = [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": config_name, "namespace": namespace, "labels": labels},
            "stringData": {
                "server.properties": properties,
                "cluster-id": cluster_id,
                "admin-password": admin_password,
                **({"keystore.pem": keystore} if keystore else {}),
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": f"{name}-kafka-bootstrap",
                "namespace": namespace,
                "labels": labels,
            },
            "spec": {
                "selector": {"strimzi.io/name": f"{name}-kafka"},
                "ports": [{"name": "tcp-scram", "port": port, "targetPort": port}],
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": f"{name}-kafka-brokers", "namespace": namespace, "labels": labels},
            "spec": {
                "clusterIP": "None",
                "selector": {"strimzi.io/name": f"{name}-kafka"},
                "ports": [{"name": "tcp-scram", "port": port}],
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": statefulset, "namespace": namespace, "labels": labels},
            "spec": {
                "serviceName": f"{name}-kafka-brokers",
                "replicas": 1,
                "selector": {"matchLabels": {"strimzi.io/name": f"{name}-kafka"}},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "automountServiceAccountToken": False,
                        "securityContext": {
                            "runAsUser": 1001,
                            "fsGroup": 0,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "terminationGracePeriodSeconds": 30,
                        "containers": [
                            {
                                "name": "kafka",
                                "image": image,
                                "imagePullPolicy": "Never",
                                "env": [
                                    {
                                        "name": "POD_IP",
                                        "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}},
                                    },
                                    {"name": "KAFKA_HEAP", "value": "384m"},
                                    {
                                        "name": "KAFKA_ADMIN_PASSWORD",
                                        "valueFrom": {
                                            "secretKeyRef": {
                                                "name": config_name,
                                                "key": "admin-password",
                                            }
                                        },
                                    },
                                ],
                                "ports": [
                                    {"name": "tcp-scram", "containerPort": port},
                                    {"name": "tcp-admin", "containerPort": ADMIN_PORT},
                                ],
                                "readinessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 5},
                                "resources": resources,
                                "securityContext": security,
                                "volumeMounts": [
                                    {"name": "data", "mountPath": "/var/lib/kafka"},
                                    {"name": "config", "mountPath": "/etc/kafka"},
                                    {"name": "tmp", "mountPath": "/tmp"},
                                ],
                            }
                        ],
                        "volumes": [
                            {
                                "name": "config",
                                "secret": {
                                    "secretName": config_name,
                                    "items": [
                                        {"key": "server.properties", "path": "server.properties"},
                                        {"key": "cluster-id", "path": "cluster-id"},
                                        *(
                                            [
                                                {
                                                    "key": "keystore.pem",
                                                    "path": KEYSTORE.removeprefix("/etc/kafka/"),
                                                    "mode": 0o440,  # the broker's group (0)
                                                }
                                            ]
                                            if keystore
                                            else []
                                        ),
                                    ],
                                },
                            },
                            {"name": "tmp", "emptyDir": {}},
                        ],
                    },
                },
                "volumeClaimTemplates": [
                    {
                        "metadata": {"name": "data"},
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": size}},
                        },
                    }
                ],
                # the node pool's deleteClaim: the claim goes with the broker
                "persistentVolumeClaimRetentionPolicy": {
                    "whenDeleted": "Delete" if storage.get("deleteClaim") else "Retain",
                    "whenScaled": "Retain",
                },
            },
        },
    ]
    for item in objects:  # deleted with the Kafka CR, as Strimzi's are
        item["metadata"]["ownerReferences"] = owner(kafka)
    return objects


def broker_view(pod: str, namespace: str) -> str:
    """Why a broker pod is not ready: its phase and containers' states, its claim's, the
    namespace's recent warnings and the broker's last log lines."""
    lines = []
    found = kubectl("get", "pod", pod, "-n", namespace, "-o", "json", check=False)
    if not found:
        lines.append(f"pod {pod}: not created")
    else:
        status = json.loads(found).get("status", {})
        lines.append(f"pod {pod}: {status.get('phase')}")
        for condition in status.get("conditions", []):
            if condition.get("status") != "True":
                lines.append(f"  {condition['type']}: {condition.get('message', '')}")
        for container in status.get("containerStatuses", []):
            lines.append(f"  {container['name']}: {json.dumps(container.get('state'))}")
    lines.append(kubectl("get", "pvc", "-n", namespace, "--no-headers", check=False).strip())
    warnings = ("--field-selector=type=Warning", "--sort-by=.lastTimestamp")
    events = kubectl("get", "events", "-n", namespace, *warnings, check=False)
    lines += events.strip().splitlines()[-10:]
    log = kubectl("logs", pod, "-n", namespace, "--tail=30", check=False)
    lines += [f"  | {line}" for line in log.strip().splitlines()]
    return "\n".join(line for line in lines if line)


def admin_client(pod_ip: str, admin_password: str) -> Any:
    from confluent_kafka.admin import AdminClient

    return AdminClient(
        {
            "bootstrap.servers": f"{pod_ip}:{ADMIN_PORT}",
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": ADMIN_USER,
            "sasl.password": admin_password,
        }
    )


def wait_for_broker(admin: Any, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            admin.list_topics(timeout=5)
            return
        except Exception as error:
            last = error
            time.sleep(2)
    raise OperatorError(f"the local Kafka broker does not answer its admin listener: {last}")


def ensure_user(admin: Any, user: dict[str, Any], namespace: str) -> None:
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialUpsertion,
    )

    name = user["metadata"]["name"]
    auth = (user["spec"].get("authentication") or {}).get("type")
    if auth != "scram-sha-512":
        raise OperatorError(
            f"KafkaUser {name}: the local stand-in supports scram-sha-512, found {auth}"
        )
    secret = (existing_secret(name, namespace) or {}).get("password") or password()
    apply(
        [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "ownerReferences": owner(user),
                    "name": name,
                    "namespace": namespace,
                    "labels": {
                        "strimzi.io/cluster": user["metadata"]["labels"].get(
                            "strimzi.io/cluster", ""
                        ),
                        "strimzi.io/kind": "KafkaUser",
                        "app.kubernetes.io/managed-by": "beatlytica-local-kafka",
                    },
                },
                "stringData": {"password": secret, "sasl.jaas.config": jaas(name, secret)},
            }
        ]
    )
    upsert = UserScramCredentialUpsertion(
        name, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), secret.encode()
    )
    for future in admin.alter_user_scram_credentials([upsert]).values():
        future.result()
    acls = ((user["spec"].get("authorization") or {}).get("acls")) or []
    bindings = []
    for acl in acls:
        resource = acl["resource"]
        kind = {
            "topic": ResourceType.TOPIC,
            "group": ResourceType.GROUP,
            "cluster": ResourceType.BROKER,
            "transactionalId": ResourceType.TRANSACTIONAL_ID,
        }[resource["type"]]
        pattern = {"literal": ResourcePatternType.LITERAL, "prefix": ResourcePatternType.PREFIXED}[
            resource.get("patternType", "literal")
        ]
        for operation in acl.get("operations") or [acl.get("operation")]:
            op = getattr(
                AclOperation,
                "".join("_" + c if c.isupper() else c for c in operation).lstrip("_").upper(),
            )
            bindings.append(
                AclBinding(
                    kind,
                    resource.get("name", "kafka-cluster"),
                    pattern,
                    f"User:{name}",
                    "*",
                    op,
                    AclPermissionType.ALLOW,
                )
            )
    if bindings:
        for future in admin.create_acls(bindings).values():
            future.result()


def ensure_topic(admin: Any, topic: dict[str, Any]) -> None:
    from confluent_kafka.admin import NewPartitions, NewTopic

    spec = topic["spec"]
    name = spec.get("topicName") or topic["metadata"]["name"]
    partitions = int(spec.get("partitions", 1))
    existing = admin.list_topics(timeout=10).topics.get(name)
    if existing is None:
        new = NewTopic(
            name,
            partitions,
            int(spec.get("replicas", 1)),
            config={k: str(v) for k, v in (spec.get("config") or {}).items()},
        )
        for future in admin.create_topics([new]).values():
            future.result()
    elif len(existing.partitions) < partitions:
        for future in admin.create_partitions([NewPartitions(name, partitions)]).values():
            future.result()


def mark_ready(kind: str, name: str, namespace: str, extra: dict[str, Any] | None = None) -> None:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    status = {
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "lastTransitionTime": now,
                "reason": "LocalStandIn",
                "message": "k8s/local/kafka/operator.py",
            }
        ]
    }
    status |= extra or {}
    kubectl(
        "patch",
        kind,
        name,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )


def run(namespace: str, image: str) -> None:
    kafkas = get_items("kafkas.kafka.strimzi.io", namespace)
    if len(kafkas) != 1:
        raise OperatorError(f"expected one Kafka CR in namespace {namespace}, found {len(kafkas)}")
    kafka = kafkas[0]
    name = kafka["metadata"]["name"]
    pools = [
        p
        for p in get_items("kafkanodepools.kafka.strimzi.io", namespace)
        if p["metadata"].get("labels", {}).get("strimzi.io/cluster") == name
    ]
    if len(pools) != 1 or int(pools[0]["spec"].get("replicas", 1)) != 1:
        raise OperatorError(
            f"Kafka {name}: the local stand-in runs one broker (one node pool, one replica)"
        )
    config = existing_secret(f"{name}-local-kafka-config", namespace) or {}
    admin_password = config.get("admin-password") or password()
    keystore = None
    if client_listener(kafka)[1]:  # TLS: the cluster CA, and the broker's certificate from it
        ca_key, ca_cert = cluster_ca(name, namespace)
        apply(ca_secrets(kafka, namespace, ca_key, ca_cert))
        keystore = config.get("keystore.pem")
        if not keystore or not keystore.endswith(ca_cert):  # kept while the CA is the same
            keystore = broker_keystore(ca_key, ca_cert, bootstrap_names(name, namespace))
    apply(broker_objects(kafka, pools[0], namespace, image, admin_password, keystore))
    statefulset = f"{name}-{pools[0]['metadata']['name']}"
    try:
        kubectl(
            "rollout", "status", f"statefulset/{statefulset}", "-n", namespace, "--timeout=300s"
        )
    except OperatorError as error:
        raise OperatorError(f"{error}\n{broker_view(f'{statefulset}-0', namespace)}") from None
    pod_ip = kubectl(
        "get", "pod", f"{statefulset}-0", "-n", namespace, "-o", "jsonpath={.status.podIP}"
    )
    admin = admin_client(pod_ip, admin_password)
    wait_for_broker(admin)
    for topic in get_items("kafkatopics.kafka.strimzi.io", namespace):
        ensure_topic(admin, topic)
        mark_ready(
            "kafkatopic",
            topic["metadata"]["name"],
            namespace,
            {"topicName": topic["spec"].get("topicName") or topic["metadata"]["name"]},
        )
    for user in get_items("kafkausers.kafka.strimzi.io", namespace):
        ensure_user(admin, user, namespace)
        mark_ready(
            "kafkauser",
            user["metadata"]["name"],
            namespace,
            {"username": user["metadata"]["name"], "secret": user["metadata"]["name"]},
        )
    mark_ready("kafkanodepool", pools[0]["metadata"]["name"], namespace)
    mark_ready("kafka", name, namespace)
    print(f"local Kafka for {namespace}/{name} ready: {statefulset}-0 ({pod_ip})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--image", required=True)
    args = parser.parse_args()
    try:
        run(args.namespace, args.image)
    except OperatorError as error:
        sys.exit(f"local Kafka operator: {error}")


if __name__ == "__main__":
    main()
