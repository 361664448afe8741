"""Upstream HTTP: the pooled session with its retry budget, and the FME and FullStory APIs."""
