"""Dense retrieval: passage/query encoding caches, augmentation with generated queries, faiss search."""
