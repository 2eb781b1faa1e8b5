-- name: extract_price_tiers
-- Stripe Prices already recorded for the tenant's (product, amount) pairs in one currency,
-- Stripe account and mode (a price belongs to exactly one of each).
-- returns: product_id, amount_cents, stripe_price_id, stripe_product_id
SELECT pt.product_id, pt.amount_cents, pt.stripe_price_id, pt.stripe_product_id
FROM price_tiers AS pt
WHERE pt.tenant_id = :tenant_id
  AND pt.currency = :currency
  AND pt.stripe_account = :stripe_account
  AND pt.livemode = :livemode
