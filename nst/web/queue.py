"""The web page's job queue: one worker thread owns the CPU.

One job: decide when each job runs.  Optimisations run one at a time, in the
order they came; fast jobs jump the queue, and while an optimisation runs they
are served *between its steps* (from its progress callback), so a fast result
never waits for minutes and the two never compete for the cores.  Each job
belongs to one session; :meth:`JobQueue.job` answers only its owner.
"""

from __future__ import annotations

import collections
import logging
import threading
from concurrent.futures import Future
from typing import Optional

from nst.web.jobs import Job, JobError, run_fast, run_optimise

QUEUED_OPTIMISATIONS = 8  # waiting or running, all sessions together
OPTIMISATIONS_PER_SESSION = 2  # waiting or running
QUEUED_FAST = 64  # waiting fast jobs, all sessions together
JOBS_KEPT_PER_SESSION = 32  # finished jobs (their PNGs) kept; the oldest are dropped

log = logging.getLogger("nst.web")


class QueueFull(JobError):
    """Too many jobs waiting (the page says: try again shortly)."""


class JobQueue:
    """``stylizer``: a loaded :class:`nst.fast.stylizer.FastStylizer`, reused by every fast job."""

    def __init__(self, stylizer):
        self.stylizer = stylizer
        self._fast: collections.deque = collections.deque()  # of (Job, Future)
        self._optimise: collections.deque = collections.deque()
        self._running: Optional[Job] = None
        self._jobs: dict = {}  # id -> Job
        self._by_session: dict = collections.defaultdict(collections.OrderedDict)  # token -> {id: Job}
        self._condition = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="nst-web-engine", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------
    # Called from the web handlers

    def submit_fast(self, job: Job) -> Future:
        """Queue a fast job ahead of every optimisation; the future resolves to the job when it finishes."""
        future: Future = Future()
        with self._condition:
            if len(self._fast) >= QUEUED_FAST:
                raise QueueFull("the server is busy; try again in a few seconds")
            if job.request.slot:
                self._supersede(job)
            self._remember(job)
            self._fast.append((job, future))
            self._condition.notify_all()
        return future

    def _supersede(self, job: Job) -> None:
        """A newer fast request of the same session and slot (a moved slider) replaces a queued one."""
        for queued, future in list(self._fast):
            if queued.session == job.session and queued.request.slot == job.request.slot:
                self._fast.remove((queued, future))
                self._finish(queued, "cancelled", "replaced by a newer request")
                future.set_result(queued)

    def submit_optimise(self, job: Job) -> None:
        with self._condition:
            mine = sum(1 for j in [*self._optimise, self._running] if j is not None and j.session == job.session
                       and j.request.method == "optimise")
            if mine >= OPTIMISATIONS_PER_SESSION:
                raise QueueFull(f"you already have {mine} optimisations queued or running; stop one first")
            if len(self._optimise) + (self._running is not None) >= QUEUED_OPTIMISATIONS:
                raise QueueFull("the optimisation queue is full; try again later or use the fast method")
            self._remember(job)
            self._optimise.append(job)
            job.progress = {"queue_position": len(self._optimise) + (self._running is not None)}
            self._condition.notify_all()

    def job(self, session: str, job_id: str) -> Optional[Job]:
        """The job if it exists *and* belongs to this session (otherwise None, as if it did not exist)."""
        job = self._jobs.get(job_id)
        return job if job is not None and job.session == session else None

    def stop(self, job: Job) -> None:
        """Stop a running optimisation (keeps its best image) or cancel a queued one."""
        with self._condition:
            if job in self._optimise:
                self._optimise.remove(job)
                self._finish(job, "cancelled", "cancelled before it started")
            else:
                job.stop_requested = True
            self._condition.notify_all()

    def forget_session(self, token: str) -> None:
        """Cancel and drop a session's jobs (its session expired)."""
        with self._condition:
            for job in list(self._by_session.pop(token, {}).values()):
                if job in self._optimise:
                    self._optimise.remove(job)
                job.stop_requested = True
                self._jobs.pop(job.id, None)
            self._condition.notify_all()

    def close(self) -> None:
        with self._condition:
            self._closed = True
            if self._running is not None:
                self._running.stop_requested = True
            self._condition.notify_all()
        self._thread.join(timeout=30)

    # ------------------------------------------------------------------
    # Bookkeeping (called with the condition held)

    def _remember(self, job: Job) -> None:
        self._jobs[job.id] = job
        owned = self._by_session[job.session]
        owned[job.id] = job
        finished = [j for j in owned.values() if j.finished]
        for old in finished[:max(0, len(owned) - JOBS_KEPT_PER_SESSION)]:
            del owned[old.id]
            self._jobs.pop(old.id, None)

    def _finish(self, job: Job, state: str, message: str = "") -> None:
        with self._condition:  # an RLock: callers may hold it already
            job.state, job.message = state, message or job.message
            job.version += 1
            self._condition.notify_all()

    def changed(self, job: Job) -> None:
        with self._condition:
            job.version += 1
            self._condition.notify_all()

    # ------------------------------------------------------------------
    # The worker thread

    def _work(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._closed or self._fast or self._optimise)
                if self._closed:
                    return
                fast = self._fast.popleft() if self._fast else None
                job = None if fast else self._optimise.popleft()
                if job is not None:
                    self._running = job
                    self._renumber()
            if fast:
                self._run_fast(*fast)
            else:
                self._run(job, lambda: run_optimise(job, self._serve_fast, self.changed))
                with self._condition:
                    self._running = None

    def _renumber(self) -> None:
        for position, waiting in enumerate(self._optimise, start=2):
            waiting.progress = {"queue_position": position}
            waiting.version += 1

    def _serve_fast(self) -> None:
        """Run every waiting fast job now (called between two optimisation steps)."""
        while True:
            with self._condition:
                if not self._fast or self._closed:
                    return
                fast = self._fast.popleft()
            self._run_fast(*fast)

    def _run_fast(self, job: Job, future: Future) -> None:
        self._run(job, lambda: run_fast(job, self.stylizer))
        future.set_result(job)

    def _run(self, job: Job, body) -> None:
        """Run one job; a bad request or an engine failure fails that job only, never the worker."""
        if job.stop_requested:  # its session expired while it waited
            self._finish(job, "cancelled", "cancelled")
            return
        with self._condition:
            job.state = "running"
            job.version += 1
            self._condition.notify_all()
        try:
            body()
        except JobError as error:
            self._finish(job, "failed", str(error))
        except Exception as error:  # pragma: no cover - an engine bug: report it, keep serving
            log.exception("job %s failed", job.id)
            self._finish(job, "failed", f"the engine failed ({type(error).__name__}: {error}); try a smaller size")
        else:
            self._finish(job, "stopped" if job.state == "stopped" else "done")
