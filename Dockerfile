FROM python:3.11-slim
WORKDIR /opt/storepulse/app
COPY . .
# Everything StorePulse writes at run time lives here; the dbt manifest is parsed at build time
# so no container parses it at start-up.
ENV STOREPULSE_HOME=/opt/storepulse/home
RUN pip install --no-cache-dir '.[celery]' && python -m storepulse.dbt_runtime
RUN mkdir -p /opt/dagster/dagster_home /opt/dagster/compute_logs /opt/storepulse/landing \
    && cp docker/dagster.yaml /opt/dagster/dagster_home/dagster.yaml \
    && useradd --system --uid 10001 --home-dir /opt/storepulse storepulse \
    && chown -R storepulse /opt/storepulse/home /opt/storepulse/landing \
        /opt/dagster/dagster_home /opt/dagster/compute_logs
# Not root: the image's code and dbt project stay read-only to the processes that run it.
USER storepulse
