"""tf.Transform preprocessing: configurable pixel scaling."""
