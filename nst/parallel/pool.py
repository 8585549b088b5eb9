"""A pool of workers that load their networks once and stylise item after item.

The products that run many items (``nst batch`` now, ``nst video`` later) describe
their work as a picklable *work* object with one method::

    work.load(threads) -> run          # load the networks once; threads: None = library default
    run(payload) -> result             # one item (an image, a frame, a segment)

and hand the pool ``(key, make_payload)`` pairs.  The pool calls ``make_payload()``
only when a worker is free, so a batch of thousands is never all in memory, and
yields an :class:`Outcome` per item as it finishes.  Results always come back to
the caller (the driver), which writes them: workers need no shared filesystem.

* :class:`LocalPool` (the default): the work loaded once in this process;
  nothing extra is imported or started.
* :class:`RayPool` (``--ray``): a pool of Ray actors, each loading the work once.
  A worker that dies (its process killed, its node lost) is restarted by Ray
  (``max_restarts``) on whatever node has room, and the pool takes it back when
  it answers again; meanwhile the pool carries on with the workers it has.  The
  item it was running is retried here, on the next free worker, not by Ray
  (``max_task_retries`` 0): Ray would hold it for the restarted worker, which
  may never find room once a node is gone.

Either way an item gets :data:`ATTEMPTS` tries when it fails by itself, and
:data:`LOSS_ATTEMPTS` when its workers die under it; an item that fails them all
is reported with its error and the rest goes on.  If every worker is lost and
none is back within the pool's ``timeout``, what is left is reported failed.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Optional

from nst.io.files import one_line

ATTEMPTS = 2  # tries per item, the first included
LOSS_ATTEMPTS = 4  # tries per item when it is its worker that dies (a node lost), the first included
WORKER_RESTARTS = 3  # times Ray restarts one dead worker before giving it up
RAY_TIMEOUT_S = 60.0  # --ray-timeout: the longest wait for workers to start, or for one to come back
RAY_INSTALL_HINT = "install it with `pip install nst[ray]` (or `pip install ray`)"
LOCAL_RAY = "local"  # --ray with no address: start a Ray instance on this machine for the run
ADDRESS_TIMEOUT_S = 10.0  # how long --ray ADDRESS may take to answer a TCP connect before the run is refused


class PoolError(Exception):
    """The pool cannot run (Ray missing, cluster unreachable, workers cannot start): one line."""


@dataclass
class Outcome:
    """What became of one item.  ``result`` is the worker's return value when ``error`` is None."""

    key: str
    result: Any = None
    error: Optional[str] = None
    worker: str = ""
    attempts: int = 1
    compute_s: float = 0.0  # inside the worker, last attempt
    latency_s: float = 0.0  # from handing the item over to having its result, last attempt
    losses: int = 0  # attempts that ended with the worker's death (a node lost), retried elsewhere

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class WorkerFigures:
    """Per-worker figures for the summary."""

    name: str
    host: str = ""
    pid: int = 0
    load_s: float = 0.0  # loading the networks (the latest incarnation)
    items: int = 0  # results returned, successful or not
    failed: int = 0
    compute_s: float = 0.0
    latency_s: float = 0.0
    restarts: int = 0  # times it came back after dying
    lost: bool = False  # dead at the end of the run (its node gone, or Ray gave it up)
    incarnation: str = field(default="", repr=False)

    def add(self, outcome: Outcome) -> None:
        self.items += 1
        self.failed += 0 if outcome.ok else 1
        self.compute_s += outcome.compute_s
        self.latency_s += outcome.latency_s

    def to_json(self) -> dict:
        mean = (lambda total: round(total / self.items, 4) if self.items else None)
        return {"name": self.name, "host": self.host, "pid": self.pid, "load_s": round(self.load_s, 3),
                "items": self.items, "failed": self.failed, "compute_s": round(self.compute_s, 3),
                "mean_compute_s": mean(self.compute_s),
                "mean_overhead_s": mean(self.latency_s - self.compute_s), "restarts": self.restarts,
                "lost": self.lost}


def _timed_call(run, payload):
    """(status, value, seconds): "ok" and the result, or "error" and a one-line message."""
    started = time.perf_counter()
    try:
        return "ok", run(payload), time.perf_counter() - started
    except Exception as error:  # any failure of one item is that item's, reported, not the pool's
        return "error", one_line(error), time.perf_counter() - started


class _Closing:
    """``with pool:`` calls the pool's own ``close()`` on the way out, whatever happened inside."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class LocalPool(_Closing):
    """The work loaded once in this process; items run one after another."""

    kind = "local"

    def __init__(self, work, threads: Optional[int] = None):
        started = time.perf_counter()
        self._run = work.load(threads)
        self._figures = WorkerFigures("local", socket.gethostname(), os.getpid(), time.perf_counter() - started)

    def results(self, items: Iterable[tuple[str, Callable[[], Any]]]) -> Iterator[Outcome]:
        for key, make_payload in items:
            outcome = _prepared(key, make_payload)
            if isinstance(outcome, Outcome):
                yield outcome
                continue
            for attempt in range(1, ATTEMPTS + 1):
                status, value, seconds = _timed_call(self._run, outcome)
                if status == "ok" or attempt == ATTEMPTS:
                    break
            result = Outcome(key, value if status == "ok" else None, None if status == "ok" else value,
                             "local", attempt, seconds, seconds)
            self._figures.add(result)
            yield result

    def workers(self) -> list[dict]:
        return [self._figures.to_json()]

    def close(self) -> None:
        self._run = None


def _prepared(key, make_payload):
    """The payload, or a failed Outcome if the driver cannot even prepare it (an unreadable file)."""
    try:
        return make_payload()
    except Exception as error:  # reported as the item's failure; the batch goes on
        return Outcome(key, error=one_line(error), worker="driver", attempts=1)


class _PoolActor:
    """What each Ray actor runs (wrapped by ``ray.remote`` in :class:`RayPool`)."""

    def __init__(self, work, threads):
        started = time.perf_counter()
        self._run = work.load(threads)
        self._info = {"incarnation": uuid.uuid4().hex, "host": socket.gethostname(), "pid": os.getpid(),
                      "load_s": time.perf_counter() - started}

    def describe(self) -> dict:
        return self._info

    def run(self, payload):
        """(status, value, seconds, incarnation) for one item."""
        return (*_timed_call(self._run, payload), self._info["incarnation"])


def import_ray():
    try:
        import ray
    except ImportError:
        raise PoolError(f"--ray needs the Ray library, which is not installed; {RAY_INSTALL_HINT}") from None
    return ray


@dataclass
class _Flight:
    """An item handed to a worker and not yet back."""

    key: str
    payload: Any
    worker: int
    attempts: int  # tries so far, this one included
    submitted: float
    losses: int = 0  # tries that ended with the worker's death


def check_listening(address: str, timeout: float = ADDRESS_TIMEOUT_S) -> None:
    """Refuse a cluster address where nothing answers, in ``timeout`` seconds at most: given one, Ray's
    own connect waits for minutes (measured: over 200 s for a closed port on 127.0.0.1) before it fails.
    ``local`` and ``auto`` are left to Ray."""
    import socket

    if address in (LOCAL_RAY, "auto"):
        return
    host, _, port = address.split("://")[-1].rpartition(":")
    if not host or not port.isdigit():
        raise PoolError(f"--ray {address!r} is not HOST:PORT (the head's address, as `ray start --head` prints "
                        f"it), 'auto' or nothing")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as error:
        reason = "timed out" if isinstance(error, socket.timeout) else (error.strerror or str(error))
        raise PoolError(f"nothing answers at {address} ({reason}); start the cluster there with "
                        f"`ray start --head --port {port}`, or check the address") from None


LOOPBACK_HOSTS = ("localhost", "::1", "[::1]")  # and 127.0.0.0/8


def _connect_from_loopback(address: str) -> None:
    """Let a driver reach a cluster bound to a loopback address (``ray start --node-ip-address 127.0.0.1``).

    Ray replaces a loopback host in the address with this machine's own IP address before it
    connects, where such a cluster does not listen, and then waits for minutes.  Its switch
    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` keeps the driver on loopback; it must be set before
    Ray is imported, and is left alone when the user has set it.
    """
    host = address.split("://")[-1].rpartition(":")[0]
    if host in LOOPBACK_HOSTS or host.startswith("127."):
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


class RayPool(_Closing):
    """A pool of ``workers`` Ray actors, each loading the work once and given one item at a time.

    ``address``: :data:`LOCAL_RAY` to start Ray on this machine, ``"auto"`` for the
    cluster this machine belongs to (``ray start``), or a cluster address.  If Ray
    is already initialised in this process (a test, a notebook) that connection is used.
    ``timeout``: seconds the workers may take to start, and the longest wait for a lost
    worker to come back when no other is left.
    """

    kind = "ray"

    def __init__(self, work, workers: int, address: str = LOCAL_RAY, cpus_per_worker: Optional[int] = None,
                 threads: Optional[int] = None, timeout: Optional[float] = None):
        check_listening(address)
        _connect_from_loopback(address)
        self._ray = ray = import_ray()
        self._started_ray, self.timeout = False, timeout
        if not ray.is_initialized():
            self._connect(address)
        cpus = cpus_per_worker or self._default_cpus(workers)
        self._check_capacity(workers, cpus)
        actor_class = ray.remote(num_cpus=cpus, max_restarts=WORKER_RESTARTS, max_task_retries=0)(_PoolActor)
        # One copy of the work (styles included) in the object store, kept referenced for the
        # pool's life: a restarted worker is built from it again.
        self._work_ref = ray.put(work)
        self.actors = [actor_class.remote(self._work_ref, threads or cpus) for _ in range(workers)]
        self._figures = [WorkerFigures(f"ray-{index}") for index in range(workers)]
        self._reviving = {}  # describe() call on a dead worker -> that worker's index
        self._why_none = "Ray could not restart any of them"  # unless the wait for one runs out
        try:
            infos = ray.get([actor.describe.remote() for actor in self.actors], timeout=timeout)
        except ray.exceptions.GetTimeoutError:
            self.close()
            raise PoolError(f"the {workers} Ray workers did not all start within {timeout:g} s (a node the cluster "
                            f"cannot reach, or no room for them); check `ray status`, or raise --ray-timeout") from None
        except ray.exceptions.RayError as error:
            self.close()
            raise PoolError(f"the Ray workers could not start: {_ray_message(error)}") from None
        for figures, info in zip(self._figures, infos):
            self._note_incarnation(figures, info)
        self._alive = set(range(workers))

    def _connect(self, address: str) -> None:
        import logging

        ray = self._ray
        options = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
        try:
            ray.init(**options) if address == LOCAL_RAY else ray.init(address=address, **options)
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as error:
            raise PoolError(f"cannot connect to the Ray cluster at {address} ({one_line(error)}); start one with "
                            f"`ray start --head` or check the address") from None
        self._started_ray = True

    def _default_cpus(self, workers: int) -> int:
        """The cluster's CPUs shared among the workers, no more than the largest node has."""
        total = int(self._ray.cluster_resources().get("CPU", 1))
        largest = max((int(node["Resources"].get("CPU", 0)) for node in self._ray.nodes() if node.get("Alive")),
                      default=total)
        return max(1, min(total // workers, largest))

    def _check_capacity(self, workers: int, cpus: int) -> None:
        total = int(self._ray.cluster_resources().get("CPU", 0))
        if workers * cpus > total:
            self.close()
            raise PoolError(f"{workers} workers of {cpus} CPUs each need {workers * cpus} CPUs but the Ray cluster "
                            f"has {total}; lower --workers or --cpus-per-worker")

    @staticmethod
    def _note_incarnation(figures: WorkerFigures, info: dict) -> None:
        figures.incarnation, figures.host, figures.pid = info["incarnation"], info["host"], info["pid"]
        figures.load_s = info["load_s"]

    def results(self, items: Iterable[tuple[str, Callable[[], Any]]]) -> Iterator[Outcome]:
        items, again, flights, early = iter(items), deque(), {}, []
        idle = deque(sorted(self._alive))
        while True:
            self._hand_out(items, again, flights, idle, early)
            while early:
                yield early.pop(0)
            if not flights:
                # Nothing out: with a free worker the work is done; with none, wait for one to come back.
                if idle or not self._await_revival(idle, self.timeout):
                    yield from self._abandon(items, again)
                    return
                continue
            ready, _ = self._ray.wait(list(flights) + list(self._reviving), num_returns=1)
            if ready[0] in self._reviving:
                self._revived(ready[0], idle)
                continue
            flight = flights.pop(ready[0])
            outcome = self._collect(flight, ready[0])
            if flight.worker in self._alive:
                idle.append(flight.worker)
            if outcome is None:  # to be tried again: it goes to the next free worker
                again.append(flight)
                continue
            self._figures[flight.worker].add(outcome)
            self._hand_out(items, again, flights, idle, early)  # keep the workers busy while the caller writes
            yield outcome

    def _hand_out(self, items, again, flights, idle, early: list) -> None:
        """Give every idle worker an item (retries first); items the driver cannot prepare go to ``early``."""
        while idle and self._alive:
            if again:
                flight = again.popleft()
                flight.attempts += 1
            else:
                key, make_payload = next(items, (None, None))
                if key is None:
                    return
                payload = _prepared(key, make_payload)
                if isinstance(payload, Outcome):
                    early.append(payload)
                    continue
                flight = _Flight(key, payload, 0, 1, 0.0)
            flight.worker = idle.popleft()
            flight.submitted = time.perf_counter()
            flights[self.actors[flight.worker].run.remote(flight.payload)] = flight

    def _collect(self, flight: _Flight, ref) -> Optional[Outcome]:
        """The item's Outcome, or None if it should be tried again."""
        ray, figures = self._ray, self._figures[flight.worker]
        try:
            status, value, seconds, _ = ray.get(ref)
        # The worker died (its process, or its node), or its result died with the node that held it: a
        # result over Ray's inline limit (100 KB: an image) lives in its node's object store until fetched.
        except (ray.exceptions.RayActorError, ray.exceptions.ObjectLostError) as error:
            self._lose(flight.worker)
            flight.losses += 1
            if flight.losses < LOSS_ATTEMPTS:
                return None
            return Outcome(flight.key, error=f"its worker or its result was lost {flight.losses} times (last: "
                           f"{_ray_message(error)})", worker=figures.name, attempts=flight.attempts,
                           latency_s=time.perf_counter() - flight.submitted, losses=flight.losses)
        if status == "error" and flight.attempts - flight.losses < ATTEMPTS:
            return None
        return Outcome(flight.key, value if status == "ok" else None, None if status == "ok" else value,
                       figures.name, flight.attempts, seconds, time.perf_counter() - flight.submitted, flight.losses)

    def _lose(self, worker: int) -> None:
        """A worker died: out of the rotation until it answers again (Ray restarts it where there is room)."""
        self._alive.discard(worker)
        self._figures[worker].lost = True
        self._reviving[self.actors[worker].describe.remote()] = worker

    def _revived(self, ref, idle) -> None:
        """A lost worker's describe() came back: it is back (a new incarnation), or gone for good."""
        worker = self._reviving.pop(ref)
        figures = self._figures[worker]
        try:
            info = self._ray.get(ref)
        except self._ray.exceptions.RayError:
            return  # Ray gave it up (restarts used up): the pool goes on without it
        # The same incarnation answering: the call failed without the worker dying (a dropped connection).
        figures.restarts += info["incarnation"] != figures.incarnation
        self._note_incarnation(figures, info)
        figures.lost = False
        self._alive.add(worker)
        idle.append(worker)

    def _await_revival(self, idle, timeout: float) -> bool:
        """With no worker left: wait up to ``timeout`` s for a lost one to come back; whether one did."""
        deadline = time.monotonic() + timeout
        while self._reviving and not idle:
            ready, _ = self._ray.wait(list(self._reviving), num_returns=1,
                                      timeout=max(0.0, deadline - time.monotonic()))
            if not ready:
                self._why_none = f"none came back within {timeout:g} s"
                break
            self._revived(ready[0], idle)
        return bool(idle)

    def _abandon(self, items, again) -> Iterator[Outcome]:
        """Everything still waiting, failed: called when no item is out and no worker is left."""
        message = (f"every Ray worker was lost and {self._why_none}; run again on a cluster with room "
                   f"(finished items are kept)")
        for flight in again:
            yield Outcome(flight.key, error=message, attempts=flight.attempts)
        again.clear()
        for key, _ in items:
            yield Outcome(key, error=message, attempts=0)

    def workers(self) -> list[dict]:
        return [figures.to_json() for figures in self._figures]

    def close(self) -> None:
        for actor in getattr(self, "actors", []):
            try:
                self._ray.kill(actor)
            except Exception:  # already gone, or Ray shutting down: nothing left to stop
                pass
        self.actors = []
        if self._started_ray:
            self._ray.shutdown()
            self._started_ray = False


def _ray_message(error) -> str:
    """The first line of a Ray error (they span many lines with tracebacks)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return one_line(lines[0] if lines else type(error).__name__)


def open_pool(work, workers: int = 1, ray: Optional[str] = None, cpus_per_worker: Optional[int] = None,
              threads: Optional[int] = None, timeout: Optional[float] = None):
    """A :class:`LocalPool` when ``ray`` is None, else a :class:`RayPool` of ``workers`` actors."""
    if ray is None:
        if workers != 1:
            raise PoolError(f"--workers {workers} needs --ray (one process runs one worker); add --ray to run "
                            f"{workers} workers on this machine")
        return LocalPool(work, threads)
    return RayPool(work, workers, ray, cpus_per_worker, threads, RAY_TIMEOUT_S if timeout is None else timeout)
