"""Ray actors that drive protocol rounds among share holders, choose signer sets and keep presignature pools."""
