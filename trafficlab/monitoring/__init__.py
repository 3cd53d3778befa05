"""Monitoring: the lab's Prometheus, per-version metrics and automated rollouts."""
