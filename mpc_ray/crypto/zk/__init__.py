"""Zero-knowledge proofs of CGGMP21 (and Schnorr), each a module with `Proof`, `prove` and `verify`.

Conventions (every proof follows them):
- `prove(transcript, ...)` and `verify(transcript, proof, ...)` take a `Transcript` that the caller has already
  bound to the protocol, session id, prover and verifier; the proof appends its own name, every public input and
  every commitment before it draws a challenge.
- `verify` returns None or raises `ProofError` whose `check` is ``"<proof>.<check>"`` (for example
  ``"pi_enc.range_z1"``), so a protocol can name the failed check in its abort.
- Every verifier checks ranges, group membership (units of Z*_N, ciphertexts in Z*_{N^2}, curve points not the
  identity) before any equation.

Shared pieces: `common` (every check, the prover-side input checks, sampling, the ring-Pedersen half of the range
proofs, the Paillier affine equation) and `paillier_proofs` (the setup and sigma protocol of pi_enc, pi_log_star and
pi_dec). Paillier arithmetic lives on the key classes (`crypto.paillier`), ring-Pedersen commitments on the
parameter classes (`crypto.ring_pedersen`).
"""
