"""What fit shows while it trains: a tqdm bar on a terminal, one line per epoch elsewhere."""

import sys

from tqdm.auto import tqdm


class EpochProgress:
    """verbose=0: silent.  verbose=1: a live bar (loss, accuracy, images/s) when stderr is a
    terminal, else one line per epoch.  verbose=2: one line per epoch."""

    def __init__(self, epoch, epochs, num_samples, verbose):
        interactive = sys.stderr.isatty()
        self.title = f"Epoch {epoch + 1}/{epochs}"
        self.bar = tqdm(
            total=num_samples,
            desc=self.title,
            unit="img",
            disable=not (verbose == 1 and interactive),
            mininterval=0.25,
            leave=True,
        )
        self.print_line = verbose == 2 or (verbose == 1 and not interactive)

    def update(self, count, loss, accuracy=None):
        self.bar.update(count)
        if not self.bar.disable:
            postfix = {"loss": f"{loss:.4f}"}
            if accuracy is not None:
                postfix["acc"] = f"{accuracy:.4f}"
            self.bar.set_postfix(postfix, refresh=False)

    def close(self, logs):
        self.bar.close()
        if self.print_line:
            figures = " - ".join(
                f"{key}: {value:.4g}" if key != "seconds" else f"{value:.1f}s"
                for key, value in logs.items()
            )
            print(f"{self.title} - {figures}", file=sys.stderr, flush=True)
