-- name: office_stripe_news
-- When one tenant's bills last heard from Stripe: the newest reconcile read of an account and mode
-- its links were minted in (a read moves the cursor's updated_at even when there is no news), and
-- the newest event a webhook delivered from its account (:account, '' for the platform's own).
-- returns: refreshed_at, webhook_at
SELECT
  (SELECT MAX(c.updated_at)
   FROM reconcile_cursors AS c
   WHERE EXISTS (SELECT 1 FROM payment_links AS pl
                 WHERE pl.tenant_id = :tenant_id
                   AND pl.stripe_account = c.stripe_account
                   AND pl.livemode = c.livemode)) AS refreshed_at,
  (SELECT MAX(e.applied_at)
   FROM stripe_events AS e
   WHERE e.source = 'webhook' AND COALESCE(e.stripe_account, '') = :account) AS webhook_at
