#!/usr/bin/env bash
#SBATCH --job-name=${job_name}-collect
#SBATCH --output=${logs}/collect_%j.out
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=1
#SBATCH --mem=${memory}
#SBATCH --time=00:30:00
${directives}
# Merge the results of ${sweep} once every array task succeeded (afterok).
set -euo pipefail
${modules}
${fedhex} ${collect_args}
