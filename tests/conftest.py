import os

# Ray >= 2.60 turns token auth on by default and writes ~/.ray/auth_token; tests pin it so runs do not leak state.
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
