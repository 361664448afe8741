"""FullStory → FME: route, payload, signature, identity, naming, properties, mapping."""
