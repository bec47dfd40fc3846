"""DKLs23 threshold ECDSA (Doerner, Kondi, Lee, shelat, "Threshold ECDSA in Three Rounds", ePrint 2023/765): the
pairwise setup (`setup`), the random vector-OLE multiplication with its check (`rvole`), pairwise zero-sharing
(`zero_share`) and threshold signing (`sign`). The holders run it for keys made with ``protocol="dkls23"``
(node/dkls23_holder.py). See docs/dkls23.md for the mapping to the paper and what is left."""
