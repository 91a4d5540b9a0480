"""Materialized views of compacted topics: the users_pos projection and full-sync removal."""
