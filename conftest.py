"""Repository-wide pytest set-up (also inherited by nbval's notebook kernels)."""

import os

# Figures render off-screen in tests and in notebook kernels started by nbval.
os.environ.setdefault("MPLBACKEND", "Agg")
