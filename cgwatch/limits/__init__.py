"""Limits in Docker's vocabulary: parse a request, validate it against the host, apply it safely.

    fields.py       the limit fields, declared once (parser, bounds, CLI flag, OpenAPI, web form)
    request.py      parse_limit_request(body, mode) -> LimitRequest     (strict JSON, Docker's units)
    validate.py     resolve_target(request, current, host) -> Limits    (Docker's and the kernel's bounds)
    pending.py      changes written while their runtime was down, sent to it when it answers
    service.py      LimitService: apply through the runtime's API or cgroupfs, read back, roll back, audit
"""
