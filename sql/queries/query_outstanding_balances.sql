-- name: query_outstanding_balances
-- Every pending payment link of one tenant with the parent it is billed to, one row per item,
-- parents (siblings together) in order. Rows whose link is not minted yet have a null url.
-- :player_id (null for all) narrows it to one player, for the coach's resend.
-- returns: parent_id, parent_first_name, parent_last_name, parent_email, payment_link_id,
--          player_id, player_first_name, player_last_name, description, amount_cents, url
SELECT pa.id AS parent_id, pa.first_name AS parent_first_name, pa.last_name AS parent_last_name,
       pa.email AS parent_email, pl.id AS payment_link_id, pl.player_id,
       pl_player.first_name AS player_first_name, pl_player.last_name AS player_last_name,
       pl.description, pl.amount_cents, pl.stripe_payment_link_url AS url
FROM payment_links AS pl
JOIN parents AS pa ON pa.id = pl.parent_id AND pa.tenant_id = pl.tenant_id
JOIN players AS pl_player ON pl_player.id = pl.player_id AND pl_player.tenant_id = pl.tenant_id
WHERE pl.tenant_id = :tenant_id
  AND pl.status = 'pending'
  AND (CAST(:player_id AS INTEGER) IS NULL OR pl.player_id = CAST(:player_id AS INTEGER))
ORDER BY pa.last_name, pa.first_name, pa.id, pl_player.first_name, pl.player_id, pl.description, pl.id
