-- Native SQL in Metabase on the tenant's own database: off unless an operator turns it on
-- (`storepulse tenants native-sql SLUG --on`); SECURITY.md says what it exposes.
alter table ops.tenants add column metabase_native_sql boolean not null default false;
