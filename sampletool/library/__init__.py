"""The sample library: catalogue, scanner and vector index."""
