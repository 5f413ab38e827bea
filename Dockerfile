# SANCHARi OGC API - Processes service.
#
# Build:  docker build -t sanchari .                (CPU: OpenVINO, no torch; ~1.2 GB venv)
#         docker build --build-arg EXTRAS=gee,train -t sanchari-gpu .
#                                                    (adds torch, whose PyPI wheels carry CUDA:
#                                                     --device cuda, adaptation, training)
# Run:    docker run -p 5000:5000 -v /data/geotiffs:/data/geotiffs:ro \
#           -v sanchari-jobs:/data/jobs sanchari
# (With the train extra and a GPU, add --gpus all; the host's NVIDIA driver is mounted.)
# Earth Engine (road-extraction-gee): add -v /path/key.json:/run/secrets/ee-key.json:ro
#   -e SANCHARI_GEE_SERVICE_ACCOUNT_KEY=/run/secrets/ee-key.json -e SANCHARI_GEE_PROJECT=PROJECT
#
# NOTE: written with care but not built or run here (no Docker on the development machines).

FROM python:3.12-slim

ARG DEBIAN_FRONTEND=noninteractive
# OpenMP for the numeric wheels that link it (skimage, torch's CPU kernels).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

# A virtual environment keeps pip away from the system Python.
RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app
# Dependencies first (cached layer), then the code. rasterio/pyproj/shapely wheels bundle GDAL
# and PROJ, so no system GIS libraries are needed. The shipped model carries its exported
# network, so the base install runs it without torch; EXTRAS=gee,train brings torch (with CUDA).
ARG EXTRAS=gee
COPY setup.cfg pyproject.toml README.md* ./
COPY sanchari_processes/__init__.py sanchari_processes/__init__.py
RUN pip install --upgrade pip && pip install ".[${EXTRAS}]"
COPY sanchari_processes sanchari_processes
COPY training training
COPY weights weights
COPY pygeoapi-config.yml openapi.yml ./
# Editable install: sanchari_processes/data links to weights/ and pygeoapi-config.yml here;
# training/ makes the `sanchari train` family of commands loadable.
RUN pip install --no-deps -e .

RUN useradd --create-home --uid 10001 sanchari \
    && mkdir -p /data/geotiffs /data/jobs /data/models \
    && chown -R sanchari /data
USER sanchari

ENV SANCHARI_GEOTIFF_DIR=/data/geotiffs \
    SANCHARI_JOBS_DIR=/data/jobs \
    SANCHARI_MODELS_DIR=/data/models \
    SANCHARI_DEVICE=auto \
    SANCHARI_WORKERS=1 \
    PYGEOAPI_CONFIG=/app/pygeoapi-config.yml
VOLUME ["/data/jobs", "/data/models"]
EXPOSE 5000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/processes', timeout=4)"

# SANCHARI_URL sets the public base URL used in links (default http://localhost:5000).
CMD ["sanchari", "serve", "--host", "0.0.0.0", "--port", "5000"]
