"""Scoring: per-sample status, pass@k at three levels, API adoption and the error taxonomy."""
