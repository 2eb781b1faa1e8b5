-- name: office_search_players
-- The coach's search: players of one tenant whose id is :player_id or whose full name contains
-- :name_pattern (lower case, LIKE-escaped), at most :limit of them, by name.
-- returns: player_id, first_name, last_name, team, status, parent_id, parent_first_name,
--          parent_last_name
SELECT p.id AS player_id, p.first_name, p.last_name, p.team, p.status, p.parent_id,
       pa.first_name AS parent_first_name, pa.last_name AS parent_last_name
FROM players AS p
LEFT JOIN parents AS pa ON pa.id = p.parent_id AND pa.tenant_id = p.tenant_id
WHERE p.tenant_id = :tenant_id
  AND (p.id = CAST(:player_id AS INTEGER)
       OR LOWER(p.first_name || ' ' || p.last_name) LIKE CAST(:name_pattern AS VARCHAR) ESCAPE '\')
ORDER BY p.last_name, p.first_name, p.id
LIMIT :limit
