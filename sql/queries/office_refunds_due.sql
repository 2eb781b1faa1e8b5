-- name: office_refunds_due
-- Money of one tenant the club owes back, or refunded at Stripe but not matched to items, that
-- nobody has resolved yet, oldest first: one line per item whose money is owed back (with the
-- bill and player it came for), one per payment with refunded money to match (no bill), and any
-- other payment still marked as owing money back (a record made before payments were allocated).
-- returns: payment_id, payment_link_row_id, checkout_session_id, amount_cents, refunded_cents,
--          unmatched_refund_cents, currency, refund_due_reason, paid_at, description, player_id,
--          player_first_name, player_last_name, team
SELECT pm.id AS payment_id, a.payment_link_row_id, pm.checkout_session_id,
       a.amount_cents, a.refunded_cents, 0 AS unmatched_refund_cents, pm.currency,
       a.refund_due_reason, pm.paid_at,
       pl.description, p.id AS player_id, p.first_name AS player_first_name,
       p.last_name AS player_last_name, COALESCE(p.team, '') AS team
FROM payments AS pm
JOIN payment_allocations AS a ON a.payment_id = pm.id AND a.tenant_id = pm.tenant_id
LEFT JOIN payment_links AS pl ON pl.id = a.payment_link_row_id AND pl.tenant_id = pm.tenant_id
LEFT JOIN players AS p ON p.id = pl.player_id AND p.tenant_id = pm.tenant_id
WHERE pm.tenant_id = :tenant_id AND pm.refund_due AND pm.resolved_at IS NULL
  AND a.status = 'refund_due'
UNION ALL
SELECT pm.id AS payment_id, NULL AS payment_link_row_id, pm.checkout_session_id,
       pm.unallocated_refund_cents AS amount_cents, pm.unallocated_refund_cents AS refunded_cents,
       pm.unallocated_refund_cents AS unmatched_refund_cents, pm.currency,
       'refunded at Stripe, not matched to whole items: pick the items it was for' AS refund_due_reason,
       pm.paid_at, NULL AS description, NULL AS player_id, NULL AS player_first_name,
       NULL AS player_last_name, '' AS team
FROM payments AS pm
WHERE pm.tenant_id = :tenant_id AND pm.refund_due AND pm.resolved_at IS NULL
  AND pm.unallocated_refund_cents > 0
UNION ALL
SELECT pm.id AS payment_id, pm.payment_link_row_id, pm.checkout_session_id,
       pm.amount_cents, pm.refunded_cents, 0 AS unmatched_refund_cents, pm.currency,
       pm.refund_due_reason, pm.paid_at, pl.description, p.id AS player_id,
       p.first_name AS player_first_name, p.last_name AS player_last_name,
       COALESCE(p.team, '') AS team
FROM payments AS pm
LEFT JOIN payment_links AS pl ON pl.id = pm.payment_link_row_id AND pl.tenant_id = pm.tenant_id
LEFT JOIN players AS p ON p.id = pl.player_id AND p.tenant_id = pm.tenant_id
WHERE pm.tenant_id = :tenant_id AND pm.refund_due AND pm.resolved_at IS NULL
  AND pm.unallocated_refund_cents = 0
  AND NOT EXISTS (SELECT 1 FROM payment_allocations AS a
                  WHERE a.payment_id = pm.id AND a.status = 'refund_due')
ORDER BY paid_at, payment_id
