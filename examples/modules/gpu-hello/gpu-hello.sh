#!/bin/sh
# Says hello and reports the GPUs the container was given: the NVIDIA device
# nodes and, when the NVIDIA container toolkit mounted it, `nvidia-smi -L`.
# Writes the same report to /outputs/gpus.txt.
set -u

{
  echo "hello from a GPU job"
  devices=$(ls /dev/nvidia[0-9]* 2>/dev/null || true)
  if [ -n "$devices" ]; then
    echo "GPU devices:"
    printf '  %s\n' $devices
  else
    echo "no GPU device node under /dev (was the job given a GPU?)"
  fi
  if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi -L
  fi
} | tee /outputs/gpus.txt
