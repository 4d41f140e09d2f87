select
    tenant_id,
    name as tenant_name,
    timezone,
    currency,
    country_code
from {{ source('ops', 'tenants') }}
