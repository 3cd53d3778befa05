#!/usr/bin/env bash
# Print what a student (or a teaching assistant) needs to see when the kind lab is not ready:
# nodes, pods, the Gateway and routes with their conditions, Envoy Gateway's recent log lines.
# It only reads; it changes nothing.
#
# usage: cluster/kind/diagnose.sh [LAB_HOME]   (default: $TRAFFICLAB_HOME, else ./.lab)
set -euo pipefail

home="${1:-${TRAFFICLAB_HOME:-.lab}}"
kubeconfig="${home}/kubeconfig"
if [[ ! -f "${kubeconfig}" ]]; then
  echo "no kubeconfig at ${kubeconfig}: is the kind lab up? ('trafficlab up --backend kind')" >&2
  exit 1
fi

k() {
  kubectl --kubeconfig "${kubeconfig}" "$@"
}

section() {
  printf '\n== %s ==\n' "$1"
}

section "nodes"
k get nodes -o wide || true
section "pods (all namespaces)"
k get pods -A -o wide || true
section "gateway classes and gateways"
k get gatewayclasses || true
k get gateways -A || true
section "routes"
k get httproutes -A -o wide || true
section "HTTPRoute conditions"
k get httproutes -A -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name} generation {.metadata.generation}:{"\n"}{range .status.parents[*].conditions[*]}  {.type}={.status} ({.reason}) observedGeneration {.observedGeneration}{"\n"}{end}{end}' || true
section "envoy services"
k get services -n envoy-gateway-system -o wide || true
section "recent events"
k get events -A --sort-by=.lastTimestamp | tail -n 25 || true
section "envoy-gateway log (last 40 lines)"
k logs -n envoy-gateway-system deployment/envoy-gateway --tail=40 || true
