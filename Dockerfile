# The image a compiled KFP v2 / Vertex AI pipeline runs (--runner kubeflow-v2 --image ...).
# Python 3.10 plus this project, installed with the same pinned constraints as the local venv,
# and the kfp extra (the PipelineSpec protos TFX's container entrypoint reads).
# Not built on the project's machines (no Docker engine there); see docs/runners.md, "Kubeflow Pipelines v2 / Vertex AI".
FROM python:3.10.13-slim

# The compiled spec names files under this folder (pipeline/runners/kubeflow_v2.py: IMAGE_PROJECT_ROOT).
WORKDIR /clipflow
COPY pyproject.toml constraints.txt README.md ./
COPY pipeline/ pipeline/
COPY components/ components/
COPY schemas/ schemas/
RUN pip install --no-cache-dir -c constraints.txt '.[kfp]'
ENV TF_CPP_MIN_LOG_LEVEL=2
