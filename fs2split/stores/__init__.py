"""Redelivery dedup stores."""
