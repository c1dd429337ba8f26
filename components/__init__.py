"""Code that runs inside the clipflow pipeline's components.

Keras choice, made once here: tf-keras (Keras 2). tensorflow_transform and
tensorflow_model_analysis 0.47 are built on Keras 2 and set
``TF_USE_LEGACY_KERAS`` on import, which only works if nothing touched
``tf.keras`` before. Setting it here, before any component module imports
TensorFlow, makes ``tf.keras`` mean the same thing in every process. Our own
model is a plain ``tf.Module`` and uses no Keras at all.
"""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
