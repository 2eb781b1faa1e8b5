-- name: player_payment_links
-- One player's payment links, every status, for the coach's lookup and resend.
-- returns: payment_link_id, description, amount_cents, status, url, paid_at, created_at
SELECT pl.id AS payment_link_id, pl.description, pl.amount_cents, pl.status,
       pl.stripe_payment_link_url AS url, pl.paid_at, pl.created_at
FROM payment_links AS pl
WHERE pl.tenant_id = :tenant_id
  AND pl.player_id = :player_id
ORDER BY pl.status, pl.description, pl.id
