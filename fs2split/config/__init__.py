"""Settings and keys, and the secret managers keys may come from."""
