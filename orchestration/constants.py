DATA_ENGINEERING = "team:data-engineering"
ANALYTICS = "team:analytics"
DATA_SCIENCE = "team:data-science"

# Sensors on the daily loop's path (landing, dbt, automation, anomaly alerts) are evaluated on
# every pass of the daemon's loop, which comes about every 5 s: an interval of 5 would let
# one pass fall a moment short and skip to the next, making it 10 s per hop.
EVERY_DAEMON_LOOP = 1
