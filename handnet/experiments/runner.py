"""Run an experiment's grid in parallel, skipping the runs already finished.

Each run trains in its own worker, so the runs share nothing and a grid of R runs on C cores
takes about R/C run-times. The workers are processes on this machine (the default) or the
workers of a Dask cluster (``scheduler``, see cluster.py); either way a worker runs
``train_run`` and sends back what it found, and this process writes each run's folder as the
run comes back, then the report. One code path, so the two give the same folders and tables.

NumPy's BLAS would start a thread per core in *every* process and the processes would then
fight over the cores; each local worker is therefore told to use one thread. BLAS reads that
from the environment when NumPy is first imported, so the variables are set in this process
before the workers are started ('spawn': fresh interpreters that import NumPy anew; 'fork'
would copy a NumPy whose threads are already set up). Dask's nanny does the same for its
workers (its distributed.nanny.pre-spawn-environ).
"""

import contextlib
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from ..errors import HandnetError
from .cluster import DaskPool
from .report import write_report
from .training import RESULT_FILE, train_run, write_json_atomic, write_run

THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def run_experiment(experiment, out, jobs=None, scheduler=None, print_fn=print):
    """Train every run of ``experiment`` not yet finished in ``out``, then write the tables and
    plots of all of them; returns the results (dicts, as in each result.json), in grid order.

    ``jobs`` worker processes on this machine (default: one per core); 1 trains in this
    process. ``scheduler``, the address of a Dask scheduler (tcp://host:8786), trains the runs
    on its workers instead; their results come back here to be written.
    """
    if scheduler is not None and jobs is not None:
        raise HandnetError(
            f"jobs={jobs} sets the local process pool; with a Dask scheduler ({scheduler}) the "
            "workers' threads decide how many runs train at once: give one or the other"
        )
    out = Path(out)
    runs = experiment.runs()
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "experiment.json", experiment.to_dict())
    counter = _Counter(len(runs), print_fn)
    results, todo = {}, []
    for run in runs:
        finished = _finished_result(out / run.name, run)
        if finished:
            results[run.name] = finished
            counter.say(run.name, "skipped: done")
        else:
            todo.append(run)

    failures = {}
    for run, found, error in _train(todo, jobs or os.cpu_count() or 1, scheduler, print_fn):
        if error is None:
            results[run.name] = write_run(out / run.name, *found)
            counter.say(run.name, _summary(results[run.name]))
        else:
            failures[run.name] = error
            counter.say(run.name, f"failed: {type(error).__name__}: {error}")

    ordered = [results[run.name] for run in runs if run.name in results]
    if ordered:
        write_report(experiment, ordered, out)
    if failures:
        first = next(iter(failures.values()))
        raise HandnetError(
            f"{len(failures)} of {len(runs)} runs failed ({', '.join(failures)}); the others are "
            f"in {out}, and running the experiment again retries only the failed ones"
        ) from first
    return ordered


def _finished_result(folder, run):
    """The run's result.json, if it holds this very run; None if the run has not finished."""
    path = folder / RESULT_FILE
    if not path.exists():
        return None
    result = json.loads(path.read_text())
    requested = json.loads(json.dumps(run.requested))  # as JSON gives it back: lists, not tuples
    if result.get("requested") != requested:
        changed = sorted(
            name
            for name in set(requested) | set(result.get("requested", {}))
            if requested.get(name) != result.get("requested", {}).get(name)
        )
        raise HandnetError(
            f"{folder} holds a run with other settings ({', '.join(changed)} differ); to keep "
            "both, give the experiment another --out folder, or delete that run to redo it"
        )
    return result


def _train(runs, jobs, scheduler, print_fn):
    """Yield (run, (result, history), None) or (run, None, exception) for each run, in the
    order the runs finish."""
    if not runs:
        return
    if scheduler is None and (jobs == 1 or len(runs) == 1):
        for run in runs:
            try:
                yield run, train_run(*_arguments(run)), None
            except Exception as error:  # noqa: BLE001 — one bad run must not stop the others
                yield run, None, error
        return
    pool = DaskPool(scheduler, print_fn) if scheduler else _ProcessPool(min(jobs, len(runs)))
    with pool:
        futures = {pool.submit(run.name, train_run, *_arguments(run)): run for run in runs}
        try:
            for future in pool.as_completed(futures):
                run = futures.pop(future)  # and the future with it: the worker may forget it
                try:
                    found, error = pool.result(future), None
                except Exception as raised:  # noqa: BLE001 — as above
                    found, error = None, raised
                yield run, found, error
        except BaseException:  # Ctrl-C: start no more runs
            pool.cancel(futures)
            raise


def _arguments(run):
    return run.name, run.varied, run.requested, run.config


class _ProcessPool:
    """``workers`` processes on this machine, started afresh ('spawn') with one BLAS thread."""

    def __init__(self, workers):
        self.workers = workers

    def __enter__(self):
        self._stack = contextlib.ExitStack()
        self._stack.enter_context(_one_thread_per_worker())
        context = multiprocessing.get_context("spawn")
        self.executor = self._stack.enter_context(ProcessPoolExecutor(self.workers, context))
        return self

    def __exit__(self, *exception):
        return self._stack.__exit__(*exception)

    def submit(self, name, function, *arguments):
        return self.executor.submit(function, *arguments)

    def as_completed(self, futures):
        return as_completed(futures)

    def result(self, future):
        return future.result()

    def cancel(self, futures):
        self.executor.shutdown(cancel_futures=True)


@contextlib.contextmanager
def _one_thread_per_worker():
    """Set the BLAS thread counts to 1 for the processes started inside, then restore them."""
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    os.environ.update({name: "1" for name in THREAD_VARIABLES})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class _Counter:
    """Prints "[3/8] lr=0.1: ..." lines, numbered in the order the runs finish."""

    def __init__(self, total, print_fn):
        self.total, self.done, self.print_fn = total, 0, print_fn

    def say(self, name, text):
        self.done += 1
        self.print_fn(f"[{self.done}/{self.total}] {name}: {text}")


def _summary(result):
    seconds = f"{result['train_seconds']:.1f} s"
    if result["diverged"]:
        where = result["diverged_at"]
        return (
            f"diverged (loss not finite) in epoch {where['epoch']}, batch {where['batch']}; "
            f"{seconds}"
        )
    final = result["final"]
    validation = (
        f"validation accuracy {final['val_accuracy']:.2%}, " if "val_accuracy" in final else ""
    )
    return (
        f"{validation}test accuracy {result['test_accuracy']:.2%} after {result['epochs']} "
        f"epoch{'s' if result['epochs'] != 1 else ''}; {seconds}"
    )

