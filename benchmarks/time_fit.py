"""One measurement for bench_old_new.py, in a process of its own: prints one JSON line.

    PYTHONPATH=CHECKOUT python time_fit.py MODEL STEPS
"""

import json
import sys
import time

import numpy as np

import handnet as hn

try:
    from handnet.zoo import architectures
except ImportError:  # a checkout from before the zoo
    from handnet import architectures

name, steps = sys.argv[1], int(sys.argv[2])
batch = 128
model = architectures.build(name, seed=0)
model.compile(hn.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
shape = model.input_shape
rng = np.random.default_rng(0)
x = rng.random((steps * batch, *shape), dtype=np.float32)
y = rng.integers(0, 10, steps * batch)
model.fit(x[: 2 * batch], y[: 2 * batch], epochs=1, batch_size=batch, verbose=0, seed=0)
start = time.perf_counter()
model.fit(x, y, epochs=1, batch_size=batch, verbose=0, seed=0)
train = time.perf_counter() - start
images = x[:1000] if len(x) >= 1000 else np.concatenate([x] * (1000 // len(x) + 1))[:1000]
model.predict(images[:100])
start = time.perf_counter()
model.predict(images, batch_size=1000)
rate = 1000 / (time.perf_counter() - start)
one = images[:1]
model.predict(one)
latencies = []
for _ in range(50):
    start = time.perf_counter()
    model.predict(one)
    latencies.append(time.perf_counter() - start)
print(json.dumps({"train_s": train, "images_per_s": rate, "latency_ms": 1000 * min(latencies)}))
