"""An experiment's results side by side: results.md, results.csv, results.json, and the learning
curves of every run overlaid in accuracy.png and loss.png.

Rows are in grid order. Training figures are means over each epoch's steps, taken while the
weights still move (and with dropout on); validation and test figures are measured afterwards.
"""

import csv
import io
import json
from pathlib import Path

from ..atomic import write_bytes_atomic
from .settings import format_value
from .training import HISTORY_FILE, write_json_atomic

#: (column, heading in results.md, format in results.md); CSV and JSON keep the raw numbers.
COLUMNS = (
    ("train_loss", "train loss", "{:.4f}"),
    ("train_accuracy", "train acc.", "{:.2%}"),
    ("val_loss", "val. loss", "{:.4f}"),
    ("val_accuracy", "val. acc.", "{:.2%}"),
    ("test_accuracy", "test acc.", "{:.2%}"),
    ("epochs", "epochs", "{}"),
    ("train_seconds", "train time (s)", "{:.1f}"),
    ("diverged", "diverged", "{}"),
)
PLOTS = ("accuracy.png", "loss.png")


def write_report(experiment, results, out):
    """Write the tables and plots of ``results`` (result.json dicts, in grid order) to ``out``."""
    out = Path(out)
    varied = list(experiment.grid)
    rows = [_row(result, varied) for result in results]
    fixed = {
        name: value for name, value in results[0]["config"].items() if name not in varied
    }
    write_json_atomic(
        out / "results.json",
        {**experiment.to_dict(), "fixed": fixed, "varied": varied, "runs": rows},
    )
    write_bytes_atomic(out / "results.csv", _csv(rows, varied).encode())
    markdown = _markdown(experiment, results, rows, varied, fixed)
    write_bytes_atomic(out / "results.md", markdown.encode())
    histories = [json.loads((out / result["run"] / HISTORY_FILE).read_text()) for result in results]
    labels, legend_title = _labels(results, varied)
    # Imported here: matplotlib takes half a second to load, which every `handnet` command
    # would pay at start-up (the CLI imports this module) for the one that draws these.
    from .figures import colours_for, plot_accuracy, plot_loss

    colours = colours_for(results, varied)
    title = experiment.title
    plot_accuracy(histories, results, labels, legend_title, colours, title, out / PLOTS[0])
    plot_loss(histories, results, labels, legend_title, colours, title, out / PLOTS[1])


def _row(result, varied):
    final = result["final"]
    return {
        "run": result["run"],
        **{name: result["varied"][name] for name in varied},
        "train_loss": final.get("loss"),
        "train_accuracy": final.get("accuracy"),
        "val_loss": final.get("val_loss"),
        "val_accuracy": final.get("val_accuracy"),
        "test_loss": result["test_loss"],
        "test_accuracy": result["test_accuracy"],
        "epochs": result["epochs"],
        "train_seconds": result["train_seconds"],
        "diverged": result["diverged"],
        "diverged_in_epoch": result["diverged_at"]["epoch"] if result["diverged"] else None,
    }


def _csv(rows, varied):
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, **{name: format_value(row[name]) for name in varied}})
    return text.getvalue()


def _markdown(experiment, results, rows, varied, fixed):
    lines = [f"# {experiment.title}", ""]
    if experiment.description:
        lines += [experiment.description, ""]
    images = results[0]["images"]
    same_images = all(result["images"] == images for result in results)
    lines += [
        "Every run: " + ", ".join(f"{name}={format_value(value)}" for name, value in fixed.items())
        + ".",
        "",
        (
            f"{images['train']:,} training images, {images['validation']:,} validation, "
            f"{images['test']:,} test. " if same_images else ""
        )
        + "Train loss and accuracy are means over the last epoch's steps, taken while the "
        "weights still move (and with dropout, if any, on); validation and test are measured "
        "after it.",
        "",
    ]
    headings = [*varied, *(heading for _, heading, _ in COLUMNS)]
    lines.append("| " + " | ".join(headings) + " |")
    lines.append("|" + "---|" * len(varied) + "---:|" * len(COLUMNS))
    for row in rows:
        cells = [format_value(row[name]) for name in varied]
        for column, _, style in COLUMNS:
            value = row[column]
            if column == "diverged":
                cells.append(f"yes, epoch {row['diverged_in_epoch']}" if value else "no")
            else:
                cells.append("—" if value is None else style.format(value))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *(f"![{name[:-4]}]({name})" for name in PLOTS), ""]
    return "\n".join(lines)


def _labels(results, varied):
    """Legend entries: the varied values ("relu, 0.1"), under a legend title naming the settings."""
    labels = []
    for result in results:
        label = ", ".join(format_value(result["varied"][name]) for name in varied) or result["run"]
        if result["diverged"]:
            label += f" (diverged in epoch {result['diverged_at']['epoch']})"
        labels.append(label)
    return labels, ", ".join(varied) or None
