#!/usr/bin/env bash
#SBATCH --job-name=fedhex-lhco
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=2
#SBATCH --gpus-per-task=1
#SBATCH --cpus-per-task=4
#SBATCH --time=04:00:00
#SBATCH --signal=B:USR1@300
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=%x_%j.out
#
# Train the ANODE/CATHODE-style background flow on the LHC Olympics R&D data:
# convert the high-level features file to a dataset (once), train a conditional
# MAF of the jet features given mjj on the sidebands with one rank per task
# (Horovod), evaluate it, and sample it at the signal-region mjj values.
#
#   sbatch jobs/train_lhco.sh                 on a Slurm cluster (from any folder)
#   sbatch --gpus-per-task=0 jobs/train_lhco.sh   on a cluster without GPUs
#   bash jobs/train_lhco.sh                   on a workstation: one process
#
# Relative paths below are taken from the folder sbatch was called in; the
# default config is the one bundled with the package, so the script needs no
# checkout beside it (Slurm runs a copy of it from its spool folder).
#
# Settings (environment variables, defaults in brackets):
#   FEDHEX_DATA          events_anomalydetection_v2.features.h5; unset on a
#                        workstation: a small SYNTHETIC file in that layout is generated
#   FEDHEX_DATASET       dataset folder [<FEDHEX_WORK>/dataset]
#   FEDHEX_RUN_DIR       run folder [<FEDHEX_WORK>/run]
#   FEDHEX_WORK          working folder [runs/lhco]
#   FEDHEX_CONFIG        training config: a YAML file or a bundled name [lhco/anode]
#   FEDHEX_EPOCHS        maximum epochs [100]
#   FEDHEX_SET           extra `--set` overrides, space separated (e.g. "train.batch_size=512")
#   FEDHEX_IMAGE         container image; when set every step runs in it: a .sif file
#                        (apptainer) or an image name (podman, docker)
#   FEDHEX_CONTAINER     the runtime for FEDHEX_IMAGE: apptainer, podman or docker
#                        [apptainer]. apptainer: `apptainer exec --nv`; podman and docker:
#                        `run --rm` as the calling user with host network and IPC (as
#                        podman-hpc does), the current, work, dataset, run and data folders
#                        bound at the same paths, GPUs passed through when nvidia-smi is
#                        here (podman: CDI `--device nvidia.com/gpu=all`; docker: `--gpus all`)
#   FEDHEX_CONTAINER_OPTS  extra options of `podman run`/`docker run`, space separated
#   FEDHEX_MAX_RESTARTS  requeues after a time limit or preemption before giving up [3]
#   FEDHEX_SYNTHETIC_EVENTS  events in the generated sample [60000]
#
# Exit status: 0 done; the training's own status otherwise. On USR1/TERM the
# training checkpoints at the current step and exits 75; this script then
# requeues the job (at most FEDHEX_MAX_RESTARTS times) and the new start resumes.
set -euo pipefail

PREEMPTED=75

work=${FEDHEX_WORK:-runs/lhco}
dataset=${FEDHEX_DATASET:-$work/dataset}
run_dir=${FEDHEX_RUN_DIR:-$work/run}
config=${FEDHEX_CONFIG:-lhco/anode}
epochs=${FEDHEX_EPOCHS:-100}
max_restarts=${FEDHEX_MAX_RESTARTS:-3}
restarts=${SLURM_RESTART_COUNT:-0}

say() { printf '[train_lhco %(%H:%M:%S)T] %s\n' -1 "$*"; }
die() { say "error: $*" >&2; exit 2; }

# How a Python step runs: in the image or the installed environment; with one
# rank per task under Slurm (srun, one container per rank), as one process otherwise.
runtime=${FEDHEX_CONTAINER:-apptainer}
container=()
if [[ -n "${FEDHEX_IMAGE:-}" ]]; then
    case $runtime in
        apptainer | podman | docker) ;;
        *) die "FEDHEX_CONTAINER=$runtime: expected apptainer, podman or docker" ;;
    esac
    command -v "$runtime" >/dev/null || die "FEDHEX_CONTAINER=$runtime is not on PATH"
    if [[ $runtime == apptainer ]]; then
        [[ -f "$FEDHEX_IMAGE" ]] || die "FEDHEX_IMAGE=$FEDHEX_IMAGE does not exist"
        container=(apptainer exec --nv "$FEDHEX_IMAGE")
    else
        "$runtime" image inspect "$FEDHEX_IMAGE" >/dev/null 2>&1 \
            || die "FEDHEX_IMAGE=$FEDHEX_IMAGE is not an image of $runtime ($runtime images lists them)"
    fi
elif [[ -n "${FEDHEX_CONTAINER:-}" ]]; then
    die "FEDHEX_CONTAINER=$runtime is set without FEDHEX_IMAGE"
else
    command -v fedhex >/dev/null || die "fedhex is not on PATH (activate the environment, or set FEDHEX_IMAGE)"
fi
parallel=()
if [[ -n "${SLURM_JOB_ID:-}" ]]; then
    parallel=(srun --mpi=pmix --kill-on-bad-exit=1)
fi

# Check every input before spending the allocation.
[[ "$config" != *.yaml || -f "$config" ]] || die "FEDHEX_CONFIG=$config does not exist"
if [[ ! -f "$dataset/manifest.json" ]]; then
    if [[ -n "${FEDHEX_DATA:-}" ]]; then
        [[ -f "$FEDHEX_DATA" ]] || die "FEDHEX_DATA=$FEDHEX_DATA does not exist"
    elif [[ -n "${SLURM_JOB_ID:-}" ]]; then
        die "set FEDHEX_DATA to events_anomalydetection_v2.features.h5 (fedhex data fetch lhco)"
    fi
fi
mkdir -p "$work"

# podman/docker see only the folders bound in: each folder the steps read or write, at
# the same path, and the calling user's ids so that what they write belongs to the caller.
if [[ -n "${FEDHEX_IMAGE:-}" && $runtime != apptainer ]]; then
    mkdir -p "$(dirname "$dataset")" "$(dirname "$run_dir")"
    declare -A bound=()
    binds=()
    for folder in "$PWD" "$work" "$(dirname "$dataset")" "$(dirname "$run_dir")" \
        ${FEDHEX_DATA:+"$(dirname "$FEDHEX_DATA")"} "$(dirname "$config")"; do
        [[ -d $folder ]] || continue
        folder=$(cd "$folder" && pwd -P)
        [[ -n ${bound[$folder]:-} ]] || binds+=(-v "$folder:$folder")
        bound[$folder]=1
    done
    read -ra extra_opts <<< "${FEDHEX_CONTAINER_OPTS:-}"
    # Under srun every rank starts its own container, which needs the rank's Slurm and
    # PMIx variables (podman takes NAME* patterns).
    [[ $runtime == docker ]] || extra_opts+=(-e 'SLURM_*' -e 'PMIX_*' -e 'OMPI_*')
    gpus=()
    if command -v nvidia-smi >/dev/null; then
        if [[ $runtime == podman ]]; then gpus=(--device nvidia.com/gpu=all); else gpus=(--gpus all); fi
    fi
    container=("$runtime" run --rm --network host --ipc host --user "$(id -u):$(id -g)"
        "${binds[@]}" -w "$(pwd -P)" "${gpus[@]}" "${extra_opts[@]}" "$FEDHEX_IMAGE")
fi
if [[ -n "${FEDHEX_IMAGE:-}" ]]; then
    "${container[@]}" test -w "$work" 2>/dev/null \
        || die "FEDHEX_WORK=$work is not writable inside the container (FEDHEX_CONTAINER=$runtime)"
fi
fedhex=("${container[@]}" fedhex)

if [[ ! -f "$dataset/manifest.json" ]]; then
    if [[ -z "${FEDHEX_DATA:-}" ]]; then
        say "*****************************************************************"
        say "* FEDHEX_DATA is not set: generating a small SYNTHETIC sample in *"
        say "* the LHC Olympics layout. The results are NOT physics results.  *"
        say "*****************************************************************"
        "${fedhex[@]}" data generate features -o "$work/synthetic" \
            -n "${FEDHEX_SYNTHETIC_EVENTS:-60000}" --seed 1
        FEDHEX_DATA=$work/synthetic/events_anomalydetection_v2.features.h5
    fi
    say "converting $FEDHEX_DATA into $dataset"
    "${fedhex[@]}" data convert lhco-features "$FEDHEX_DATA" -o "$dataset"
fi

train_args=(train "$config" --set "data.path=$dataset" --set "train.max_epochs=$epochs" --no-evaluate)
read -ra overrides <<< "${FEDHEX_SET:-}"   # split on spaces, no glob expansion
for item in "${overrides[@]}"; do train_args+=(--set "$item"); done
if [[ -f "$run_dir/config.yaml" ]]; then
    say "resuming $run_dir (restart $restarts of at most $max_restarts)"
    train_args+=(--resume "$run_dir")
else
    train_args+=(--run-dir "$run_dir")
fi

# Run training in the background so this shell can pass Slurm's warning signal on.
step_pid=""
forward() { [[ -n "$step_pid" ]] && kill -"$1" "$step_pid" 2>/dev/null || true; }
trap 'say "USR1: asking training to checkpoint"; forward USR1' USR1
trap 'say "TERM: asking training to checkpoint"; forward TERM' TERM
say "training: ${parallel[*]} ${fedhex[*]} ${train_args[*]}"
"${parallel[@]}" "${fedhex[@]}" "${train_args[@]}" &
step_pid=$!
status=0
while :; do
    wait "$step_pid" && status=0 || status=$?
    kill -0 "$step_pid" 2>/dev/null || break   # wait returned for a signal: keep waiting
done
trap - USR1 TERM

# srun --kill-on-bad-exit may report a signal instead of 75 when the first rank
# to exit takes the others down; the run's status says what happened.
if [[ $status -ne 0 ]] && grep -q '"state": "preempted"' "$run_dir/status.json" 2>/dev/null; then
    status=$PREEMPTED
fi
if [[ $status -eq $PREEMPTED ]]; then
    if [[ -n "${SLURM_JOB_ID:-}" && $restarts -lt $max_restarts ]]; then
        say "checkpoint written; requeueing job $SLURM_JOB_ID"
        scontrol requeue "$SLURM_JOB_ID"
        exit 0
    fi
    say "checkpoint written; not requeued (restart $restarts of $max_restarts): resubmit to resume"
    exit "$status"
fi
[[ $status -eq 0 ]] || { say "training failed with status $status"; exit "$status"; }

say "evaluating $run_dir"
"${fedhex[@]}" evaluate "$run_dir"
say "sampling at the signal-region mjj values of the test split"
"${fedhex[@]}" sample "$run_dir" --cond-dataset "$dataset" --region signal \
    -o "$run_dir/samples_signal_region.h5"
say "done: model, history, metrics and plots in $run_dir"
