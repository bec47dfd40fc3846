"""What agents and notebooks hold: the signing client and the embedded local cluster."""
