"""The consume loop: per-partition workers, distribution with retries, commits, rebalances."""
