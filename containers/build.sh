#!/usr/bin/env bash
# Build the fedhex-hpc container images: the Docker image from containers/Dockerfile, then the
# Apptainer image (SIF) from containers/fedhex.def. The tag is the package version in
# pyproject.toml, so the image and the pinned stack it installs always agree.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: containers/build.sh [--push] [--no-sif | --sif-only] [-o SIF]

Builds REGISTRY/fedhex-hpc:VERSION with Docker (VERSION from pyproject.toml), then
fedhex-hpc_VERSION.sif with Apptainer (>= 1.2) from containers/fedhex.def.

  --push       push the Docker image to REGISTRY after building it
  --no-sif     build the Docker image only
  --sif-only   build only the SIF, pulling REGISTRY/fedhex-hpc:VERSION from the registry
               (pushed earlier with --push): for a cluster login node without Docker
  -o SIF       where to write the SIF [fedhex-hpc_VERSION.sif in the repository root]
  -h, --help   show this text

Environment:
  FEDHEX_REGISTRY  image registry/namespace, e.g. ghcr.io/ORG [localhost]
  FEDHEX_CUDA_CC   compute capabilities for Horovod's CUDA kernels [Dockerfile: 60,70,80,90]
EOF
}

die() { printf 'build.sh: error: %s\n' "$*" >&2; exit 2; }

push=0 docker_build=1 sif_build=1 sif=""
while [[ $# -gt 0 ]]; do
    case $1 in
        --push) push=1 ;;
        --no-sif) sif_build=0 ;;
        --sif-only) docker_build=0 ;;
        -o) [[ $# -ge 2 ]] || die "-o needs a file name"; sif=$2; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
    shift
done
[[ $docker_build -eq 1 || $sif_build -eq 1 ]] || die "--no-sif and --sif-only leave nothing to build"
[[ $docker_build -eq 1 || $push -eq 0 ]] || die "--push needs the Docker build (drop --sif-only)"
[[ -z "$sif" || $sif == /* ]] || sif=$PWD/$sif

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
version=$(sed -n '/^version *= *"/{s/^version *= *"\([^"]*\)".*/\1/p;q;}' pyproject.toml)
[[ -n "$version" ]] || die "no version = \"...\" line in $root/pyproject.toml"
registry=${FEDHEX_REGISTRY:-localhost}
image=$registry/fedhex-hpc:$version
sif=${sif:-fedhex-hpc_${version}.sif}

# Check every tool before the (long) builds start.
if [[ $docker_build -eq 1 ]]; then
    command -v docker >/dev/null || die "docker is not on PATH (install Docker, or use --sif-only)"
    docker info >/dev/null 2>&1 || die "the Docker daemon is not reachable (docker info failed)"
fi
if [[ $push -eq 1 || $docker_build -eq 0 ]]; then
    [[ $registry != localhost ]] || die "set FEDHEX_REGISTRY to a registry you can push to and pull from"
fi
if [[ $sif_build -eq 1 ]]; then
    command -v apptainer >/dev/null || die "apptainer is not on PATH (install Apptainer >= 1.2, or use --no-sif)"
    apptainer_version=$(apptainer --version | sed -n 's/^apptainer version \([0-9]*\.[0-9]*\).*/\1/p')
    [[ -n "$apptainer_version" ]] || die "cannot read the Apptainer version from: $(apptainer --version)"
    IFS=. read -r major minor <<<"$apptainer_version"
    (( major > 1 || (major == 1 && minor >= 2) )) \
        || die "Apptainer $apptainer_version is too old: fedhex.def needs >= 1.2 (--build-arg)"
fi

if [[ $docker_build -eq 1 ]]; then
    echo "building $image"
    build_args=(--build-arg "FEDHEX_VERSION=$version")
    [[ -z "${FEDHEX_CUDA_CC:-}" ]] || build_args+=(--build-arg "HOROVOD_BUILD_CUDA_CC_LIST=$FEDHEX_CUDA_CC")
    # The context is only what the Dockerfile copies (not .venv, runs/, ...), sent as a tar stream.
    tar -c --exclude=__pycache__ containers/Dockerfile pyproject.toml README.md fedhex_hpc \
        | docker build -f containers/Dockerfile "${build_args[@]}" -t "$image" -
    if [[ $push -eq 1 ]]; then
        echo "pushing $image"
        docker push "$image"
    fi
fi

if [[ $sif_build -eq 1 ]]; then
    def=containers/fedhex.def
    if [[ $docker_build -eq 0 ]]; then
        # Same definition, with the image pulled from the registry instead of the local daemon.
        tmp=$(mktemp -d)
        trap 'rm -rf "$tmp"' EXIT
        sed '1s/^Bootstrap: docker-daemon$/Bootstrap: docker/' "$def" >"$tmp/fedhex.def"
        def=$tmp/fedhex.def
    fi
    echo "building $sif from $image"
    apptainer build --build-arg "REGISTRY=$registry" --build-arg "VERSION=$version" "$sif" "$def"
    echo "done: $sif (try: apptainer test $sif; apptainer exec --nv $sif fedhex --help)"
fi
