-- The file ledger as the models need it: which version of a file is current (`loaded`),
-- replaced (`superseded`, and when) or never became data (`rejected`).
select
    file_id,
    tenant_id,
    target,
    status,
    published_at,
    superseded_at
from {{ source('raw', 'ingest_files') }}
