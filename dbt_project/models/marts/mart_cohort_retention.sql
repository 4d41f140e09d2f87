-- First-purchase month cohorts and the share of each cohort buying again in later months.
with customer_months as (
    select
        tenant_id,
        customer_id,
        activity_month
    from {{ ref('int_customer_months') }}
),

cohorts as (
    select
        tenant_id,
        customer_id,
        min(activity_month) as cohort_month
    from customer_months
    group by tenant_id, customer_id
),

cohort_sizes as (
    select
        tenant_id,
        cohort_month,
        count(*) as cohort_size
    from cohorts
    group by tenant_id, cohort_month
),

cohort_activity as (
    select
        cohorts.tenant_id,
        cohorts.cohort_month,
        customer_months.activity_month,
        count(*) as active_customers
    from customer_months
    join cohorts
        on
            customer_months.tenant_id = cohorts.tenant_id
            and customer_months.customer_id = cohorts.customer_id
    group by cohorts.tenant_id, cohorts.cohort_month, customer_months.activity_month
)

select
    cohort_activity.tenant_id,
    cohort_activity.cohort_month,
    cohort_activity.activity_month,
    (
        extract(year from age(cohort_activity.activity_month, cohort_activity.cohort_month)) * 12
        + extract(month from age(cohort_activity.activity_month, cohort_activity.cohort_month))
    )::int
        as months_since_first_purchase,
    cohort_sizes.cohort_size,
    cohort_activity.active_customers,
    round(cohort_activity.active_customers::numeric / cohort_sizes.cohort_size, 4)
        as retention_rate
from cohort_activity
join cohort_sizes
    on
        cohort_activity.tenant_id = cohort_sizes.tenant_id
        and cohort_activity.cohort_month = cohort_sizes.cohort_month
