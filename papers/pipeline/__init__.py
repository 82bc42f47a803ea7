"""Paper processing steps without Django: file to text, text to entities, entities to relationships."""
