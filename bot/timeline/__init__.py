"""The incident timeline: an append-only, hash-chained record of everything that happened."""
