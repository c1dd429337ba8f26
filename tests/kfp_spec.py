"""Reading a compiled KFP v2 PipelineJob (the JSON dict pipeline.runners.kubeflow_v2 writes)."""
import json


def task_custom_config(spec: dict, task: str) -> dict:
    """The ``custom_config`` a component's task was compiled with."""
    parameters = spec["pipelineSpec"]["root"]["dag"]["tasks"][task]["inputs"]["parameters"]
    return json.loads(parameters["custom_config"]["runtimeValue"]["constantValue"]["stringValue"])
