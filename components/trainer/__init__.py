"""The Trainer's run_fn: MLP, clip strategies, telemetry, training loop."""
