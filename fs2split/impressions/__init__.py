"""FME → FullStory: the webhook route, the event builder and the Python SDK listener."""
