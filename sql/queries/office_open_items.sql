-- name: office_open_items
-- Every open (pending) item of one tenant for the admin's CSV: player, the parent who owes it
-- (the row's, else the player's), their email, product, amount and link.
-- returns: payment_link_id, player_id, player_first_name, player_last_name, team, parent_first_name,
--          parent_last_name, parent_email, product_name, description, amount_cents, status, url
SELECT pl.id AS payment_link_id, p.id AS player_id, p.first_name AS player_first_name,
       p.last_name AS player_last_name, p.team,
       pa.first_name AS parent_first_name, pa.last_name AS parent_last_name, pa.email AS parent_email,
       pr.name AS product_name, pl.description, pl.amount_cents, pl.status,
       pl.stripe_payment_link_url AS url
FROM payment_links AS pl
JOIN players AS p ON p.id = pl.player_id AND p.tenant_id = pl.tenant_id
JOIN products AS pr ON pr.id = pl.product_id AND pr.tenant_id = pl.tenant_id
LEFT JOIN parents AS pa ON pa.tenant_id = pl.tenant_id AND pa.id = COALESCE(pl.parent_id, p.parent_id)
WHERE pl.tenant_id = :tenant_id AND CAST(pl.status AS VARCHAR) = 'pending'
ORDER BY p.last_name, p.first_name, p.id, pl.description, pl.id
