"""Deaths are seen: the OOM kill that ends a container is counted, and a removed container's last
series stay exported a while (--removed-retention).

    ledger.py     OomRecord: one cgroup's OOM kills, the kernel's counter merged with OOM events
    kernel.py     the kernel's notifications for one cgroup (v1 eventfd, v2 memory.events)
    watcher.py    OomWatcher: one thread waiting on every container's notifications
    retention.py  Retained: dead containers' frozen samples, bounded in time and number
    keeper.py     DeathKeeper: after each collection, who died, what is kept, who is watched
"""
