"""What the tests share (no tests here): the in-process committee and fixture primes (committee.py, primes.py),
principals (authz.py), policies and request bodies (policies.py), protocol tamper helpers (ecdsa.py, frost.py),
in-process chains and x402 (chain.py, x402.py), OS users for isolation (isolation.py), Ray helpers (cluster.py),
and the import reader of the layer checks (layers.py). Test modules import from here, never from each other."""
