"""Incremental stream decoders and the byte relay."""
