-- name: query_open_bill_due_dates_of_every_tenant
-- What decides the due date of every open bill of every tenant with reminders on, at once (one
-- row per distinct case): the hourly run finds the clubs with a cadence step near today before
-- any per-club work. The due date itself is paylinks.club.due's.
-- returns: tenant_id, order_id, order_due_on, order_created_at, product_id, product_due_on
SELECT DISTINCT pl.tenant_id, o.id AS order_id, o.due_on AS order_due_on,
       o.created_at AS order_created_at,
       pr.id AS product_id, pr.due_on AS product_due_on
FROM payment_links AS pl
JOIN tenants AS t ON t.id = pl.tenant_id
JOIN products AS pr ON pr.id = pl.product_id AND pr.tenant_id = pl.tenant_id
LEFT JOIN orders AS o ON o.id = pl.order_id AND o.tenant_id = pl.tenant_id
WHERE t.reminders_enabled
  AND CAST(pl.status AS VARCHAR) = 'pending'
