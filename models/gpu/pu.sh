#!/bin/bash
# Issue 20, GPU stage: the PU synthesizability ensemble (100 bags) on a set with hypothetical structures as
# unlabeled rows (gpuwork/pu-poly.npz, made on the CPU machine; see models/gpu/README.md), started in the
# background beside whatever else runs on the GPU.
# env: T (seconds of training), PU_ARGS (extra training options, e.g. --siblings-every-bag), PU_OUT (run folder name, default pu)
set -u
R=/tmp/runs; mkdir -p $R
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
cp gpuwork/pu-poly.npz $R/pu-poly.npz
sha256sum $R/pu-poly.npz | cut -c1-12
O=${PU_OUT:-pu}
setsid nohup python3 -m csp.models.training pu --data $R/pu-poly.npz --out $R/$O \
  --init models/checkpoints/dft-mf-ens5/member-0 --device cuda --epochs 60 --n-bags 100 --batch-size 128 \
  --anneal time --time-limit-s $T --workers 8 --seed 0 ${PU_ARGS:-} > $R/train-$O.log 2>&1 < /dev/null &
echo "pu started (pid $!)"
