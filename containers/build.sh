#!/usr/bin/env bash
# Build the fedhex-hpc container images: the Docker image from containers/Dockerfile (GPU, or with
# --cpu on a debootstrapped Debian base), then the Apptainer image (SIF) from containers/fedhex.def.
# The tag is the package version in pyproject.toml, so the image and the pinned stack it installs
# always agree.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: containers/build.sh [--cpu] [--engine docker|podman] [--push] [--no-sif | --sif-only] [-o SIF]

Builds REGISTRY/fedhex-hpc:VERSION with Docker (VERSION from pyproject.toml), then
fedhex-hpc_VERSION.sif with Apptainer (>= 1.2) from containers/fedhex.def.

  --cpu        the CPU variant, tagged VERSION-cpu: the same Dockerfile on Debian 12, whose base
               image is made with debootstrap (as root) and cached as a tarball
  --engine E   build with docker or podman [docker]; podman also keeps pip's cache (downloads
               and the Horovod wheel) in the cache folder, takes wheels from its
               wheels-gpu/wheels-cpu folder, and hands the image to Apptainer as a docker-archive
  --push       push the Docker image to REGISTRY after building it
  --no-sif     build the Docker image only
  --sif-only   build only the SIF, pulling REGISTRY/fedhex-hpc:VERSION from the registry
               (pushed earlier with --push): for a cluster login node without Docker
  -o SIF       where to write the SIF [fedhex-hpc_VERSION.sif in the repository root]
  -h, --help   show this text

Environment:
  FEDHEX_REGISTRY  image registry/namespace, e.g. ghcr.io/ORG [localhost]
  FEDHEX_CUDA_CC   compute capabilities for Horovod's CUDA kernels [Dockerfile: 60,70,80,90]
  FEDHEX_CACHE     cache folder [${XDG_CACHE_HOME:-~/.cache}/fedhex-containers]
  FEDHEX_DEBIAN_MIRROR  Debian archive for the CPU base [http://deb.debian.org/debian]
  PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_TRUSTED_HOST
                   passed to pip in the build when set; PIP_CERT (a CA bundle file) too, as
                   the build secret pip_cert
EOF
}

die() { printf 'build.sh: error: %s\n' "$*" >&2; exit 2; }

push=0 docker_build=1 sif_build=1 sif="" cpu=0 engine=docker
while [[ $# -gt 0 ]]; do
    case $1 in
        --cpu) cpu=1 ;;
        --engine)
            [[ $# -ge 2 ]] || die "--engine needs docker or podman"
            [[ $2 == docker || $2 == podman ]] || die "--engine $2: expected docker or podman"
            engine=$2; shift ;;
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
variant=gpu tag=$version
[[ $cpu -eq 0 ]] || variant=cpu tag=$version-cpu
image=$registry/fedhex-hpc:$tag
sif=${sif:-fedhex-hpc_${tag}.sif}
cache=${FEDHEX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fedhex-containers}
base_tarball=$cache/debian-bookworm-minbase.tar
base_image=localhost/fedhex-base:debian-bookworm-minbase

# Check every tool before the (long) builds start.
if [[ $docker_build -eq 1 ]]; then
    command -v "$engine" >/dev/null || die "$engine is not on PATH (install it, or use --sif-only)"
    "$engine" info >/dev/null 2>&1 || die "$engine cannot reach its engine ($engine info failed)"
    if [[ $cpu -eq 1 && ! -f $base_tarball ]]; then
        command -v debootstrap >/dev/null || die "--cpu needs debootstrap on PATH for the Debian base"
        [[ $(id -u) -eq 0 ]] || die "--cpu: debootstrap of the Debian base needs root"
    fi
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

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The CPU variant's base: Debian 12 (minbase) from debootstrap, kept as a tarball in the cache and
# imported into the engine's storage when it is not there yet.
debian_base() {
    "$engine" image inspect "$base_image" >/dev/null 2>&1 && return
    if [[ ! -f $base_tarball ]]; then
        local mirror=${FEDHEX_DEBIAN_MIRROR:-http://deb.debian.org/debian}
        echo "debootstrap: Debian bookworm (minbase) from $mirror"
        mkdir -p "$cache"
        debootstrap --variant=minbase bookworm "$tmp/rootfs" "$mirror" >"$tmp/debootstrap.log" 2>&1 \
            || { tail -n 20 "$tmp/debootstrap.log" >&2; die "debootstrap failed (log above)"; }
        tar -C "$tmp/rootfs" -c . >"$base_tarball.part"
        mv "$base_tarball.part" "$base_tarball"
        rm -rf "$tmp/rootfs"
    fi
    "$engine" import "$base_tarball" "$base_image" >/dev/null
}

if [[ $docker_build -eq 1 ]]; then
    build_args=(--build-arg "FEDHEX_VERSION=$version")
    [[ -z "${FEDHEX_CUDA_CC:-}" ]] || build_args+=(--build-arg "HOROVOD_BUILD_CUDA_CC_LIST=$FEDHEX_CUDA_CC")
    if [[ $cpu -eq 1 ]]; then
        debian_base
        build_args+=(--build-arg "BASE_IMAGE=$base_image" --build-arg "RUNTIME_IMAGE=$base_image"
            --build-arg PYTHON=python3.11 --build-arg TF_EXTRA= --build-arg HOROVOD_GPU_OPERATIONS=
            --build-arg VARIANT=cpu)
    fi
    for name in PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_TRUSTED_HOST; do
        [[ -z "${!name:-}" ]] || build_args+=(--build-arg "$name=${!name}")
    done
    if [[ -n "${PIP_CERT:-}" ]]; then
        [[ -f $PIP_CERT ]] || die "PIP_CERT=$PIP_CERT is not a file"
        build_args+=(--secret "id=pip_cert,src=$PIP_CERT")
    fi
    if [[ $engine == podman ]]; then
        # Docker's format keeps SHELL; pip's cache and a wheelhouse of this variant are bound in.
        mkdir -p "$cache/pip-$variant" "$cache/wheels-$variant"
        build_args+=(--format docker --network host --volume "$cache/pip-$variant:/root/.cache/pip"
            --volume "$cache/wheels-$variant:/wheelhouse")
    fi
    # The context is only what the Dockerfile copies (not .venv, runs/, ...), sent as a tar stream.
    context=(--exclude=__pycache__ containers/Dockerfile pyproject.toml README.md fedhex_hpc)
    # The image is labelled with a hash of the context's contents and of the build arguments:
    # when the image already has it, there is nothing to rebuild.
    context_id=$({ printf '%s\n' "${build_args[@]}"
        tar -c --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner "${context[@]}"
    } | sha256sum | cut -c1-16)
    built_id=$("$engine" image inspect --format '{{ index .Config.Labels "fedhex.context" }}' \
        "$image" 2>/dev/null || true)
    if [[ $built_id == "$context_id" ]]; then
        echo "$image is up to date (context $context_id)"
    else
        echo "building $image"
        tar -c "${context[@]}" | "$engine" build -f containers/Dockerfile "${build_args[@]}" \
            --label "fedhex.context=$context_id" -t "$image" -
    fi
    if [[ $push -eq 1 ]]; then
        echo "pushing $image"
        "$engine" push "$image"
    fi
fi

if [[ $sif_build -eq 1 ]]; then
    def=containers/fedhex.def
    if [[ $docker_build -eq 0 ]]; then
        # Same definition, with the image pulled from the registry instead of the local daemon.
        sed '1s/^Bootstrap: docker-daemon$/Bootstrap: docker/' "$def" >"$tmp/fedhex.def"
        def=$tmp/fedhex.def
    elif [[ $engine == podman ]]; then
        # No daemon to read from: the image saved as a docker-archive, the same as
        # apptainer build fedhex.sif docker-archive://fedhex.tar
        "$engine" save --format docker-archive -o "$tmp/fedhex.tar" "$image"
        sed -e '1s/^Bootstrap: docker-daemon$/Bootstrap: docker-archive/' \
            -e "2s|^From: .*|From: $tmp/fedhex.tar|" "$def" >"$tmp/fedhex.def"
        def=$tmp/fedhex.def
    fi
    echo "building $sif from $image"
    apptainer build --build-arg "REGISTRY=$registry" --build-arg "VERSION=$tag" "$sif" "$def"
    echo "done: $sif (try: apptainer test $sif; apptainer exec --nv $sif fedhex --help)"
fi
