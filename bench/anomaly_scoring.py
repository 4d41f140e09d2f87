"""Scoring anomaly detectors against planted events, for benchmarks and tests."""

from __future__ import annotations

import pandas as pd


def score_against_truth(anomalies: pd.DataFrame, truth: pd.DataFrame,
                        explained: pd.DataFrame | None = None) -> dict[str, float]:
    """Event recall (an event counts when any of its days is flagged) and day precision (a
    flagged store-day counts when it falls inside a planted event). Flags inside ``explained``
    windows (tenant-wide, e.g. a promotion week) count neither way."""
    flagged = {(a.tenant_id, a.store_id, pd.Timestamp(a.day)) for a in anomalies.itertuples()}
    if explained is not None:
        known = {(e.tenant_id, d) for e in explained.itertuples()
                 for d in pd.date_range(e.start, e.end)}
        planted = {(e.tenant_id, e.store_id, d) for e in truth.itertuples()
                   for d in pd.date_range(e.start, e.end)}
        flagged = {f for f in flagged if f in planted or (f[0], f[2]) not in known}
    hit_events = 0
    true_days = set()
    for event in truth.itertuples():
        window = pd.date_range(event.start, event.end)
        inside = {(event.tenant_id, event.store_id, d) for d in window} & flagged
        hit_events += bool(inside)
        true_days |= inside
    return {"recall": hit_events / len(truth) if len(truth) else 1.0,
            "precision": len(true_days) / len(flagged) if flagged else 1.0,
            "events": len(truth), "events_found": hit_events, "flagged_days": len(flagged)}


def score_planted(found: pd.DataFrame, untouched: pd.DataFrame, truth: pd.DataFrame
                  ) -> dict[str, float]:
    """Recall and precision of events planted into a real history, whose own anomalies are
    unknown: a flag counts against precision only when the planting caused it, i.e. it falls
    outside every event and the untouched history has no flag on that store-day (nor, for a
    level shift, one within a week: a planted drop can move where a real run is first seen).
    """
    scores = score_against_truth(found, truth)
    inside = set()
    for event in truth.itertuples():
        inside |= {(event.store_id, d) for d in pd.date_range(event.start, event.end)}
    before = {(a.store_id, pd.Timestamp(a.day)) for a in untouched.itertuples()}
    shifts_before = [(a.store_id, pd.Timestamp(a.day)) for a in untouched.itertuples()
                     if a.detector == "level_shift"]

    def caused(a) -> bool:
        key = (a.store_id, pd.Timestamp(a.day))
        if key in inside or key in before:
            return False
        return a.detector != "level_shift" or not any(
            s == a.store_id and abs((d - key[1]).days) <= 7 for s, d in shifts_before)

    flagged_inside = {(a.store_id, pd.Timestamp(a.day)) for a in found.itertuples()} & inside
    false = {(a.store_id, pd.Timestamp(a.day)) for a in found.itertuples() if caused(a)}
    scores["precision"] = (len(flagged_inside) / (len(flagged_inside) + len(false))
                           if flagged_inside or false else 1.0)
    scores["caused_outside_events"] = len(false)
    return scores

