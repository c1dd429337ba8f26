"""One module per orchestrator; each turns a PipelineConfig into a run or a spec."""
from pipeline.runners import local

RUNNERS = {"local": local.run}  # pipeline.runner -> the function that runs the pipeline with it
