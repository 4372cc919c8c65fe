"""Sequential: a stack of layers, trained with mini-batch gradient descent.

One training step on a batch (x, y):

    forward:    a₀ = x,  a_{i+1} = layer_i.forward(a_i, training=True)
    loss:       L = loss(y, a_L) + Σ regularization penalties
    backward:   g_L = ∂L/∂a_L,  g_i = layer_i.backward(g_{i+1})   (each layer fills its grads)
    update:     optimizer.apply((name, param, grad) for every trainable parameter)

When the network ends in a softmax and the loss is a cross-entropy on probabilities, the
backward pass starts from the fused gradient ∂L/∂z = (p - y)/N at the softmax's input.
"""

import math
import time

import numpy as np

from . import callbacks as callbacks_module
from . import checkpoint, interrupt, losses, nonfinite, optimizers, parallel, validation
from .activations import Softmax
from .errors import HandnetError, InvalidInputError
from . import layers as layers_module
from .layers import fused
from .layers.base import unique_name
from .layers.core import Input
from .progress import EpochProgress


class Sequential:
    def __init__(self, layers=None, name=None, seed=None):
        self.name = name or unique_name("sequential")
        self.seed = seed
        self.layers = []
        self.input_shape = None
        self.optimizer = None
        self.loss = None
        self.metrics = []
        self.stop_training = False
        self.history = None
        self.fit_state = None  # while fit runs: its generators and history (handnet.checkpoint)
        for layer in layers or []:
            self.add(layer)

    # -- construction -------------------------------------------------------------------
    def add(self, layer):
        if isinstance(layer, Input):
            if self.layers:
                raise HandnetError("Input must come first in a Sequential model")
            self.input_shape = layer.shape
            return
        if self.built:
            raise HandnetError("add layers before the model is built (before fit/predict/build)")
        if any(existing.name == layer.name for existing in self.layers):
            raise HandnetError(
                f"two layers are named {layer.name!r}; names key the saved weights and the "
                "optimizer's state, so each must be unique"
            )
        self.layers.append(layer)

    @property
    def built(self):
        return bool(self.layers) and all(layer.built for layer in self.layers)

    @property
    def dtype(self):
        return self.layers[0].dtype if self.layers else np.dtype("float32")

    @property
    def output_shape(self):
        return self.layers[-1].output_shape

    def build(self, input_shape=None):
        """Create every layer's parameters for per-sample ``input_shape`` (e.g. (784,)).

        Weights are drawn from ``np.random.default_rng(seed)``, one child generator per layer,
        so the same seed gives the same network. A built model is left as it is (its trained
        weights are not drawn again), as in Keras; another input shape is refused.
        """
        if self.built:
            if input_shape is not None and tuple(int(d) for d in input_shape) != self.input_shape:
                raise HandnetError(
                    f"the model is built for inputs of shape {self.input_shape}, got "
                    f"{tuple(input_shape)}: build a new model for other inputs"
                )
            return self
        if input_shape is not None:
            self.input_shape = tuple(int(d) for d in input_shape)
        if self.input_shape is None:
            raise HandnetError("the model does not know its input shape: start it with Input(shape)")
        if not self.layers:
            raise HandnetError("the model has no layers")
        rngs = np.random.default_rng(self.seed).spawn(len(self.layers))
        shape = self.input_shape
        for layer, rng in zip(self.layers, rngs):
            layer.build(shape, rng=rng)
            shape = layer.output_shape
        return self

    def compile(self, optimizer="adam", loss="sparse_categorical_crossentropy", metrics=("accuracy",)):
        self.optimizer = optimizers.get(optimizer)
        self.loss = losses.get(loss)
        self.metrics = list(metrics or [])
        unknown = [m for m in self.metrics if m not in ("accuracy", "acc")]
        if unknown:
            raise HandnetError(f"unknown metrics {unknown}; handnet computes 'accuracy'")
        return self

    def cast(self, dtype):
        """Run every layer in ``dtype`` (float64 for gradient checks)."""
        for layer in self.layers:
            layer.cast(dtype)
        return self

    # -- the two passes -------------------------------------------------------------------
    def forward(self, x, training=False):
        for step in self.execution_steps():
            x = step.forward(x, training=training)
        return x

    def execution_steps(self, layers=None):
        """The layers (default: all) as the two passes run them: a Conv2D(activation="relu")
        directly followed by a MaxPooling2D runs with it as one fused step (handnet.layers.fused)."""
        return fused.execution_steps(self.layers if layers is None else layers)

    def __call__(self, x, training=False):
        return self.forward(x, training=training)

    def backward(self, dy, input_gradient=False):
        """Backpropagate dy = ∂L/∂output through every layer; returns ∂L/∂x (or None).

        Layers before the first trainable one need no gradient, so the pass stops there.
        """
        return self._backward_from(len(self.layers) - 1, dy, input_gradient, through_last_activation=True)

    def _backward_from(self, last, grad, input_gradient, through_last_activation):
        needed = input_gradient
        for layer in self.layers:
            layer.needs_input_gradient = needed
            needed = needed or bool(layer.trainable and layer.params)
        steps = self.execution_steps(self.layers[: last + 1])
        for index in range(len(steps) - 1, -1, -1):
            step = steps[index]
            if not step.needs_input_gradient and not (step.trainable and step.params):
                return None
            if index == len(steps) - 1 and not through_last_activation:
                grad = step.backward_pre_activation(grad)
            else:
                grad = step.backward(grad)
        return grad

    def _softmax_fused(self):
        return (
            isinstance(self.loss, losses._Crossentropy)
            and not self.loss.from_logits
            and isinstance(self.layers[-1].activation, Softmax)
        )

    def compute_gradients(self, x, y, training=True, input_gradient=False):
        """Forward, loss, and backward: fills every layer's grads.

        Returns (loss, predictions, ∂L/∂x or None); the loss includes regularization penalties.
        """
        predictions = self.forward(x, training=training)
        loss = self.loss(y, predictions) + self.regularization_penalty()
        last = len(self.layers) - 1
        if self._softmax_fused():
            grad, through_softmax = self.loss.logits_gradient(y, predictions), False
        else:
            grad, through_softmax = self.loss.gradient(y, predictions), True
        dx = self._backward_from(last, grad, input_gradient, through_softmax)
        return loss, predictions, dx

    def train_on_batch(self, x, y):
        """One gradient step on (x, y); returns (loss, predictions)."""
        loss, predictions, _ = self.compute_gradients(x, y)
        self.optimizer.apply(self.trainable_variables())
        return loss, predictions

    def trainable_variables(self):
        """(key, parameter, gradient) for every trainable parameter; key = "layer/param"."""
        return [
            (f"{layer.name}/{key}", layer.params[key], layer.grads[key])
            for layer in self.layers
            if layer.trainable
            for key in layer.params
        ]

    def regularization_penalty(self):
        return sum(layer.regularization_penalty() for layer in self.layers)

    # -- the Keras verbs ------------------------------------------------------------------
    def _prepare_x(self, x, what="x"):
        x = validation.check_features(x, self.input_shape, self.dtype, what)
        if not self.built:
            self.build(x.shape[1:])
        return x

    def _prepare_y(self, y, num_samples, what="y"):
        sparse = not isinstance(self.loss, (losses.CategoricalCrossentropy, losses.MeanSquaredError))
        return validation.check_targets(y, num_samples, self.output_shape, sparse, what)

    def _require_compiled(self):
        if self.optimizer is None or self.loss is None:
            raise HandnetError("compile the model first: model.compile(optimizer=..., loss=...)")

    def fit(
        self,
        x,
        y,
        epochs=1,
        batch_size=32,
        validation_data=None,
        validation_split=0.0,
        shuffle=True,
        callbacks=None,
        verbose=1,
        seed=None,
        initial_epoch=0,
        threads=None,
        augment=None,
        on_nonfinite="raise",
    ):
        """Train for ``epochs`` passes over (x, y) in shuffled mini-batches; returns a History.

        x (N, *input_shape), y (N,) integer labels (or (N, K) for categorical/mse losses).
        ``validation_split`` holds out the *last* fraction of the data before shuffling, as Keras.
        ``seed`` fixes the shuffling and dropout masks: same seed (and same ``threads``), same run.
        ``threads`` (default: as many as NumPy's BLAS uses) splits each batch across threads,
        one core each (handnet.parallel); 1 runs each batch whole (BLAS keeps its own threads).
        ``augment(x_batch, rng) -> x_batch'`` (e.g. handnet.augment.RandomAffine) transforms each
        training batch, drawing from a generator seeded by ``seed``; validation data stays as it is.
        A step whose loss or gradients are not finite stops training with a TrainingDivergedError
        (``on_nonfinite="raise"``) or is skipped (``"skip"``; logs count ``skipped_batches``).
        While it runs, ``self.fit_state`` (handnet.checkpoint.FitState) holds its generators and
        history, so a callback (callbacks.BackupAndRestore) can save the run and resume it. With
        such a backup, Ctrl-C or SIGTERM ends the step under way, backs that point up and raises
        handnet.interrupt.TrainingInterrupted (a KeyboardInterrupt); a second one stops at once.
        """
        self._require_compiled()
        nonfinite.check_mode(on_nonfinite)
        if augment is not None and not callable(augment):
            raise HandnetError(f"augment must be callable as augment(x, rng), got {augment!r}")
        x = self._prepare_x(x)
        if len(x) == 0:
            raise InvalidInputError(f"fit needs at least one sample, got x of shape {x.shape}")
        y = self._prepare_y(y, len(x))
        batch_size = validation.check_batch_size(batch_size, 32)
        if validation_split and validation_data is None:
            if not 0 < validation_split < 1:
                raise HandnetError(f"validation_split must be in (0, 1), got {validation_split}")
            cut = int(len(x) * (1 - validation_split))  # Keras's split point
            if cut == 0 or cut == len(x):
                raise HandnetError(
                    f"validation_split={validation_split} of {len(x)} samples leaves {cut} for "
                    f"training and {len(x) - cut} for validation; each needs at least one"
                )
            x, validation_data = x[:cut], (x[cut:], y[cut:])
            y = y[:cut]
        if validation_data is not None:
            x_val = self._prepare_x(validation_data[0], "validation x")
            y_val = self._prepare_y(validation_data[1], len(x_val), "validation y")

        rng = np.random.default_rng(seed)
        for layer, child in zip(self.layers, rng.spawn(len(self.layers))):
            if hasattr(layer, "rng") and getattr(layer, "seed", None) is None:
                layer.rng = child
        split = parallel.splitter(self, threads, rng.spawn(1)[0], batch_size)
        augment_rng = rng.spawn(1)[0]  # spawned last: runs without augment draw as before
        history = callbacks_module.History()
        generators = checkpoint.fit_generators(self, rng, split, augment_rng, augment)
        self.fit_state = checkpoint.FitState(generators, initial_epoch, history)
        state_guard = nonfinite.StateGuard(self) if on_nonfinite == "skip" else None
        callback_list = [history, *(callbacks or [])]
        backups = [c for c in callback_list if isinstance(c, callbacks_module.BackupAndRestore)]
        for callback in callback_list:
            callback.set_model(self)
            callback.on_train_begin()
        self.stop_training = False
        track_accuracy = bool(self.metrics)

        # With a backup, Ctrl-C and SIGTERM wait for the step under way (handnet.interrupt).
        with interrupt.deferred(enabled=bool(backups), announce=verbose > 0) as interruption:
            for epoch in range(self.fit_state.initial_epoch, epochs):
                for callback in callback_list:
                    callback.on_epoch_begin(epoch)
                shuffle_state = rng.bit_generator.state  # to draw this order again on resuming
                order = rng.permutation(len(x)) if shuffle else np.arange(len(x))
                progress = EpochProgress(epoch, epochs, len(x), verbose)
                # A fit resumed inside this epoch goes on from its sums after the batches done.
                resumed = self.fit_state.resume_epoch(len(x), batch_size)
                loss_sum, correct = resumed.loss_sum, resumed.correct
                seen, skipped = resumed.seen, resumed.skipped
                started = time.perf_counter() - resumed.seconds
                with split:
                    for batch, start in enumerate(range(0, len(x), batch_size)):
                        if batch < resumed.batches:  # done before the fit was stopped
                            continue
                        index = order[start : start + batch_size]
                        x_batch = x[index] if augment is None else augment(x[index], augment_rng)
                        step = self._train_step(split, x_batch, y[index], state_guard, epoch, batch)
                        if step is None:
                            skipped += 1
                            continue
                        batch_loss, predictions = step
                        n = len(index)
                        loss_sum += batch_loss * n
                        seen += n
                        if track_accuracy:
                            correct += _count_correct(predictions, y[index])
                        progress.update(
                            n, loss_sum / seen, correct / seen if track_accuracy else None
                        )
                        for callback in callback_list[1:]:
                            callback.on_batch_end(batch, {"loss": batch_loss})
                        if interruption.requested:  # the step is complete: back it up and stop
                            self.fit_state.partial_epoch = checkpoint.PartialEpoch(
                                samples=len(x), batch_size=batch_size, batches=batch + 1,
                                shuffle_state=shuffle_state, loss_sum=loss_sum, correct=correct,
                                seen=seen, skipped=skipped, seconds=time.perf_counter() - started,
                            )
                            raise _stop_interrupted(backups, interruption, epoch, batch + 1)
                logs = {"loss": loss_sum / seen if seen else math.nan}
                if track_accuracy:
                    logs["accuracy"] = correct / seen if seen else math.nan
                if on_nonfinite == "skip":
                    logs["skipped_batches"] = skipped
                if validation_data is not None:
                    logs.update({f"val_{k}": v for k, v in self.evaluate(x_val, y_val).items()})
                logs["learning_rate"] = float(self.optimizer.learning_rate)
                logs["seconds"] = time.perf_counter() - started
                progress.close(logs)
                for callback in callback_list:
                    callback.on_epoch_end(epoch, logs)
                if interruption.requested:  # came after the last step: the epoch's end is the point
                    raise _stop_interrupted(backups, interruption, epoch + 1, 0)
                if self.stop_training:
                    break
        for callback in callback_list:
            callback.on_train_end()
        self.history = history
        return history

    def _train_step(self, split, x_batch, y_batch, state_guard, epoch, batch):
        """One step of gradient descent on x_batch (n, *input_shape), y_batch (n,) labels (or
        (n, K) targets): the gradients ∂L/∂θ (split across threads), a look for NaN and
        infinity, then θ ← optimizer update. Returns (mean loss L, predictions (n, K)), or None
        when the batch is skipped for not being finite (``state_guard``: on_nonfinite="skip")."""
        if state_guard:
            state_guard.save()
        batch_loss, predictions = split.compute_gradients(x_batch, y_batch)
        fault = nonfinite.fault(self, batch_loss)
        if fault and state_guard:
            state_guard.restore()
            if nonfinite.parameters_finite(self):  # else skipping cannot recover
                return None
        if fault:
            raise nonfinite.diverged(self, fault, batch_loss, x_batch, epoch, batch)
        self.optimizer.apply(self.trainable_variables())
        return batch_loss, predictions

    def predict(self, x, batch_size=None):
        """Outputs for x (N, *input_shape) -> (N, *output_shape), in inference mode.

        batch_size: samples per forward pass (default: see ``_inference_runner``)."""
        x = self._prepare_x(x)
        split, batch_size = self._inference_runner(len(x), batch_size)
        with split:
            outputs = [split.forward(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
        if not outputs:
            return np.zeros((0, *self.output_shape), dtype=self.dtype)
        return np.concatenate(outputs)

    def _inference_runner(self, n, batch_size):
        """(runner, batch size) for forward passes over n samples. By default 256 samples a pass,
        or 64 per thread when passes are split across threads: a part's im2col columns then
        stay in the cache (measured: the cnns predict 10–30 % more images/s than with parts of
        128)."""
        if batch_size is not None:
            batch_size = validation.check_batch_size(batch_size, None)
            return parallel.splitter(self, batch_size=min(n, batch_size)), batch_size
        split = parallel.splitter(self, batch_size=min(n, INFERENCE_BATCH))
        threads = getattr(split, "threads", 1)
        return split, INFERENCE_BATCH if threads < 2 else INFERENCE_PART * threads

    def evaluate(self, x, y, batch_size=None):
        """{"loss": mean loss (with regularization), "accuracy": fraction correct} on (x, y)."""
        self._require_compiled()
        x = self._prepare_x(x)
        y = self._prepare_y(y, len(x))
        if len(x) == 0:
            raise HandnetError("evaluate needs at least one sample")
        loss_sum = correct = 0.0
        split, batch_size = self._inference_runner(len(x), batch_size)
        with split:
            for i in range(0, len(x), batch_size):
                predictions = split.forward(x[i : i + batch_size])
                loss_sum += self.loss(y[i : i + batch_size], predictions) * len(predictions)
                correct += _count_correct(predictions, y[i : i + batch_size])
        results = {"loss": loss_sum / len(x) + self.regularization_penalty()}
        if self.metrics:
            results["accuracy"] = correct / len(x)
        return results

    # -- weights, description, saving -----------------------------------------------------
    def get_weights(self):
        """Copies of every weight in Keras's order: each layer's params, then its state."""
        return [weight.copy() for layer in self.layers for weight in layer.weights().values()]

    def set_weights(self, weights):
        weights = list(weights)
        expected = [(layer, key, target) for layer in self.layers for key, target in layer.weights().items()]
        if len(weights) != len(expected):
            raise HandnetError(f"set_weights: expected {len(expected)} arrays, got {len(weights)}")
        for (layer, key, target), value in zip(expected, weights):
            value = np.asarray(value)
            if value.shape != target.shape:
                raise HandnetError(
                    f"set_weights: layer {layer.name!r} {key} expects shape "
                    f"{target.shape}, got {value.shape}"
                )
            target[...] = value

    def count_params(self):
        return sum(layer.count_params() for layer in self.layers)

    def summary(self, print_fn=print):
        """A Keras-style table: layer (type), output shape, parameter count."""
        if not self.built and self.input_shape is not None:
            self.build()
        print_fn(summary_text(self))

    def get_config(self):
        return {
            "name": self.name,
            "seed": self.seed,
            "input_shape": None if self.input_shape is None else list(self.input_shape),
            "layers": [layers_module.serialize(layer) for layer in self.layers],
        }

    def save(self, path):
        """Save architecture, weights, compile settings and optimizer state to one .npz file."""
        from .saving import save_model

        save_model(self, path)

    def __repr__(self):
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"Sequential([{inner}])"

    def to_keras(self, path):
        """Write a Keras 3 .keras file that ``keras.models.load_model`` opens (see handnet.keras_io)."""
        from .keras_io import to_keras

        to_keras(self, path)


#: Samples per forward pass of predict and evaluate: whole, and per thread when split.
INFERENCE_BATCH = 256
INFERENCE_PART = 64


def _stop_interrupted(backups, interruption, epochs_done, batches):
    """The TrainingInterrupted that ends a fit a signal stopped, once each BackupAndRestore has
    saved the point reached: ``epochs_done`` epochs, then ``batches`` of the next."""
    for backup in backups:
        backup.on_interrupt(epochs_done)
    return interruption.stopped(epochs_done, batches)


def _count_correct(predictions, y):
    predicted = predictions.argmax(axis=-1)
    truth = y if y.ndim == predicted.ndim else y.argmax(axis=-1)
    return int((predicted == truth).sum())


def summary_text(model):
    rows = [("Layer (type)", "Output Shape", "Param #")]
    for layer in model.layers:
        shape = "(None, " + ", ".join(map(str, layer.output_shape or ("?",))) + ")"
        rows.append((f"{layer.name} ({type(layer).__name__})", shape, f"{layer.count_params():,}"))
    widths = [max(len(row[i]) for row in rows) + 3 for i in range(3)]
    line = lambda row: row[0].ljust(widths[0]) + row[1].ljust(widths[1]) + row[2].rjust(widths[2])  # noqa: E731
    rule = "=" * sum(widths)
    trainable = sum(layer.count_params() for layer in model.layers if layer.trainable)
    total = model.count_params()
    return "\n".join(
        [
            f'Model: "{model.name}"',
            line(rows[0]),
            rule,
            *(line(row) for row in rows[1:]),
            rule,
            f"Total params: {total:,}",
            f"Trainable params: {trainable:,}",
            f"Non-trainable params: {total - trainable:,}",
        ]
    )
