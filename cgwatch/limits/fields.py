"""The limit fields a request may set, declared once: a row per field.

Derived from this table, and nowhere else typed again: the request parser's field list and
parser lookup (request.py), the LimitRequest properties of openapi.json (server/openapi.py),
the flags of ``cgwatch set`` (cli/limits.py), and the web page's limits form, which draws the
rows openapi.json marks with ``x-cgwatch-form``. tests/unit/test_limit_fields.py checks that
they all agree with it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal

NANO = 10 ** 9
# Docker: "Range of CPUs is from 0.01 to N" (daemon_unix.go); 0.01 is 1000 us per 100000 us period.
MIN_CPUS = Decimal("0.01")
MAX_CPUS = Decimal(2 ** 63 - 1) / NANO     # Docker's NanoCpus is an int64 (exact: 19 digits)
PERIOD_US = (1000, 1_000_000)              # Documentation/scheduler/sched-bwc.rst: 1 ms .. 1 s
QUOTA_US = (1000, 2 ** 44 - 1)             # sched-bwc.rst: >= 1 ms; kernel/sched/core.c max_cfs_runtime
SHARES = (2, 262144)                       # kernel/sched/sched.h MIN_SHARES .. MAX_SHARES
PIDS = (1, 4 * 1024 * 1024)                # include/linux/threads.h PID_MAX_LIMIT
MIN_MEMORY = 6 * 1024 * 1024               # Docker's linuxMinMemory, for memory and memory_reservation
# mm/page_counter.c clamps bytes to PAGE_COUNTER_MAX (LONG_MAX / PAGE_SIZE pages): at or above this
# (with 64 KiB pages) a limit silently reads back as "max". Refuse instead of surprising.
MAX_BYTES = 2 ** 63 - 2 ** 16


class Kind(enum.Enum):
    """What a value is; request.py holds one parser per kind."""
    CPUS = "cpus"            # Docker's --cpus: a number or numeric string of CPUs, to 1e-9
    INTEGER = "integer"      # a JSON integer
    CPU_LIST = "cpu_list"    # a cpuset.cpus list such as "0-1,3"
    BYTES = "bytes"          # bytes as a JSON integer, or a size string such as "100m" (docker/go-units)


@dataclass(frozen=True, slots=True)
class FormInput:
    """How the web page's limits form shows a field."""
    id: str                  # the <input>'s id
    label: str
    example: str             # its placeholder, "e.g. <example>", until a container is chosen
    current: str             # the read-back limit (GET .../limits) the placeholder then shows
    inputmode: str | None = None


@dataclass(frozen=True, slots=True)
class LimitField:
    name: str                                   # the API's field, in Docker's vocabulary
    kind: Kind
    bounds: tuple[Decimal | int, Decimal | int] | None   # inclusive; None: only the kind's own rules
    unit: str
    flag: str                                   # `cgwatch set`'s flag
    help: str                                   # the flag's help
    description: str                            # the API's description (openapi.json)
    minus_one_unlimited: bool = False           # Docker's -1 also means "no limit"
    example: str | None = None                  # an example value in openapi.json
    form: FormInput | None = None               # shown on the web page's limits form

    @property
    def cli_type(self) -> type:
        """What a flag's text becomes in the JSON body (cgwatch set)."""
        return int if self.kind is Kind.INTEGER else str


LIMIT_FIELDS = (
    LimitField("cpus", Kind.CPUS, (MIN_CPUS, MAX_CPUS), "CPUs", "--cpus", "CPUs, as docker --cpus (0.5)",
               "CPUs, as docker --cpus (0.5 = half a CPU). Not with cpu_period_us/cpu_quota_us.",
               form=FormInput("limit-cpus", "CPUs", "0.5", current="cpus", inputmode="decimal")),
    LimitField("cpu_period_us", Kind.INTEGER, PERIOD_US, "us", "--cpu-period",
               f"CFS period in us ({PERIOD_US[0]}..{PERIOD_US[1]})", "CFS period, us."),
    LimitField("cpu_quota_us", Kind.INTEGER, QUOTA_US, "us", "--cpu-quota",
               f"CFS quota in us per period (>= {QUOTA_US[0]})",
               f"CFS quota per period, us (>= {QUOTA_US[0]}; -1 none).", minus_one_unlimited=True),
    LimitField("cpu_shares", Kind.INTEGER, SHARES, "weight", "--cpu-shares",
               f"relative CPU weight ({SHARES[0]}..{SHARES[1]})", "Relative weight (v2: cpu.weight)."),
    LimitField("cpuset_cpus", Kind.CPU_LIST, None, "CPU list", "--cpuset-cpus", "CPUs allowed, e.g. 0-1,3",
               "CPUs the container may run on.", example="0-1,3"),
    LimitField("memory", Kind.BYTES, (MIN_MEMORY, MAX_BYTES - 1), "bytes", "--memory",
               "memory limit: bytes or 100m, 1g, 512k",
               "Memory limit: bytes or 100m, 1g, 512k (binary multiples); at least 6 MiB.",
               form=FormInput("limit-memory", "memory", "256m", current="memory_limit_bytes")),
    LimitField("memory_reservation", Kind.BYTES, (MIN_MEMORY, MAX_BYTES - 1), "bytes", "--memory-reservation",
               "soft memory limit", "Soft limit (v1 soft_limit_in_bytes, v2 memory.low)."),
    LimitField("memory_swap", Kind.BYTES, (0, MAX_BYTES - 1), "bytes", "--memory-swap",
               "memory plus swap; -1 unlimited", "Memory plus swap, as docker --memory-swap; -1 unlimited.",
               minus_one_unlimited=True),
    LimitField("pids_limit", Kind.INTEGER, PIDS, "tasks", "--pids-limit", "max tasks; -1 unlimited",
               "Max tasks; -1 unlimited.", minus_one_unlimited=True,
               form=FormInput("limit-pids", "PIDs", "100", current="pids_max", inputmode="numeric")),
)
