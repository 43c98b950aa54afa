"""A small stand-in for `Model.fit` that runs the model's own `train_step` under any
tf.distribute strategy.

Why not `fit`:
- Keras 3.15's `fit` fails under MultiWorkerMirroredStrategy
  (https://github.com/keras-team/keras/issues/20585: PerReplica values reach the
  symbolic build, and `reduce_per_replica` cannot reduce scalar metrics).
- `fit` cannot start in the middle of an epoch (Keras 3's BackupAndRestore restores
  the epoch only), so a run killed mid-epoch would not resume to the same weights.
When Keras fixes both, this module can go and `fit(initial_step=...)` take its place.

The loop calls `model.train_step` / `model.test_step` through `strategy.run` (so the
loss, gradient all-reduce and loss scaling are the model's own) and averages the
returned metrics over replicas (each replica's Mean holds an equal share of the
global batch). Keras callbacks get the calls `fit` would make.
"""

import keras
import numpy as np
import tensorflow as tf

from diqa_tf.training.distribute import shard_by_data


def _reduced(strategy, step, iterator):
    outputs = strategy.run(step, args=(next(iterator),))
    return {
        name: strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)
        for name, value in outputs.items()
    }


def train(
    model,
    strategy,
    dataset,
    *,
    steps_per_epoch,
    epochs,
    callbacks=(),
    initial_step=0,
    validation=None,
    validation_steps=None,
    verbose=1,
):
    """Train `model` (built and compiled in `strategy.scope()`) on an endless
    `dataset` of global batches, from global step `initial_step` (the caller has
    restored the weights and skipped the data to it). Returns the keras History.

    One step per call: `compile(steps_per_execution > 1)` is refused, since Keras runs
    it wrongly under MirroredStrategy (https://github.com/keras-team/keras/issues/19246)
    and this loop would silently ignore it.
    """
    if getattr(model, "steps_per_execution", 1) != 1:
        raise ValueError(
            "steps_per_execution > 1 is not supported (keras-team/keras#19246 under "
            "MirroredStrategy); compile with steps_per_execution=1"
        )
    with strategy.scope():
        model.optimizer.build(model.trainable_variables)
    train_fn = tf.function(lambda it: _reduced(strategy, model.train_step, it))
    test_fn = tf.function(lambda it: _reduced(strategy, model.test_step, it))
    iterator = iter(strategy.experimental_distribute_dataset(shard_by_data(dataset)))
    if validation is not None:
        validation = strategy.experimental_distribute_dataset(shard_by_data(validation))

    callbacks = keras.callbacks.CallbackList(
        list(callbacks),
        add_history=True,
        add_progbar=verbose != 0,
        model=model,
        verbose=verbose,
        epochs=epochs,
        steps=steps_per_epoch,
    )
    model.stop_training = False
    first_epoch, first_batch = divmod(initial_step, steps_per_epoch)
    logs = {}
    callbacks.on_train_begin()
    for epoch in range(first_epoch, epochs):
        model.reset_metrics()
        callbacks.on_epoch_begin(epoch)
        for batch in range(first_batch if epoch == first_epoch else 0, steps_per_epoch):
            callbacks.on_train_batch_begin(batch)
            # Tensors, as `fit` passes them: no host sync per step.
            logs = train_fn(iterator)
            callbacks.on_train_batch_end(batch, logs)
            if model.stop_training:
                break
        logs = _numpy(logs)
        if validation is not None:
            model.reset_metrics()
            val_iterator = iter(validation)
            for _ in range(validation_steps):
                val_logs = test_fn(val_iterator)
            logs.update({f"val_{name}": value for name, value in _numpy(val_logs).items()})
        callbacks.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callbacks.on_train_end(logs)
    return model.history


def _numpy(logs):
    return {name: float(np.asarray(value)) for name, value in logs.items()}
