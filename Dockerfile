FROM python:3.11-slim
WORKDIR /opt/storepulse/app
COPY . .
RUN pip install --no-cache-dir -e . \
 && dagster-dbt project prepare-and-package --file orchestration/project.py
RUN mkdir -p /opt/dagster/dagster_home && cp docker/dagster.yaml /opt/dagster/dagster_home/dagster.yaml
