"""Queue mode: webhooks acknowledge after a durable enqueue; a drain delivers in batches (docs/queue.md)."""
