"""An experiment's runs on a Dask distributed cluster: ``handnet experiment --scheduler ADDRESS``.

Dask (https://distributed.dask.org) is the engine: its scheduler hands each run to a free
worker, moves a run to another worker when a worker dies, and is watched on its dashboard.
handnet only submits ``train_run`` once per run, as the local process pool does, and gets back
what it returns: the result and the history, plain data. The process that started the grid
writes them (``write_run``), so the workers need no folder shared with it, and a run's folder
is written by one process only, whether the grid ran here or there.

``distributed`` is an optional dependency (``pip install 'handnet[cluster]'``), imported when a
pool is opened, never when handnet is.
"""

import asyncio
import concurrent.futures
import uuid

from ..errors import HandnetError

INSTALL = "pip install 'handnet[cluster]'"


class DaskPool:
    """The workers of the Dask scheduler at ``address`` (tcp://host:8786), as a pool of runs.

    ``with DaskPool(address, print) as pool``: connects (or raises HandnetError), and says
    how many workers and threads the scheduler has; on leaving, disconnects, which lets the
    scheduler forget the runs not fetched yet.
    """

    def __init__(self, address, print_fn=print):
        self.address, self.print_fn = address, print_fn
        self.client = None

    def __enter__(self):
        try:
            import distributed
        except ImportError as error:
            raise HandnetError(
                f"--scheduler {self.address} runs the grid on Dask distributed, which is not "
                f"installed here: {INSTALL} (and on every worker)"
            ) from error
        self._as_completed = distributed.as_completed
        try:
            # The connect timeout is Dask's distributed.comm.timeouts.connect (30 s by default).
            self.client = distributed.Client(self.address, set_as_default=False)
        except (OSError, ValueError, TypeError) as error:
            raise HandnetError(
                f"no Dask scheduler answered at {self.address!r} ({error}); start one with "
                "`dask scheduler` and give its address, such as tcp://host:8786"
            ) from None
        threads = self.client.nthreads()
        self.print_fn(
            f"Dask scheduler {self.address}: {_count(len(threads), 'worker')}, "
            f"{_count(sum(threads.values()), 'thread')}"
            + ("; the runs wait for a worker to join" if not threads else "")
        )
        return self

    def __exit__(self, *exception):
        self.client.close()

    def submit(self, name, function, *arguments):
        # The run's name leads the task's key, as the dashboard shows it; the random tail keeps
        # two submissions of one run (two clients, or a retry) apart on the scheduler.
        return self.client.submit(function, *arguments, key=f"{name}-{uuid.uuid4().hex}")

    def as_completed(self, futures):
        return self._as_completed(futures, loop=self.client.loop)

    def result(self, future):
        """The task's return value; its exception raised here, as the worker raised it."""
        try:
            return future.result()
        except (asyncio.CancelledError, concurrent.futures.CancelledError) as error:
            # The scheduler went away, or another client cancelled the task: one run's failure,
            # not an abort (and asyncio's CancelledError, which some Dask versions raise, is
            # not an Exception at all).
            raise HandnetError(f"the run was cancelled on the cluster: {error}") from None

    def cancel(self, futures):
        self.client.cancel(list(futures))


def _count(number, noun):
    return f"{number} {noun}{'' if number == 1 else 's'}"
