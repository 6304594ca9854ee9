"""
A matrix game's residual per epoch
==================================

The "policeman and burglar" game solved by variance-reduced Halpern (Cai, Alacaoglu &
Diakonikolas 2024) and the deterministic extragradient and extra-anchored gradient methods.
An *epoch* is ``N`` component evaluations, i.e. the cost of one full operator evaluation; the
residual is the natural residual measured on each check's point (``res.history``).
"""

import matplotlib.pyplot as plt

from optcore.monotone import MatrixGame, solve

game = MatrixGame.policeman_burglar(100, rng=0)
fig, ax = plt.subplots(figsize=(6, 4))
for method in ("vr_halpern", "eag", "eg"):
    res = solve(game, method=method, tol=1e-9, rng=0, warn=False, options={"max_epochs": 600})
    ax.loglog(res.history[1:, 0], res.history[1:, 1], label=f"{method}: residual {res.residual:.1e}, gap {res.gap:.1e}")
ax.set_xlabel("epochs (full operator evaluations)")
ax.set_ylabel("natural residual")
ax.set_title(f"policeman and burglar, {game.shape[0]} x {game.shape[1]}")
ax.legend()
fig.tight_layout()
