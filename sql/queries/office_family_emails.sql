-- name: office_family_emails
-- The newest emails logged for these parents (:parent_ids, an expanding list) of one tenant.
-- returns: email_log_id, email_type, recipient, subject, status, error, created_at, sent_at
SELECT el.id AS email_log_id, el.email_type, el.recipient, el.subject, el.status, el.error,
       el.created_at, el.sent_at
FROM email_log AS el
WHERE el.tenant_id = :tenant_id AND el.parent_id IN :parent_ids
ORDER BY el.created_at DESC, el.id DESC
LIMIT :limit
