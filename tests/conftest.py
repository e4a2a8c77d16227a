import os

# torch's OpenMP threads spin-wait by default; on a shared 2-core machine that slows every
# test badly. Must be set before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
