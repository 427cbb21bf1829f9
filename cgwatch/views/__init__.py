"""JSON shapes of the API, built from readers: a container (``container``) and what is inside it (``inspect``)."""

from .container import container_json, listing_json

__all__ = ["container_json", "listing_json"]
