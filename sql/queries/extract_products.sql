-- name: extract_products
-- The tenant's products: what signed players owe by default, and what orders refer to.
-- returns: product_id, name, description, amount_cents, active, bill_signed_players, stripe_product_id
SELECT pr.id AS product_id, pr.name, pr.description, pr.amount_cents, pr.active,
       pr.bill_signed_players, pr.stripe_product_id
FROM products AS pr
WHERE pr.tenant_id = :tenant_id
ORDER BY pr.id
