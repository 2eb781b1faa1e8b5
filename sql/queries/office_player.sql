-- name: office_player
-- One player of one tenant with the parent on file; no row when the id is another tenant's.
-- returns: player_id, first_name, last_name, team, status, parent_id, parent_first_name,
--          parent_last_name, parent_email
SELECT p.id AS player_id, p.first_name, p.last_name, p.team, p.status, p.parent_id,
       pa.first_name AS parent_first_name, pa.last_name AS parent_last_name, pa.email AS parent_email
FROM players AS p
LEFT JOIN parents AS pa ON pa.id = p.parent_id AND pa.tenant_id = p.tenant_id
WHERE p.tenant_id = :tenant_id AND p.id = :player_id
