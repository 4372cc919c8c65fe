"""handnet train: train a named architecture, test it, and write the model, history and plots."""

import argparse
import dataclasses
import time
from pathlib import Path

from .. import augment, plots
from ..errors import HandnetError
from ..preprocess import prepare_images
from ..zoo import architectures, recipes
from . import checkpointing
from .common import (
    MODEL_PLOTS,
    RECONSTRUCTION_PLOTS,
    TEST_SET_PLOTS,
    add_dataset_arguments,
    add_json_argument,
    fraction,
    load_dataset,
    non_negative_int,
    plot_model,
    plot_reconstruction_set,
    plot_test_set,
    positive_float,
    positive_int,
    reconstruction_score,
    score,
    write_json,
)

DATA_FILES = ("model.npz", "history.json", "results.json")
PLOT_FILES = ("curves.png", *TEST_SET_PLOTS, *MODEL_PLOTS)
#: What a run writes to its folder (the pictures unless --plots sends them elsewhere).
RUN_FILES = DATA_FILES + PLOT_FILES
#: The pictures of a reconstruction (an autoencoder): no confusion matrix, no mistakes.
RECONSTRUCTION_PLOT_FILES = ("curves.png", *RECONSTRUCTION_PLOTS, *MODEL_PLOTS)
#: What the recipe's task calls the loss, for the curves' axis.
LOSS_NAMES = {"classify": "cross-entropy", "reconstruct": "mean squared error"}


def register(subparsers):
    recipe_lines = "\n".join(
        f"  {name}: {recipe.optimizer}, learning rate {recipe.learning_rate:g}, {recipe.schedule} "
        f"schedule, {recipe.epochs} epochs, batch {recipe.batch_size}. {architecture.description}"
        for name, architecture in sorted(architectures.ARCHITECTURES.items())
        for recipe in [architecture.training]
    )
    train = subparsers.add_parser(
        "train",
        help="train a network, test it, and plot the run",
        description="Train on the training set (less a validation part), then test on the test "
        "set; writes model.npz, history.json, results.json and seven pictures. An autoencoder "
        "(--model autoencoder) learns to redraw its input and is tested on the mean squared "
        "error instead of the accuracy.",
        epilog=f"Default settings (recipes) of each architecture:\n{recipe_lines}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument(
        "--model",
        default="mlp",
        choices=sorted(architectures.ARCHITECTURES),
        help="architecture (default: mlp)",
    )
    train.add_argument(
        "--epochs", type=positive_int, help="passes over the training set (default: the recipe's)"
    )
    train.add_argument(
        "--batch-size", type=positive_int, help="images per gradient step (default: the recipe's)"
    )
    train.add_argument(
        "--optimizer",
        choices=recipes.OPTIMIZER_NAMES,
        help="update rule (default: the recipe's)",
    )
    train.add_argument(
        "--lr",
        type=positive_float,
        help="peak learning rate (default: the recipe's, or the optimizer's usual one)",
    )
    train.add_argument(
        "--schedule",
        choices=recipes.SCHEDULE_NAMES,
        help="learning-rate schedule (default: the recipe's)",
    )
    train.add_argument(
        "--warmup-steps",
        type=non_negative_int,
        help="warm-up steps before the decay (cosine and onecycle schedules)",
    )
    train.add_argument(
        "--augment",
        nargs="?",
        const="on",
        metavar="SETTINGS",
        help="randomly rotate, shift and scale each training batch (handnet.augment.RandomAffine). "
        "Alone: rotation=10,shift=0.1,scale=0.9:1.1; or name parts, e.g. "
        "rotation=15,elastic=34:4 or flip=0.5 (clothes); 'off' turns it off "
        "(default: the recipe's)",
    )
    train.add_argument(
        "--augment-layers",
        action="store_true",
        help="augment with Keras layers at the model's input (RandomRotation, RandomTranslation, "
        "RandomZoom: saved and exported with the model, identity at inference) instead of "
        "through fit; the same settings (handnet.zoo.augmentation)",
    )
    train.add_argument(
        "--label-smoothing",
        type=fraction,
        metavar="EPSILON",
        help="train towards (1 - ε)·one-hot + ε/10 instead of one-hot (default: the recipe's)",
    )
    train.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the weights, shuffling and dropout (default: 0)",
    )
    add_dataset_arguments(train)
    train.add_argument(
        "--train-limit",
        type=positive_int,
        metavar="N",
        help="use only the first N training images (quick runs)",
    )
    train.add_argument(
        "--validation-split",
        type=float,
        default=0.1,
        metavar="FRACTION",
        help="last fraction of the training images held out to validate each epoch (default: 0.1)",
    )
    train.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="folder for the model, history and plots (default: runs/MODEL-DATASET)",
    )
    train.add_argument(
        "--plots",
        type=Path,
        metavar="DIR",
        help=f"folder for the pictures (default: the --out folder): {', '.join(PLOT_FILES)}; "
        f"an autoencoder's: {', '.join(RECONSTRUCTION_PLOT_FILES)}",
    )
    train.add_argument(
        "--no-plots",
        action="store_true",
        help="draw no pictures (the model, history and results are written all the same): "
        "for a timed run, such as the speed run of `--model fast`",
    )
    add_json_argument(train)
    checkpointing.add_arguments(train)
    train.add_argument(
        "--skip-nonfinite",
        action="store_true",
        help="skip a batch whose loss or gradients are NaN or infinite (and count it) instead "
        "of stopping",
    )
    train.add_argument(
        "-q", "--quiet", action="store_true", help="no progress output while training"
    )
    train.set_defaults(command=train_command)


def train_command(args):
    started = time.perf_counter()
    args = checkpointing.arguments(args)  # with --resume: the settings the run began with
    architecture = architectures.get(args.model)
    settings = _training_settings(args, architecture.training)
    # The recipe refuses settings that do not fit its task (augmenting a reconstruction): now,
    # before the data is loaded. Its task is the architecture's, not an option.
    recipe = dataclasses.replace(
        architecture.training,
        **{
            field.name: settings[field.name]
            for field in dataclasses.fields(recipes.TrainingRecipe)
            if field.name in settings
        },
    )
    out = args.out or Path("runs") / f"{args.model}-{args.dataset}"
    plots_folder = args.plots or out
    for folder in (out, plots_folder):
        folder.mkdir(parents=True, exist_ok=True)  # fail now, not after an hour of training

    title, (x_train, y_train), (x_test, y_test), class_names = load_dataset(
        args, verbose=not args.quiet
    )
    if args.train_limit:
        x_train, y_train = x_train[: args.train_limit], y_train[: args.train_limit]
    recipes.split_counts(len(x_train), args.validation_split)  # fail now if it cannot split
    layers_augment = None
    if settings["augment_as"] == "layers":  # the model augments; fit does not
        layers_augment, recipe = recipe.augment, dataclasses.replace(recipe, augment=None)
    model = architectures.build(args.model, seed=args.seed, augmentation=layers_augment)
    backup = checkpointing.backup_callback(args)
    try:
        run = recipes.train(
            recipe,
            (x_train, y_train),
            model,
            validation_split=args.validation_split,
            seed=args.seed,
            callbacks=[backup] if backup else None,
            verbose=0 if args.quiet else 1,
            threads=getattr(args, "threads", None),
            on_nonfinite="skip" if args.skip_nonfinite else "raise",
        )
    except KeyboardInterrupt as interruption:  # with a backup, Ctrl-C or SIGTERM after a step
        if backup is None:
            raise
        return checkpointing.interrupted(backup, interruption)
    history, num_fit = run.history, run.images["train"]
    task = recipe.task
    x_test = prepare_images(x_test, model.input_shape)
    if task == "reconstruct":
        reconstructions, scores = reconstruction_score(model, x_test)
    else:
        probabilities, scores = score(model, x_test, y_test)

    run_title = f"{args.model} on {title}"
    model.save(out / "model.npz")
    (out / "history.json").write_text(history.to_json() + "\n")
    embedding, plot_files = None, []
    if not args.no_plots:
        embedding, plot_files = _draw(
            settings, model, history, task, run_title, plots_folder,
            (x_train, y_train, x_test, y_test, class_names),
            reconstructions if task == "reconstruct" else probabilities,
        )
    if task == "reconstruct":
        scored = {"task": task, "test_mse": scores["mse"], "test_loss": scores["loss"]}
    else:
        scored = {"test_accuracy": scores["accuracy"], "test_loss": scores["loss"]}
    results = {
        "model": args.model,
        "dataset": args.dataset,
        **scored,
        "epochs": len(history.epoch),
        "steps_per_epoch": run.steps_per_epoch,
        "train_seconds": run.train_seconds,
        "train_images_per_second": num_fit * len(history.epoch) / run.train_seconds,
        "total_seconds": time.perf_counter() - started,
        "settings": settings,
        "images": {**run.images, "test": len(x_test)},
        "parameters": model.count_params(),
        "final_epoch": {key: values[-1] for key, values in history.history.items()},
    }
    if task == "reconstruct":
        results["embedding"] = embedding
    else:
        results["confusion_matrix"] = plots.confusion_matrix(
            y_test, probabilities.argmax(axis=1), probabilities.shape[1]
        ).tolist()
    results.update(
        {
            "out": str(out),
            "files": list(DATA_FILES) + (plot_files if plots_folder == out else []),
            "plots": None if args.no_plots else str(plots_folder),
        }
    )
    write_json(out / "results.json", results)
    if args.json:
        write_json(args.json, results)
    _print_run(run_title, results, args.json, plot_files)
    return 0


def _training_settings(args, recipe):
    """The recipe's settings, overridden by the options given. An optimizer other than the
    recipe's starts from its own usual learning rate, not from the recipe's."""
    optimizer = args.optimizer or recipe.optimizer
    if args.lr is not None:
        learning_rate = args.lr
    elif optimizer == recipe.optimizer:
        learning_rate = recipe.learning_rate
    else:
        learning_rate = recipes.DEFAULT_LEARNING_RATES[optimizer]
    if not 0 <= args.validation_split < 1:
        raise HandnetError(f"--validation-split must be in [0, 1), got {args.validation_split}")
    augmentation = recipe.augment if args.augment is None else augment.parse_settings(args.augment)
    augment_as = "layers" if getattr(args, "augment_layers", False) else "fit"
    if augment_as == "layers" and augmentation is None:
        raise HandnetError(
            f"--augment-layers needs augmentation settings: {args.model}'s recipe has none "
            "(or --augment off was given); name them with --augment"
        )
    return {
        "optimizer": optimizer,
        "learning_rate": learning_rate,
        "schedule": args.schedule or recipe.schedule,
        "warmup_steps": recipe.warmup_steps if args.warmup_steps is None else args.warmup_steps,
        "epochs": args.epochs or recipe.epochs,
        "batch_size": args.batch_size or recipe.batch_size,
        "augment": augmentation,
        "augment_as": augment_as,
        "label_smoothing": (
            recipe.label_smoothing if args.label_smoothing is None else args.label_smoothing
        ),
        "seed": args.seed,
        "validation_split": args.validation_split,
        "train_limit": args.train_limit,
    }



def _draw(settings, model, history, task, run_title, folder, data, outputs):
    """The run's pictures in ``folder``: (the autoencoder's embedding or None, file names)."""
    x_train, y_train, x_test, y_test, class_names = data
    plots.plot_training_curves(
        history.history,
        folder / "curves.png",
        title=f"{run_title}: training curves",
        loss_name=LOSS_NAMES[task],
    )
    test_title = f"{run_title}, test set"
    embedding = None
    if task == "reconstruct":
        test_set_plots, embedding = plot_reconstruction_set(
            folder, model, x_test, outputs, y_test, class_names, test_title
        )
    else:
        plot_test_set(folder, x_test, y_test, outputs, class_names, title=test_title)
        test_set_plots = list(TEST_SET_PLOTS)
    batch = slice(0, settings["batch_size"])
    x_batch = prepare_images(x_train[batch], model.input_shape)
    model_plots = plot_model(folder, model, x_batch, y_train[batch], class_names, run_title,
                             task=task)
    return embedding, ["curves.png", *test_set_plots, *model_plots]

def _print_run(run_title, results, json_path, plot_files):
    settings, images = results["settings"], results["images"]
    epochs = results["epochs"]
    details = f" after {settings['warmup_steps']} warm-up steps" if settings["warmup_steps"] else ""
    if settings["augment"] is not None:
        details += "; augmented images"
        if settings.get("augment_as") == "layers":
            details += " (by layers at the input)"
    if settings["label_smoothing"]:
        details += f"; label smoothing {settings['label_smoothing']:g}"
    if "test_mse" in results:
        print(
            f"{run_title}: test MSE {results['test_mse']:.5f} (mean squared error per pixel, "
            "pixels in [0, 1])"
        )
    else:
        print(
            f"{run_title}: test accuracy {results['test_accuracy']:.2%}, "
            f"test loss {results['test_loss']:.4f}"
        )
    print(
        f"  {epochs} epoch{'s' if epochs != 1 else ''} of {results['steps_per_epoch']} steps × "
        f"{settings['batch_size']} images; {settings['optimizer']}, learning rate "
        f"{settings['learning_rate']:g}, {settings['schedule']} schedule{details}; "
        f"seed {settings['seed']}"
    )
    print(
        f"  {images['train']:,} training, {images['validation']:,} validation (held out from "
        f"training), {images['test']:,} test images; {results['parameters']:,} parameters"
    )
    print(
        f"  training took {results['train_seconds']:.1f} s, "
        f"{results['train_images_per_second']:,.0f} images/s"
    )
    print(
        f"Wrote {results['out']}/: {' '.join(results['files'])}"
        + (f"; and {json_path}" if json_path else "")
    )
    if results["plots"] not in (None, results["out"]):
        print(f"Wrote {results['plots']}/: {' '.join(plot_files)}")
