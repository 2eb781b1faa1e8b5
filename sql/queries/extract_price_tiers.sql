-- name: extract_price_tiers
-- Stripe Prices already recorded for the tenant's (product, amount) pairs.
-- returns: product_id, amount_cents, stripe_price_id
SELECT pt.product_id, pt.amount_cents, pt.stripe_price_id
FROM price_tiers AS pt
WHERE pt.tenant_id = :tenant_id
