"""deploy/ as a package, so ``python -m deploy.smoke`` runs and tests import the runner."""
