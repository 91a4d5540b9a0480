"""Sync status: chunk progress per syncId on the compacted status topic."""
