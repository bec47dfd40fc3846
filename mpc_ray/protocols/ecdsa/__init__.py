"""Threshold ECDSA on secp256k1 after CGGMP21: aux-info, key generation, 3-round presigning, 1-round signing."""
