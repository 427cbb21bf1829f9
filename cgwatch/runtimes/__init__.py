"""Container runtime adapters: what a runtime's own API says about its containers (Docker today)."""
