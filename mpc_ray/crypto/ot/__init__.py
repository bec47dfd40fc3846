"""Oblivious transfer for DKLs23: batched Verified Simplest OT (`base_ot`), KOS OT extension with its consistency
check (`kos`), and the bit-matrix / GF(2^256) arithmetic the check runs on (`gf2`). Sans-I/O and pure: no Ray, disk
or clock; randomness from `secrets`."""
