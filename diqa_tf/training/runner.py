"""What both stages share: resume from OUTPUT/backup, log, train under a strategy."""

import keras

from diqa_tf.training import distributed_loop
from diqa_tf.training.checkpoints import TrainingCheckpoint
from diqa_tf.training.distribute import make_strategy, worker_output
from diqa_tf.training.logs import EpochCSV, EpochSummaries

CHECKPOINT_EVERY = 100  # steps; and at each epoch end


def prepare(output_dir, strategy, seed):
    """(strategy, this worker's output folder, created), with the random seed set.

    `strategy` None: `make_strategy()`. In a multi-worker cluster the workers other
    than the chief write to `output_dir/worker-<i>` (see `worker_output`).
    """
    strategy = strategy or make_strategy()
    output_dir = worker_output(output_dir, strategy)
    output_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    return strategy, output_dir


def run(
    model,
    strategy,
    dataset,
    output_dir,
    name,
    *,
    steps_per_epoch,
    epochs,
    resume,
    checkpoint_every,
    verbose,
    validation=None,
    validation_steps=None,
    callbacks=(),
    stateful=(),
    sample=None,
):
    """Train `model` (built in `strategy.scope()`) and write `{name}_log.csv`,
    `tensorboard/` and `backup/` to `output_dir`.

    With `resume` and a checkpoint in `backup/`, the weights, optimizer, `stateful`
    callbacks and the data stream continue from the checkpoint's step: the
    generated data are seeded per step, so skipping the steps already taken gives
    the batches the interrupted run would have seen next. `callbacks` run first, so
    what they add to the epoch logs reaches TensorBoard and the CSV. The checkpoints
    are removed once training ends. Returns the keras History.
    """
    checkpoint = TrainingCheckpoint(
        output_dir / "backup", steps_per_epoch, checkpoint_every, stateful
    )
    initial_step = 0
    if resume:
        with strategy.scope():
            initial_step = checkpoint.restore(model)
    else:
        checkpoint.remove()
    callbacks = [
        *callbacks,
        EpochSummaries(output_dir / "tensorboard", steps_per_epoch, sample=sample),
        EpochCSV(output_dir / f"{name}_log.csv", append=initial_step > 0),
        checkpoint,
    ]
    history = distributed_loop.train(
        model,
        strategy,
        dataset.skip(initial_step),
        steps_per_epoch=steps_per_epoch,
        epochs=epochs,
        callbacks=callbacks,
        initial_step=initial_step,
        validation=validation,
        validation_steps=validation_steps,
        verbose=verbose,
    )
    checkpoint.remove()
    return history
