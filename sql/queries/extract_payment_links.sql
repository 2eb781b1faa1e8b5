-- name: extract_payment_links
-- paylinks' rows for one tenant, whatever their status, with where each link was minted.
-- returns: payment_links columns the planner reads
SELECT pl.id, pl.player_id, pl.parent_id, pl.product_id, pl.order_id, pl.description,
       pl.amount_cents, pl.stripe_price_id, pl.stripe_payment_link_id, pl.stripe_payment_link_url,
       pl.status, pl.mint_version, pl.stripe_account, pl.livemode, pl.reserved_at, pl.checkout_text
FROM payment_links AS pl
WHERE pl.tenant_id = :tenant_id
ORDER BY pl.id
