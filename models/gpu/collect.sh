#!/bin/bash
# tar the member folders and logs into $OUT (at most 8 files come back)
R=/tmp/runs
cd $R && tar czf $OUT/members.tgz member-*/checkpoint.pt member-*/metrics.json member-*/predictions.npz train-*.log
ls -la $OUT; for K in 0 1 2 3 4; do tail -3 $R/train-$K.log; done
