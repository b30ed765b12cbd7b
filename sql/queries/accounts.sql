-- Accounts, as `ops user` reads and changes them (the columns of ops.accounts.Account, in its order).

-- name: by_id
SELECT id, name, role::text, is_default, created_at FROM accounts WHERE id = %(id)s

-- name: by_name
-- Names are not unique (as in Panoramax): every account of that name, oldest first.
SELECT id, name, role::text, is_default, created_at FROM accounts WHERE name = %(name)s ORDER BY created_at, id

-- name: create
-- A new account gets its default token from the database (a trigger, on both kinds).
INSERT INTO accounts (name) VALUES (%(name)s) RETURNING id, name, role::text, is_default, created_at

-- name: set_role
UPDATE accounts SET role = %(role)s WHERE id = %(id)s RETURNING id, name, role::text, is_default, created_at
