#!/usr/bin/env bash
# Install the tools that tests/deploy needs:
#   promtool             Debian package "prometheus" (Debian 12 has no separate promtool package)
#   kustomize v5         kubectl's built-in one if present, else a standalone kustomize built
#                        from the Go module proxy (Debian 12's kubernetes-client is 1.20 and
#                        embeds kustomize v2, which cannot render these manifests)
#   kubernetes-validate  PyPI, into the project venv
#   checkov              PyPI, into a venv of its own at <venv>/checkov (checkov pins
#                        packaging<24, pytest>=9 needs packaging>=24: they cannot share a venv);
#                        tests/deploy finds it there
#   ShellCheck           Debian package "shellcheck", lints this script
#   dashboard-linter     Grafana's dashboard linter, built with Go from the module pinned in
#                        scripts/dashboard-linter/ (go.mod + go.sum) into <venv>/bin
#
# Usage:  scripts/install-deploy-tools.sh [VENV]      (VENV defaults to .venv)
# Idempotent: anything already present at a suitable version is left alone; apt-get update
# runs at most once, and only if something has to come from Debian. Meant for root on a fresh
# Debian 12 machine (CI); as another user it uses sudo for the system packages.
set -euo pipefail

VENV="${1:-.venv}"
KUBERNETES_VALIDATE_VERSION="1.37.0"
CHECKOV_VERSION="3.3.30"
KUSTOMIZE_VERSION="v5.5.0"         # kubectl 1.32's kustomize; needs Go >= 1.22.7 to build
KUSTOMIZE_VERSION_GO119="v5.0.3"   # newest v5 whose go.mod accepts Debian 12's Go 1.19
BIN_DIR="${KUSTOMIZE_BIN_DIR:-/usr/local/bin}"   # where a standalone kustomize goes

log() { printf '==> %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

APT_UPDATED=0
apt_install() {
  if [ "$APT_UPDATED" -eq 0 ]; then
    as_root apt-get update
    APT_UPDATED=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
}

# --- promtool ---------------------------------------------------------------------------------
POLICY_RC=/usr/sbin/policy-rc.d
POLICY_CREATED=0
cleanup() {
  if [ "$POLICY_CREATED" -eq 1 ]; then as_root rm -f "$POLICY_RC"; fi
}
trap cleanup EXIT

if command -v promtool >/dev/null 2>&1; then
  log "promtool present: $(promtool --version 2>&1 | head -n 1)"
else
  # Only the binaries are wanted: keep the package scripts from starting a Prometheus server.
  if [ ! -e "$POLICY_RC" ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$POLICY_RC" >/dev/null
    as_root chmod 0755 "$POLICY_RC"
    POLICY_CREATED=1
  fi
  apt_install prometheus
  cleanup
  POLICY_CREATED=0
  log "installed $(promtool --version 2>&1 | head -n 1)"
fi

# --- shellcheck -------------------------------------------------------------------------------
if command -v shellcheck >/dev/null 2>&1; then
  log "shellcheck present: $(shellcheck --version | sed -n 's/^version: //p')"
else
  apt_install shellcheck
fi

# --- kustomize (kubectl kustomize, or standalone) ------------------------------------------------
have_kustomize() {
  local major version
  if command -v kubectl >/dev/null 2>&1; then
    major="$(kubectl version --client -o json 2>/dev/null \
      | sed -n 's/.*"kustomizeVersion": *"v\([0-9][0-9]*\)\..*/\1/p')"
    if [ "${major:-0}" -ge 5 ]; then
      log "kubectl with kustomize v${major} present: $(command -v kubectl)"
      return 0
    fi
  fi
  if command -v kustomize >/dev/null 2>&1; then
    version="$(kustomize version 2>/dev/null || true)"
    case "$version" in
      # a `go install`ed kustomize reports "(devel)"; we only ever install the v5 module
      *v[5-9].* | *"(devel)"*)
        log "standalone kustomize present: $(command -v kustomize) ${version}"
        return 0
        ;;
    esac
  fi
  return 1
}

find_go() {
  if command -v go >/dev/null 2>&1; then
    command -v go
  elif [ -x /usr/local/go/bin/go ]; then
    echo /usr/local/go/bin/go
  elif [ -x /usr/lib/go/bin/go ]; then
    echo /usr/lib/go/bin/go
  fi
}

if ! have_kustomize; then
  GO_BIN="$(find_go)"
  if [ -z "$GO_BIN" ]; then
    apt_install golang-go
    GO_BIN="$(find_go)"
  fi
  GO_MINOR="$("$GO_BIN" env GOVERSION | sed -n 's/^go1\.\([0-9][0-9]*\).*/\1/p')"
  if [ "${GO_MINOR:-0}" -ge 22 ]; then
    WANT="$KUSTOMIZE_VERSION"
  else
    WANT="$KUSTOMIZE_VERSION_GO119"
  fi
  log "building kustomize ${WANT} with $("$GO_BIN" version) (Go module proxy) into ${BIN_DIR}"
  GO_TMP="$(mktemp -d)"
  as_root env GOBIN="$BIN_DIR" GOPATH="$GO_TMP/gopath" GOCACHE="$GO_TMP/cache" \
    GOFLAGS=-modcacherw GOTOOLCHAIN=local \
    "$GO_BIN" install "sigs.k8s.io/kustomize/kustomize/v5@${WANT}"
  as_root rm -rf "$GO_TMP"
  if ! have_kustomize; then
    echo "kustomize installation failed" >&2
    exit 1
  fi
fi

# --- dashboard-linter (Go module, pinned by scripts/dashboard-linter/go.sum) -------------------
LINTER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/dashboard-linter"
LINTER_BIN="$(cd "$(dirname "$VENV")" && pwd)/$(basename "$VENV")/bin/dashboard-linter"
if [ -x "$LINTER_BIN" ]; then
  log "dashboard-linter present: $LINTER_BIN"
else
  GO_BIN="$(find_go)"
  if [ -z "$GO_BIN" ]; then
    apt_install golang-go
    GO_BIN="$(find_go)"
  fi
  log "building dashboard-linter with $("$GO_BIN" version) into ${LINTER_BIN}"
  mkdir -p "$(dirname "$LINTER_BIN")"
  GO_TMP="$(mktemp -d)"
  (cd "$LINTER_DIR" && env GOPATH="$GO_TMP/gopath" GOCACHE="$GO_TMP/cache" GOFLAGS="-modcacherw -mod=readonly" \
    "$GO_BIN" build -o "$LINTER_BIN" github.com/grafana/dashboard-linter)
  rm -rf "$GO_TMP"
fi

# --- Python tools -----------------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtualenv $VENV"
  python3 -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

if ! "$VENV/bin/python" -c 'import yaml' >/dev/null 2>&1; then
  "${PIP[@]}" install --quiet pyyaml
fi
"${PIP[@]}" install --quiet "kubernetes-validate==${KUBERNETES_VALIDATE_VERSION}"
log "kubernetes-validate $("$VENV/bin/kubernetes-validate" --version 2>&1 | tail -n 1)"

CHECKOV_VENV="$VENV/checkov"
if [ "$("$CHECKOV_VENV/bin/checkov" --version 2>/dev/null || true)" != "$CHECKOV_VERSION" ]; then
  log "installing checkov ${CHECKOV_VERSION} into ${CHECKOV_VENV}"
  "$VENV/bin/python" -m venv "$CHECKOV_VENV"
  "$CHECKOV_VENV/bin/python" -m pip --disable-pip-version-check install --quiet \
    "checkov==${CHECKOV_VERSION}"
fi
log "checkov $("$CHECKOV_VENV/bin/checkov" --version)"
log "deploy tools ready"
