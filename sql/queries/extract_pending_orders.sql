-- name: extract_pending_orders
-- Orders still waiting for payment; each is a bill at the order's own amount.
-- returns: order_id, player_id, parent_id, product_id, amount_cents, created_at
SELECT o.id AS order_id, o.player_id, o.parent_id, o.product_id, o.amount_cents, o.created_at
FROM orders AS o
WHERE o.tenant_id = :tenant_id
  AND o.status = 'pending'
ORDER BY o.id
