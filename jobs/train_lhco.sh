#!/usr/bin/env bash
#SBATCH --job-name=fedhex-lhco
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=2
#SBATCH --gpus-per-task=1
#SBATCH --cpus-per-task=4
#SBATCH --time=08:00:00
#SBATCH --signal=B:USR1@300
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=%x_%j.out
#
# The CATHODE anomaly search on the LHC Olympics R&D data for one seed and one
# injected signal count: prepare the weak-supervision splits -> train the sideband
# flow with one rank per task (Horovod) -> sample the background template -> train
# the classifiers -> evaluate on the labelled test set. Ends with the SIC table
# (summary.md) and plots in the study folder. Each step is skipped when it is done,
# so a requeued job goes on where it stopped; the flow resumes from its checkpoint.
#
#   sbatch jobs/train_lhco.sh                 on a Slurm cluster (from any folder)
#   sbatch --gpus-per-task=0 jobs/train_lhco.sh   on a cluster without GPUs
#   bash jobs/train_lhco.sh                   on a workstation: one process
#
# An S/B scan is a job array over FEDHEX_N_SIGNAL, one study folder per element:
#   sbatch --array=0-5 --export=ALL,FEDHEX_N_SIGNALS="0 300 500 750 1000 1500" jobs/train_lhco.sh
# (or plan the whole study with `fedhex lhco plan lhco_anomaly` and `fedhex submit` it).
#
# Relative paths below are taken from the folder sbatch was called in; the study
# spec is the one bundled with the package, so the script needs no checkout beside
# it (Slurm runs a copy of it from its spool folder).
#
# Settings (environment variables, defaults in brackets):
#   FEDHEX_DATA          events_anomalydetection_v2.features.h5; unset on a
#                        workstation: SYNTHETIC files in the public layouts are generated
#   FEDHEX_EXTRA         events_anomalydetection_qcd_extra_inneronly_features.h5 (with FEDHEX_DATA)
#   FEDHEX_WORK          working folder [runs/lhco]
#   FEDHEX_STUDY         study folder [<FEDHEX_WORK>/study, or .../study-n<N> in an array]
#   FEDHEX_SPEC          study spec: a YAML file or a bundled name [lhco_anomaly]
#   FEDHEX_SMALL         1: the spec's small variant [0]
#   FEDHEX_SEED          seed of the injection, splits and trainings [1]
#   FEDHEX_N_SIGNAL      signal events injected [1000]; in an array the element's
#                        entry of FEDHEX_N_SIGNALS (space separated) instead
#   FEDHEX_CLASSIFIERS   comma separated [trees,neural]
#   FEDHEX_EPOCHS        the sideband flow's maximum epochs [the spec's: 100]
#   FEDHEX_SET           extra spec overrides, space separated
#                        (e.g. "outer_flow.set.train.batch_size=512 trees.n_models=20")
#   FEDHEX_SYNTHETIC     1: generate SYNTHETIC inputs under Slurm too (tests) [0]
#   FEDHEX_SYNTHETIC_EVENTS  events in the generated features file [the spec's]
#   FEDHEX_IMAGE         container image; when set every step runs in it: a .sif file
#                        (apptainer) or an image name (podman, docker)
#   FEDHEX_CONTAINER     the runtime for FEDHEX_IMAGE: apptainer, podman or docker
#                        [apptainer]. apptainer: `apptainer exec --nv`; podman and docker:
#                        `run --rm` as the calling user with host network and IPC (as
#                        podman-hpc does), the current, work and data folders bound at
#                        the same paths, GPUs passed through when nvidia-smi is here
#                        (podman: CDI `--device nvidia.com/gpu=all`; docker: `--gpus all`)
#   FEDHEX_CONTAINER_OPTS  extra options of `podman run`/`docker run`, space separated
#   FEDHEX_MAX_RESTARTS  requeues after a time limit or preemption before giving up [3]
#
# Exit status: 0 done; the failing step's status otherwise. On USR1/TERM the flow
# training checkpoints at the current step and exits 75, any other step is stopped;
# this script then requeues the job (at most FEDHEX_MAX_RESTARTS times) and the new
# start skips every finished step.
set -euo pipefail
PREEMPTED=75
work=${FEDHEX_WORK:-runs/lhco}
spec=${FEDHEX_SPEC:-lhco_anomaly}
seed=${FEDHEX_SEED:-1}
n_signal=${FEDHEX_N_SIGNAL:-1000}
if [[ -n "${SLURM_ARRAY_TASK_ID:-}" && -n "${FEDHEX_N_SIGNALS:-}" ]]; then
    read -ra scan <<< "$FEDHEX_N_SIGNALS"
    n_signal=${scan[$SLURM_ARRAY_TASK_ID]:-}
fi
study=${FEDHEX_STUDY:-$work/study${FEDHEX_N_SIGNALS:+-n$n_signal}}
classifiers=${FEDHEX_CLASSIFIERS:-trees,neural}
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
[[ "$n_signal" =~ ^[0-9]+$ ]] || die "FEDHEX_N_SIGNAL=$n_signal: expected a number of events"
[[ "$seed" =~ ^[0-9]+$ ]] || die "FEDHEX_SEED=$seed: expected a non-negative integer"
[[ "$spec" != *.yaml || -f "$spec" ]] || die "FEDHEX_SPEC=$spec does not exist"
if [[ ! -f "$study/study.json" ]]; then
    if [[ -n "${FEDHEX_DATA:-}" ]]; then
        [[ -f "$FEDHEX_DATA" ]] || die "FEDHEX_DATA=$FEDHEX_DATA does not exist"
        [[ -n "${FEDHEX_EXTRA:-}" ]] || die "set FEDHEX_EXTRA to events_anomalydetection_qcd_extra_inneronly_features.h5 (fedhex data fetch lhco)"
        [[ -f "$FEDHEX_EXTRA" ]] || die "FEDHEX_EXTRA=$FEDHEX_EXTRA does not exist"
    elif [[ -n "${SLURM_JOB_ID:-}" && "${FEDHEX_SYNTHETIC:-0}" != 1 ]]; then
        die "set FEDHEX_DATA to events_anomalydetection_v2.features.h5 (fedhex data fetch lhco)"
    fi
fi
mkdir -p "$work"
# podman/docker see only the folders bound in: each folder the steps read or write, at
# the same path, and the calling user's ids so that what they write belongs to the caller.
if [[ -n "${FEDHEX_IMAGE:-}" && $runtime != apptainer ]]; then
    declare -A bound=()
    binds=()
    mkdir -p "$(dirname "$study")"
    for folder in "$PWD" "$work" "$(dirname "$study")" ${FEDHEX_DATA:+"$(dirname "$FEDHEX_DATA")"} \
        ${FEDHEX_EXTRA:+"$(dirname "$FEDHEX_EXTRA")"} "$(dirname "$spec")"; do
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

# Each step runs in the background so this shell can pass Slurm's warning signal on;
# after a signal the job is requeued once the step has stopped.
step_pid=""
signalled=""
forward() {
    signalled=$1
    [[ -n "$step_pid" ]] && kill -"$1" "$step_pid" 2>/dev/null || true
}
trap 'say "USR1: stopping the current step"; forward USR1' USR1
trap 'say "TERM: stopping the current step"; forward TERM' TERM
requeue_or_stop() {
    if [[ -n "${SLURM_JOB_ID:-}" && $restarts -lt $max_restarts ]]; then
        say "$1; requeueing job $SLURM_JOB_ID"
        scontrol requeue "$SLURM_JOB_ID"
        exit 0
    fi
    say "$1; not requeued (restart $restarts of $max_restarts): resubmit to go on"
    exit "$PREEMPTED"
}
step() {
    local name=$1 status=0
    shift
    say "$name: $*"
    "$@" &
    step_pid=$!
    while :; do
        wait "$step_pid" && status=0 || status=$?
        kill -0 "$step_pid" 2>/dev/null || break   # wait returned for a signal: keep waiting
    done
    step_pid=""
    if [[ $status -eq $PREEMPTED || -n "$signalled" ]]; then
        requeue_or_stop "$name stopped by $signalled (checkpoints and finished steps kept)"
    fi
    [[ $status -eq 0 ]] || { say "$name failed with status $status"; exit "$status"; }
}

# 1. The study folder: one group (this seed and n_signal), the CATHODE method.
if [[ ! -f "$study/study.json" ]]; then
    plan=(lhco plan "$spec" -o "$study" --set "seeds=[$seed]" --set "n_signal=[$n_signal]"
        --set "reference_n_signal=$n_signal" --set "methods=[cathode]"
        --set "classifiers=[$classifiers]")
    [[ "${FEDHEX_SMALL:-0}" == 1 ]] && plan+=(--small)
    if [[ -n "${FEDHEX_DATA:-}" ]]; then
        plan+=(--set "inputs.features=$(realpath "$FEDHEX_DATA")"
            --set "inputs.extra=$(realpath "$FEDHEX_EXTRA")")
    else
        say "*****************************************************************"
        say "* FEDHEX_DATA is not set: generating SYNTHETIC inputs in the    *"
        say "* LHC Olympics layouts. The results are NOT physics results.    *"
        say "*****************************************************************"
        [[ -n "${FEDHEX_SYNTHETIC_EVENTS:-}" ]] \
            && plan+=(--set "inputs.synthetic_events=$FEDHEX_SYNTHETIC_EVENTS")
    fi
    [[ -n "${FEDHEX_EPOCHS:-}" ]] && plan+=(--set "outer_flow.set.train.max_epochs=$FEDHEX_EPOCHS")
    read -ra overrides <<< "${FEDHEX_SET:-}"   # split on spaces, no glob expansion
    for item in "${overrides[@]}"; do plan+=(--set "$item"); done
    step plan "${fedhex[@]}" "${plan[@]}"
else
    say "study $study exists (restart $restarts of at most $max_restarts): finished steps are skipped"
fi

# 2. Weak-supervision splits.
step prepare "${fedhex[@]}" lhco prepare "$study"

# 3. The sideband flow, one rank per task; resumed from its checkpoint after a requeue.
flow_config=$study/outer_flow.yaml
run_dir=$("${fedhex[@]}" lhco flow-config "$study" -o "$flow_config" | tail -n 1)
if grep -q '"state": "done"' "$run_dir/status.json" 2>/dev/null; then
    say "sideband flow $run_dir is trained"
else
    train_args=(train "$flow_config" --no-evaluate)
    if [[ -f "$run_dir/config.yaml" ]]; then
        say "resuming $run_dir"
        train_args+=(--resume "$run_dir")
    else
        train_args+=(--run-dir "$run_dir")
    fi
    step "sideband flow" "${parallel[@]}" "${fedhex[@]}" "${train_args[@]}"
fi

# 4. The background template, 5. every classifier, 6. the SIC table.
step template "${fedhex[@]}" lhco template "$study"
n_tasks=$("${fedhex[@]}" status "$study" | awk 'NR == 1 {print $(NF - 1)}')
for ((task = 0; task < n_tasks; task++)); do
    step "task $task" "${fedhex[@]}" task "$study" --task "$task"
done
step collect "${fedhex[@]}" collect "$study"
say "done: SIC table $study/summary.md, plots in $study/plots, sideband flow in $run_dir"
