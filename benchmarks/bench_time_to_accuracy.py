"""Time to a test accuracy: the same recipe trained in handnet and in PyTorch, side by side.

Both frameworks train the named architecture (default: ``fast``) on the real MNIST training
set with its recipe — the same optimizer, peak learning rate, schedule (PyTorch follows
handnet's schedule step by step through LambdaLR), batch size and number of epochs — and
measure the test accuracy after every epoch. The clock runs from the first training step and
includes every test evaluation; the data is already in memory for both (handnet train's own
wall time, data loading included, is in README's table). A framework that reaches the target
stops there. Both run in this one process, where glibc's malloc is asked to keep freed memory
from the start (as handnet's fit does, handnet.training.memory): one allocator setting for
both (bench_train.py's default too).

    python benchmarks/bench_time_to_accuracy.py [--model fast] [--target 0.99] [--json PATH]
"""

import argparse
import math
import time

from common import print_table, set_threads, write_json

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--model", default="fast")
parser.add_argument("--target", type=float, default=0.99)
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--frameworks", nargs="+", default=["handnet", "pytorch"])
parser.add_argument("--json")
args = parser.parse_args()
set_threads(args.threads)

import numpy as np  # noqa: E402
from twins import torch_input, torch_twin  # noqa: E402

from handnet.preprocess import prepare_images  # noqa: E402
from handnet.training import memory  # noqa: E402
from handnet.zoo import architectures, recipes  # noqa: E402
from handnet.datasets import mnist  # noqa: E402

memory.keep_freed_memory()  # for both frameworks (see above)
architecture = architectures.get(args.model)
recipe = architecture.training
(x_train, y_train), (x_test, y_test) = mnist.load_data()
x_train = prepare_images(x_train, architecture.input_shape)
x_test = prepare_images(x_test, architecture.input_shape)
y_train, y_test = y_train.astype(np.int64), y_test.astype(np.int64)
steps_per_epoch = math.ceil(len(x_train) / recipe.batch_size)
total_steps = steps_per_epoch * recipe.epochs


def make_optimizer():
    return recipes.make_optimizer(
        recipe.optimizer, recipe.learning_rate, recipe.schedule, total_steps, recipe.warmup_steps,
        recipe.betas,
    )


def race(train_epoch, test_accuracy):
    """Epochs until the target; returns a row with the time and accuracy at each epoch."""
    curve, started = [], time.perf_counter()
    for _ in range(recipe.epochs):
        train_epoch()
        accuracy = test_accuracy()
        curve.append((time.perf_counter() - started, accuracy))
        if accuracy >= args.target:
            break
    reached = curve[-1][1] >= args.target
    return {
        "seconds": curve[-1][0] if reached else float("nan"),
        "epochs": len(curve),
        "accuracy": curve[-1][1],
        "curve": curve,
    }


def handnet_race():
    from handnet import augment

    model = architectures.build(args.model, seed=args.seed)
    model.compile(make_optimizer(), "sparse_categorical_crossentropy", metrics=["accuracy"])
    augmenter = augment.RandomAffine(**recipe.augment) if recipe.augment else None
    rng = np.random.default_rng(args.seed)

    def epoch():
        seed = int(rng.integers(2**31))
        model.fit(
            x_train,
            y_train,
            epochs=1,
            batch_size=recipe.batch_size,
            verbose=0,
            seed=seed,
            augment=augmenter,
        )

    return race(epoch, lambda: model.evaluate(x_test, y_test)["accuracy"])


def torch_race():
    import torch

    if recipe.augment:
        raise SystemExit("the PyTorch side has no augmentation; pick a recipe without it")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    net = torch_twin(architectures.build(args.model, seed=args.seed))
    schedule = make_optimizer().schedule  # handnet's schedule, followed step by step
    optimizers = {
        "adam": torch.optim.Adam,
        "adamw": torch.optim.AdamW,
        "rmsprop": torch.optim.RMSprop,
    }
    betas = {"betas": tuple(recipe.betas)} if recipe.betas and recipe.optimizer != "rmsprop" else {}
    optimizer = optimizers[recipe.optimizer](net.parameters(), lr=1.0, **betas)
    step_rates = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: float(schedule(step)))
    xt, yt = torch_input(x_train), torch.from_numpy(y_train)
    xt_test = torch_input(x_test)

    def epoch():
        net.train()
        for index in torch.randperm(len(xt)).split(recipe.batch_size):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(net(xt[index]), yt[index]).backward()
            optimizer.step()
            step_rates.step()

    def test_accuracy():
        net.eval()
        with torch.inference_mode():
            predicted = torch.cat(
                [net(xt_test[i : i + 1000]).argmax(1) for i in range(0, len(xt_test), 1000)]
            )
        return float((predicted.numpy() == y_test).mean())

    return race(epoch, test_accuracy)


races = {"handnet": handnet_race, "pytorch": torch_race}
rows = []
for framework in args.frameworks:
    row = {"framework": framework, **races[framework]()}
    rows.append(row)
    curve = ", ".join(f"{a:.2%} @ {t:.0f} s" for t, a in row["curve"])
    print(f"{framework}: {curve}", flush=True)

reference = next((r["seconds"] for r in rows if r["framework"] == "pytorch"), float("nan"))
for row in rows:
    row["ratio"] = row["seconds"] / reference
print_table(
    f"{args.model}: time to {args.target:.1%} MNIST test accuracy ({args.threads} threads; "
    f"{recipe.optimizer} {recipe.learning_rate:g}, {recipe.schedule}, batch {recipe.batch_size}, "
    f"at most {recipe.epochs} epochs)",
    rows,
    [
        ("framework", "framework", "{}"),
        ("seconds", "seconds", "{:.1f}"),
        ("epochs", "epochs", "{}"),
        ("accuracy", "test accuracy", "{:.2%}"),
        ("ratio", "× PyTorch", "{:.2f}"),
    ],
)
if args.json:
    write_json(
        args.json,
        {"model": args.model, "target": args.target, "threads": args.threads, "rows": rows},
    )
