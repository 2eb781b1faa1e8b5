-- name: query_outstanding_balances
-- Payment-link rows of one tenant read against the club's data as it is now, one row per item,
-- unordered: `paylinks.club.balances.balance_rows` puts them in the order emails list them
-- (parents by name, then their players), the same on every database. Sorting 3,000 rows by
-- seven keys under the database's collation was half of this query's time on PostgreSQL. The parent is the one who owes
-- the bill today: the order's parent (else the player's) for an order, the player's parent for
-- a default fee; null when there is none. The current order, player and product columns let
-- the caller hold back anything no longer owed before the next backfill retires it.
-- :statuses (an expanding list: ['pending'] for the blast and resend, every status for the
-- coach's lookup and the family page) filters the rows; :player_id (null for all) narrows them to
-- one player, for the coach's resend and lookup; :parent_id (null for all) to one parent's: billed
-- to them now (parent_id), or when the row was last billed (billed_parent_id: whose a paid bill
-- was), for the family page.
-- `pl.tenant_id = … AND pl.status IN (…)` is ix_payment_links_tenant_status_parent's prefix: the
-- blast reads only the tenant's open rows, even in a plan made for any statuses. The tenant's
-- pending orders are grouped once (a hash join), not looked up per row.
-- returns: payment_link_id, status, player_id, product_id, order_id, description, amount_cents,
--          url, stripe_account, livemode, player_first_name, player_last_name, player_status,
--          order_status, order_amount_cents, product_active, product_bill_signed_players,
--          product_amount_cents, pending_order_id, parent_id, parent_first_name,
--          parent_last_name, parent_email, billed_parent_id, mint_version, stripe_price_id,
--          paid_at, paid_method
SELECT pl.id AS payment_link_id, pl.status, pl.player_id, pl.product_id, pl.order_id,
       pl.description, pl.amount_cents, pl.stripe_payment_link_url AS url,
       pl.stripe_account, pl.livemode,
       pp.first_name AS player_first_name, pp.last_name AS player_last_name,
       pp.status AS player_status,
       o.status AS order_status, o.amount_cents AS order_amount_cents,
       pr.active AS product_active, pr.bill_signed_players AS product_bill_signed_players,
       pr.amount_cents AS product_amount_cents,
       pending.pending_order_id,
       pa.id AS parent_id, pa.first_name AS parent_first_name, pa.last_name AS parent_last_name,
       pa.email AS parent_email,
       pl.parent_id AS billed_parent_id, pl.mint_version, pl.stripe_price_id, pl.paid_at,
       pl.paid_method
FROM payment_links AS pl
JOIN players AS pp ON pp.id = pl.player_id AND pp.tenant_id = pl.tenant_id
JOIN products AS pr ON pr.id = pl.product_id AND pr.tenant_id = pl.tenant_id
LEFT JOIN orders AS o ON o.id = pl.order_id AND o.tenant_id = pl.tenant_id
LEFT JOIN (SELECT po.player_id, po.product_id, MIN(po.id) AS pending_order_id
           FROM orders AS po
           WHERE po.tenant_id = :tenant_id AND po.status = 'pending'
           GROUP BY po.player_id, po.product_id) AS pending
       ON pending.player_id = pl.player_id AND pending.product_id = pl.product_id
LEFT JOIN parents AS pa
       ON pa.tenant_id = pl.tenant_id
      AND pa.id = CASE WHEN pl.order_id IS NULL THEN pp.parent_id
                       ELSE COALESCE(o.parent_id, pp.parent_id) END
WHERE pl.tenant_id = :tenant_id
  AND pl.status IN :statuses
  AND (CAST(:player_id AS INTEGER) IS NULL OR pl.player_id = CAST(:player_id AS INTEGER))
  AND (CAST(:parent_id AS INTEGER) IS NULL OR pa.id = CAST(:parent_id AS INTEGER)
       OR pl.parent_id = CAST(:parent_id AS INTEGER))
