"""The Evaluator: its executor, and the TFMA configuration and metric it runs."""
