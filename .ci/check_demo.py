"""CI: check what `storepulse demo` built in the warehouse of $STOREPULSE_HOME.

Run with the interpreter of the installation under test, in the environment the demo ran in
(DATABASE_URL unset: the embedded server under STOREPULSE_HOME).
"""

import os
import sys

import sqlalchemy as sa

from storepulse.warehouse import get_engine, resolve_database_url

# Every stage of the pipeline leaves rows: ingestion, the quality gate, dbt, ML, alerting.
MUST_HAVE_ROWS = ["raw.sales_lines", "ops.quality_results", "marts.fct_sales_lines",
                  "marts.mart_daily_store_kpis", "marts.mart_customer_rfm", "ml.forecasts",
                  "ml.anomalies", "ops.alert_deliveries"]


def main() -> int:
    if os.environ.get("DATABASE_URL"):
        print("check_demo: DATABASE_URL is set; this check is for the embedded server")
        return 1
    url = resolve_database_url()
    if url.host:  # the embedded server listens on a Unix socket only
        print(f"check_demo: expected the embedded server, got {url.host}")
        return 1
    with get_engine(url).connect() as conn:
        counts = {t: conn.execute(sa.text(f"select count(*) from {t}")).scalar_one()
                  for t in MUST_HAVE_ROWS}
        failed_gates = conn.execute(sa.text(
            "select count(*) from ops.quality_results where not success and "
            "severity = 'error'")).scalar_one()
    for table, count in counts.items():
        print(f"check_demo: {table:<30} {count:>10,}")
    empty = [t for t, c in counts.items() if c == 0]
    if empty or failed_gates:
        print(f"check_demo: FAILED: empty {empty}, failed blocking rules {failed_gates}")
        return 1
    print(f"check_demo: the demo built every layer on {url.query.get('host')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
