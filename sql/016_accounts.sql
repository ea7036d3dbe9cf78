-- 016: accounts (issue 9, parts 1 and 6): roles, closed accounts, the
-- sessions' user agent and last use, password reset tokens and the outbox
-- the operator's mailer reads. Depends only on 001.
--
-- Roles. users.role is 'customer', 'support' (reads every order and user,
-- changes nothing) or 'staff'. is_staff stays, because the module's and
-- ecom-admin's existing statements read and write it (and a module of the
-- previous release may still run during a rolling upgrade): a trigger keeps
-- the two equal whichever one a statement writes (role wins when both
-- change), and a CHECK holds them equal. Rows with is_staff = true become
-- role 'staff' here.
ALTER TABLE users
    ADD COLUMN role text NOT NULL DEFAULT 'customer'
        CHECK (role IN ('customer', 'support', 'staff')),
    -- set when the account was closed (DELETE /auth/me/): its personal
    -- data is gone, its orders stay for the merchant's books
    ADD COLUMN closed_at timestamptz;
UPDATE users SET role = 'staff' WHERE is_staff;
ALTER TABLE users
    ADD CONSTRAINT users_role_is_staff CHECK (is_staff = (role = 'staff'));

CREATE FUNCTION ecom_users_role_sync() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.role IS DISTINCT FROM OLD.role THEN
        NEW.is_staff := NEW.role = 'staff';
    ELSIF TG_OP = 'UPDATE' AND NEW.is_staff IS DISTINCT FROM OLD.is_staff THEN
        -- an older writer (ecom-admin create-staff): staff, or back to
        -- customer from staff
        NEW.role := CASE WHEN NEW.is_staff THEN 'staff' ELSE 'customer' END;
    ELSIF TG_OP = 'INSERT' AND NEW.is_staff AND NEW.role = 'customer' THEN
        NEW.role := 'staff';
    ELSIF TG_OP = 'INSERT' THEN
        NEW.is_staff := NEW.role = 'staff';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER users_role_sync BEFORE INSERT OR UPDATE OF role, is_staff
    ON users FOR EACH ROW EXECUTE FUNCTION ecom_users_role_sync();

-- Sessions (GET /auth/sessions/). user_agent: what the client sent at
-- login or registration, printable ASCII, at most 256 bytes (the module
-- cleans it). last_used_at moves at most once per token per 5 minutes
-- (mod_ecom/ecom_account.c), so reading it costs no write per request.
ALTER TABLE auth_tokens
    ADD COLUMN user_agent text CHECK (length(user_agent) <= 256),
    ADD COLUMN last_used_at timestamptz NOT NULL DEFAULT now();

-- Password reset tokens: only the SHA-256 of the token is stored; single
-- use (used_at), expiring. A used token, or a new password, spends every
-- other outstanding token of the account too.
CREATE TABLE password_resets (
    id          bigserial PRIMARY KEY,
    user_id     bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash  text        NOT NULL UNIQUE CHECK (length(token_hash) = 64),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX password_resets_user ON password_resets (user_id, created_at);
CREATE INDEX password_resets_expires ON password_resets (expires_at);

-- The mail the operator's mailer sends (the module sends none): the clear
-- token, once, for `scripts/ecom-admin reset-outbox --drain` to hand over
-- and delete. A row goes with its reset token (spent, purged or its
-- account deleted), so no clear token outlives the hash it matches.
CREATE TABLE password_reset_outbox (
    id          bigserial PRIMARY KEY,
    reset_id    bigint      NOT NULL UNIQUE
                            REFERENCES password_resets (id) ON DELETE CASCADE,
    email       text        NOT NULL,
    token       text        NOT NULL,
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
