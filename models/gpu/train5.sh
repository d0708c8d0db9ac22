#!/bin/bash
# Issue 20, GPU stage: five ensemble members of dft-mf-ens5 trained in parallel on one GPU.
# env: T (seconds of training per member), WAIT (seconds this call watches before returning),
#      STAGE (a: new members, the default; b: each committed member continued, --init models/checkpoints/dft-mf-ens5/member-K),
#      LR (stage b: the continuation's learning rate, default 5e-4)
set -u
R=/tmp/runs; mkdir -p $R
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
cp gpuwork/dft-mf.npz $R/dft-mf.npz
sha256sum $R/dft-mf.npz | cut -c1-12
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
t0=$(date +%s)
python3 - <<'PY' || exit 3
import logging; logging.basicConfig(level=logging.INFO)
from pathlib import Path
from csp.models.dataset import load_arrays
from csp.models.training._data import dataset_graphs
a = load_arrays(Path("/tmp/runs/dft-mf.npz"))
g = dataset_graphs(a, workers=16, cache=Path("/tmp/runs/graphs.npz"))
print("rows", len(a), "graphs ok")
PY
echo "graphs built in $(( $(date +%s) - t0 )) s"
STAGE=${STAGE:-a}
COMMON="--data $R/dft-mf.npz --device cuda --epochs 400 --batch-size 64 --patience 40 --workers 2 \
  --graph-cache $R/graphs.npz --time-limit-s $T --anneal time --seed 0 --mlip-weight 1.0"
for K in 0 1 2 3 4; do
  if [ "$STAGE" = a ]; then
    ARGS="dft $COMMON --out $R/member-$K --ensemble 5 --member $K --fidelity delta --lr 1e-3 --hidden 128 --alignn-layers 2 --gcn-layers 2"
  else
    ARGS="transfer $COMMON --out $R/member-$K --init models/checkpoints/dft-mf-ens5/member-$K --lr ${LR:-5e-4}"
  fi
  setsid nohup python3 -m csp.models.training $ARGS > $R/train-$K.log 2>&1 < /dev/null &
done
sleep 5
end=$(( $(date +%s) + WAIT ))
while [ $(date +%s) -lt $end ]; do
  sleep 60
  nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
  for f in $R/train-*.log; do echo "$(basename $f): $(grep -i 'epoch' $f | tail -1 | cut -c1-160)"; done
  n=$(pgrep -f "csp.models.training (dft|transfer|pu) " | wc -l); echo "running: $n"; [ "$n" = 0 ] && break
done
