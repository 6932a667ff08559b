# Dataflow workers with fimpack preinstalled (README: "Running on Dataflow"): the Beam Python
# SDK image of the Beam version pinned in constraints.txt, plus fimpack and its pipeline
# dependencies at the pinned versions. No torch: the training extra is not installed.
#   docker build -t REGION-docker.pkg.dev/PROJECT/REPO/fimpack-worker:0.1.0 .
#   docker push REGION-docker.pkg.dev/PROJECT/REPO/fimpack-worker:0.1.0
#   fimpack build --runner DataflowRunner ... \
#       --sdk_container_image REGION-docker.pkg.dev/PROJECT/REPO/fimpack-worker:0.1.0
# Python 3.11: the submitting interpreter's minor version must match the image's.
FROM apache/beam_python3.11_sdk:2.77.0

WORKDIR /opt/fimpack
COPY pyproject.toml constraints.txt README.md ./
COPY fimpack/ fimpack/
COPY pipelines/ pipelines/
COPY packing/ packing/
COPY dedup/ dedup/
COPY model/ model/
COPY train/ train/
RUN pip install --no-cache-dir -c constraints.txt . \
    && python -c "import fimpack.pipelines.build, tree_sitter_python, sentencepiece" \
    && ! python -c "import torch" 2>/dev/null
