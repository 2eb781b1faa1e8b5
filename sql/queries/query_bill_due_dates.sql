-- name: query_bill_due_dates
-- What decides each open payment-link row's due date, for one tenant's reminders: the order's
-- own due date and creation time (an order's bill), the product's due date. The due date
-- itself (order's, else product's, else created + the tenant's terms) is paylinks.club.due's.
-- returns: payment_link_id, order_id, order_due_on, order_created_at, product_id, product_due_on
SELECT pl.id AS payment_link_id, pl.order_id, o.due_on AS order_due_on,
       o.created_at AS order_created_at, pl.product_id, pr.due_on AS product_due_on
FROM payment_links AS pl
JOIN products AS pr ON pr.id = pl.product_id AND pr.tenant_id = pl.tenant_id
LEFT JOIN orders AS o ON o.id = pl.order_id AND o.tenant_id = pl.tenant_id
WHERE pl.tenant_id = :tenant_id
  AND CAST(pl.status AS VARCHAR) = 'pending'
  AND (CAST(:player_id AS INTEGER) IS NULL OR pl.player_id = CAST(:player_id AS INTEGER))
ORDER BY pl.id
