#!/usr/bin/env bash
# A throwaway PKI for the one-node cluster: a CA, the API server's serving certificate, client
# certificates of every component and of the admin, the service-account signing key, and a
# kubeconfig per client. Written once per cluster into $STATE/pki (removed by `down`).
source "$(dirname "$0")/lib.sh"
D=$STATE/pki
mkdir -p "$D" && cd "$D"
NODE=$(node_name) NODE_IP=$(node_ip)

openssl genrsa -out ca.key 2048 2>/dev/null
openssl req -x509 -new -key ca.key -subj "/CN=beatlytica-local-ca" -days 365 -out ca.crt
openssl genrsa -out sa.key 2048 2>/dev/null && openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null

cert() { # <name> <CN> <O or ""> <subjectAltName or ""> [extendedKeyUsage]
  local n=$1 cn=$2 o=$3 san=$4 eku=${5:-clientAuth}
  openssl genrsa -out "$n.key" 2048 2>/dev/null
  openssl req -new -key "$n.key" -subj "/CN=$cn${o:+/O=$o}" -out "$n.csr"
  { echo "basicConstraints=CA:FALSE"; echo "keyUsage=digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"; [ -z "$san" ] || echo "subjectAltName=$san"; } > "$n.ext"
  openssl x509 -req -in "$n.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 \
    -extfile "$n.ext" -out "$n.crt" 2>/dev/null
  rm -f "$n.csr" "$n.ext"
}
svc=DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
cert apiserver kube-apiserver "" "DNS:localhost,$svc,IP:127.0.0.1,IP:$API_SERVICE_IP,IP:$NODE_IP" serverAuth
cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters ""
cert admin beatlytica-admin system:masters ""
cert controller-manager system:kube-controller-manager "" ""
cert scheduler system:kube-scheduler "" ""
cert kubelet "system:node:$NODE" system:nodes ""
cert kubelet-serving "system:node:$NODE" system:nodes "DNS:$NODE,DNS:localhost,IP:127.0.0.1,IP:$NODE_IP" serverAuth
cert kube-proxy system:kube-proxy "" ""

kubeconfig() { # <file> <cert name>
  cat > "$1" <<KC
apiVersion: v1
kind: Config
clusters:
- name: beatlytica-local
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $(base64 -w0 ca.crt)
users:
- name: $2
  user:
    client-certificate-data: $(base64 -w0 "$2.crt")
    client-key-data: $(base64 -w0 "$2.key")
contexts:
- name: beatlytica-local
  context: {cluster: beatlytica-local, user: $2}
current-context: beatlytica-local
KC
  chmod 600 "$1"
}
for n in controller-manager scheduler kubelet kube-proxy; do kubeconfig "$D/$n.kubeconfig" "$n"; done
kubeconfig "$KUBECONFIG_ADMIN" admin
