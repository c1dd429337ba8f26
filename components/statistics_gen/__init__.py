"""Statistics of the examples: TFX's StatisticsGen with TFDV's generators run in process."""
