"""Host layer: where the kernel's files are, and pure parsers for each of them."""
