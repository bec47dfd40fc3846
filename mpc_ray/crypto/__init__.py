"""Math only: groups, Paillier, safe primes, ring-Pedersen, VSS, transcripts and ZK proofs.

Never imports Ray, the disk, the network or the clock.
"""
