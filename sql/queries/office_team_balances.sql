-- name: office_team_balances
-- Money per team of one tenant, read from the payment-link rows: owed (pending), processing
-- (paid by a slow method, not settled), paid. Players without a team come under ''.
-- returns: team, owed_cents, processing_cents, paid_cents, open_items
SELECT COALESCE(p.team, '') AS team,
       SUM(CASE WHEN CAST(pl.status AS VARCHAR) = 'pending' THEN pl.amount_cents ELSE 0 END) AS owed_cents,
       SUM(CASE WHEN CAST(pl.status AS VARCHAR) = 'processing'
                THEN COALESCE(pl.paid_amount_cents, pl.amount_cents) ELSE 0 END) AS processing_cents,
       SUM(CASE WHEN CAST(pl.status AS VARCHAR) = 'paid'
                THEN COALESCE(pl.paid_amount_cents, pl.amount_cents) ELSE 0 END) AS paid_cents,
       SUM(CASE WHEN CAST(pl.status AS VARCHAR) = 'pending' THEN 1 ELSE 0 END) AS open_items
FROM payment_links AS pl
JOIN players AS p ON p.id = pl.player_id AND p.tenant_id = pl.tenant_id
WHERE pl.tenant_id = :tenant_id
GROUP BY COALESCE(p.team, '')
ORDER BY COALESCE(p.team, '')
