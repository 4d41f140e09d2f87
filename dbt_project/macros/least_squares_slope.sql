{#- Least-squares slope of y over x = 1..W from sum(x*y) and sum(y) alone: the sums of x and
    x^2 are known in closed form, so days with y = 0 need no rows.
      slope = (W * sum(x*y) - sum(x) * sum(y)) / (W * sum(x^2) - sum(x)^2) -#}
{% macro least_squares_slope(sum_xy, sum_y, window) %}
    round(
        ({{ window }} * {{ sum_xy }} - ({{ window }} * ({{ window }} + 1) / 2.0) * {{ sum_y }})
        / nullif({{ window }} * ({{ window }} * ({{ window }} + 1) * (2 * {{ window }} + 1) / 6.0)
                 - power({{ window }} * ({{ window }} + 1) / 2.0, 2), 0),
        4
    )
{% endmacro %}
