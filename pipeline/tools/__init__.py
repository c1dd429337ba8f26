"""Post-run tools: TensorBoard over a pipeline's runs, the exploding-gradient experiment and its report,
event files read back, and headless-Chromium screenshots. The pipeline itself does not import them."""
