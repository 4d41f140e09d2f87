"""Onboarding and removal: role, mapping, landing folder, audit, and GDPR purge."""

import pytest
import sqlalchemy as sa

from storepulse.errors import StorePulseError
from storepulse.tenants import Tenant, add_tenant, remove_tenant
from tests.ingestion_helpers import good_row, pos_csv, register, rows, scalar


def test_add_creates_role_mapping_folder_and_audit(engine, tmp_path, tenant_role_prefix):
    # Roles are cluster-wide and other tests onboard "shop": use a slug nobody else does.
    result = add_tenant(engine, Tenant("boutique", "Boutique", "Europe/Paris", "EUR", "FR"),
                        landing_dir=tmp_path)
    assert result.created and result.role.startswith(tenant_role_prefix)
    assert "boutique" not in result.role  # role names are public: they do not name tenants
    assert result.generated_password and len(result.generated_password) >= 20
    assert (tmp_path / "boutique").is_dir()
    with engine.connect() as conn:
        assert conn.execute(sa.text("select pg_has_role(:r, 'storepulse_tenants', 'member')"),
                            {"r": result.role}).scalar_one()
    assert scalar(engine, "select tenant_id from ops.tenant_roles where role_name = :r",
                  r=result.role) == "boutique"
    assert scalar(engine, "select action from ops.audit_log") == "tenant_add"
    again = add_tenant(engine, Tenant("boutique", "Boutique", "Europe/Paris", "EUR", "FR"))
    assert not again.created and again.generated_password is None
    assert again.role == result.role
    remove_tenant(engine, "boutique")


def test_purge_erases_every_row_in_one_transaction_and_reports_counts(engine, tmp_path):
    register(engine, "gone")
    register(engine, "stays")
    pos_csv(tmp_path / "a.csv", [good_row(), good_row("O2", qty="0")])
    from ingestion.loader import load_file
    from ingestion.spec import shipped_specs
    load_file(engine, tmp_path / "a.csv", "gone", shipped_specs()["generic_pos_csv"])
    load_file(engine, tmp_path / "a.csv", "stays", shipped_specs()["generic_pos_csv"])
    removed = remove_tenant(engine, "gone", purge=True)
    assert removed.counts["raw.sales_lines"] == 1
    assert removed.counts["raw.quarantine"] == 1
    assert removed.counts["raw.ingest_files"] == 1
    assert removed.counts["ops.tenants"] == 1
    assert scalar(engine, "select count(*) from raw.sales_lines where tenant_id = 'gone'") == 0
    assert scalar(engine, "select count(*) from raw.sales_lines where tenant_id = 'stays'") == 1
    with engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from pg_roles where rolname = :r"),
                            {"r": removed.role}).scalar_one() == 0
    audit = rows(engine, "select action, before_counts, after_counts from ops.audit_log "
                         "where tenant_id = 'gone' order by audit_id")
    assert audit[-1].action == "tenant_purge"
    assert audit[-1].before_counts["raw.sales_lines"] == 1
    assert audit[-1].after_counts["raw.sales_lines"] == 0
    remove_tenant(engine, "stays")


def test_remove_unknown_tenant(engine):
    with pytest.raises(StorePulseError, match="not registered"):
        remove_tenant(engine, "nobody")


@pytest.mark.parametrize("currency, country, says", [
    ("GPB", "GB", "not an ISO 4217 currency code: GPB"),  # a typo of GBP
    ("EUR", "EN", "country 'EN' is not an ISO 3166 code with a public-holiday calendar"),
    ("EUR", "ZZ", "country 'ZZ' is not an ISO 3166 code"),
])
def test_a_tenant_needs_a_real_currency_and_a_country_with_holidays(engine, currency, country,
                                                                    says):
    # A country no calendar knows once meant no holidays at all: Easter Monday an outage.
    with pytest.raises(StorePulseError, match=says):
        add_tenant(engine, Tenant("boutique", "Boutique", "Europe/Paris", currency, country))
    assert scalar(engine, "select count(*) from ops.tenants") == 0


def test_the_gate_accepts_only_real_currencies(engine):
    from storepulse.tenants import set_gate_limits

    register(engine, "shop")
    with pytest.raises(StorePulseError, match="not an ISO 4217 currency code: XYZ"):
        set_gate_limits(engine, "shop", accepted_currencies=("EUR", "XYZ"))
    assert set_gate_limits(engine, "shop", accepted_currencies=("EUR", "CHF")
                           ).accepted_currencies == ("EUR", "CHF")
