"""Question answering: the extractive reader that turns retrieved passages into answers."""
