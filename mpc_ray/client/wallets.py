"""The wallet constructors every signer offers (``signer.evm_wallet(key_id)``, ...).

Apart from client/signer.py so that the wallets, which import the signer protocol, are never imported back by it;
each wallet module is loaded on first use (eth-account, solders and embit are heavy to import).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .bitcoin import TaprootWallet
    from .evm import EvmWallet
    from .solana import SolanaWallet

__all__ = ["WalletFactory"]


class WalletFactory:
    """The wallet constructors every signer offers (``signer.evm_wallet(key_id)``, ...); `self` is the Signer."""

    def evm_wallet(self, key_id: str, *, path: str | None = None) -> EvmWallet:
        from .evm import EvmWallet

        return EvmWallet(self, key_id, path=path)  # type: ignore[arg-type]

    def solana_wallet(self, key_id: str, *, chain: str | None = None) -> SolanaWallet:
        """`chain`: the CAIP-2 cluster a policy-enforced request names (default: mainnet-beta)."""
        from .solana import MAINNET, SolanaWallet

        return SolanaWallet(self, key_id, chain=chain or MAINNET)  # type: ignore[arg-type]

    def taproot_wallet(self, key_id: str, *, network: str = "mainnet", path: str | None = None) -> TaprootWallet:
        from .bitcoin import TaprootWallet

        return TaprootWallet(self, key_id, network=network, path=path)  # type: ignore[arg-type]
