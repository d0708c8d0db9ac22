#!/bin/bash
# tar the run folders and logs into $OUT (one file back): the members' and the PU run's checkpoint,
# metrics and predictions, whichever exist
R=/tmp/runs
cd $R && tar czf $OUT/runs.tgz $(ls -d member-*/checkpoint.pt member-*/metrics.json member-*/predictions.npz \
  pu*/checkpoint.pt pu*/metrics.json train-*.log 2>/dev/null)
ls -la $OUT; for f in $R/train-*.log; do echo "$(basename $f)"; tail -3 $f; done
