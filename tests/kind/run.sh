#!/usr/bin/env bash
# The kind walk-through, end to end, on a machine with Docker (README "Try it on kind"):
# create a kind cluster (deploy/kind/cluster.yaml), build the image (deploy/Dockerfile) and load
# it into the nodes, start an in-cluster S3 (deploy/kind/seaweedfs.yaml) with the sample data,
# `helm install` charts/kubetrain, apply the binary and multiclass samples (deploy/examples/),
# wait for both to succeed and print where their models went.
#
# NOT RUN in this repository's CI: its machines have no Docker engine and can pull no images.
# It is kept correct by construction: shellcheck-clean, every manifest it applies is checked by
# tests/e2e/tests/chart_render.rs against a real API server, and the same chart and samples are
# installed and trained for real in chart_install.rs (with the process node standing in for kubelet).
#
# Needs: docker, kind (>= 0.27), kubectl, helm (>= 3.8). Usage:
#   tests/kind/run.sh            # create (or reuse) the cluster `kubetrain` and run through
#   KEEP=0 tests/kind/run.sh     # ... and delete the cluster at the end
# Variables: CLUSTER (kind cluster name, default kubetrain), IMAGE (default
# kubetrain:kind-dev), NAMESPACE for the runs (default ml), TIMEOUT per wait (default 600s).
set -euo pipefail
cd "$(dirname "$0")/../.."

CLUSTER=${CLUSTER:-kubetrain}
IMAGE=${IMAGE:-kubetrain:kind-dev}
NAMESPACE=${NAMESPACE:-ml}
TIMEOUT=${TIMEOUT:-600s}
KEEP=${KEEP:-1}
BUCKET=kubetrain-samples
STORAGE_NS=kubetrain-storage

step() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

for tool in docker kind kubectl helm openssl; do
  command -v "$tool" >/dev/null || die "$tool is not installed (this script needs docker, kind, kubectl, helm and openssl)"
done
docker info >/dev/null 2>&1 || die "cannot reach the Docker engine (is it running, may this user use it?)"

if [[ $KEEP == 0 ]]; then
  trap 'kind delete cluster --name "$CLUSTER"' EXIT
fi

step "kind cluster $CLUSTER"
if kind get clusters | grep -qx "$CLUSTER"; then
  echo "reusing the existing cluster $CLUSTER" >&2
else
  kind create cluster --name "$CLUSTER" --config deploy/kind/cluster.yaml --wait 120s
fi
kubectl config use-context "kind-$CLUSTER" >/dev/null

step "image $IMAGE (deploy/Dockerfile), loaded into the nodes"
DOCKER_BUILDKIT=1 docker build -f deploy/Dockerfile -t "$IMAGE" .
kind load docker-image "$IMAGE" --name "$CLUSTER"

step "in-cluster S3 (SeaweedFS) with generated credentials"
access_key=kubetrain-$(openssl rand -hex 4)
secret_key=$(openssl rand -hex 20)
kubectl create namespace "$STORAGE_NS" --dry-run=client -o yaml | kubectl apply -f -
s3_config=$(printf '{"identities": [{"name": "kubetrain", "credentials": [{"accessKey": "%s", "secretKey": "%s"}], "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}' "$access_key" "$secret_key")
kubectl -n "$STORAGE_NS" create secret generic seaweedfs-s3-config \
  --from-literal=s3.json="$s3_config" --dry-run=client -o yaml | kubectl apply -f -
kubectl apply -f deploy/kind/seaweedfs.yaml
# A new secret needs a new pod (the config is read at start).
kubectl -n "$STORAGE_NS" rollout restart deployment/seaweedfs
kubectl -n "$STORAGE_NS" rollout status deployment/seaweedfs --timeout="$TIMEOUT"

step "sample data into s3://$BUCKET/"
pod=$(kubectl -n "$STORAGE_NS" get pods -l app.kubernetes.io/name=seaweedfs \
  --field-selector=status.phase=Running -o jsonpath='{.items[0].metadata.name}')
upload() { # local-file bucket-folder name
  kubectl -n "$STORAGE_NS" exec -i "$pod" -- sh -c "mkdir -p /tmp/upload/$2 && cat >/tmp/upload/$2/$3" <"$1"
  kubectl -n "$STORAGE_NS" exec "$pod" -- \
    weed filer.copy "/tmp/upload/$2/$3" "http://localhost:8888/buckets/$BUCKET/$2/"
}
upload tests/data/breast_cancer_train.csv breast-cancer train.csv
upload tests/data/breast_cancer_test.csv breast-cancer test.csv
upload tests/data/digits_train.csv digits train.csv

# Namespaces enforce the restricted Pod Security Standard: every pod of the chart and every
# training pod must meet it.
restricted_namespace() {
  kubectl create namespace "$1" --dry-run=client -o yaml | kubectl apply -f -
  kubectl label namespace "$1" --overwrite pod-security.kubernetes.io/enforce=restricted
}

step "helm install kubetrain (charts/kubetrain)"
restricted_namespace kubetrain-system
helm upgrade --install kubetrain charts/kubetrain \
  --namespace kubetrain-system \
  --set image.repository="${IMAGE%:*}" --set image.tag="${IMAGE##*:}" \
  --set image.pullPolicy=IfNotPresent \
  --set storage.endpoint="http://seaweedfs.$STORAGE_NS.svc:8333" \
  --set storage.region=us-east-1 \
  --wait --timeout "$TIMEOUT"
kubectl -n kubetrain-system get deployments,pods

step "runs in namespace $NAMESPACE: deploy/examples/logistic-regression-{binary,multiclass}.yaml"
restricted_namespace "$NAMESPACE"
kubectl -n "$NAMESPACE" create secret generic kubetrain-s3 \
  --from-literal=AWS_ACCESS_KEY_ID="$access_key" \
  --from-literal=AWS_SECRET_ACCESS_KEY="$secret_key" \
  --dry-run=client -o yaml | kubectl apply -f -
# The spec of a run is immutable: start from fresh runs on a re-run.
kubectl -n "$NAMESPACE" delete trainingruns breast-cancer digits --ignore-not-found --wait
kubectl -n "$NAMESPACE" apply \
  -f deploy/examples/logistic-regression-binary.yaml \
  -f deploy/examples/logistic-regression-multiclass.yaml

step "waiting for Succeeded"
for run in breast-cancer digits; do
  if ! kubectl -n "$NAMESPACE" wait "trainingrun/$run" \
    --for=jsonpath='{.status.phase}'=Succeeded --timeout="$TIMEOUT"; then
    kubectl -n "$NAMESPACE" get trainingrun "$run" -o yaml >&2
    die "run $run did not succeed within $TIMEOUT"
  fi
done
kubectl -n "$NAMESPACE" get trainingruns -o wide

step "models"
for run in breast-cancer digits; do
  uri=$(kubectl -n "$NAMESPACE" get trainingrun "$run" -o jsonpath='{.status.model.uri}')
  accuracy=$(kubectl -n "$NAMESPACE" get trainingrun "$run" -o jsonpath='{.status.metrics.accuracy}')
  printf '%s\t%s\taccuracy %s\n' "$run" "$uri" "$accuracy"
done
