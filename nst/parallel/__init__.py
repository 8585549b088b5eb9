"""Many images at once: a pool of workers in this process, in local processes or on a Ray cluster.

pool (LocalPool, RayPool, open_pool), workers (what a worker loads once and runs per
item, for both methods) and manifest (a batch's record of what is done, for resuming).
Ray is imported only when a Ray pool is asked for.
"""

from nst._exports import lazy

__getattr__ = lazy(__name__, {"open_pool": "pool", "PoolError": "pool"})
__all__ = ["open_pool", "PoolError"]
