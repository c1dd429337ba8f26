"""One module per orchestrator; each turns a PipelineConfig into a run or a spec."""
