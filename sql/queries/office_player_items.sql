-- name: office_player_items
-- Every payment-link row of one player, with the parent who owes it (the row's, else the
-- player's), open ones first.
-- returns: payment_link_id, description, amount_cents, status, url, paid_at, paid_method,
--          paid_by, paid_note, parent_id, parent_first_name, parent_last_name, parent_email
SELECT pl.id AS payment_link_id, pl.description, pl.amount_cents, pl.status,
       pl.stripe_payment_link_url AS url, pl.paid_at, pl.paid_method, pl.paid_by, pl.paid_note,
       pa.id AS parent_id, pa.first_name AS parent_first_name, pa.last_name AS parent_last_name,
       pa.email AS parent_email
FROM payment_links AS pl
JOIN players AS p ON p.id = pl.player_id AND p.tenant_id = pl.tenant_id
LEFT JOIN parents AS pa ON pa.tenant_id = pl.tenant_id AND pa.id = COALESCE(pl.parent_id, p.parent_id)
WHERE pl.tenant_id = :tenant_id AND pl.player_id = :player_id
ORDER BY CASE WHEN CAST(pl.status AS VARCHAR) = 'pending' THEN 0 ELSE 1 END, pl.description, pl.id
