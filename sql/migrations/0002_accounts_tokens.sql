-- Accounts (with the default account) and their API tokens, with Panoramax's names.
-- depends: 0001_extensions
CREATE TYPE account_role AS ENUM ('user', 'admin');

CREATE TABLE accounts (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name varchar NOT NULL,
    is_default boolean NOT NULL DEFAULT false,
    role account_role NOT NULL DEFAULT 'user',
    created_at timestamptz NOT NULL DEFAULT now(),
    oauth_provider varchar,
    oauth_id varchar
);

-- Names are not unique (as in Panoramax): look-ups by name must handle several matches.
CREATE INDEX accounts_name_idx ON accounts (name);
CREATE UNIQUE INDEX at_most_one_default ON accounts (is_default) WHERE is_default;
CREATE UNIQUE INDEX oauth_id_idx ON accounts (oauth_provider, oauth_id);

CREATE TABLE tokens (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id uuid REFERENCES accounts (id) ON DELETE CASCADE,
    description varchar,
    generated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX tokens_account_id_idx ON tokens (account_id);

-- Every new account gets exactly one 'default token'.
CREATE FUNCTION generate_default_token() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tokens (account_id, description) VALUES (NEW.id, 'default token');
    RETURN NULL;
END
$$;

CREATE TRIGGER generate_default_token_trg
AFTER INSERT ON accounts
FOR EACH ROW EXECUTE FUNCTION generate_default_token();

INSERT INTO accounts (name, is_default, role) VALUES ('Default account', true, 'admin');
