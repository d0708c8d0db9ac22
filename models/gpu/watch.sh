#!/bin/bash
# keep the machine warm and show progress for WAIT seconds; stop early when no member runs
R=/tmp/runs
end=$(( $(date +%s) + WAIT ))
while [ $(date +%s) -lt $end ]; do
  sleep 30
  n=$(pgrep -f "csp.models.training (dft|transfer) " | wc -l); [ "$n" = 0 ] && break
done
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
for K in 0 1 2 3 4; do echo "m$K: $(tail -2 $R/train-$K.log | cut -c1-200)"; done
echo "running: $(pgrep -f 'csp.models.training (dft|transfer) ' | wc -l)"
