"""TFMA configuration for the Evaluator."""
