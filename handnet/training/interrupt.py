"""Ctrl-C (SIGINT) and SIGTERM while fit runs: stop between two steps, never inside one.

Python turns Ctrl-C into a KeyboardInterrupt wherever the program happens to be; in the middle
of an optimizer update some weights would be new and others old, and the work since the last
checkpoint would be lost. While ``deferred`` is active the signal only raises a flag: fit looks
at it after each complete step, has callbacks.BackupAndRestore save exactly that point, and
raises TrainingInterrupted. A second signal means "now": it raises KeyboardInterrupt at once, as
if nothing were deferred (a checkpoint being written is then abandoned whole: writes are atomic,
so the last complete one stays).
"""

import contextlib
import os
import signal
import threading

from .checkpoint import position

#: Ctrl-C, and what laptops (on shutdown) and batch schedulers (before a kill) send.
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(KeyboardInterrupt):
    """fit stopped on a signal at a step boundary, after its checkpoint was saved there.

    A KeyboardInterrupt, so code that handles Ctrl-C handles this too. ``signum`` is the signal;
    ``epochs_done`` and ``batches`` (of the next epoch) say where the run stopped, and
    ``exit_status`` is what a shell reports for a process that signal ended: 128 + signum, 130
    for Ctrl-C, 143 for SIGTERM.
    """

    def __init__(self, signum, epochs_done, batches):
        self.signum, self.epochs_done, self.batches = signum, epochs_done, batches
        where = position(epochs_done, batches)
        super().__init__(f"{signal.Signals(signum).name}: training stopped {where}")

    @property
    def exit_status(self):
        return 128 + self.signum


class Deferral:
    """The flag the handler raises; ``requested`` is the signal that came, or None."""

    def __init__(self, announce=False):
        self.requested = None
        self.announce = announce

    def handle(self, signum, frame):
        if self.requested is not None:
            raise KeyboardInterrupt  # the second signal: stop now
        self.requested = signum
        if self.announce:  # os.write, not print: a handler may run while print holds the stream
            os.write(2, b"\nhandnet: stopping after this step to save a checkpoint "
                        b"(interrupt again to stop at once)\n")  # fmt: skip

    def stopped(self, epochs_done, batches):
        """The TrainingInterrupted that ends fit; the signal counts as handled."""
        signum, self.requested = self.requested, None
        return TrainingInterrupted(signum, epochs_done, batches)


@contextlib.contextmanager
def deferred(enabled=True, announce=False):
    """``with deferred() as deferral:`` SIGINT and SIGTERM set ``deferral.requested`` instead of
    acting. Signal handlers can only be set in the main thread: elsewhere, or when not
    ``enabled``, nothing changes; nor for a signal the process ignores. The previous handlers
    come back on leaving, also on an exception; a signal that came too late for the body to act on
    is then delivered to them, so none is ever lost."""
    deferral = Deferral(announce)
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield deferral
        return
    # A signal the process ignores (a job started with nohup or in the background of a script
    # ignores SIGINT) stays ignored: taking it over would let it stop what its owner shielded.
    taken = [signum for signum in SIGNALS if signal.getsignal(signum) is not signal.SIG_IGN]
    previous = {signum: signal.signal(signum, deferral.handle) for signum in taken}
    try:
        yield deferral
    finally:
        for signum, handler in previous.items():
            # None: a handler set outside Python, which cannot be put back; the default is closest.
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
    if deferral.requested is not None:
        signal.raise_signal(deferral.requested)
