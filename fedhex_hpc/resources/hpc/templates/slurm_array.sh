#!/usr/bin/env bash
#SBATCH --job-name=${job_name}
#SBATCH --array=${array}
#SBATCH --output=${logs}/%A_%a.out
#SBATCH --open-mode=append
#SBATCH --requeue
#SBATCH --signal=B:USR1@120
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=${cpus_per_task}
#SBATCH --mem=${memory}
#SBATCH --time=${time}
${directives}
# One task of ${sweep}: the array index is the task id.
set -euo pipefail
${modules}
export FEDHEX_TASK_ID=$$SLURM_ARRAY_TASK_ID
${fedhex} ${run_args} &
pid=$$!
trap 'kill -USR1 $$pid 2>/dev/null || true' USR1
trap 'kill -TERM $$pid 2>/dev/null || true' TERM
status=0
while :; do
    wait "$$pid" && status=0 || status=$$?
    kill -0 "$$pid" 2>/dev/null || break
done
if [[ $$status -eq 75 && $${SLURM_RESTART_COUNT:-0} -lt ${max_restarts} ]]; then
    scontrol requeue "$${SLURM_ARRAY_JOB_ID}_$${SLURM_ARRAY_TASK_ID}"
    exit 0
fi
exit "$$status"
