"""Limits in Docker's vocabulary: parse a request, validate it against the host, apply it safely.

    request.py   parse_limit_request(body, mode) -> LimitRequest     (strict JSON, Docker's units)
    validate.py  resolve_target(request, current, host) -> Limits    (Docker's and the kernel's bounds)
    driver/...   apply the target through the Docker Engine API or cgroupfs, read back, roll back
"""
