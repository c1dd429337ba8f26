"""Orchestration of the clipflow TFX pipeline: config, wiring, runners."""
import components  # noqa: F401  (pins the Keras choice before TensorFlow loads)
