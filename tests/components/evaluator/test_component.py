"""The Evaluator's executor: TFX's, with the batch TFMA passes printed summarized in the message it discards."""
import numpy as np
import pytest
import tensorflow as tf

from components.evaluator.component import Evaluator, Executor, summarized_reprs
from pipeline.config import PipelineConfig
from pipeline.pipeline import create_pipeline


def _serving_signature(tmp_path):
    """A saved signature taking serialized examples by keyword, as the Trainer exports the model."""
    module = tf.Module()
    module.serve = tf.function(lambda examples: {"length": tf.strings.length(examples)},
                               input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    tf.saved_model.save(module, str(tmp_path), signatures={"serving_default": module.serve})
    return tf.saved_model.load(str(tmp_path)).signatures["serving_default"]


def test_a_positional_call_fails_with_the_batch_in_its_message_which_is_summarized_while_tfma_runs(tmp_path):
    """What TFMA does (the batch as a positional argument): TensorFlow's structured call refuses it with a
    message holding the batch's repr, in full by default, before its flat call succeeds."""
    signature = _serving_signature(tmp_path)
    batch = tf.constant([b"x" * 3000] * 1000)  # a batch of TFMA's size, records of an MNIST record's size
    messages = []
    for context in (np.printoptions, summarized_reprs):
        with context(), pytest.raises(TypeError) as refused:
            signature._call_with_structured_signature((batch,), {})  # noqa: SLF001  (the call that fails first)
        messages.append(str(refused.value))
        with context():
            assert (signature(batch)["length"].numpy() == 3000).all()  # then it succeeds, flat, whatever the context
    assert len(messages[0]) > 3_000_000  # every record, in full
    assert len(messages[1]) < 40_000  # REPR_ELEMENTS' worth at most
    assert np.get_printoptions()["threshold"] == 1000  # numpy's default, back after the context


def test_the_pipeline_evaluates_with_this_executor():
    evaluators = [c for c in create_pipeline(PipelineConfig()).components if c.id == "Evaluator"]
    assert len(evaluators) == 1 and isinstance(evaluators[0], Evaluator)
    assert evaluators[0].executor_spec.executor_class is Executor
