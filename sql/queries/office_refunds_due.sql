-- name: office_refunds_due
-- Payments of one tenant the club owes back and nobody has resolved yet, oldest first, with the
-- bill and player they came for (when Stripe's payment matched one of our rows).
-- returns: payment_id, payment_link_row_id, checkout_session_id, amount_cents, refunded_cents,
--          currency, refund_due_reason, paid_at, description, player_id, player_first_name,
--          player_last_name, team
SELECT pm.id AS payment_id, pm.payment_link_row_id, pm.checkout_session_id, pm.amount_cents,
       pm.refunded_cents, pm.currency, pm.refund_due_reason, pm.paid_at,
       pl.description, p.id AS player_id, p.first_name AS player_first_name,
       p.last_name AS player_last_name, COALESCE(p.team, '') AS team
FROM payments AS pm
LEFT JOIN payment_links AS pl ON pl.id = pm.payment_link_row_id AND pl.tenant_id = pm.tenant_id
LEFT JOIN players AS p ON p.id = pl.player_id AND p.tenant_id = pm.tenant_id
WHERE pm.tenant_id = :tenant_id AND pm.refund_due AND pm.resolved_at IS NULL
ORDER BY pm.paid_at, pm.id
