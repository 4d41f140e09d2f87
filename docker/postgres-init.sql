-- Extra databases in the compose stack's server: Dagster's instance and Metabase's app DB.
create database dagster;
create database metabase;
