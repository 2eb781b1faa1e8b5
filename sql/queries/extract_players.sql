-- name: extract_players
-- Every player of one tenant, any status: signed players owe the default fees, withdrawn
-- players owe nothing, and their open links are retired.
-- returns: player_id, parent_id (null: no parent on file), first_name, last_name, status
SELECT p.id AS player_id, p.parent_id, p.first_name, p.last_name, p.status
FROM players AS p
WHERE p.tenant_id = :tenant_id
ORDER BY p.id
