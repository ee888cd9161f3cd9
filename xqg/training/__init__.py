"""Training loops of the study's models: the dense retriever (xDR) and the extractive reader."""
