"""Encoders and generators: loading by name or path, the offline e5 checkpoint, tiny test models."""
