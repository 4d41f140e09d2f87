-- Each series' champion keeps the prediction band calibrated on its backtest errors
-- (ml/intervals.py), so a daily refit that skips the backtest still gives a calibrated band.
-- Baselines have no parameters to warm-start from, but do have a band: params may be null.
alter table ml.model_states add column band_edges jsonb;
alter table ml.model_states alter column params drop not null;
