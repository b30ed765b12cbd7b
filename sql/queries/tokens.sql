-- Tokens of `ops default-account-tokens get` and `ops tokens verify`.

-- name: default_account
SELECT id FROM accounts WHERE is_default

-- name: oldest_token
-- Panoramax takes the first token it finds (no order): ops the oldest, then by id, the same every time.
SELECT id FROM tokens WHERE account_id = %(account_id)s ORDER BY generated_at, id LIMIT 1

-- name: token_account
-- A token's row and the account that claimed it (NULL: not claimed yet), as Panoramax's API reads them.
SELECT t.account_id, a.name FROM tokens t LEFT JOIN accounts a ON a.id = t.account_id WHERE t.id = %(id)s
