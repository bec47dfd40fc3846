"""DKLs23 threshold ECDSA (Doerner, Kondi, Lee, shelat, "Threshold ECDSA in Three Rounds", ePrint 2023/765): the
foundations so far: the pairwise setup (`setup`), the random vector-OLE multiplication with its check (`rvole`) and
pairwise zero-sharing (`zero_share`). See docs/dkls23.md for the mapping to the paper and what is left."""
