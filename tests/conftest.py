import os

# torch's OpenMP threads spin-wait by default; on a shared 2-core machine that slows every
# test badly. Must be set before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Floating-point sums depend on how many threads split them, so trained accuracies can differ in
# the last test image between machines. The suite runs on one thread everywhere (set before torch
# or a BLAS loads, for this process and the subprocesses it starts); tests that compare numbers
# across runs also state their tolerance, so they hold on any thread count.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"
