"""Cross-lingual query generation: prompts, generators, resumable generation, quality report."""
