#!/bin/bash
# keep the machine warm and show progress for WAIT seconds; stop early when no training runs
R=/tmp/runs
running() { pgrep -f "csp.models.training (dft|transfer|pu) " | wc -l; }
end=$(( $(date +%s) + WAIT ))
while [ $(date +%s) -lt $end ]; do
  sleep 30
  [ "$(running)" = 0 ] && break
done
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
for f in $R/train-*.log; do echo "$(basename $f): $(tail -2 $f | cut -c1-200)"; done
echo "running: $(running)"
