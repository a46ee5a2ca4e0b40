#!/usr/bin/env bash
# Write a kustomize overlay of deploy/k8s that pins every `churnops` image to one digest.
#
#   tools/k8s_release_overlay.sh OUT_DIR IMAGE_NAME DIGEST
#   kubectl apply -k OUT_DIR
#
# The release workflow's deploy step: the API Deployment and the CronJobs (score, monitor,
# pipeline run) move to the image the release just pushed, by digest (a tag can be
# re-pushed; a digest cannot), and deploy/k8s itself stays untouched. Checked by
# tests/deploy/test_workflows.py, which renders the overlay with `kubectl kustomize`.
set -euo pipefail
if [ "$#" -ne 3 ]; then
  echo "usage: $0 OUT_DIR IMAGE_NAME DIGEST" >&2
  exit 2
fi
out=$1 name=$2 digest=$3
case "$digest" in
  sha256:*) ;;
  *) echo "$0: DIGEST must be sha256:..., got '$digest'" >&2; exit 2 ;;
esac
root="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$out"
base="$(realpath --relative-to="$out" "$root/deploy/k8s")"
cat > "$out/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $base
images:
  - name: churnops
    newName: $name
    digest: $digest
YAML
