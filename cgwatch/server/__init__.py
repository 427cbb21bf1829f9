"""The HTTP side: app factory, routes, thin handlers, one error middleware."""
