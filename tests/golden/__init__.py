"""Golden values: what the named architectures compute today, pinned for a redesign to match."""
