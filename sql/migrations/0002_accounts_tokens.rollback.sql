DROP TRIGGER generate_default_token_trg ON accounts;
DROP FUNCTION generate_default_token();
DROP TABLE tokens;
DROP TABLE accounts;
DROP TYPE account_role;
