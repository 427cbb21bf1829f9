"""Finding containers: walk the cgroup hierarchies, classify each path, name it via its runtime."""
